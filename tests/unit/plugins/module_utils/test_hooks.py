# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/hooks.py.

The first tables re-create the CodeDeploy agent's own hook-execution tests
(test/instance_agent/plugins/codedeploy/hook_executor_test.rb and
test/instance_agent/platform/linux_util_test.rb) with the agent's messages written out, run
against real scripts instead of stubs. The rest runs real subprocesses: exit codes, the log,
timeouts and process groups, background children holding the pipes, runas as ``nobody`` (a user
whose shell is /usr/sbin/nologin). These tests need root (they switch users), like the module.

No assertion depends on wall-clock speed: a timeout test checks the result's error code and
that no process of the group survives; a background-child test gives the script a 120 s timeout
and its child 300 s, so finishing with the script's own status proves it did not wait.
"""
import errno
import json
import os
import pwd
import re
import shutil
import signal
import stat
import tempfile

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import hooks as H

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (LifecycleEvent - |Script - |\[stdout\]|\[stderr\]|\[warning\])")
UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------

@pytest.fixture
def shared_dir():
    """A directory every user can enter (tmp_path is under a 0700 directory): for runas tests."""
    path = tempfile.mkdtemp(prefix="rollout-hooks-test-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def archive(shared_dir):
    root = os.path.join(shared_dir, "deployment-archive")
    os.mkdir(root)
    os.chmod(root, 0o755)
    return root


@pytest.fixture
def log_path(shared_dir):
    return os.path.join(shared_dir, "logs", "scripts.log")


@pytest.fixture
def reap():
    """pids of background processes a test started; killed at teardown (by pid)."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def write(root, location, text, mode=0o755):
    path = os.path.join(root, location)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
        os.chmod(os.path.dirname(path), 0o755)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def env_for(**extra):
    env = H.build_environment("d-TEST12345", "TestApplication", "TestDeploymentGroup", "foo")
    env.update(extra)
    return env


def run(archive_root, log, scripts, event="ValidateService", env=None, **kwargs):
    kwargs.setdefault("kill_grace", 2.0)
    return H.run_event(event, scripts, archive_root, env_for() if env is None else env, log, **kwargs)


def alive(pid):
    """True when ``pid`` is a live (not zombie) process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except (IOError, OSError):
        return False
    return data[data.rfind(b")") + 2:].split()[0] != b"Z"


def read_pids(path):
    with open(path) as handle:
        return [int(line) for line in handle.read().split()]


def read_log(path):
    with open(path) as handle:
        return handle.read()


def output_lines(log_text):
    """The log's lines without their timestamps."""
    return [line[20:] for line in log_text.splitlines()]


# --------------------------------------------------------------------------------------
# The agent's tests (hook_executor_test.rb), run for real
# --------------------------------------------------------------------------------------

# (agent test, files {location: (text, mode)}, hook entries, status, error code, message; {root} = archive root)
AGENT_CASES = [
    ("no scripts to run for a given hook: do nothing", {}, [],
     H.STATUS_SKIPPED, H.SUCCEEDED, ""),
    ("when hook script doesn't exist: raise an exception", {}, [{"location": "test", "timeout": 300}],
     H.STATUS_FAILED, H.SCRIPT_MISSING, "Script does not exist at specified location: {root}/test"),
    ("and isn't executable: log and make the hook script executable", {"test": ("#!/bin/sh\nexit 0\n", 0o644)},
     [{"location": "test"}], H.STATUS_SUCCEEDED, H.SUCCEEDED, "Succeeded"),
    ("scripts fail for unknown reason (popen raises ENOENT)", {"test": ("#!/nonexistent/interpreter\n", 0o755)},
     [{"location": "test", "timeout": 30}], H.STATUS_FAILED, H.SCRIPT_FAILED,
     "Script at specified location: test failed with error FileNotFoundError with message "
     "[Errno 2] No such file or directory: '{root}/test'"),
    ("scripts timeout, with process group support", {"test": ("#!/bin/sh\nsleep 30\n", 0o755)},
     [{"location": "test", "timeout": 1}], H.STATUS_FAILED, H.SCRIPT_TIMED_OUT,
     "Script at specified location: test failed to complete in 1 seconds"),
    ("Scripts run with a runas: scripts fail", {"test": ("#!/bin/sh\nexit 1\n", 0o755)},
     [{"location": "test", "runas": "nobody"}], H.STATUS_FAILED, H.SCRIPT_FAILED,
     "Script at specified location: test run as user nobody failed with exit code 1"),
    ("Scripts run with a runas: scripts pass", {"test": ("#!/bin/sh\nexit 0\n", 0o755)},
     [{"location": "test", "runas": "nobody"}], H.STATUS_SUCCEEDED, H.SUCCEEDED, "Succeeded"),
    ("Scripts run without a runas: scripts fail", {"test": ("#!/bin/sh\nexit 1\n", 0o755)},
     [{"location": "test"}], H.STATUS_FAILED, H.SCRIPT_FAILED,
     "Script at specified location: test failed with exit code 1"),
    ("Scripts run without a runas: scripts pass", {"test": ("#!/bin/sh\nexit 0\n", 0o755)},
     [{"location": "test"}], H.STATUS_SUCCEEDED, H.SUCCEEDED, "Succeeded"),
    ("Decision - scripts fail to close outputs: STDOUT left open", {"test": ("#!/bin/sh\nsleep 300 &\necho $! > pid\n", 0o755)},
     [{"location": "test", "timeout": 144}], H.STATUS_SUCCEEDED, H.SUCCEEDED, "Succeeded"),
    ("Decision - location outside the archive", {},
     [{"location": "../outside.sh"}], H.STATUS_FAILED, H.SCRIPT_MISSING,
     "Script at specified location: ../outside.sh resolves to {parent}/outside.sh, outside the deployment archive {root}. "
     "Hook scripts must be inside the revision: fix the location in the hooks section of the AppSpec file."),
]


