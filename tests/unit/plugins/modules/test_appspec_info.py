# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the rollout.codedeploy.appspec_info module: main() run with patched module args."""
import json
import os
import shutil
import tarfile

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle
from ansible_collections.rollout.codedeploy.plugins.modules import appspec_info

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SAMPLE = os.path.join(REPO, "examples", "sample-app")
VERSION_MESSAGE = ("The deployment failed because an invalid version value (1.0) was entered in the application "
                   "specification file.")


def run(capsys, tmp_path, check_mode=False, **args):
    args.update(_ansible_check_mode=check_mode, _ansible_tmpdir=str(tmp_path))
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            appspec_info.main()
    result = json.loads(capsys.readouterr().out)
    assert (info.value.code != 0) == bool(result.get("failed"))
    return result


@pytest.fixture
def revision(tmp_path):
    path = str(tmp_path / "rev")
    shutil.copytree(SAMPLE, path, symlinks=True)
    return path


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


@pytest.mark.parametrize("check_mode", [False, True])
def test_directory(capsys, tmp_path, revision, check_mode):
    result = run(capsys, tmp_path, check_mode=check_mode, path=revision)
    assert result["changed"] is False and not result.get("failed")
    assert result["kind"] == "directory"
    assert result["source"] == os.path.join(revision, "appspec.yml")
    assert result["appspec"]["version"] == "0.0" and result["appspec"]["os"] == "linux"
    assert result["appspec"]["hooks"]["ApplicationStart"][0] == {
        "location": "scripts/application_start.sh", "timeout": 120, "runas": None, "sudo": False}
    assert result["appspec"]["permissions"][0]["mode"] == "0755"
    assert result["script_problems"] == [] and result["appspec_warnings"] == []
    assert result["bundle_type"] is None and result["sha256"] is None


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_bundle(capsys, tmp_path, revision, kind):
    path = str(tmp_path / ("app.bin"))  # the content, not the name, says it is a bundle
    built = bundle.create(revision, path, kind)
    result = run(capsys, tmp_path, path=path)
    assert result["kind"] == "bundle" and result["bundle_type"] == kind
    assert result["sha256"] == built["sha256"]
    assert result["source"] == path + ":appspec.yml"
    assert sorted(result["appspec"]["hooks"]) == sorted(["ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic", "BeforeInstall",
                                                         "AfterInstall", "ApplicationStart", "ValidateService",
                                                         "BeforeAllowTraffic", "AfterAllowTraffic"])
    assert result["script_problems"] == []
    assert sorted(os.listdir(str(tmp_path))) == ["app.bin", "rev"], "the temporary unpacked copy is removed"


def test_bundle_with_single_top_directory_and_missing_script(capsys, tmp_path, revision):
    os.unlink(os.path.join(revision, "scripts", "validate_service.sh"))
    path = str(tmp_path / "web.tgz")
    with tarfile.open(path, "w:gz") as archive:
        archive.add(revision, arcname="web-1.0")
    result = run(capsys, tmp_path, path=path)
    assert result["source"] == path + ":web-1.0/appspec.yml"
    assert [(p["event"], p["problem"], p["path"]) for p in result["script_problems"]] == [
        ("ValidateService", "missing", path + ":scripts/validate_service.sh")]
    assert "Script does not exist at specified location" in result["script_problems"][0]["message"]
    assert str(tmp_path / "appspec_info") not in json.dumps(result)


def test_appspec_file_and_warnings(capsys, tmp_path, monkeypatch):
    from ansible.module_utils.basic import AnsibleModule
    emitted = []
    original = AnsibleModule.warn

    def recording_warn(self, warning, *args, **kwargs):
        emitted.append(warning)
        return original(self, warning, *args, **kwargs)

    # Where Ansible routes a module warning depends on process-wide state (an initialized plugin loader sends it
    # to the display instead of the result), so record what the module warns rather than where it lands.
    monkeypatch.setattr(AnsibleModule, "warn", recording_warn)
    path = str(tmp_path / "appspec.yml")
    write(path, "version: 0.0\nos: linux\nhooks:\n  Install:\n    - location: x.sh\n")
    result = run(capsys, tmp_path, path=path)
    assert result["kind"] == "file" and result["source"] == path
    assert result["appspec"]["hooks"]["Install"][0]["timeout"] == 3600
    assert len(result["appspec_warnings"]) == 1 and "Install" in result["appspec_warnings"][0]
    # also emitted as Ansible warnings (structured in the raw module output; the controller shows them)
    assert emitted == result["appspec_warnings"]


def test_missing_scripts_in_a_directory(capsys, tmp_path, revision):
    os.unlink(os.path.join(revision, "scripts", "before_install.sh"))
    with open(os.path.join(revision, "appspec.yml"), "a") as handle:
        handle.write("  AfterAllowTraffic:\n    - location: ../../outside.sh\n")
    result = run(capsys, tmp_path, path=revision)
    assert not result.get("failed")
    problems = dict((p["event"], p["problem"]) for p in result["script_problems"])
    assert problems == {"BeforeInstall": "missing", "AfterAllowTraffic": "outside_revision"}


