# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input corpus: malformed AppSpecs (tests/corpus/appspec, EXPECTED.json says what each must give,
plus inputs a text file cannot hold, built here) and malformed bundles built at run time.

Every bad input must give the parser's own error (AppSpecError, BundleError) with a message a user can
act on: the expected words, and no Python exception class name or traceback.
"""

import gzip
import io
import json
import os
import re
import tarfile
import zipfile

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as spec
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "corpus", "appspec")
with open(os.path.join(CORPUS, "EXPECTED.json")) as _handle:
    EXPECTED = {name: value for name, value in json.load(_handle).items() if not name.startswith("_")}

CLASS_NAME = re.compile(r"Traceback|Exception|\b[A-Z][A-Za-z]*Error\b|Error:")
HEAD = "version: 0.0\nos: linux\n"
VALID = HEAD + "hooks:\n  AfterInstall:\n    - location: a.sh\n"


def assert_user_message(message):
    assert isinstance(message, str) and message.strip()
    assert not CLASS_NAME.search(message), message


def outcome(data, source):
    """("error", message) or ("ok", warnings) for one input; any other exception fails the test."""
    try:
        _appspec, warnings = spec.parse_appspec(data, source=source)
    except spec.AppSpecError as exc:
        assert_user_message(exc.message)
        return "error", exc.message
    return "ok", warnings


def check(kind, text, found):
    if kind == "error":
        assert found[0] == "error", "accepted, with warnings %r" % (found[1],)
        assert text in found[1]
    else:
        assert found[0] == "ok", found[1]
        if text:
            assert any(text in warning for warning in found[1]), found[1]


def test_every_corpus_file_has_an_expectation():
    files = sorted(name for name in os.listdir(CORPUS) if name != "EXPECTED.json")
    assert files == sorted(EXPECTED)
    assert len(files) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name):
    with open(os.path.join(CORPUS, name), "rb") as handle:
        data = handle.read()
    ((kind, text),) = EXPECTED[name].items()
    check(kind, text, outcome(data, name))
    # The same bytes through the product's file reader give the same answer.
    try:
        spec.load_appspec_file(os.path.join(CORPUS, name))
    except spec.AppSpecError as exc:
        assert kind == "error" and text in exc.message


def _nested(depth, opening="[", closing="]"):
    return opening * depth + closing * depth


GENERATED = {
    "nul": (HEAD + "files:\x00\n", "error", "the character U+0000 (NUL) at line 3, column 7 is not allowed"),
    "bell": (HEAD + "os2: a\x07b\n", "error", "the character U+0007 (BEL) at line 3, column 7"),
    "escape": ("\x1b[31m" + HEAD, "error", "U+001B (ESC) at line 1, column 1"),
    "delete": (HEAD + "x: \x7f\n", "error", "U+007F (DEL)"),
    "latin-1": ((HEAD + "# caf\xe9\n").encode("latin-1"), "error", "is not UTF-8 text"),
    "encoded-surrogate": (HEAD.encode() + b"x: \xed\xa0\x80\n", "error", "is not UTF-8 text"),
    "lone-surrogate-text": (HEAD + "x: \ud800\n", "error", "is not allowed in YAML"),
    "utf-16": (HEAD.encode("utf-16"), "error", "is not UTF-8 text"),
    "bom-bytes": (b"\xef\xbb\xbf" + (HEAD + "file_exists_behavior: MERGE\n").encode(), "error",
                  "invalid file_exists_behavior value (MERGE)"),
    "bom-text": ("\ufeff" + HEAD + "file_exists_behavior: MERGE\n", "error", "invalid file_exists_behavior value (MERGE)"),
    "crlf": ("version: 0.0\r\nos: macos\r\n", "error", "unsupported operating system (macos)"),
    "nested-200-flow": (HEAD + "files: " + _nested(200) + "\n", "error", "files[0] must be a mapping"),
    "nested-200-block": (HEAD + "hooks:\n" + "".join("  " * i + "k%d:\n" % i for i in range(1, 201)), "error",
                         "hooks.k1 must be a list of scripts"),
    "nested-5000-files": (HEAD + "files: " + _nested(5000) + "\n", "error", "nested too deeply"),
    "nested-5000-hooks": (HEAD + "hooks:\n  AfterInstall: " + _nested(5000) + "\n", "error", "nested too deeply"),
    "nested-3000-mappings": (HEAD + "x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "error", "nested too deeply"),
    "billion-laughs": (HEAD + "a: &a [x, x, x, x, x, x, x, x, x]\n"
                       + "".join("%s: &%s [%s]\n" % (b, b, ", ".join(["*" + a] * 9)) for a, b in zip("abcdef", "bcdefg"))
                       + "files: *g\n", "error", "files[0] must be a mapping"),
    "recursive-alias": (HEAD + "files: &a [*a]\n", "error", "found unconstructable recursive node"),
    "1mb-comments": (HEAD + ("# " + "x" * 98 + "\n") * 10500, "ok", ""),
    "1mb-scalar": (HEAD + "os2: '" + "x" * (1024 * 1024) + "'\n", "ok", "unknown key 'os2'"),
    "1mb-bad-version": ("version: '" + "9" * (1024 * 1024) + "'\nos: linux\n", "error", "invalid version value (999"),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_input(name):
    data, kind, text = GENERATED[name]
    check(kind, text, outcome(data, name))


# ----------------------------------------------------------------------------------------------
# Malformed bundles
# ----------------------------------------------------------------------------------------------
def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)


def _tar(path, members, mode="w:gz"):
    """members: (TarInfo fields dict, data or None)."""
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as archive:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)


def _file(name, data=VALID.encode()):
    return {"name": name, "type": tarfile.REGTYPE, "mode": 0o644}, data


def build_empty_zip(path):
    _zip(path, [])


def build_empty_tgz(path):
    _tar(path, [])


def build_appspec_two_levels_down(path):
    _zip(path, [("app/build/appspec.yml", VALID)])


def build_oversized_appspec(path):
    # A few KB on disk, more than _MAX_APPSPEC_SIZE once inflated.
    _zip(path, [("appspec.yml", HEAD + "#" * bundle._MAX_APPSPEC_SIZE)])


def build_deep_directories(path):
    _zip(path, [("/".join(["d"] * 200) + "/appspec.yml", VALID)])


def build_non_utf8_appspec(path):
    _zip(path, [("appspec.yml", (HEAD + "# caf\xe9\n").encode("latin-1"))])


def build_escaping_symlink(path):
    _tar(path, [_file("appspec.yml"), ({"name": "logs", "type": tarfile.SYMTYPE, "linkname": "../../var/log"}, None)])


def build_absolute_symlink_appspec(path):
    _tar(path, [({"name": "appspec.yml", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None)])


def build_device_node(path):
    _tar(path, [_file("appspec.yml"), ({"name": "dev/sda", "type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0}, None)])


def build_fifo(path):
    _tar(path, [_file("appspec.yml"), ({"name": "pipe", "type": tarfile.FIFOTYPE}, None)])


def build_truncated_tgz(path):
    _tar(path, [_file("appspec.yml"), _file("big.bin", os.urandom(64 * 1024))])
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])


def build_truncated_zip(path):
    _zip(path, [("appspec.yml", VALID), ("big.bin", os.urandom(64 * 1024))])
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])


def build_dot_dot_member(path):
    _tar(path, [_file("appspec.yml"), _file("../evil.sh", b"#!/bin/sh\n")])


def build_absolute_member(path):
    _tar(path, [_file("appspec.yml"), _file("/etc/cron.d/evil", b"* * * * * root true\n")])


def build_not_an_archive(path):
    with open(path, "wb") as handle:
        handle.write(VALID.encode())


def build_gzip_of_garbage(path):
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x01 not a tar " * 100)


def build_non_utf8_member_name(path):
    # A zip member name that is neither UTF-8 (no flag) nor printable: read as cp437 by zipfile.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", VALID)
        archive.writestr("NAMEX\xff.txt", b"x")
    data = buffer.getvalue().replace("NAMEX\xff".encode("utf-8"), b"NA\xff\xfe\x80\x81")
    data = data.replace(b"\x00\x08\x00", b"\x00\x00\x00")  # clear the UTF-8 flag (general purpose bit 11)
    with open(path, "wb") as handle:
        handle.write(data)


BAD_BUNDLES = {
    "empty.zip": (build_empty_zip, "has no appspec.yml or appspec.yaml at its root"),
    "empty.tgz": (build_empty_tgz, "has no appspec.yml or appspec.yaml at its root"),
    "two-levels-down.zip": (build_appspec_two_levels_down, "has no appspec.yml or appspec.yaml at its root"),
    "oversized-appspec.zip": (build_oversized_appspec, "is larger than %d bytes" % bundle._MAX_APPSPEC_SIZE),
    "deep-directories.zip": (build_deep_directories, "has no appspec.yml or appspec.yaml at its root"),
    "non-utf8-appspec.zip": (build_non_utf8_appspec, "is not UTF-8 text"),
    "escaping-symlink.tgz": (build_escaping_symlink, "resolves outside the revision"),
    "absolute-symlink-appspec.tgz": (build_absolute_symlink_appspec, "is a symlink to the absolute path /etc/passwd"),
    "device-node.tgz": (build_device_node, "is a device file"),
    "fifo.tgz": (build_fifo, "is a FIFO (named pipe)"),
    "truncated.tgz": (build_truncated_tgz, "truncated"),
    "truncated.zip": (build_truncated_zip, "truncated"),
    "dot-dot.tgz": (build_dot_dot_member, "has a '..' path component"),
    "absolute-member.tgz": (build_absolute_member, "has an absolute path"),
    "not-an-archive.zip": (build_not_an_archive, ""),
    "gzip-of-garbage.tgz": (build_gzip_of_garbage, "truncated"),
}


@pytest.mark.parametrize("name", sorted(BAD_BUNDLES))
@pytest.mark.parametrize("reader", ["read_appspec", "check_revision"])
def test_malformed_bundle(tmp_path, name, reader):
    build, text = BAD_BUNDLES[name]
    path = str(tmp_path / name)
    build(path)
    with pytest.raises(bundle.BundleError) as caught:
        getattr(bundle, reader)(path)
    message = str(caught.value)
    assert_user_message(message)
    assert text in message


def test_bundle_with_a_non_utf8_member_name(tmp_path):
    """An odd member name is no reason to refuse a bundle whose AppSpec is fine; it must not crash either."""
    path = str(tmp_path / "odd-name.zip")
    build_non_utf8_member_name(path)
    try:
        text, member = bundle.read_appspec(path)
    except bundle.BundleError as exc:
        assert_user_message(str(exc))
    else:
        assert member == "appspec.yml" and text == VALID