@pytest.mark.parametrize("case", AGENT_CASES, ids=[case[0] for case in AGENT_CASES])
def test_agent_hook_executor_cases(case, archive, log_path, reap):
    _name, files, scripts, status, error_code, message = case
    for location, (text, mode) in files.items():
        write(archive, location, text, mode)
    try:
        result = run(archive, log_path, scripts)
    finally:
        if os.path.exists(os.path.join(archive, "pid")):
            reap.extend(read_pids(os.path.join(archive, "pid")))
    assert (result["status"], result["error_code"]) == (status, error_code), result
    assert result["message"] == message.format(root=archive, parent=os.path.dirname(archive))
    assert H.ERROR_CODES.index(result["error_code"]) == H.diagnostics(result)["error_code"]


def test_agent_case_setting_executable_fails(archive, log_path, monkeypatch):
    """Agent test "and setting executable fails" (chmod stubbed to raise, as in the agent's test)."""
    write(archive, "test", "#!/bin/sh\nexit 0\n", 0o644)

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(H.os, "chmod", refuse)
    result = run(archive, log_path, [{"location": "test"}])
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.SCRIPT_NOT_EXECUTABLE)
    assert result["message"] == "Unable to set script at specified location: test as executable"
    assert "Script - test" not in read_log(log_path)


def test_agent_case_not_executable_warns_and_chmods(archive, log_path):
    path = write(archive, "scripts/test.sh", "#!/bin/sh\necho ran\n", 0o640)
    result = run(archive, log_path, [{"location": "scripts/test.sh"}])
    assert result["status"] == H.STATUS_SUCCEEDED
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o751
    warning = "Script at specified location: scripts/test.sh is not executable.  Trying to make it executable."
    assert result["warnings"] == [warning] == result["scripts"][0]["warnings"]
    assert output_lines(read_log(log_path)) == ["LifecycleEvent - ValidateService", "[warning]" + warning,
                                                "Script - scripts/test.sh", "[stdout]ran"]


def test_setting_executable_fails_for_real_as_nobody(archive, shared_dir):
    """A non-root run (nobody) cannot chmod root's 0644 script: ScriptNotExecutable."""
    write(archive, "test", "#!/bin/sh\nexit 0\n", 0o644)
    logs = os.path.join(shared_dir, "nobody-logs")
    os.mkdir(logs)
    os.chmod(logs, 0o777)
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = H.run_event("AfterInstall", [{"location": "test"}], archive, env_for(), os.path.join(logs, "scripts.log"))
            os.write(write_end, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)  # pylint: disable=protected-access
    os.close(write_end)
    data = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    result = json.loads(data.decode())
    assert (result["error_code"], result["message"]) == (H.SCRIPT_NOT_EXECUTABLE, "Unable to set script at specified location: test as executable")


def test_agent_case_extra_child_environment_variables(archive, log_path):
    """Agent test "extra child environment variables are added" (revision envs) plus the fixed ones."""
    write(archive, "test", "#!/bin/sh\nenv\n")
    env = H.build_environment("12345", "TestApplication", "TestDeploymentGroup", "foo",
                              revision={"s3": {"bucket": "b", "key": "k.zip", "version": "v1", "etag": "e1"}})
    result = run(archive, log_path, [{"location": "test"}], env=env)
    lines = set(output_lines(read_log(log_path)))
    for pair in ("LIFECYCLE_EVENT=ValidateService", "DEPLOYMENT_ID=12345", "APPLICATION_NAME=TestApplication",
                 "DEPLOYMENT_GROUP_NAME=TestDeploymentGroup", "DEPLOYMENT_GROUP_ID=foo", "BUNDLE_BUCKET=b",
                 "BUNDLE_KEY=k.zip", "BUNDLE_VERSION=v1", "BUNDLE_ETAG=e1"):
        assert "[stdout]" + pair in lines
    assert result["status"] == H.STATUS_SUCCEEDED


