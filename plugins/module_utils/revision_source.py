# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a deployment's revision comes from, fetched once into the controller's cache (keyed by sha256).

A revision is given as (docs/deploy.md, input ``revision``):
- ``s3://bucket/key`` (optionally ``?versionId=...``) or ``{"s3": {"bucket", "key", "version", "etag"}}``;
- a local path: a revision directory (bundled deterministically) or a zip/tar/tgz bundle;
- ``{"url": "https://...", "sha256": "..."}`` (a plain URL string is refused: without a sha256 nobody can tell what was deployed);
- ``{"git": {"repo": "...", "commit": "..."}}`` (``git archive`` of that commit).

The bundle is read from its source once per deployment; every host receives the cached copy (or pulls a presigned URL).
An S3 object carrying ``sha256`` metadata (as ``rollout.codedeploy.revision`` uploads it) already in the cache is not downloaded again.

Whatever is fetched is checked to be a revision before it is returned: a zip, tar or tgz archive, safe to unpack, with
appspec.yml (or appspec.yaml) at its root or in its single top-level directory.  An AppSpec file given instead of its
directory, or a file that is no archive, is refused with a message naming the value and the fix.

Credentials never leave this module: the ``location`` and ``source`` it returns and every message it raises have URL
query credentials and userinfo replaced by REDACTED (``redaction.py``); only the download itself uses the real URL.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

from urllib.parse import parse_qs, urlparse

from ansible.module_utils.urls import open_url

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_revision, redact_url

DEFAULT_CACHE = "~/.ansible/codedeploy/bundles"


class RevisionError(Exception):
    """The revision cannot be had; ``code`` is CodeDeploy's (REVISION_MISSING, INVALID_REVISION)."""

    def __init__(self, message, code="REVISION_MISSING"):
        message = redact_url(message)  # a message may quote a presigned URL: never its credentials
        super(RevisionError, self).__init__(message)
        self.message = message
        self.code = code


def parse_location(revision):
    """Normalize what the user gave into {"type": s3|local|url|git, ...}. Raises RevisionError naming the field."""
    if isinstance(revision, dict):
        if "s3" in revision:
            s3 = revision["s3"] or {}
            if not s3.get("bucket") or not s3.get("key"):
                raise RevisionError("revision.s3 needs bucket and key (got %r); e.g. {s3: {bucket: my-bucket, key: app/app-1.0.tgz}}" % (s3,),
                                    "INVALID_REVISION")
            return {"type": "s3", "bucket": s3["bucket"], "key": s3["key"], "version": s3.get("version"), "etag": s3.get("etag")}
        if "url" in revision:
            if not revision.get("sha256"):
                raise RevisionError("revision.url needs its sha256 (revision: {url: %s, sha256: <hex>}) so the deployment records "
                                    "exactly what it installed" % revision["url"], "INVALID_REVISION")
            return {"type": "url", "url": revision["url"], "sha256": revision["sha256"].lower()}
        if "git" in revision:
            git = revision["git"] or {}
            if not git.get("repo") or not git.get("commit"):
                raise RevisionError("revision.git needs repo and commit (got %r)" % (git,), "INVALID_REVISION")
            return {"type": "git", "repo": git["repo"], "commit": git["commit"]}
        if "path" in revision:
            return {"type": "local", "path": os.path.abspath(os.path.expanduser(revision["path"]))}
        raise RevisionError("revision %r: give s3://bucket/key, a local path, {s3: ...}, {url: ..., sha256: ...} or {git: {repo, commit}}"
                            % (revision,), "INVALID_REVISION")
    if not isinstance(revision, str) or not revision:
        raise RevisionError("no revision given: pass -e revision=<s3://bucket/key | path | ...>", "REVISION_MISSING")
    if revision.startswith("s3://"):
        parsed = urlparse(revision)
        version = (parse_qs(parsed.query).get("versionId") or [None])[0]
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key:
            raise RevisionError("revision %s: an S3 location is s3://<bucket>/<key>[?versionId=<id>]" % revision, "INVALID_REVISION")
        return {"type": "s3", "bucket": parsed.netloc, "key": key, "version": version, "etag": None}
    if revision.startswith(("https://", "http://")):
        raise RevisionError("revision %s: a URL needs its sha256; pass it as revision={url: ..., sha256: ...}" % revision, "INVALID_REVISION")
    return {"type": "local", "path": os.path.abspath(os.path.expanduser(revision))}


def _cache_put(cache, path, sha256=None, move=True, name=None):
    sha256 = sha256 or bundles.sha256_file(path)
    btype = bundles.detect_type(path, name)
    target = os.path.join(cache, "%s.%s" % (sha256, btype))
    if not os.path.exists(target):
        if move:
            shutil.move(path, target)
        else:
            shutil.copyfile(path, target)
    elif move:
        os.unlink(path)
    return target, sha256, btype


