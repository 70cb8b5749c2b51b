# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/bundle.py: safe unpacking and deterministic creation.

Unsafe archives are built by hand with tarfile/zipfile. Every one of them starts with
harmless entries, so an implementation that wrote entries one by one before checking the
whole archive would leave files behind and fail the "nothing written" assertions.
"""
import errno
import gzip
import io
import os
import stat
import tarfile
import time
import zipfile

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as B

APPSPEC = b"version: 0.0\nos: linux\n"
GOOD = [("appspec.yml", "file", APPSPEC, 0o644), ("good.txt", "file", b"hello\n", 0o644)]


# --------------------------------------------------------------------------------------
# Archive builders
# --------------------------------------------------------------------------------------

def make_tar(path, entries, compress=False):
    """entries: (name, kind, data_or_linkname, mode); kind in file, dir, symlink, hardlink, chr, blk, fifo."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
             "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(str(path), "w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as archive:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            info.mode = mode
            info.mtime = 1700000000
            if kind in ("symlink", "hardlink"):
                info.linkname = data
                archive.addfile(info)
            elif kind == "file":
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return str(path)


def make_zip(path, entries, unix=True):
    """entries: (name, kind, data_or_target, mode); kind in file, dir, symlink, fifo, chr."""
    ftypes = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR}
    with zipfile.ZipFile(str(path), "w") as archive:
        for name, kind, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 12, 0, 0))
            if unix:
                info.create_system = 3
                info.external_attr = (ftypes[kind] | mode) << 16
            else:
                info.create_system = 0
                info.external_attr = 0x10 if kind == "dir" else 0
            if kind == "symlink":
                data = data.encode("utf-8")
            archive.writestr(info, data or b"")
    return str(path)


def make(kind, path, entries):
    if kind == "zip":
        return make_zip(path, entries)
    return make_tar(path, entries, compress=(kind == "tgz"))