# linux_util_test.rb: (sudo, runas, the agent's command)
AGENT_COMMANDS = [
    (True, "deploy", "sudo su deploy -c my_script.sh"),
    (None, "deploy", "su deploy -c my_script.sh"),
    (None, None, "my_script.sh"),
    (True, None, "sudo my_script.sh"),
]


@pytest.mark.parametrize("sudo, runas, expected", AGENT_COMMANDS)
def test_agent_command_forms(sudo, runas, expected):
    assert H.agent_command("my_script.sh", runas, sudo) == expected


NOBODY = pwd.getpwnam("nobody")
ENV = {"LIFECYCLE_EVENT": "ValidateService", "DEPLOYMENT_ID": "d-1", "PATH": "/bin", "HOME": "/root"}
SUDO_ENV = ["/usr/bin/env", "LIFECYCLE_EVENT=ValidateService", "DEPLOYMENT_ID=d-1"]
# (sudo, runas, euid, sudo installed, use_shell, form, argv, user): how this collection runs each agent form.
OUR_COMMANDS = [
    # As root (the module runs with become): sudo changes nothing, runas switches user in the child.
    (True, "nobody", 0, True, False, "setuid", ["/a/s.sh"], "nobody"),
    (True, "nobody", 0, False, False, "setuid", ["/a/s.sh"], "nobody"),
    (None, "nobody", 0, False, False, "setuid", ["/a/s.sh"], "nobody"),
    (None, None, 0, True, False, "direct", ["/a/s.sh"], None),
    (True, None, 0, False, False, "direct", ["/a/s.sh"], None),
    (True, None, 0, False, True, "direct", ["/bin/sh", "/a/s.sh"], None),
    # Not root: sudo -n (never prompts), env passes the deployment variables through env_reset.
    (True, "nobody", 1000, True, False, "sudo", ["/usr/bin/sudo", "-n", "-u", "nobody", "--"] + SUDO_ENV + ["/a/s.sh"], None),
    (None, "nobody", 1000, True, False, "sudo", ["/usr/bin/sudo", "-n", "-u", "nobody", "--"] + SUDO_ENV + ["/a/s.sh"], None),
    (True, None, 1000, True, True, "sudo", ["/usr/bin/sudo", "-n", "--"] + SUDO_ENV + ["/bin/sh", "/a/s.sh"], None),
    (True, None, 1000, False, False, "sudo", ["sudo", "-n", "--"] + SUDO_ENV + ["/a/s.sh"], None),
    (None, "nobody", 1000, False, False, "su", ["su", "-s", "/bin/sh", "nobody", "-c", "/a/s.sh"], None),
    (None, "nobody", 1000, False, True, "su", ["su", "-s", "/bin/sh", "nobody", "-c", "/bin/sh /a/s.sh"], None),
    (None, None, 1000, True, False, "direct", ["/a/s.sh"], None),
]


@pytest.mark.parametrize("sudo, runas, euid, has_sudo, use_shell, form, argv, user", OUR_COMMANDS)
def test_our_command_forms(sudo, runas, euid, has_sudo, use_shell, form, argv, user):
    plan = H.plan_command("/a/s.sh", runas, sudo, ENV, euid=euid, sudo_path="/usr/bin/sudo" if has_sudo else "", use_shell=use_shell)
    assert plan["form"] == form
    assert plan["argv"] == argv
    assert (plan["user"].pw_name if plan["user"] else None) == user


def test_plan_unknown_user_as_root():
    with pytest.raises(KeyError):
        H.plan_command("/a/s.sh", "no-such-user-rollout", False, {}, euid=0)
    assert H.plan_command("/a/s.sh", str(NOBODY.pw_uid), False, {}, euid=0)["user"].pw_name == "nobody"


def test_needs_shell(tmp_path):
    assert H.needs_shell("/bin/sh" if not os.path.islink("/bin/sh") else os.path.realpath("/bin/sh")) is False  # ELF
    shebang = write(str(tmp_path), "a", "#!/bin/sh\n")
    plain = write(str(tmp_path), "b", "echo hi\n")
    empty = write(str(tmp_path), "c", "")
    assert (H.needs_shell(shebang), H.needs_shell(plain), H.needs_shell(empty)) == (False, True, True)


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------

def test_build_environment_s3_unsets_missing_values():
    base = {"PATH": "/bin", "BUNDLE_VERSION": "stale", "BUNDLE_COMMIT": "stale", "LIFECYCLE_EVENT": "old"}
    env = H.build_environment("d-1", "app", "grp", "gid-1", {"s3": {"bucket": "b", "key": "k", "version": None, "etag": "e"}}, base)
    assert env == {"PATH": "/bin", "DEPLOYMENT_ID": "d-1", "APPLICATION_NAME": "app", "DEPLOYMENT_GROUP_NAME": "grp",
                   "DEPLOYMENT_GROUP_ID": "gid-1", "BUNDLE_BUCKET": "b", "BUNDLE_KEY": "k", "BUNDLE_ETAG": "e"}
    assert base["BUNDLE_VERSION"] == "stale"