def _cached(cache, sha256):
    for btype in ("tgz", "tar", "zip"):
        candidate = os.path.join(cache, "%s.%s" % (sha256, btype))
        if os.path.exists(candidate):
            return candidate, btype
    return None, None


def cached_bundle(sha256, cache=DEFAULT_CACHE):
    """The bundle with this sha256 in the controller's cache, or None."""
    if not sha256:
        return None
    path, _btype = _cached(os.path.expanduser(cache), sha256)
    return path


def as_revision(source):
    """A normalized source (``parse_location``'s result, as recorded in the ledger) as a revision ``fetch`` takes;
    None for a URL, whose recorded form has its credentials redacted and cannot be fetched again."""
    kind = (source or {}).get("type")
    if kind == "s3":
        return {"s3": {key: source.get(key) for key in ("bucket", "key", "version", "etag")}}
    if kind == "local":
        return {"path": source.get("path")}
    if kind == "git":
        return {"git": {"repo": source.get("repo"), "commit": source.get("commit")}}
    return None


def fetch(revision, s3_client=None, cache=DEFAULT_CACHE):
    """Resolve and fetch a revision into the cache. Returns a dict describing it:

    ``bundle`` (cached path), ``sha256``, ``bundle_type``, ``location`` (for people), ``source`` (normalized),
    ``env`` (the BUNDLE_* source for hook environments: {"s3": {...}} or {"git": {...}} or None), ``downloaded`` (bool),
    ``appspec_text`` and ``appspec_member`` (the AppSpec read from the bundle while checking it, and its name there).
    ``location`` and ``source`` are redacted (no URL credentials): they are safe to record and show.

    Raises RevisionError (INVALID_REVISION for something that is not a revision: no archive, no AppSpec at the root).
    """
    source = parse_location(revision)
    cache = os.path.expanduser(cache)
    if not os.path.isdir(cache):
        os.makedirs(cache)
    kind = source["type"]
    if kind == "local":
        return _local(source, cache)
    if kind == "s3":
        return _s3(source, s3_client, cache)
    if kind == "url":
        return _url(source, cache)
    return _git(source, cache)


def _result(source, path, sha256, btype, location, downloaded, env=None):
    """The fetch result for the bundle at ``path``, once it is checked to be a revision."""
    location = redact_url(location)
    try:
        checked = bundles.check_revision(path, name=location)
    except bundles.BundleError as exc:
        message = exc.message if location in exc.message else "revision %s cannot be used: %s" % (location, exc.message)
        raise RevisionError(message, "INVALID_REVISION")
    return {"bundle": path, "sha256": sha256, "bundle_type": checked["bundle_type"] or btype, "location": location,
            "source": redact_revision(source), "env": redact_revision(env), "downloaded": downloaded,
            "appspec_text": checked["appspec_text"], "appspec_member": checked["appspec_member"]}


def _local(source, cache):
    path = source["path"]
    if os.path.isdir(path):
        if bundles.directory_appspec(path) is None:
            raise RevisionError("revision %s has no appspec.yml or appspec.yaml at its root: put the AppSpec at the root of the "
                                "revision directory, or pass the directory that holds it" % path, "INVALID_REVISION")
        tmp = tempfile.NamedTemporaryFile(dir=cache, suffix=".tmp", delete=False)
        tmp.close()
        try:
            made = bundles.create(path, tmp.name, "tgz")
        except bundles.BundleError as exc:
            os.unlink(tmp.name)
            raise RevisionError("revision %s cannot be bundled: %s" % (path, exc.message), "INVALID_REVISION")
        target, sha256, btype = _cache_put(cache, tmp.name, made["sha256"])
        return _result(source, target, sha256, btype, path, False)
    if os.path.isfile(path):
        try:
            btype = bundles.detect_type(path)
        except bundles.BundleError as exc:
            raise RevisionError(exc.message, "INVALID_REVISION")
        return _result(source, path, bundles.sha256_file(path), btype, path, False)
    raise RevisionError("revision %s does not exist on the controller; give a revision directory, a bundle, or s3://bucket/key" % path)


