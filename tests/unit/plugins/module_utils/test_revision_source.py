# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/revision_source.py: only archives with an AppSpec are revisions,
and no URL credential comes out of it."""

import hashlib
import io
import os
import re
import tarfile

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import revision_source as R

APPSPEC = b"version: 0.0\nos: linux\n"
PRESIGNED = ("https://rev.s3.amazonaws.com/app.tgz?versionId=7&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1"
             "&X-Amz-Signature=feedfacefeedfacefeedface&X-Amz-Security-Token=SESSIONTOKENVALUE")
EXCEPTION_NAME = re.compile(r"\b(?:[A-Z][a-z]+)+(?:Error|Exception)\b")
SECRETS = ("AKIAIOSFODNN7EXAMPLE", "feedfacefeedface", "SESSIONTOKENVALUE", "hunter2")


def tgz(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


GOOD = tgz([("appspec.yml", APPSPEC), ("app.txt", b"x")])


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def refused(revision, cache, **kwargs):
    with pytest.raises(R.RevisionError) as info:
        R.fetch(revision, cache=cache, **kwargs)
    assert not EXCEPTION_NAME.search(info.value.message) and "Traceback" not in info.value.message
    return info.value


@pytest.mark.parametrize("name, content, words", [
    ("x.zip", os.urandom(64) + b"\x00" * 600, "is not a zip, tar or tgz archive (its first bytes are"),
    ("x.tgz", b"version: 0.0\nos: linux\nhooks: {}\n", 'its first bytes are 76 65 72 73 69 6f 6e 3a ("version:")'),
    ("x.tar", b"", "(an empty file)"),
    ("appspec.yml", APPSPEC, "is an AppSpec file, not a revision: pass its directory"),
    ("appspec.yaml", APPSPEC, "is an AppSpec file, not a revision: pass its directory"),
    ("nospec.tgz", tgz([("app.txt", b"x")]), "has no appspec.yml or appspec.yaml at its root"),
    ("deep.tgz", tgz([("a/b/appspec.yml", APPSPEC)]), "has no appspec.yml or appspec.yaml at its root"),
])
def test_local_file_that_is_not_a_revision(tmp_path, cache, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    error = refused(str(path), cache)
    assert error.code == "INVALID_REVISION"
    assert words in error.message and str(path) in error.message
    if name.startswith("appspec"):
        assert "pass its directory %s or a zip/tar/tgz bundle" % tmp_path in error.message
    elif "no appspec" not in words:
        assert "build it with rollout.codedeploy.revision or pass the revision directory" in error.message


def test_directory_without_appspec(tmp_path, cache):
    (tmp_path / "rev").mkdir()
    (tmp_path / "rev" / "index.html").write_text("hi")
    error = refused(str(tmp_path / "rev"), cache)
    assert error.code == "INVALID_REVISION"
    assert "revision %s has no appspec.yml or appspec.yaml at its root" % (tmp_path / "rev") in error.message
    assert not [n for n in os.listdir(cache) if not n.startswith(".")], "nothing was bundled"


@pytest.mark.parametrize("layout", [("appspec.yml",), ("appspec.yaml",), ("top", "appspec.yml")])
def test_directory_revisions_with_their_appspec(tmp_path, cache, layout):
    root = tmp_path / "rev"
    target = root.joinpath(*layout)
    target.parent.mkdir(parents=True)
    target.write_bytes(APPSPEC)
    fetched = R.fetch(str(root), cache=cache)
    assert fetched["appspec_text"] == APPSPEC.decode() and fetched["appspec_member"] == "/".join(layout)
    assert fetched["bundle_type"] == "tgz" and fetched["location"] == str(root)


def test_local_bundle(tmp_path, cache):
    path = tmp_path / "app.bin"  # the content decides, not the name
    path.write_bytes(GOOD)
    fetched = R.fetch(str(path), cache=cache)
    assert fetched["bundle"] == str(path) and fetched["bundle_type"] == "tgz"
    assert fetched["sha256"] == hashlib.sha256(GOOD).hexdigest() and fetched["appspec_member"] == "appspec.yml"


class _Response(object):
    def __init__(self, data):
        self.stream = io.BytesIO(data)

    def read(self, size):
        return self.stream.read(size)


def _serve(monkeypatch, data=None, error=None):
    asked = []

    def fake_open_url(url, timeout=None):
        asked.append(url)
        if error:
            raise error
        return _Response(data)
    monkeypatch.setattr(R, "open_url", fake_open_url)
    return asked


def _clean(value):
    text = repr(value)
    for secret in SECRETS:
        assert secret not in text, secret


def test_url_revision_is_downloaded_with_its_credentials_and_returned_without_them(monkeypatch, cache):
    asked = _serve(monkeypatch, GOOD)
    fetched = R.fetch({"url": PRESIGNED, "sha256": hashlib.sha256(GOOD).hexdigest()}, cache=cache)
    assert asked == [PRESIGNED], "the download uses the real URL"
    _clean({key: value for key, value in fetched.items() if key != "bundle"})
    assert fetched["location"].startswith("https://rev.s3.amazonaws.com/app.tgz?versionId=7&X-Amz-Credential=REDACTED")
    assert fetched["source"] == {"type": "url", "url": fetched["location"], "sha256": hashlib.sha256(GOOD).hexdigest()}
    again = R.fetch({"url": PRESIGNED, "sha256": hashlib.sha256(GOOD).hexdigest()}, cache=cache)
    assert asked == [PRESIGNED] and again["downloaded"] is False  # from the cache
    _clean(again)


@pytest.mark.parametrize("revision, serve, words", [
    ({"url": PRESIGNED, "sha256": "0" * 64}, {"data": GOOD}, "has sha256"),
    ({"url": PRESIGNED, "sha256": hashlib.sha256(b"<Error>AccessDenied</Error>").hexdigest()},
     {"data": b"<Error>AccessDenied</Error>"}, "is not a zip, tar or tgz archive"),
    ({"url": PRESIGNED, "sha256": "0" * 64}, {"error": OSError("cannot reach %s" % PRESIGNED)}, "could not be downloaded"),
    ({"url": "https://deploy:hunter2@files.example.com/app.tgz", "sha256": "0" * 64},
     {"error": OSError("HTTP Error 401: Unauthorized")}, "https://REDACTED@files.example.com/app.tgz could not be downloaded"),
    (PRESIGNED, {"data": GOOD}, "a URL needs its sha256"),
    ({"url": PRESIGNED}, {"data": GOOD}, "needs its sha256"),
    ({"nonsense": PRESIGNED}, {"data": GOOD}, "give s3://bucket/key"),
])
def test_url_errors_never_show_credentials(monkeypatch, cache, revision, serve, words):
    _serve(monkeypatch, **serve)
    error = refused(revision, cache)
    assert words in error.message
    _clean(error.message)
    _clean(str(error))


class _S3(object):
    def __init__(self, data, metadata=None):
        self.data = data
        self.metadata = metadata or {}

    def head_object(self, **kwargs):
        return {"ETag": '"e"', "VersionId": kwargs.get("VersionId") or "v1", "Metadata": self.metadata}

    def get_object(self, **_kwargs):
        return {"Body": io.BytesIO(self.data)}


def test_s3_object_that_is_not_an_archive_is_named_by_its_location(cache):
    error = refused("s3://bucket/web/app.zip?versionId=v1", cache, s3_client=_S3(b"PLAIN TEXT, NOT A ZIP" * 40))
    assert error.message.startswith("revision s3://bucket/web/app.zip?versionId=v1 is not a zip, tar or tgz archive")
    assert ".tmp" not in error.message
    assert not [n for n in os.listdir(cache) if n.endswith(".tmp")]


def test_s3_object_without_appspec(cache):
    error = refused("s3://bucket/web/app.tgz", cache, s3_client=_S3(tgz([("x", b"x")])))
    assert "s3://bucket/web/app.tgz" in error.message and "no appspec.yml or appspec.yaml at its root" in error.message


def test_s3_revision(cache):
    fetched = R.fetch("s3://bucket/web/app.tgz", cache=cache, s3_client=_S3(GOOD))
    assert fetched["location"] == "s3://bucket/web/app.tgz" and fetched["appspec_member"] == "appspec.yml"
    assert fetched["env"] == {"s3": {"bucket": "bucket", "key": "web/app.tgz", "version": "v1", "etag": "e"}}