@pytest.mark.parametrize("revision, expected", [
    ({"git": {"repo": "https://example.invalid/r.git", "commit": "abc123"}}, {"BUNDLE_COMMIT": "abc123"}),
    ({"github": {"repository": "o/r", "commit_id": "def456"}}, {"BUNDLE_COMMIT": "def456"}),
    ({"url": "https://example.invalid/b.zip", "sha256": "00"}, {}),
    ("/srv/bundle.tgz", {}),
    (None, {}),
])
def test_build_environment_revisions(revision, expected):
    env = H.build_environment("d-1", "app", "grp", None, revision, {})
    assert env == dict({"DEPLOYMENT_ID": "d-1", "APPLICATION_NAME": "app", "DEPLOYMENT_GROUP_NAME": "grp"}, **expected)


def test_default_base_env_is_agent_like_not_ansible():
    env = H.default_base_env({"PATH": "/tmp/evil:/bin", "SSH_CONNECTION": "1 2 3 4", "ANSIBLE_MODULE_ARGS": "x",
                              "PYTHONPATH": "/tmp", "LANG": "en_US.UTF-8", "TZ": "UTC", "https_proxy": "http://p:3128"})
    me = pwd.getpwuid(os.geteuid())
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == (me.pw_dir, me.pw_name, me.pw_name)
    assert (env["LANG"], env["TZ"], env["https_proxy"]) == ("en_US.UTF-8", "UTC", "http://p:3128")
    assert not set(env) & {"SSH_CONNECTION", "ANSIBLE_MODULE_ARGS", "PYTHONPATH"}
    assert H.default_base_env({})["LANG"] == "C.UTF-8"


def test_script_environment_cwd_and_stdin(archive, log_path, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 22 10.0.0.2 22")
    env = H.build_environment("d-ENV", "app", "grp", "gid", {"s3": {"bucket": "b", "key": "k", "version": None, "etag": None}})
    write(archive, "scripts/env.sh", "#!/bin/sh\n"
          "echo \"event=$LIFECYCLE_EVENT id=$DEPLOYMENT_ID\"\n"
          "echo \"version=${BUNDLE_VERSION-unset} etag=${BUNDLE_ETAG-unset} bucket=$BUNDLE_BUCKET\"\n"
          "echo \"ssh=${SSH_CONNECTION-unset}\"\n"
          "echo \"cwd=$(pwd)\"\n"
          "if read line; then echo stdin=data; else echo stdin=eof; fi\n")
    result = run(archive, log_path, [{"location": "scripts/env.sh"}], event="AfterInstall", env=env)
    assert result["status"] == H.STATUS_SUCCEEDED
    assert output_lines(read_log(log_path))[2:] == [
        "[stdout]event=AfterInstall id=d-ENV", "[stdout]version=unset etag=unset bucket=b", "[stdout]ssh=unset",
        "[stdout]cwd=" + archive, "[stdout]stdin=eof"]
    assert "LIFECYCLE_EVENT" not in env


def test_event_name_is_per_event(archive, log_path):
    write(archive, "e.sh", "#!/bin/sh\necho $LIFECYCLE_EVENT\n")
    env = env_for()
    for event in ("BeforeInstall", "ApplicationStart"):
        run(archive, log_path, [{"location": "e.sh"}], event=event, env=env)
    assert [line for line in output_lines(read_log(log_path)) if line.startswith("[stdout]")] == [
        "[stdout]BeforeInstall", "[stdout]ApplicationStart"]


# --------------------------------------------------------------------------------------
# Exit codes, order, locations
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(archive, log_path, code):
    write(archive, "x.sh", "#!/bin/sh\nexit %d\n" % code)
    result = run(archive, log_path, [{"location": "x.sh"}])
    script = result["scripts"][0]
    assert script["exit_code"] == code
    if code == 0:
        assert (result["status"], result["error_code"], script["status"]) == (H.STATUS_SUCCEEDED, H.SUCCEEDED, H.STATUS_SUCCEEDED)
    else:
        assert (result["status"], result["error_code"], script["status"]) == (H.STATUS_FAILED, H.SCRIPT_FAILED, H.STATUS_FAILED)
        assert result["message"] == "Script at specified location: x.sh failed with exit code %d" % code
        assert result["script_name"] == "x.sh"


def test_death_by_signal_is_script_failed(archive, log_path):
    write(archive, "k.sh", "#!/bin/sh\nkill -KILL $$\n")
    result = run(archive, log_path, [{"location": "k.sh"}])
    script = result["scripts"][0]
    assert (result["error_code"], script["exit_code"], script["signal"], script["timed_out"]) == (H.SCRIPT_FAILED, 137, "SIGKILL", False)
    assert result["message"] == "Script at specified location: k.sh failed with exit code 137 (killed by signal SIGKILL)"


def test_scripts_run_in_order_and_first_failure_ends_event(archive, log_path):
    trace = os.path.join(archive, "trace")
    write(archive, "one.sh", "#!/bin/sh\necho one >> %s\n" % trace)
    write(archive, "two.sh", "#!/bin/sh\necho two >> %s\nexit 2\n" % trace)
    write(archive, "three.sh", "#!/bin/sh\necho three >> %s\n" % trace)
    result = run(archive, log_path, [{"location": "one.sh"}, {"location": "two.sh"}, {"location": "three.sh"}])
    with open(trace) as handle:
        assert handle.read() == "one\ntwo\n"
    assert [s["status"] for s in result["scripts"]] == [H.STATUS_SUCCEEDED, H.STATUS_FAILED, H.STATUS_SKIPPED]
    assert [s["error_code"] for s in result["scripts"]] == [H.SUCCEEDED, H.SCRIPT_FAILED, None]
    assert result["message"] == "Script at specified location: two.sh failed with exit code 2"
    assert [line for line in output_lines(read_log(log_path)) if line.startswith("Script - ")] == ["Script - one.sh", "Script - two.sh"]


def test_missing_script_ends_event_with_absolute_path(archive, log_path):
    write(archive, "ok.sh", "#!/bin/sh\n")
    result = run(archive, log_path, [{"location": "/scripts/../scripts/none.sh"}, {"location": "ok.sh"}])
    assert result["message"] == "Script does not exist at specified location: %s/scripts/none.sh" % archive
    assert result["scripts"][1]["status"] == H.STATUS_SKIPPED
    assert output_lines(read_log(log_path)) == ["LifecycleEvent - ValidateService"]


def test_leading_slash_is_harmless(archive, log_path):
    write(archive, "scripts/a.sh", "#!/bin/sh\necho a\n")
    result = run(archive, log_path, [{"location": "/scripts/a.sh"}])
    assert result["status"] == H.STATUS_SUCCEEDED
    assert output_lines(read_log(log_path))[1:] == ["Script - /scripts/a.sh", "[stdout]a"]


@pytest.mark.parametrize("location", ["../outside.sh", "/../outside.sh", "scripts/link.sh"])
def test_location_outside_archive_is_refused(archive, log_path, location):
    marker = os.path.join(os.path.dirname(archive), "ran")
    outside = write(os.path.dirname(archive), "outside.sh", "#!/bin/sh\ntouch %s\n" % marker)
    os.makedirs(os.path.join(archive, "scripts"))
    os.symlink(outside, os.path.join(archive, "scripts", "link.sh"))
    result = run(archive, log_path, [{"location": location}])
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.SCRIPT_MISSING)
    assert "outside the deployment archive %s" % archive in result["message"]
    assert not os.path.exists(marker)


