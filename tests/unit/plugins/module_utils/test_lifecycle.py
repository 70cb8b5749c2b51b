# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-side lifecycle on a real filesystem (a Layout under tmp_path, real scripts, real bundles)."""

import json
import os
import shutil
import textwrap

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle
from ansible_collections.rollout.codedeploy.plugins.module_utils.appspec import parse_appspec
from ansible_collections.rollout.codedeploy.plugins.module_utils.layout import Layout

ALL = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]
GROUP = "3f1c2b8e-0000-5000-8000-000000000001"

APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app/
    destination: {dest}
hooks:
  ApplicationStop:
    - location: scripts/hook.sh
  BeforeInstall:
    - location: scripts/hook.sh
  AfterInstall:
    - location: scripts/hook.sh
  ApplicationStart:
    - location: scripts/hook.sh
  ValidateService:
    - location: scripts/validate.sh
"""


@pytest.fixture
def env(tmp_path):
    return {"root": str(tmp_path / "root"), "dest": str(tmp_path / "installed"), "evidence": str(tmp_path / "evidence.log"),
            "tmp": tmp_path}


def make_revision(env, name, version, validate_exit=0, stop_exit=0, files=None):
    """A revision folder and its tgz bundle; returns (bundle path, sha256, normalized appspec)."""
    src = env["tmp"] / ("src-" + name)
    (src / "app").mkdir(parents=True)
    (src / "scripts").mkdir()
    (src / "appspec.yml").write_text(APPSPEC.format(dest=env["dest"]))
    (src / "app" / "version.txt").write_text(version + "\n")
    for rel, content in (files or {}).items():
        (src / "app" / rel).write_text(content)
    hook = textwrap.dedent("""\
        #!/bin/sh
        echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID {version}" >> {evidence}
        if [ "$LIFECYCLE_EVENT" = ApplicationStop ]; then exit {stop_exit}; fi
        """).format(version=version, evidence=env["evidence"], stop_exit=stop_exit)
    (src / "scripts" / "hook.sh").write_text(hook)
    (src / "scripts" / "validate.sh").write_text("#!/bin/sh\necho validating {0}\nexit {1}\n".format(version, validate_exit))
    for script in ("hook.sh", "validate.sh"):
        (src / "scripts" / script).chmod(0o755)
    target = str(env["tmp"] / (name + ".tgz"))
    made = bundles.create(str(src), target, "tgz")
    spec, _warnings = parse_appspec((src / "appspec.yml").read_text())
    return target, made["sha256"], spec


def params(env, deployment_id, bundle=None, sha256=None, spec=None, **extra):
    result = {"deployment_id": deployment_id, "deployment_group_id": GROUP, "application_name": "app", "deployment_group_name": "grp",
              "appspec": spec, "bundle": bundle, "bundle_sha256": sha256, "deployment_root": env["root"], "revision": None}
    result.update(extra)
    return result


def run(env, deployment_id, events=None, check_mode=False, **kwargs):
    return lifecycle.HostDeployment(params(env, deployment_id, **kwargs)).run(events or ALL, check_mode=check_mode)


def evidence(env):
    with open(env["evidence"]) as handle:
        return [line.split() for line in handle.read().splitlines()]


@pytest.mark.parametrize("events, words", [
    (["BlockTraffic"], "load-balancer step that the controller runs"),
    (["Deploy"], "unknown lifecycle event 'Deploy'"),
    (["Install", "DownloadBundle"], "in lifecycle order"),
    (["Install", "Install"], "once each"),
])
def test_event_lists_are_checked(events, words):
    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.order_events(events)
    assert words in caught.value.message


def test_first_deployment_installs_and_runs_the_current_hooks(env):
    bundle, sha, spec = make_revision(env, "v1", "1.0")
    result = run(env, "d-AAAAAAAA1", bundle=bundle, sha256=sha, spec=spec)
    assert result["status"] == "Succeeded"
    assert [e["event"] for e in result["events"]] == ALL
    stop = result["events"][0]
    assert stop["status"] == "Succeeded" and "no earlier revision" in stop["message"]
    expected = [["BeforeInstall", "d-AAAAAAAA1"], ["AfterInstall", "d-AAAAAAAA1"], ["ApplicationStart", "d-AAAAAAAA1"]]
    assert [row[:2] for row in evidence(env)] == expected
    with open(os.path.join(env["dest"], "version.txt")) as handle:
        assert handle.read() == "1.0\n"
    layout = Layout(env["root"])
    assert layout.last_successful(GROUP) == layout.deployment_dir(GROUP, "d-AAAAAAAA1")
    assert not os.path.exists(bundle), "the bundle is moved into place, not copied"
    assert not os.path.exists(layout.bundle_file(GROUP, "d-AAAAAAAA1")), "only the unpacked archive is kept"
    assert result["changed"] is True


def test_second_deployment_runs_the_previous_revisions_application_stop(env):
    b1, s1, spec1 = make_revision(env, "v1", "1.0", files={"old.txt": "x"})
    b2, s2, spec2 = make_revision(env, "v2", "2.0")
    run(env, "d-AAAAAAAA1", bundle=b1, sha256=s1, spec=spec1)
    result = run(env, "d-AAAAAAAA2", bundle=b2, sha256=s2, spec=spec2)
    assert result["status"] == "Succeeded"
    assert ["ApplicationStop", "d-AAAAAAAA2", "1.0"] in evidence(env)
    assert ["BeforeInstall", "d-AAAAAAAA2", "2.0"] in evidence(env)
    assert not os.path.exists(os.path.join(env["dest"], "old.txt")), "the previous install is cleaned up"
    log = Layout(env["root"]).scripts_log(GROUP, "d-AAAAAAAA2")
    with open(log) as handle:
        text = handle.read()
    assert "LifecycleEvent - ApplicationStop" in text and "LifecycleEvent - ValidateService" in text


def test_a_failing_script_fails_the_event_with_a_message_naming_host_event_and_script(env):
    bundle, sha, spec = make_revision(env, "bad", "1.0", validate_exit=3)
    result = run(env, "d-AAAAAAAA1", bundle=bundle, sha256=sha, spec=spec)
    assert result["status"] == "Failed"
    assert result["failed_event"] == "ValidateService"
    assert result["error_code"] == "ScriptFailed"
    assert result["script"] == "scripts/validate.sh"
    assert "validating 1.0" in result["log_tail"]
    text = lifecycle.describe_failure("web-3", result)
    assert text.startswith("ValidateService failed on web-3 (d-AAAAAAAA1): Script at specified location: scripts/validate.sh failed with exit code 3")
    assert "Last output:" in text and "validating 1.0" in text and "Fix: fix the script" in text


@pytest.mark.parametrize("ignore", [False, True])
def test_a_broken_application_stop_of_the_previous_revision(env, ignore):
    b1, s1, spec1 = make_revision(env, "v1", "1.0", stop_exit=7)
    b2, s2, spec2 = make_revision(env, "v2", "2.0")
    run(env, "d-AAAAAAAA1", bundle=b1, sha256=s1, spec=spec1)
    result = run(env, "d-AAAAAAAA2", bundle=b2, sha256=s2, spec=spec2, ignore_application_stop_failures=ignore)
    stop = result["events"][0]
    assert stop["event"] == "ApplicationStop" and stop["status"] == "Failed"
    if ignore:
        assert result["status"] == "Succeeded" and stop["ignored"] is True
        assert result["events"][-1]["event"] == "ValidateService"
    else:
        assert result["status"] == "Failed" and result["failed_event"] == "ApplicationStop"
        assert "ignore_application_stop_failures=true" in lifecycle.describe_failure("h", result)


def test_an_event_cut_off_earlier_is_reported_once(env):
    bundle, sha, spec = make_revision(env, "v1", "1.0")
    layout = Layout(env["root"])
    layout.mark_ongoing(GROUP, "d-CUTOFF001", "AfterInstall")
    result = run(env, "d-AAAAAAAA1", bundle=bundle, sha256=sha, spec=spec)
    assert result["interrupted"]["deployment_id"] == "d-CUTOFF001"
    assert result["interrupted"]["event"] == "AfterInstall"
    assert layout.read_ongoing() is None


def test_rollback_reuses_an_archive_on_the_host_without_a_bundle(env):
    b1, s1, spec1 = make_revision(env, "v1", "1.0")
    b2, s2, spec2 = make_revision(env, "v2", "2.0")
    run(env, "d-AAAAAAAA1", bundle=b1, sha256=s1, spec=spec1)
    run(env, "d-AAAAAAAA2", bundle=b2, sha256=s2, spec=spec2)
    result = run(env, "d-ROLLBACK1", reuse_deployment="d-AAAAAAAA1")
    assert result["status"] == "Succeeded"
    assert "no download" in result["events"][1]["message"]
    with open(os.path.join(env["dest"], "version.txt")) as handle:
        assert handle.read() == "1.0\n"
    layout = Layout(env["root"])
    old = os.path.join(layout.archive_dir(GROUP, "d-AAAAAAAA1"), "app", "version.txt")
    new = os.path.join(layout.archive_dir(GROUP, "d-ROLLBACK1"), "app", "version.txt")
    assert os.stat(old).st_ino == os.stat(new).st_ino, "the archive is hard-linked, not copied"
    assert ["ApplicationStop", "d-ROLLBACK1", "2.0"] in evidence(env)


def test_a_rollback_whose_archive_is_gone_runs_nothing(env):
    b1, s1, spec1 = make_revision(env, "v1", "1.0")
    b2, s2, spec2 = make_revision(env, "v2", "2.0")
    run(env, "d-AAAAAAAA1", bundle=b1, sha256=s1, spec=spec1)
    run(env, "d-AAAAAAAA2", bundle=b2, sha256=s2, spec=spec2)
    shutil.rmtree(Layout(env["root"]).archive_dir(GROUP, "d-AAAAAAAA1"))
    before = evidence(env)
    result = run(env, "d-ROLLBACK1", reuse_deployment="d-AAAAAAAA1")
    assert result["status"] == "Failed" and result["archive_missing"] and result["error_code"] == "ARCHIVE_MISSING"
    assert [e["event"] for e in result["events"]] == ["ApplicationStop"] and "is not on this host" in result["message"]
    assert evidence(env) == before  # not even the old revision's ApplicationStop ran
    with open(os.path.join(env["dest"], "version.txt")) as handle:
        assert handle.read() == "2.0\n"


def test_a_bundle_that_does_not_match_its_sha256_is_refused(env):
    bundle, _sha, spec = make_revision(env, "v1", "1.0")
    result = run(env, "d-AAAAAAAA1", bundle=bundle, sha256="0" * 64, spec=spec)
    assert result["status"] == "Failed" and result["failed_event"] == "DownloadBundle"
    assert "sha256" in result["message"] and "0" * 64 in result["message"]
    assert not os.path.exists(env["dest"])


def test_check_mode_changes_nothing_and_lists_the_scripts(env):
    b1, s1, spec1 = make_revision(env, "v1", "1.0")
    run(env, "d-AAAAAAAA1", bundle=b1, sha256=s1, spec=spec1)
    before = sorted(os.walk(env["root"]))
    result = run(env, "d-AAAAAAAA2", bundle=b1, sha256=s1, spec=spec1, check_mode=True)
    assert sorted(os.walk(env["root"])) == before
    plan = {e["event"]: e for e in result["events"]}
    assert plan["ApplicationStop"]["scripts"] == ["scripts/hook.sh"]
    assert plan["ValidateService"]["scripts"] == ["scripts/validate.sh"]
    assert all(e["status"] == "Pending" for e in result["events"])
    assert result["changed"] is False


def test_state_file_records_the_revision_for_later_calls(env):
    bundle, sha, spec = make_revision(env, "v1", "1.0")
    run(env, "d-AAAAAAAA1", events=["DownloadBundle"], bundle=bundle, sha256=sha, spec=spec)
    later = run(env, "d-AAAAAAAA1", events=["BeforeInstall", "Install"])
    assert later["status"] == "Succeeded"
    with open(os.path.join(Layout(env["root"]).deployment_dir(GROUP, "d-AAAAAAAA1"), lifecycle.REVISION_FILE)) as handle:
        state = json.load(handle)
    assert state["sha256"] == sha and state["appspec"]["hooks"]["ValidateService"][0]["location"] == "scripts/validate.sh"


@pytest.mark.parametrize("events, host", [
    (["AfterAllowTraffic"], False),  # no script in the appspec
    (["ApplicationStart"], True),  # a script of this revision
    (["BeforeBlockTraffic"], True),  # the previous revision's script: only the host knows it
    (["DownloadBundle"], True),
    (["Install"], True),
])
def test_needs_host_only_when_the_slice_has_work(env, events, host):
    _bundle, _sha, spec = make_revision(env, "v1", "1.0")
    assert lifecycle.needs_host(events, spec) is host
    assert lifecycle.needs_host(events, None) is True, "without an appspec the host decides"
    assert lifecycle.needs_host(events, {}) is True


def test_skipped_events_are_what_the_host_returns_for_an_event_without_scripts(env):
    bundle, sha, spec = make_revision(env, "v1", "1.0")
    run(env, "d-AAAAAAAA1", bundle=bundle, sha256=sha, spec=spec)
    on_host = run(env, "d-AAAAAAAA1", events=["BeforeAllowTraffic", "AfterAllowTraffic"], spec=spec)["events"]
    on_controller = lifecycle.skipped_events(["BeforeAllowTraffic", "AfterAllowTraffic"])
    timing = ("start", "end", "duration")
    assert [dict((k, v) for k, v in e.items() if k not in timing) for e in on_controller] == \
        [dict((k, v) for k, v in e.items() if k not in timing) for e in on_host]
    assert {e["status"] for e in on_controller} == {"Skipped"} and all(e["start"] and e["end"] for e in on_controller)
