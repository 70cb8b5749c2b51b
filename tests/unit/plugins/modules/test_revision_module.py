# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the rollout.codedeploy.revision module: main() with patched module args, S3 in moto (in-process)."""
import json
import os
import shutil
import tarfile

import boto3
import pytest
from moto import mock_aws

from ansible.module_utils.testing import patch_module_args

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle
from ansible_collections.rollout.codedeploy.plugins.modules import revision as revision_module

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SAMPLE = os.path.join(REPO, "examples", "sample-app")
REGION = "us-east-1"


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="releases")
        client.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket="plain")
        yield client


@pytest.fixture
def source(tmp_path):
    path = str(tmp_path / "app")
    shutil.copytree(SAMPLE, path, symlinks=True)
    return path


def run(capsys, tmp_path, check_mode=False, diff=False, **args):
    args.setdefault("region", REGION)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff, _ansible_tmpdir=str(tmp_path / "module-tmp"))
    os.makedirs(str(tmp_path / "module-tmp"), exist_ok=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            revision_module.main()
    result = json.loads(capsys.readouterr().out)
    assert (info.value.code != 0) == bool(result.get("failed")), result
    return result


def test_local_bundle_is_idempotent(capsys, tmp_path, source, s3):
    dest = str(tmp_path / "out" / "app.zip")
    first = run(capsys, tmp_path, path=source, dest=dest)
    assert first["changed"] is True and first["path"] == dest and first["location"] == dest
    assert first["bundle_type"] == "zip"  # from the name of dest
    assert first["sha256"] == bundle.sha256_file(dest) and first["size"] == os.path.getsize(dest)
    assert first["bucket"] is None and first["version"] is None and first["uploaded"] is False
    os.utime(source, (1, 1))  # directory timestamps do not matter
    second = run(capsys, tmp_path, path=source, dest=dest)
    assert second["changed"] is False and second["sha256"] == first["sha256"]
    os.utime(os.path.join(source, "appspec.yml"), (1, 1))  # a file's time is kept in the bundle: it is a new one
    touched = run(capsys, tmp_path, path=source, dest=dest)
    assert touched["changed"] is True and touched["sha256"] != first["sha256"]
    with open(os.path.join(source, "VERSION"), "w") as handle:
        handle.write("9.9.9\n")
    third = run(capsys, tmp_path, path=source, dest=dest)
    assert third["changed"] is True and third["sha256"] != first["sha256"]


def test_default_dest_is_a_content_addressed_directory(capsys, tmp_path, source, s3):
    cache = str(tmp_path / "cache") + "/"
    result = run(capsys, tmp_path, path=source, dest=cache)
    assert result["path"] == os.path.join(cache, result["sha256"] + ".tgz")
    assert os.path.isfile(result["path"])
    assert revision_module.DEFAULT_CACHE == "~/.ansible/codedeploy/bundles/"


def test_upload_then_no_change(capsys, tmp_path, source, s3):
    args = dict(path=source, dest=str(tmp_path / "b/"), bucket="releases", key="web/app.tgz")
    first = run(capsys, tmp_path, **args)
    assert first["changed"] is True and first["uploaded"] is True
    head = s3.head_object(Bucket="releases", Key="web/app.tgz")
    assert head["Metadata"] == {"sha256": first["sha256"]}
    assert head["ContentType"] == "application/gzip"
    assert first["version"] == head["VersionId"] and first["etag"] == head["ETag"].strip('"')
    assert first["location"] == "s3://releases/web/app.tgz?versionId=" + head["VersionId"]
    body = s3.get_object(Bucket="releases", Key="web/app.tgz")["Body"].read()
    with open(first["path"], "rb") as handle:
        assert handle.read() == body

    second = run(capsys, tmp_path, **args)
    assert second["changed"] is False and second["uploaded"] is False
    assert (second["version"], second["etag"], second["location"]) == (first["version"], first["etag"], first["location"])
    assert len(s3.list_object_versions(Bucket="releases")["Versions"]) == 1


def test_new_content_is_a_new_version(capsys, tmp_path, source, s3):
    args = dict(path=source, bucket="releases", key="app.tgz", dest=str(tmp_path / "cache/"))
    first = run(capsys, tmp_path, **args)
    with open(os.path.join(source, "VERSION"), "w") as handle:
        handle.write("2.0.0\n")
    second = run(capsys, tmp_path, **args)
    assert second["changed"] is True and second["version"] != first["version"]
    assert len(s3.list_object_versions(Bucket="releases")["Versions"]) == 2


def test_object_without_our_metadata_is_replaced(capsys, tmp_path, source, s3):
    s3.put_object(Bucket="releases", Key="app.tgz", Body=b"something else")
    result = run(capsys, tmp_path, path=source, bucket="releases", key="app.tgz", dest=str(tmp_path / "c/"))
    assert result["changed"] is True and result["uploaded"] is True
    assert s3.head_object(Bucket="releases", Key="app.tgz")["Metadata"]["sha256"] == result["sha256"]


def test_check_mode_changes_nothing(capsys, tmp_path, source, s3):
    dest = str(tmp_path / "cache/")
    args = dict(path=source, bucket="releases", key="app.zip", dest=dest)
    planned = run(capsys, tmp_path, check_mode=True, **args)
    assert planned["changed"] is True and planned["uploaded"] is True and planned["version"] is None
    assert planned["bundle_type"] == "zip"  # from the key
    assert "Contents" not in s3.list_objects_v2(Bucket="releases")
    assert not os.path.exists(dest)
    done = run(capsys, tmp_path, **args)
    assert done["sha256"] == planned["sha256"] and done["path"] == planned["path"]
    again = run(capsys, tmp_path, check_mode=True, **args)
    assert again["changed"] is False and again["version"] == done["version"]
    assert os.listdir(str(tmp_path / "module-tmp")) == []


def test_diff_mode(capsys, tmp_path, source, s3):
    result = run(capsys, tmp_path, diff=True, path=source, bucket="releases", key="app.tgz", dest=str(tmp_path / "c/"))
    assert result["diff"]["before"] == {"path": result["path"], "sha256": None, "s3_sha256": None}
    assert result["diff"]["after"] == {"path": result["path"], "sha256": result["sha256"], "s3_sha256": result["sha256"]}


def test_unversioned_bucket(capsys, tmp_path, source, s3):
    result = run(capsys, tmp_path, path=source, bucket="plain", key="app.tar", dest=str(tmp_path / "c/"))
    assert result["version"] is None and result["location"] == "s3://plain/app.tar"
    assert result["bundle_type"] == "tar" and result["etag"]


def test_missing_bucket_fails_cleanly(capsys, tmp_path, source, s3):
    result = run(capsys, tmp_path, path=source, bucket="nope", key="app.tgz", dest=str(tmp_path / "c/"))
    assert result["failed"] is True
    assert "s3://nope/app.tgz" in result["msg"] and "NoSuchBucket" in result["msg"]


def test_bucket_requires_key(capsys, tmp_path, source, s3):
    result = run(capsys, tmp_path, path=source, bucket="releases")
    assert result["failed"] is True and "bucket" in result["msg"] and "key" in result["msg"]


@pytest.mark.parametrize("change, words", [
    (lambda d: os.unlink(os.path.join(d, "appspec.yml")), "did not find an AppSpec file"),
    (lambda d: open(os.path.join(d, "appspec.yml"), "w").write("version: 0.0\nos: windows\n"), "unsupported operating system (windows)"),
    (lambda d: open(os.path.join(d, "appspec.yml"), "a").write("  BeforeInstall:\n    - location: x\n      timeout: -1\n"),
     "invalid timeout value"),
    (lambda d: os.unlink(os.path.join(d, "scripts", "after_install.sh")), "Script does not exist at specified location"),
    (lambda d: os.symlink("/etc/passwd", os.path.join(d, "passwd")), "symlink to the absolute path /etc/passwd"),
])
def test_invalid_revision_is_refused_and_nothing_is_uploaded(capsys, tmp_path, source, s3, change, words):
    change(source)
    result = run(capsys, tmp_path, path=source, bucket="releases", key="app.tgz", dest=str(tmp_path / "c/"))
    assert result["failed"] is True and words in result["msg"], result["msg"]
    assert "Contents" not in s3.list_objects_v2(Bucket="releases")
    assert not os.path.exists(str(tmp_path / "c"))


def test_invalid_appspec_message_names_file_and_line(capsys, tmp_path, source, s3):
    with open(os.path.join(source, "appspec.yml"), "w") as handle:
        handle.write("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 99999\n")
    result = run(capsys, tmp_path, path=source)
    assert result["failed"] is True
    assert os.path.join(source, "appspec.yml") in result["msg"] and "line 5" in result["msg"]
    assert result["key"] == "permissions[0].mode" and result["line"] == 5


def test_missing_scripts_can_be_allowed_and_exclude_applies(capsys, tmp_path, source, s3):
    os.unlink(os.path.join(source, "scripts", "after_install.sh"))
    os.makedirs(os.path.join(source, ".git"))
    dest = str(tmp_path / "b.tgz")
    result = run(capsys, tmp_path, path=source, dest=dest, validate_scripts=False, exclude=[".git", "README.md"])
    assert result["changed"] is True
    with tarfile.open(dest) as archive:
        names = archive.getnames()
    assert "README.md" not in names and ".git" not in names and "appspec.yml" in names


def test_excluding_the_appspec_is_refused(capsys, tmp_path, source, s3):
    result = run(capsys, tmp_path, path=source, dest=str(tmp_path / "b.tgz"), exclude=["appspec.yml"])
    assert result["failed"] is True and "no appspec.yml" in result["msg"]
    assert not os.path.exists(str(tmp_path / "b.tgz"))