def test_symlink_inside_archive_runs(archive, log_path):
    target = write(archive, "real/a.sh", "#!/bin/sh\necho inside\n")
    os.makedirs(os.path.join(archive, "scripts"))
    os.symlink(target, os.path.join(archive, "scripts", "a.sh"))
    assert run(archive, log_path, [{"location": "scripts/a.sh"}])["status"] == H.STATUS_SUCCEEDED


def test_no_shebang_runs_with_sh(archive, log_path):
    write(archive, "plain.sh", "echo \"via $0\"\nexit 4\n")
    result = run(archive, log_path, [{"location": "plain.sh"}])
    assert result["scripts"][0]["exit_code"] == 4
    assert "[stdout]via %s/plain.sh" % archive in output_lines(read_log(log_path))


def test_missing_archive_root(shared_dir, log_path):
    root = os.path.join(shared_dir, "not-there")
    result = run(root, log_path, [{"location": "a.sh"}])
    assert (result["error_code"], result["message"]) == (H.SCRIPT_MISSING, "Script does not exist at specified location: %s/a.sh" % root)


def test_unexpected_errors_are_unknown_error_never_raised(archive, shared_dir):
    write(archive, "a.sh", "#!/bin/sh\n")
    blocker = os.path.join(shared_dir, "file")
    with open(blocker, "w"):
        pass
    result = H.run_event("AfterInstall", [{"location": "a.sh"}], archive, env_for(), os.path.join(blocker, "logs", "scripts.log"))
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.UNKNOWN_ERROR)
    assert "Not a directory" in result["message"] or "File exists" in result["message"]
    result = H.run_event("AfterInstall", [{"location": "a.sh", "timeout": "soon"}], archive, env_for(), os.path.join(shared_dir, "l.log"))
    assert (result["error_code"], result["message"]) == (H.UNKNOWN_ERROR, "could not convert string to float: 'soon'")
    assert H.diagnostics(result) == {"error_code": 5, "script_name": "", "message": result["message"], "log": result["log_tail"]}


def test_skipped_when_no_scripts(archive, log_path):
    for scripts in (None, []):
        result = run(archive, log_path, scripts, event="ApplicationStop")
        assert (result["status"], result["error_code"], result["scripts"], result["log_tail"]) == (H.STATUS_SKIPPED, H.SUCCEEDED, [], "")
    assert not os.path.exists(log_path)