def test_invalid_appspec_fails_with_the_agent_message(capsys, tmp_path, revision):
    write(os.path.join(revision, "appspec.yml"), "version: 1.0\nos: linux\n")
    result = run(capsys, tmp_path, path=revision)
    assert result["failed"] is True
    assert result["msg"].startswith(VERSION_MESSAGE)
    assert os.path.join(revision, "appspec.yml") in result["msg"] and "line 1" in result["msg"]
    assert result["key"] == "version" and result["line"] == 1
    assert "exception" not in result


def test_invalid_appspec_in_a_bundle_names_the_member(capsys, tmp_path, revision):
    write(os.path.join(revision, "appspec.yml"), "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - timeout: 5\n")
    path = str(tmp_path / "b.zip")
    bundle.create(revision, path, "zip")
    result = run(capsys, tmp_path, path=path)
    assert result["failed"] is True
    assert "script with no location value" in result["msg"]
    assert path + ":appspec.yml" in result["msg"]


@pytest.mark.parametrize("setup, words", [
    (lambda d: os.unlink(os.path.join(d, "appspec.yml")), "did not find an AppSpec file"),
    (lambda d: os.rename(os.path.join(d, "appspec.yml"), os.path.join(d, "AppSpec.yml")), "case-sensitive"),
    (lambda d: write(os.path.join(d, "appspec.yml"), ""), "application specification file was empty"),
    (lambda d: write(os.path.join(d, "appspec.yml"), "version: 0.0\nos: linux\n  bad: [\n"), "not valid YAML"),
])
def test_directory_failures(capsys, tmp_path, revision, setup, words):
    setup(revision)
    result = run(capsys, tmp_path, path=revision)
    assert result["failed"] is True and words in result["msg"] and "exception" not in result


def test_unsafe_bundle_is_refused(capsys, tmp_path, revision):
    path = str(tmp_path / "evil.tar")
    with tarfile.open(path, "w") as archive:
        archive.add(os.path.join(revision, "appspec.yml"), arcname="appspec.yml")
        info = tarfile.TarInfo("scripts/x.sh")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        archive.addfile(info)
    result = run(capsys, tmp_path, path=path)
    assert result["failed"] is True and result["entry"] == "scripts/x.sh"
    assert "Refusing to unpack" in result["msg"] and "/etc/shadow" in result["msg"]


def test_bundle_without_appspec_and_missing_path(capsys, tmp_path):
    path = str(tmp_path / "empty.tgz")
    os.makedirs(str(tmp_path / "src" / "x"))
    bundle.create(str(tmp_path / "src"), path)
    result = run(capsys, tmp_path, path=path)
    assert result["failed"] is True and "no appspec.yml" in result["msg"]
    result = run(capsys, tmp_path, path=str(tmp_path / "nope"))
    assert result["failed"] is True and "does not exist" in result["msg"]


EXCEPTION_NAME = __import__("re").compile(r"\b(?:[A-Z][a-z]+)+(?:Error|Exception)\b|Traceback|Module failed")


@pytest.mark.parametrize("name, data, where", [
    ("appspec.yml", b"version: 0.0\nos: linux\n# rings \x07 a bell\n", "line 3, column 9"),
    ("appspec.yml", b"version: 0.0\x1b\nos: linux\n", "line 1, column 13"),
    ("appspec.yaml", b"version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a\x00b.sh\n", "line 5, column 18"),
])
def test_control_character_is_a_clear_error(capsys, tmp_path, name, data, where):
    rev = tmp_path / "rev"
    rev.mkdir()
    (rev / name).write_bytes(data)
    for path in (str(rev), str(rev / name)):
        result = run(capsys, tmp_path, path=path)
        assert result["failed"] is True
        assert "not valid YAML: the character U+00" in result["msg"] and where in result["msg"]
        assert str(rev / name) in result["msg"] and result["line"] == int(where.split()[1].rstrip(","))
        assert not EXCEPTION_NAME.search(result["msg"]), result["msg"]
    with tarfile.open(str(tmp_path / "b.tgz"), "w:gz") as archive:
        archive.add(str(rev / name), arcname=name)
    result = run(capsys, tmp_path, path=str(tmp_path / "b.tgz"))
    assert result["failed"] is True and where in result["msg"] and "b.tgz:%s" % name in result["msg"]


@pytest.mark.parametrize("name, data, words", [
    ("x.zip", b"\x00\x01\x02\x03 random bytes" * 40, "is not a zip, tar or tgz archive (its first bytes are 00 01 02 03"),
    ("x.tgz", b"version: 0.0\nos: linux\n", 'is not a zip, tar or tgz archive (its first bytes are 76 65 72 73 69 6f 6e 3a ("version:"))'),
    ("x.tar.gz", b"", "(an empty file)"),
])
def test_file_named_like_a_bundle_is_not_read_as_an_appspec(capsys, tmp_path, name, data, words):
    (tmp_path / name).write_bytes(data)
    result = run(capsys, tmp_path, path=str(tmp_path / name))
    assert result["failed"] is True and words in result["msg"]
    assert "build it with rollout.codedeploy.revision or pass the revision directory" in result["msg"]
    assert "UTF-8" not in result["msg"] and "mapping" not in result["msg"]