def _s3(source, client, cache):
    if client is None:
        raise RevisionError("an S3 revision needs AWS access (boto3 and credentials) on the controller", "REVISION_MISSING")
    kwargs = {"Bucket": source["bucket"], "Key": source["key"]}
    if source.get("version"):
        kwargs["VersionId"] = source["version"]
    location = "s3://%s/%s%s" % (source["bucket"], source["key"], "?versionId=%s" % source["version"] if source.get("version") else "")
    try:
        head = client.head_object(**kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        raise RevisionError("revision %s cannot be read: %s. Check the bucket, key and version, and that these credentials may "
                            "read it" % (location, _client_error(exc)), "REVISION_MISSING")
    etag = (head.get("ETag") or "").strip('"')
    if source.get("etag") and source["etag"].strip('"') != etag:
        raise RevisionError("revision %s has ETag %s, not the %s the deployment asked for: the object changed; pass its current "
                            "eTag or version" % (location, etag, source["etag"]), "INVALID_REVISION")
    env = {"s3": {"bucket": source["bucket"], "key": source["key"], "version": head.get("VersionId") or source.get("version"), "etag": etag}}
    meta_sha = (head.get("Metadata") or {}).get("sha256")
    if meta_sha:
        cached, btype = _cached(cache, meta_sha)
        if cached:
            return _result(source, cached, meta_sha, btype, location, False, env)
    tmp = tempfile.NamedTemporaryFile(dir=cache, suffix=".tmp", delete=False)
    try:
        body = client.get_object(**kwargs)["Body"]
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            tmp.write(chunk)
        tmp.close()
    except Exception as exc:  # pylint: disable=broad-except
        tmp.close()
        os.unlink(tmp.name)
        raise RevisionError("revision %s could not be downloaded: %s" % (location, _client_error(exc)), "REVISION_MISSING")
    sha256 = bundles.sha256_file(tmp.name)
    if meta_sha and meta_sha != sha256:
        os.unlink(tmp.name)
        raise RevisionError("revision %s: its content has sha256 %s but its metadata says %s; upload it again" % (location, sha256, meta_sha),
                            "INVALID_REVISION")
    try:
        target, sha256, btype = _cache_put(cache, tmp.name, sha256, name=location)
    except bundles.BundleError as exc:
        os.unlink(tmp.name)
        raise RevisionError(exc.message, "INVALID_REVISION")
    return _result(source, target, sha256, btype, location, True, env)


def _url(source, cache):
    cached, btype = _cached(cache, source["sha256"])
    if cached:
        return _result(source, cached, source["sha256"], btype, source["url"], False)
    tmp = tempfile.NamedTemporaryFile(dir=cache, suffix=".tmp", delete=False)
    digest = hashlib.sha256()
    try:
        response = open_url(source["url"], timeout=60)  # the sha256 below decides what is accepted
        for chunk in iter(lambda: response.read(1024 * 1024), b""):
            digest.update(chunk)
            tmp.write(chunk)
        tmp.close()
    except Exception as exc:  # pylint: disable=broad-except
        tmp.close()
        os.unlink(tmp.name)
        raise RevisionError("revision %s could not be downloaded: %s" % (source["url"], exc))
    if digest.hexdigest() != source["sha256"]:
        os.unlink(tmp.name)
        raise RevisionError("revision %s has sha256 %s, not %s: refusing it" % (source["url"], digest.hexdigest(), source["sha256"]),
                            "INVALID_REVISION")
    try:
        target, sha256, btype = _cache_put(cache, tmp.name, source["sha256"], name=redact_url(source["url"]))
    except bundles.BundleError as exc:
        os.unlink(tmp.name)
        raise RevisionError(exc.message, "INVALID_REVISION")
    return _result(source, target, sha256, btype, source["url"], True)


def _git(source, cache):
    work = tempfile.mkdtemp(dir=cache, suffix=".git")
    try:
        for cmd in (["git", "init", "-q", work], ["git", "-C", work, "fetch", "-q", "--depth", "1", source["repo"], source["commit"]]):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RevisionError("revision git %s@%s cannot be fetched: %s" % (source["repo"], source["commit"], proc.stderr.strip()))
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        archive = subprocess.run(["git", "-C", work, "archive", "--format=tar", "FETCH_HEAD"], capture_output=True, check=False)
        if archive.returncode != 0:
            raise RevisionError("revision git %s@%s cannot be archived: %s" % (source["repo"], source["commit"], archive.stderr.decode()))
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        if bundles.directory_appspec(tree) is None:
            raise RevisionError("revision git %s@%s has no appspec.yml or appspec.yaml at its root: commit the AppSpec at the root "
                                "of the repository" % (source["repo"], source["commit"]), "INVALID_REVISION")
        tmp = os.path.join(work, "bundle.tgz")
        made = bundles.create(tree, tmp, "tgz")
        target, sha256, btype = _cache_put(cache, tmp, made["sha256"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _result(source, target, sha256, btype, "%s@%s" % (source["repo"], source["commit"]), True, {"git": {"commit": source["commit"]}})


def _client_error(exc):
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    if error:
        return "%s (%s)" % (error.get("Message") or error.get("Code"), error.get("Code"))
    return str(exc)