def test_result_times_and_diagnostics(archive, log_path):
    write(archive, "a.sh", "#!/bin/sh\necho hello\n")
    result = run(archive, log_path, [{"location": "a.sh", "timeout": 60}])
    assert UTC.match(result["start"]) and UTC.match(result["end"]) and result["start"] <= result["end"]
    assert isinstance(result["duration"], float) and result["duration"] >= result["scripts"][0]["duration"] >= 0
    assert H.diagnostics(result) == {"error_code": 0, "script_name": "", "message": "Succeeded",
                                     "log": "LifecycleEvent - ValidateService\nScript - a.sh\n[stdout]hello\n"}
    assert H.utc_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert H.utc_timestamp(1.5) == "1970-01-01T00:00:01.500Z"


# --------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------

def test_log_format_and_append(archive, log_path):
    write(archive, "a.sh", "#!/bin/sh\necho out\necho err >&2\n")
    run(archive, log_path, [{"location": "a.sh"}], event="BeforeInstall")
    run(archive, log_path, [{"location": "a.sh"}], event="AfterInstall")
    text = read_log(log_path)
    assert all(LOG_LINE.match(line) for line in text.splitlines())
    lines = output_lines(text)
    assert lines[0:2] == ["LifecycleEvent - BeforeInstall", "Script - a.sh"]
    assert sorted(lines[2:4]) == ["[stderr]err", "[stdout]out"]
    assert lines[4:6] == ["LifecycleEvent - AfterInstall", "Script - a.sh"]
    assert len(lines) == 8
    assert H.log_timestamp(0) == __import__("time").strftime("%Y-%m-%d %H:%M:%S", __import__("time").localtime(0))


def test_stdout_stderr_interleaving(archive, log_path):
    """Each line waits until the previous one is in the log: the log must keep the order of writes."""
    body = ["#!/bin/sh"]
    for index, stream in enumerate(["out", "err", "out", "err", "err", "out"]):
        token = "%s%d" % (stream, index)
        body.append("echo %s%s" % (token, " >&2" if stream == "err" else ""))
        body.append("until grep -q '\\]%s$' '%s'; do sleep 0.01; done" % (token, log_path))
    write(archive, "i.sh", "\n".join(body) + "\n")
    result = run(archive, log_path, [{"location": "i.sh", "timeout": 120}])
    assert result["status"] == H.STATUS_SUCCEEDED, result
    assert output_lines(read_log(log_path))[2:] == ["[stdout]out0", "[stderr]err1", "[stdout]out2", "[stderr]err3",
                                                    "[stderr]err4", "[stdout]out5"]


def test_log_tail_keeps_newest_whole_entries(archive, log_path):
    write(archive, "many.sh", "#!/bin/sh\ni=0\nwhile [ $i -lt 300 ]; do echo \"line-$i-xxxxxxxxxx\"; i=$((i+1)); done\n")
    result = run(archive, log_path, [{"location": "many.sh"}])
    tail = result["log_tail"]
    assert 2048 - 30 < len(tail) < 2048
    assert tail.startswith("[stdout]line-") and tail.endswith("[stdout]line-299-xxxxxxxxxx\n")
    assert len([line for line in output_lines(read_log(log_path)) if line.startswith("[stdout]")]) == 300
    small = run(archive, log_path, [{"location": "many.sh"}], log_tail_size=100)["log_tail"]
    assert small == "".join("[stdout]line-%d-xxxxxxxxxx\n" % i for i in (297, 298, 299))  # 28 characters each, 4 would be 112


def test_log_tail_of_one_huge_line_keeps_its_end(archive, log_path):
    """Decision: the agent drops an entry longer than the buffer (an empty tail); we keep its end."""
    write(archive, "big.sh", "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' a\necho END\n")
    result = run(archive, log_path, [{"location": "big.sh"}], log_tail_size=64)
    assert result["log_tail"] == "a" * 59 + "END\n"


def test_very_long_lines_are_split(archive, log_path):
    """Lines up to MAX_LINE characters stay whole, longer ones are cut every MAX_LINE characters."""
    write(archive, "long.sh", "#!/bin/sh\nhead -c 40000 /dev/zero | tr '\\0' b\necho\n"
          "head -c %d /dev/zero | tr '\\0' c\necho\n" % H.MAX_LINE)
    run(archive, log_path, [{"location": "long.sh"}])
    lines = output_lines(read_log(log_path))[2:]
    assert [len(line) for line in lines] == [8 + H.MAX_LINE, 8 + H.MAX_LINE, 8 + 40000 - 2 * H.MAX_LINE, 8 + H.MAX_LINE]
    assert lines[:3] == ["[stdout]" + "b" * (len(line) - 8) for line in lines[:3]]
    assert lines[3] == "[stdout]" + "c" * H.MAX_LINE