def tree(root):
    """{relative path: (type, mode, content or link target)} of a directory."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("symlink", None, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", stat.S_IMODE(info.st_mode), None)
            else:
                with open(path, "rb") as handle:
                    found[rel] = ("file", stat.S_IMODE(info.st_mode), handle.read())
    return found


# --------------------------------------------------------------------------------------
# Refusals: each entry named, nothing written
# --------------------------------------------------------------------------------------

REFUSED = [
    # id, archive kinds, extra entries (after GOOD), offending entry, words in the message
    ("zip-slip", ("zip", "tar", "tgz"), [("../evil.sh", "file", b"x", 0o755)], "../evil.sh", "'..'"),
    ("dotdot-deep", ("zip", "tar", "tgz"), [("app/../../evil", "file", b"x", 0o644)], "app/../../evil", "'..'"),
    ("dotdot-inside", ("zip", "tar", "tgz"), [("app/../good2.txt", "file", b"x", 0o644)], "app/../good2.txt", "'..'"),
    ("absolute", ("zip", "tar", "tgz"), [("/tmp/evil", "file", b"x", 0o644)], "/tmp/evil", "absolute path"),
    ("symlink-absolute", ("zip", "tar", "tgz"), [("link", "symlink", "/etc/passwd", 0o777)], "link", "/etc/passwd"),
    ("symlink-absolute-to-root", ("tar",), [("root", "symlink", "/", 0o777)], "root", "absolute path"),
    ("symlink-relative", ("zip", "tar", "tgz"), [("scripts/link", "symlink", "../../etc/passwd", 0o777)],
     "scripts/link", "outside the revision"),
    ("symlink-parent", ("zip", "tar", "tgz"), [("link", "symlink", "..", 0o777)], "link", "outside the revision"),
    # a chain: "a" looks inside on its own, but "sub/up" is a link to the root, so "a" goes one level above it.
    ("symlink-chain", ("zip", "tar", "tgz"),
     [("a", "symlink", "sub/up/..", 0o777), ("sub/", "dir", None, 0o755), ("sub/up", "symlink", "..", 0o777)],
     "a", "outside the revision"),
    ("symlink-loop", ("tar", "zip"), [("a", "symlink", "b", 0o777), ("b", "symlink", "a", 0o777)], "a", "loop"),
    ("write-through-symlink", ("zip", "tar", "tgz"),
     [("sub/", "dir", None, 0o755), ("ln", "symlink", "sub", 0o777), ("ln/file", "file", b"x", 0o644)],
     "ln/file", "beneath the symlink"),
    ("symlink-replaced-dir", ("tar",), [("d/x", "file", b"x", 0o644), ("d", "symlink", ".", 0o777)], "d",
     "both as a directory"),
    ("hardlink-absolute", ("tar", "tgz"), [("h", "hardlink", "/etc/shadow", 0o644)], "h", "outside the archive"),
    ("hardlink-dotdot", ("tar", "tgz"), [("h", "hardlink", "../outside", 0o644)], "h", "outside the archive"),
    ("hardlink-missing", ("tar",), [("h", "hardlink", "nope.txt", 0o644)], "h", "not in the archive"),
    ("hardlink-to-symlink", ("tar",), [("s", "symlink", "good.txt", 0o777), ("h", "hardlink", "s", 0o644)], "h",
     "not a regular file"),
    ("char-device", ("tar", "tgz", "zip"), [("dev/null", "chr", None, 0o666)], "dev/null", "device file"),
    ("block-device", ("tar",), [("disk", "blk", None, 0o660)], "disk", "device file"),
    ("fifo", ("tar", "tgz", "zip"), [("pipe", "fifo", None, 0o644)], "pipe", "FIFO"),
    ("dir-then-file", ("tar", "zip"), [("d/", "dir", None, 0o755), ("d", "file", b"1", 0o644)], "d", "both as a directory"),
    ("beneath-a-file", ("tar", "zip"), [("f", "file", b"1", 0o644), ("f/y", "file", b"2", 0o644)], "f/y", "makes a file"),
]


def _refusal_cases():
    for case_id, kinds, extra, entry, words in REFUSED:
        for kind in kinds:
            yield pytest.param(kind, extra, entry, words, id="%s-%s" % (case_id, kind))


@pytest.mark.parametrize("kind, extra, entry, words", list(_refusal_cases()))
@pytest.mark.parametrize("dest_exists", [False, True], ids=["new-dest", "empty-dest"])
def test_unsafe_entry_is_refused_before_anything_is_written(tmp_path, kind, extra, entry, words, dest_exists):
    archive = make(kind, tmp_path / ("bundle." + kind), GOOD + extra)
    dest = tmp_path / "out" / "deployment-archive"
    if dest_exists:
        dest.mkdir(parents=True)
    before = sorted(os.listdir(str(tmp_path)))
    with pytest.raises(B.BundleError) as info:
        B.unpack(archive, str(dest))
    assert info.value.entry == entry
    assert entry in info.value.message
    assert words in info.value.message
    assert "Nothing was written" in info.value.message
    # nothing written: the destination is still absent or empty, and nothing appeared beside it
    if dest_exists:
        assert os.listdir(str(dest)) == []
    else:
        assert not dest.exists()
    assert sorted(os.listdir(str(tmp_path))) == before
    assert not (tmp_path / "evil.sh").exists() and not (tmp_path.parent / "evil.sh").exists()


@pytest.mark.parametrize("kind, extra, entry, words", list(_refusal_cases()))
def test_read_appspec_refuses_unsafe_archives_too(tmp_path, kind, extra, entry, words):
    archive = make(kind, tmp_path / ("bundle." + kind), GOOD + extra)
    with pytest.raises(B.BundleError) as info:
        B.read_appspec(archive)
    assert info.value.entry == entry


def test_zip_backslash_names_are_separators_and_checked(tmp_path):
    archive = make_zip(tmp_path / "b.zip", GOOD + [("..\\..\\evil.txt", "file", b"x", 0o644)])
    with pytest.raises(B.BundleError) as info:
        B.unpack(archive, str(tmp_path / "out"))
    assert info.value.entry == "..\\..\\evil.txt"
    assert not (tmp_path / "out").exists()


def test_encrypted_zip_entry_is_refused(tmp_path):
    path = make_zip(tmp_path / "b.zip", GOOD + [("secret.txt", "file", b"x", 0o644)])
    data = bytearray(open(path, "rb").read())
    # set the "encrypted" flag bit of the last entry in its central directory record
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(B.BundleError) as info:
        B.unpack(path, str(tmp_path / "out"))
    assert info.value.entry == "secret.txt"
    assert "encrypted" in info.value.message


def test_destination_must_be_empty(tmp_path):
    archive = make_tar(tmp_path / "b.tar", GOOD)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old").write_text("x")
    with pytest.raises(B.BundleError) as info:
        B.unpack(archive, str(dest))
    assert "not empty" in info.value.message
    assert os.listdir(str(dest)) == ["old"]


# --------------------------------------------------------------------------------------
# What is allowed
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_symlinks_that_stay_inside_are_kept(tmp_path, kind):
    entries = GOOD + [
        ("bin/", "dir", None, 0o755),
        ("bin/run.sh", "file", b"#!/bin/sh\n", 0o755),
        ("scripts/", "dir", None, 0o755),
        ("scripts/start.sh", "symlink", "../bin/run.sh", 0o777),
        ("current", "symlink", "bin", 0o777),
        ("via", "symlink", "current/run.sh", 0o777),
        ("self", "symlink", ".", 0o777),
        ("dangling", "symlink", "not-yet-there", 0o777),
    ]
    root = B.unpack(make(kind, tmp_path / ("b." + kind), entries), str(tmp_path / "out"))
    found = tree(root)
    assert found["scripts/start.sh"] == ("symlink", None, "../bin/run.sh")
    assert found["current"] == ("symlink", None, "bin")
    assert found["dangling"] == ("symlink", None, "not-yet-there")
    with open(os.path.join(root, "via"), "rb") as handle:
        assert handle.read() == b"#!/bin/sh\n"


@pytest.mark.parametrize("kind", ["tar", "tgz"])
def test_hardlink_inside_shares_the_file(tmp_path, kind):
    entries = GOOD + [("copy.txt", "hardlink", "good.txt", 0o644), ("again", "hardlink", "./copy.txt", 0o644)]
    root = B.unpack(make(kind, tmp_path / ("b." + kind), entries), str(tmp_path / "out"))
    first = os.stat(os.path.join(root, "good.txt"))
    assert os.stat(os.path.join(root, "copy.txt")).st_ino == first.st_ino
    assert os.stat(os.path.join(root, "again")).st_ino == first.st_ino


def test_later_member_replaces_earlier_like_tar(tmp_path):
    entries = GOOD + [("v", "file", b"one", 0o644), ("v", "file", b"two", 0o600)]
    root = B.unpack(make_tar(tmp_path / "b.tar", entries), str(tmp_path / "out"))
    assert tree(root)["v"] == ("file", 0o600, b"two")


def test_dot_slash_names_and_root_entry(tmp_path):
    entries = [("./", "dir", None, 0o700), ("./appspec.yml", "file", APPSPEC, 0o644), ("./a/b.txt", "file", b"b", 0o640)]
    root = B.unpack(make_tar(tmp_path / "b.tgz", entries, compress=True), str(tmp_path / "out"))
    assert tree(root) == {"appspec.yml": ("file", 0o644, APPSPEC), "a": ("dir", 0o755, None), "a/b.txt": ("file", 0o640, b"b")}


# --------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------

MODED = [
    ("appspec.yml", "file", APPSPEC, 0o644),
    ("scripts/", "dir", None, 0o750),
    ("scripts/start.sh", "file", b"#!/bin/sh\n", 0o755),
    ("scripts/private", "file", b"k", 0o600),
    ("scripts/group-x", "file", b"g", 0o710),
    ("shared/", "dir", None, 0o1777),
    ("readonly/", "dir", None, 0o555),
    ("readonly/inside", "file", b"r", 0o444),
]


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_modes_are_kept(tmp_path, kind):
    old = os.umask(0o077)
    try:
        root = B.unpack(make(kind, tmp_path / ("b." + kind), MODED), str(tmp_path / "out"))
    finally:
        os.umask(old)
    found = tree(root)
    for name, entry_kind, _data, mode in MODED:
        assert found[name.rstrip("/")][:2] == (entry_kind, mode), name


def test_zip_without_unix_modes_gets_defaults(tmp_path):
    entries = [("appspec.yml", "file", APPSPEC, 0), ("dir/", "dir", None, 0), ("dir/x", "file", b"x", 0)]
    root = B.unpack(make_zip(tmp_path / "b.zip", entries, unix=False), str(tmp_path / "out"))
    found = tree(root)
    assert found["appspec.yml"][:2] == ("file", 0o644)
    assert found["dir"][:2] == ("dir", 0o755)
    assert found["dir/x"][:2] == ("file", 0o644)


# --------------------------------------------------------------------------------------
# The single top directory rule
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
@pytest.mark.parametrize("appspec_name", ["appspec.yml", "appspec.yaml"])
def test_single_top_directory_with_appspec_becomes_the_root(tmp_path, kind, appspec_name):
    entries = [("web-1.2/", "dir", None, 0o755), ("web-1.2/" + appspec_name, "file", APPSPEC, 0o644),
               ("web-1.2/web-1.2/", "dir", None, 0o755), ("web-1.2/web-1.2/x", "file", b"x", 0o644),
               ("web-1.2/scripts/s.sh", "file", b"s", 0o755), ("web-1.2/ln", "symlink", "scripts/s.sh", 0o777)]
    dest = str(tmp_path / "out")
    root = B.unpack(make(kind, tmp_path / ("b." + kind), entries), dest)
    assert root == os.path.abspath(dest)
    assert sorted(os.listdir(root)) == sorted([appspec_name, "web-1.2", "scripts", "ln"])
    assert tree(root)["web-1.2/x"] == ("file", 0o644, b"x")
    text, member = B.read_appspec(str(tmp_path / ("b." + kind)))
    assert (text.encode(), member) == (APPSPEC, "web-1.2/" + appspec_name)


@pytest.mark.parametrize("entries, kept_top", [
    # a single directory without an AppSpec stays
    ([("app/", "dir", None, 0o755), ("app/x", "file", b"x", 0o644)], "app"),
    # an AppSpec deeper down does not count
    ([("app/deeper/appspec.yml", "file", APPSPEC, 0o644)], "app"),
    # a directory called appspec.yml does not count
    ([("app/appspec.yml/", "dir", None, 0o755)], "app"),
])
def test_single_top_directory_without_appspec_is_kept(tmp_path, entries, kept_top):
    root = B.unpack(make_tar(tmp_path / "b.tar", entries), str(tmp_path / "out"))
    assert os.listdir(root) == [kept_top]


def test_two_top_directories_are_kept(tmp_path):
    entries = [("a/appspec.yml", "file", APPSPEC, 0o644), ("b/y", "file", b"y", 0o644)]
    root = B.unpack(make_zip(tmp_path / "b.zip", entries), str(tmp_path / "out"))
    assert sorted(os.listdir(root)) == ["a", "b"]
    with pytest.raises(B.BundleError) as info:
        B.read_appspec(str(tmp_path / "b.zip"))
    assert "no appspec.yml" in info.value.message


def test_symlink_out_of_a_stripped_top_directory_is_refused(tmp_path):
    # once app/ is the root, "../app/x" points above it
    entries = [("app/appspec.yml", "file", APPSPEC, 0o644), ("app/x", "file", b"x", 0o644),
               ("app/ln", "symlink", "../app/x", 0o777)]
    with pytest.raises(B.BundleError) as info:
        B.unpack(make_tar(tmp_path / "b.tar", entries), str(tmp_path / "out"))
    assert info.value.entry == "app/ln"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------
# read_appspec
# --------------------------------------------------------------------------------------

def test_read_appspec_prefers_yml_and_falls_back_to_yaml(tmp_path):
    both = make_zip(tmp_path / "both.zip", [("appspec.yaml", "file", b"yaml", 0o644), ("appspec.yml", "file", b"yml", 0o644)])
    assert B.read_appspec(both) == ("yml", "appspec.yml")
    only = make_tar(tmp_path / "only.tgz", [("./appspec.yaml", "file", b"yaml", 0o644)], compress=True)
    assert B.read_appspec(only) == ("yaml", "./appspec.yaml")


def test_read_appspec_follows_a_symlink_inside(tmp_path):
    archive = make_tar(tmp_path / "b.tar", [("conf/real.yml", "file", APPSPEC, 0o644), ("appspec.yml", "symlink", "conf/real.yml", 0o777)])
    assert B.read_appspec(archive) == (APPSPEC.decode(), "conf/real.yml")


def test_read_appspec_missing_and_not_utf8(tmp_path):
    with pytest.raises(B.BundleError) as info:
        B.read_appspec(make_tar(tmp_path / "none.tar", [("README", "file", b"x", 0o644)]))
    assert "no appspec.yml" in info.value.message and info.value.entry is None
    with pytest.raises(B.BundleError) as info:
        B.read_appspec(make_zip(tmp_path / "latin.zip", [("appspec.yml", "file", b"os: \xe9\n", 0o644)]))
    assert info.value.entry == "appspec.yml" and "not UTF-8" in info.value.message


def test_read_appspec_writes_nothing(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "b.tgz", GOOD, compress=True)
    monkeypatch.chdir(str(tmp_path))
    before = sorted(os.listdir(str(tmp_path)))
    assert B.read_appspec(archive) == (APPSPEC.decode(), "appspec.yml")
    assert sorted(os.listdir(str(tmp_path))) == before


# --------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
@pytest.mark.parametrize("misleading_name", ["bundle.zip", "bundle.tar", "bundle.tgz", "bundle"])
def test_detect_type_uses_content_not_name(tmp_path, kind, misleading_name):
    path = make(kind, tmp_path / misleading_name, GOOD)
    assert B.detect_type(path) == kind
    # unpack reads the content whatever type is declared
    root = B.unpack(path, str(tmp_path / "out"), bundle_type="zip" if kind != "zip" else "tgz")
    assert tree(root)["good.txt"] == ("file", 0o644, b"hello\n")


@pytest.mark.parametrize("content, words", [
    (b"", "empty file"),
    (b"version: 0.0\nos: linux\n", "not a zip, tar or tgz"),
    (b"BZh91AY&SY" + b"\x00" * 100, "bzip2"),
    (b"\xfd7zXZ\x00" + b"\x00" * 100, "xz"),
])
def test_detect_type_refuses_other_files(tmp_path, content, words):
    path = tmp_path / "bundle.tgz"
    path.write_bytes(content)
    with pytest.raises(B.BundleError) as info:
        B.detect_type(str(path))
    assert words in info.value.message


def test_detect_type_old_tar_without_ustar_magic(tmp_path):
    path = make_tar(tmp_path / "v7", GOOD)
    data = bytearray(open(path, "rb").read())
    data[257:265] = b"\x00" * 8  # a v7 header has no magic; fix the checksum
    data[148:156] = b" " * 8
    data[148:156] = ("%06o\x00 " % sum(data[:512])).encode()
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    assert B.detect_type(path) == "tar"


def test_unknown_bundle_type_is_refused(tmp_path):
    with pytest.raises(B.BundleError) as info:
        B.unpack(make_tar(tmp_path / "b.tar", GOOD), str(tmp_path / "out"), bundle_type="rar")
    assert "rar" in info.value.message


# --------------------------------------------------------------------------------------
# Failures while writing
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dest_exists", [False, True])
def test_disk_full_is_a_clear_error_and_cleans_up(tmp_path, monkeypatch, dest_exists):
    archive = make_tar(tmp_path / "b.tgz", GOOD + [("big/data.bin", "file", b"0" * 4096, 0o644)], compress=True)
    dest = tmp_path / "out"
    if dest_exists:
        dest.mkdir()

    def copy(source, target, length=0):
        data = source.read()
        if data.startswith(b"0000"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        target.write(data)

    monkeypatch.setattr(B.shutil, "copyfileobj", copy)
    with pytest.raises(B.BundleError) as info:
        B.unpack(archive, str(dest))
    assert "No space left" in info.value.message
    assert info.value.entry == "big/data.bin"
    assert (os.listdir(str(dest)) == []) if dest_exists else not dest.exists()


def test_disk_full_from_the_operating_system(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "b.zip", GOOD)
    real_open = os.open

    def full(path, flags, mode=0o777, **kwargs):
        if str(path).endswith("good.txt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(B.os, "open", full)
    with pytest.raises(B.BundleError) as info:
        B.unpack(archive, str(tmp_path / "out"))
    assert "No space left" in info.value.message and info.value.entry == "good.txt"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["tgz", "zip", "tar"])
def test_truncated_archive_is_refused_and_cleaned(tmp_path, kind):
    path = make(kind, tmp_path / ("b." + kind), GOOD + [("big.bin", "file", os.urandom(300000), 0o644)])
    data = open(path, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])
    with pytest.raises(B.BundleError) as info:
        B.unpack(path, str(tmp_path / "out"))
    assert "truncated" in info.value.message or "corrupt" in info.value.message
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------
# create: deterministic, round trip, refusals
# --------------------------------------------------------------------------------------

def _revision(root, when, dir_when=None):
    """A revision directory whose files were modified at ``when`` and its directories and symlinks at ``dir_when``."""
    os.makedirs(os.path.join(root, "scripts"))
    os.makedirs(os.path.join(root, "app", "empty"))
    files = {"appspec.yml": (APPSPEC, 0o664), "scripts/start.sh": (b"#!/bin/sh\necho hi\n", 0o775),
             "scripts/lib.sh": (b"x=1\n", 0o600), "app/server.py": (b"print(1)\n", 0o744), "app/\u00e9t\u00e9.txt": (b"e", 0o640),
             "app/" + "long" * 40 + ".txt": (b"long name", 0o644)}
    for rel, (data, mode) in files.items():
        path = os.path.join(root, rel)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)
    os.symlink("scripts/start.sh", os.path.join(root, "start"))
    dir_when = when if dir_when is None else dir_when
    for directory, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(directory, name)
            stamp = when if os.path.isfile(path) and not os.path.islink(path) else dir_when
            os.utime(path, (stamp, stamp), follow_symlinks=False)
    os.utime(root, (dir_when, dir_when))
    return root


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_create_is_deterministic_across_directory_times_modes_and_umask(tmp_path, kind):
    first = _revision(str(tmp_path / "one"), 1600000000, dir_when=1600000000)
    second = _revision(str(tmp_path / "two"), 1600000000, dir_when=1700000000)
    os.chmod(os.path.join(second, "scripts/lib.sh"), 0o644)   # both normalize to 0644
    os.chmod(os.path.join(second, "appspec.yml"), 0o600)
    a = B.create(first, str(tmp_path / ("a." + kind)), kind)
    old = os.umask(0o077)
    try:
        b = B.create(second, str(tmp_path / ("b." + kind)), kind)
    finally:
        os.umask(old)
    assert a["sha256"] == b["sha256"] == B.sha256_file(str(tmp_path / ("a." + kind)))
    assert a["bundle_type"] == kind and a["size"] == os.path.getsize(str(tmp_path / ("a." + kind)))
    assert B.detect_type(str(tmp_path / ("b." + kind))) == kind
    # and a change of content, or of the executable bit, changes it
    with open(os.path.join(second, "scripts/lib.sh"), "ab") as handle:
        handle.write(b"y=2\n")
    assert B.create(second, str(tmp_path / ("c." + kind)), kind)["sha256"] != a["sha256"]
    os.chmod(os.path.join(first, "app/server.py"), 0o644)
    assert B.create(first, str(tmp_path / ("d." + kind)), kind)["sha256"] != a["sha256"]


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_create_sha256_follows_file_times(tmp_path, kind):
    first = _revision(str(tmp_path / "one"), 1600000000)
    a = B.create(first, str(tmp_path / ("a." + kind)), kind)["sha256"]
    assert B.create(first, str(tmp_path / ("b." + kind)), kind)["sha256"] == a
    os.utime(os.path.join(first, "app/server.py"), (1600000100, 1600000100))
    assert B.create(first, str(tmp_path / ("c." + kind)), kind)["sha256"] != a


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
@pytest.mark.parametrize("when", [1600000001, 1700000000, 100])
def test_create_then_unpack_keeps_file_times(tmp_path, kind, when):
    source = _revision(str(tmp_path / "rev"), when, dir_when=1650000000)
    B.create(source, str(tmp_path / ("b." + kind)), kind)
    root = B.unpack(str(tmp_path / ("b." + kind)), str(tmp_path / "out"))
    for rel in ("appspec.yml", "scripts/start.sh", "app/server.py", "app/\u00e9t\u00e9.txt"):
        assert os.stat(os.path.join(root, rel)).st_mtime == when, rel
    # directories get the fixed time: theirs change with every swap file or excluded entry
    assert os.stat(os.path.join(root, "app")).st_mtime == B.FIXED_MTIME


def test_zip_dos_date_is_read_when_there_is_no_extended_time(tmp_path):
    path = make_zip(tmp_path / "b.zip", GOOD)
    root = B.unpack(path, str(tmp_path / "out"))
    assert os.stat(os.path.join(root, "good.txt")).st_mtime == time.mktime((2023, 11, 14, 12, 0, 0, 0, 0, -1))


def test_created_tar_headers_are_normalized(tmp_path):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    B.create(source, str(tmp_path / "b.tgz"), "tgz")
    raw = open(str(tmp_path / "b.tgz"), "rb").read(10)
    assert raw[3] == 0, "gzip header has no FNAME/FEXTRA/FCOMMENT flag"
    assert raw[4:8] == b"\x00\x00\x00\x00", "gzip header mtime is 0"
    with tarfile.open(str(tmp_path / "b.tgz")) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert set((m.uid, m.gid, m.uname, m.gname) for m in members) == set([(0, 0, "root", "root")])
    assert set(m.mtime for m in members if m.isfile()) == set([1600000000])
    assert set(m.mtime for m in members if not m.isfile()) == set([B.FIXED_MTIME])
    modes = dict((m.name, m.mode) for m in members)
    assert modes["scripts/start.sh"] == 0o755 and modes["app/server.py"] == 0o755
    assert modes["scripts/lib.sh"] == 0o644 and modes["appspec.yml"] == 0o644 and modes["app/empty"] == 0o755
    assert [m for m in members if m.name == "start"][0].linkname == "scripts/start.sh"


def test_created_zip_is_readable_by_zipfile_with_unix_modes(tmp_path):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    B.create(source, str(tmp_path / "b.zip"), "zip")
    with zipfile.ZipFile(str(tmp_path / "b.zip")) as archive:
        assert archive.testzip() is None
        infos = dict((i.filename, i) for i in archive.infolist())
    assert stat.S_IMODE(infos["scripts/start.sh"].external_attr >> 16) == 0o755
    assert stat.S_ISLNK(infos["start"].external_attr >> 16)
    assert set(i.date_time for i in infos.values() if not i.is_dir() and i.filename != "start") == set([(2020, 9, 13, 12, 26, 40)])
    assert set(i.date_time for i in infos.values() if i.is_dir() or i.filename == "start") == set([B.FIXED_ZIP_DATE])
    assert "app/empty/" in infos


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_create_then_unpack_round_trip(tmp_path, kind):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    B.create(source, str(tmp_path / ("b." + kind)), kind)
    root = B.unpack(str(tmp_path / ("b." + kind)), str(tmp_path / "out"))
    found = tree(root)
    assert set(found) == set(tree(source))
    assert found["start"] == ("symlink", None, "scripts/start.sh")
    assert found["scripts/start.sh"] == ("file", 0o755, b"#!/bin/sh\necho hi\n")
    assert found["scripts/lib.sh"][:2] == ("file", 0o644)
    assert found["app/empty"][:2] == ("dir", 0o755)
    assert B.read_appspec(str(tmp_path / ("b." + kind))) == (APPSPEC.decode(), "appspec.yml")


def test_create_excludes_and_skips_its_own_output(tmp_path):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    os.makedirs(os.path.join(source, ".git", "objects"))
    with open(os.path.join(source, "app", "debug.log"), "w") as handle:
        handle.write("x")
    dest = os.path.join(source, "build.tgz")
    first = B.create(source, dest, "tgz", exclude=[".git", "app/*.log"])
    second = B.create(source, dest, "tgz", exclude=[".git", "app/*.log"])  # the first bundle is in the source now
    assert first["sha256"] == second["sha256"]
    with tarfile.open(dest) as archive:
        names = archive.getnames()
    assert "build.tgz" not in names and not [n for n in names if n.startswith(".git") or n.endswith(".log")]
    assert not [n for n in os.listdir(source) if n.endswith(".tmp")]


@pytest.mark.parametrize("make_bad, entry, words", [
    (lambda root: os.symlink("/etc/passwd", os.path.join(root, "pw")), "pw", "absolute path"),
    (lambda root: os.symlink("../../outside", os.path.join(root, "scripts", "out")), "scripts/out", "outside the revision"),
    (lambda root: os.mkfifo(os.path.join(root, "app", "pipe")), "app/pipe", "FIFO"),
])
def test_create_refuses_what_unpack_would_refuse(tmp_path, make_bad, entry, words):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    make_bad(source)
    with pytest.raises(B.BundleError) as info:
        B.create(source, str(tmp_path / "b.tgz"), "tgz")
    assert info.value.entry == entry and words in info.value.message
    assert os.listdir(str(tmp_path)) == ["rev"], "no bundle or temporary file is left"


def test_create_refuses_unknown_type_and_missing_source(tmp_path):
    with pytest.raises(B.BundleError):
        B.create(str(tmp_path), str(tmp_path / "x.rar"), "rar")
    with pytest.raises(B.BundleError) as info:
        B.create(str(tmp_path / "nope"), str(tmp_path / "x.tgz"))
    assert "not a directory" in info.value.message


def test_create_disk_full(tmp_path, monkeypatch):
    source = _revision(str(tmp_path / "rev"), 1600000000)

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(B, "_write_tar", full)
    with pytest.raises(B.BundleError) as info:
        B.create(source, str(tmp_path / "b.tgz"), "tgz")
    assert "No space left" in info.value.message
    assert os.listdir(str(tmp_path)) == ["rev"]


def test_type_from_name_and_sha256(tmp_path):
    assert [B.type_from_name(n) for n in ("a.ZIP", "a.tar", "a.tar.gz", "a.tgz", "a.gz", None)] == ["zip", "tar", "tgz", "tgz", None, None]
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert B.sha256_file(str(path)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_gzip_stream_is_a_plain_gzip(tmp_path):
    source = _revision(str(tmp_path / "rev"), 1600000000)
    B.create(source, str(tmp_path / "b.tgz"), "tgz")
    B.create(source, str(tmp_path / "b.tar"), "tar")
    with gzip.open(str(tmp_path / "b.tgz")) as handle:
        assert handle.read() == open(str(tmp_path / "b.tar"), "rb").read()


# --------------------------------------------------------------------------------------
# Is it a revision? (not an archive, an AppSpec given instead of its directory, no AppSpec)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, words", [
    ("x.zip", b"\x13\x37\xca\xfe\x00\x01\x02\x03" * 100, "revision {path} is not a zip, tar or tgz archive (its first bytes are 13 37 ca fe"),
    ("x.tgz", b"version: 0.0\nos: linux\n", 'its first bytes are 76 65 72 73 69 6f 6e 3a ("version:")'),
    ("appspec.yml", b"version: 0.0\nos: linux\n", "revision {path} is an AppSpec file, not a revision: pass its directory {dir}"),
    ("appspec.yaml", b"version: 0.0\nos: linux\n", "is an AppSpec file, not a revision"),
    ("x.tar", b"", "is not a zip, tar or tgz archive (an empty file)"),
])
def test_not_an_archive_names_the_value_and_the_fix(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    for call in (B.detect_type, B.check_revision, B.read_appspec):
        with pytest.raises(B.BundleError) as info:
            call(str(path))
        assert words.format(path=path, dir=tmp_path) in info.value.message
        assert "rollout.codedeploy.revision" in info.value.message or "zip/tar/tgz bundle" in info.value.message


def test_messages_use_the_given_name(tmp_path):
    path = tmp_path / "cached.tmp"
    path.write_bytes(b"<html>denied</html>")
    with pytest.raises(B.BundleError) as info:
        B.check_revision(str(path), name="s3://bucket/app.zip")
    assert "revision s3://bucket/app.zip is not a zip" in info.value.message and "cached.tmp" not in info.value.message


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
@pytest.mark.parametrize("entries, member", [
    (GOOD, "appspec.yml"),
    ([("appspec.yaml", "file", APPSPEC, 0o644)], "appspec.yaml"),
    ([("app/", "dir", None, 0o755), ("app/appspec.yml", "file", APPSPEC, 0o644), ("app/x", "file", b"x", 0o644)], "app/appspec.yml"),
])
def test_check_revision_finds_the_appspec(tmp_path, kind, entries, member):
    path = make(kind, tmp_path / ("b." + kind), entries)
    checked = B.check_revision(path)
    assert checked == {"bundle_type": kind, "appspec_text": APPSPEC.decode(), "appspec_member": member}


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
@pytest.mark.parametrize("entries", [
    [("good.txt", "file", b"x", 0o644)],
    [("sub/appspec.yml", "file", APPSPEC, 0o644), ("other.txt", "file", b"x", 0o644)],  # not the single top directory
    [("a/", "dir", None, 0o755), ("a/b/appspec.yml", "file", APPSPEC, 0o644)],  # two levels down
])
def test_check_revision_refuses_a_bundle_without_appspec_at_its_root(tmp_path, kind, entries):
    path = make(kind, tmp_path / ("b." + kind), entries)
    with pytest.raises(B.BundleError) as info:
        B.check_revision(path, name="my-app.%s" % kind)
    assert "my-app.%s has no appspec.yml or appspec.yaml at its root" % kind in info.value.message


def test_directory_appspec(tmp_path):
    assert B.directory_appspec(str(tmp_path)) is None
    (tmp_path / "only").mkdir()
    assert B.directory_appspec(str(tmp_path)) is None
    (tmp_path / "only" / "appspec.yaml").write_bytes(APPSPEC)
    assert B.directory_appspec(str(tmp_path)) == str(tmp_path / "only" / "appspec.yaml")
    (tmp_path / "appspec.yml").write_bytes(APPSPEC)
    assert B.directory_appspec(str(tmp_path)) == str(tmp_path / "appspec.yml")