def test_last_line_without_newline_is_logged(archive, log_path):
    write(archive, "n.sh", "#!/bin/sh\nprintf 'no newline'\nprintf 'err too' >&2\n")
    run(archive, log_path, [{"location": "n.sh"}])
    assert sorted(output_lines(read_log(log_path))[2:]) == ["[stderr]err too", "[stdout]no newline"]


def test_non_utf8_output_is_replaced(archive, log_path):
    write(archive, "b.sh", "#!/bin/sh\nprintf 'caf\\351\\n'\n")
    result = run(archive, log_path, [{"location": "b.sh"}])
    assert result["log_tail"].endswith("[stdout]caf\ufffd\n")


# --------------------------------------------------------------------------------------
# Timeouts, process groups, background children
# --------------------------------------------------------------------------------------

def test_timeout_terminates_the_whole_group(archive, log_path, reap):
    pids = os.path.join(archive, "pids")
    write(archive, "slow.sh", "#!/bin/sh\nsleep 300 &\necho $! > %s\necho $$ >> %s\necho started\nsleep 300\n" % (pids, pids))
    result = run(archive, log_path, [{"location": "slow.sh", "timeout": 1}], kill_grace=30.0)
    started = read_pids(pids)
    reap.extend(started)
    script = result["scripts"][0]
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.SCRIPT_TIMED_OUT)
    assert result["message"] == "Script at specified location: slow.sh failed to complete in 1 seconds"
    assert (script["timed_out"], script["killed_with"], script["signal"]) == (True, "SIGTERM", "SIGTERM")
    assert script["duration"] < 30  # ended when the group was gone, not at the end of the grace
    assert [pid for pid in started if alive(pid)] == []
    assert "[stdout]started" in output_lines(read_log(log_path))


def test_term_ignoring_script_is_killed_after_grace(archive, log_path, reap):
    pids = os.path.join(archive, "pids")
    write(archive, "stubborn.sh", "#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $! > %s\necho $$ >> %s\n"
          "while :; do sleep 1; done\n" % (pids, pids))
    result = run(archive, log_path, [{"location": "stubborn.sh", "timeout": 1}], kill_grace=1.0)
    started = read_pids(pids)
    reap.extend(started)
    script = result["scripts"][0]
    assert (result["error_code"], script["timed_out"], script["killed_with"], script["signal"]) == (
        H.SCRIPT_TIMED_OUT, True, "SIGKILL", "SIGKILL")
    assert [pid for pid in started if alive(pid)] == []


def test_term_ignoring_child_of_dying_script_is_killed(archive, log_path, reap):
    """The main process dies on TERM but a child ignoring TERM stays: the group gets KILL after the grace."""
    pids = os.path.join(archive, "pids")
    write(archive, "child.sh", "#!/bin/sh\n(trap '' TERM; exec sleep 300) &\necho $! > %s\nsleep 300\n" % pids)
    result = run(archive, log_path, [{"location": "child.sh", "timeout": 1}], kill_grace=1.0)
    started = read_pids(pids)
    reap.extend(started)
    assert (result["error_code"], result["scripts"][0]["killed_with"]) == (H.SCRIPT_TIMED_OUT, "SIGKILL")
    assert [pid for pid in started if alive(pid)] == []


@pytest.mark.parametrize("redirect", ["", ">/dev/null", "2>/dev/null"], ids=["both-open", "stderr-open", "stdout-open"])
@pytest.mark.parametrize("code", [0, 4])
def test_background_child_holding_output_does_not_block(archive, log_path, reap, redirect, code):
    pid_file = os.path.join(archive, "pid")
    write(archive, "daemon.sh", "#!/bin/sh\nsleep 300 %s &\necho $! > %s\necho started\nexit %d\n" % (redirect, pid_file, code))
    result = run(archive, log_path, [{"location": "daemon.sh", "timeout": 120}])
    daemon = read_pids(pid_file)
    reap.extend(daemon)
    script = result["scripts"][0]
    assert (script["timed_out"], script["killed_with"], script["exit_code"]) == (False, None, code)
    assert result["error_code"] == (H.SUCCEEDED if code == 0 else H.SCRIPT_FAILED)
    assert script["duration"] < 120 and result["duration"] < 120
    assert all(alive(pid) for pid in daemon)  # a daemon started by a hook keeps running
    assert "[stdout]started" in output_lines(read_log(log_path))


def test_script_closing_its_outputs_still_waited_for(archive, log_path):
    write(archive, "quiet.sh", "#!/bin/sh\nexec >/dev/null 2>&1\nsleep 0.3\nexit 6\n")
    result = run(archive, log_path, [{"location": "quiet.sh", "timeout": 120}])
    assert (result["scripts"][0]["exit_code"], result["scripts"][0]["timed_out"]) == (6, False)


# --------------------------------------------------------------------------------------
# runas and sudo
# --------------------------------------------------------------------------------------

def test_nobody_has_no_login_shell():
    """The runas tests below use nobody because its shell refuses logins (su nobody -c ... fails)."""
    assert NOBODY.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert os.geteuid() == 0


def test_runas_user_without_login_shell(archive, log_path):
    write(archive, "who.sh", "#!/bin/sh\necho \"user=$(id -un) uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n"
          "echo \"home=$HOME USER=$USER LOGNAME=$LOGNAME SHELL=$SHELL\"\necho \"event=$LIFECYCLE_EVENT cwd=$(pwd)\"\n")
    result = run(archive, log_path, [{"location": "who.sh", "runas": "nobody"}], event="ApplicationStart")
    assert result["status"] == H.STATUS_SUCCEEDED, result
    lines = output_lines(read_log(log_path))[2:]
    identity, groups = lines[0].split(" groups=")
    assert identity == "[stdout]user=nobody uid=%d gid=%d" % (NOBODY.pw_uid, NOBODY.pw_gid)
    assert set(int(gid) for gid in groups.split()) == set([NOBODY.pw_gid] + os.getgrouplist("nobody", NOBODY.pw_gid))
    assert lines[1] == "[stdout]home=%s USER=nobody LOGNAME=nobody SHELL=/bin/sh" % NOBODY.pw_dir
    assert lines[2] == "[stdout]event=ApplicationStart cwd=%s" % archive
    assert "0" not in groups.split()  # root's groups are dropped


@pytest.mark.parametrize("sudo", [True, False])
def test_runas_with_and_without_sudo_as_root(archive, log_path, sudo):
    """sudo + runas as root works without sudo installed: the script runs as the user."""
    write(archive, "who.sh", "#!/bin/sh\nid -un\n")
    result = run(archive, log_path, [{"location": "who.sh", "runas": "nobody", "sudo": sudo}])
    assert result["status"] == H.STATUS_SUCCEEDED
    assert output_lines(read_log(log_path))[-1] == "[stdout]nobody"


def test_sudo_alone_as_root_runs_as_root(archive, log_path):
    write(archive, "who.sh", "#!/bin/sh\nid -u\n")
    result = run(archive, log_path, [{"location": "who.sh", "sudo": True}])
    assert result["status"] == H.STATUS_SUCCEEDED
    assert output_lines(read_log(log_path))[-1] == "[stdout]0"


def test_runas_no_shebang_and_failure_message(archive, log_path):
    write(archive, "plain.sh", "id -un\nexit 9\n")
    result = run(archive, log_path, [{"location": "plain.sh", "runas": "nobody"}])
    assert result["message"] == "Script at specified location: plain.sh run as user nobody failed with exit code 9"
    assert output_lines(read_log(log_path))[-1] == "[stdout]nobody"


def test_runas_user_who_cannot_read_the_script(tmp_path, log_path):
    """tmp_path sits in a 0700 directory: nobody cannot reach the script, and the message says so."""
    root = str(tmp_path / "archive")
    path = write(root, "a.sh", "#!/bin/sh\n")
    result = run(root, log_path, [{"location": "a.sh", "runas": "nobody"}])
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.SCRIPT_FAILED)
    assert result["message"] == ("Script at specified location: a.sh run as user nobody failed with error PermissionError "
                                 "with message [Errno 13] Permission denied: '%s'" % path)


def test_environment_none_values_are_unset(archive, log_path):
    write(archive, "e.sh", "#!/bin/sh\necho \"${DEPLOYMENT_GROUP_ID-unset} $EXTRA\"\n")
    env = dict(env_for(), DEPLOYMENT_GROUP_ID=None, EXTRA=7)
    run(archive, log_path, [{"location": "e.sh"}], env=env)
    assert output_lines(read_log(log_path))[-1] == "[stdout]unset 7"


def test_runas_unknown_user(archive, log_path):
    write(archive, "a.sh", "#!/bin/sh\n")
    result = run(archive, log_path, [{"location": "a.sh", "runas": "no-such-user-rollout"}])
    assert (result["status"], result["error_code"]) == (H.STATUS_FAILED, H.SCRIPT_FAILED)
    assert result["message"] == ("Script at specified location: a.sh run as user no-such-user-rollout failed: user no-such-user-rollout "
                                 "does not exist on this host. Create the user or fix runas in the AppSpec file.")


def test_runas_timeout_kills_the_users_group(archive, log_path, reap):
    pids = os.path.join(archive, "pids")
    open(pids, "w").close()
    os.chmod(pids, 0o666)
    write(archive, "slow.sh", "#!/bin/sh\nsleep 300 &\necho $! >> %s\necho $$ >> %s\nsleep 300\n" % (pids, pids))
    result = run(archive, log_path, [{"location": "slow.sh", "runas": "nobody", "timeout": 1}])
    started = read_pids(pids)
    reap.extend(started)
    assert len(started) == 2
    assert result["message"] == "Script at specified location: slow.sh failed to complete in 1 seconds"
    assert [pid for pid in started if alive(pid)] == []
