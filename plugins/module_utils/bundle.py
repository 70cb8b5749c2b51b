# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Revision bundles: safe unpacking and deterministic creation of zip, tar and tgz archives.

Runs on managed hosts and on the controller: standard library only, Python 3.8 compatible.

Unpacking (``unpack``) behaves like the CodeDeploy agent (``tar -xpsf`` / ``unzip -qo``: file
modes kept, symlinks kept; when the archive's root holds exactly one directory and that
directory contains the AppSpec, the directory's contents become the revision root), with one
deliberate difference (docs/agent-compatibility.md §4, §6 item 6): the whole archive is checked before
anything is written, and an archive with an entry that could write or point outside the
revision is refused with a ``BundleError`` naming that entry:

* absolute paths and any ``..`` path component;
* symlinks whose target is absolute or resolves (through the archive's own symlinks) outside
  the revision root; entries placed beneath a symlink of the archive (writing through a link);
* hardlinks whose target is not a regular file of the same archive;
* device files, FIFOs, sockets, unknown entry types, encrypted zip entries;
* the same path as a directory and as a non-directory.

Creating (``create``) is deterministic: entries sorted by path, uid/gid 0 and owner names
``root``, modes normalized to 0755/0644 (the executable bit is kept), a gzip header without
file name or mtime. Regular files keep their modification time (whole seconds), as a bundle
zipped by hand does, so that the hosts see the files' real times (the agent keeps them too);
directories and symlinks get the fixed time 1980-01-01, since their times change with every
editor swap file or excluded entry. The same content and file times give the same sha256,
whatever the owners, umask or directory times.
"""

import errno
import fnmatch
import gzip
import hashlib
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib

BUNDLE_TYPES = ("zip", "tar", "tgz")
APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")

#: The fixed timestamp ``create`` gives directories and symlinks: 1980-01-01T00:00:00Z, the
#: earliest time a zip entry's DOS date can carry (so tar and zip bundles say the same thing).
FIXED_MTIME = 315532800
FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: The latest time a zip entry's DOS date can carry.
_LAST_ZIP_DATE = (2107, 12, 31, 23, 59, 58)
#: The zip "extended timestamp" extra field (Info-ZIP "UT"), which carries a Unix mtime (UTC) that
#: unzip prefers over the DOS date (local time, 2-second steps).
_ZIP_UT = 0x5455

_CHUNK = 1024 * 1024
_MAX_SYMLINK_TARGET = 4096
_MAX_APPSPEC_SIZE = 10 * 1024 * 1024
_MAX_LINK_STEPS = 1000  # symlinks followed to check one symlink
_MAX_LINK_DEPTH = 40  # nested symlinks, like Linux's MAXSYMLINKS
_UNIX = 3  # zip "created by" system for Unix


class BundleError(Exception):
    """A bundle that cannot be read, unpacked or created.

    ``message`` says what failed, where and what to do; ``entry`` is the offending archive
    member (or source file for ``create``) when there is one, else None.
    """

    def __init__(self, message, entry=None):
        self.message = message
        self.entry = entry
        super(BundleError, self).__init__(message)

    def __str__(self):
        return self.message


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def sha256_file(path):
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def type_from_name(name):
    """The bundle type a file name suggests (``.zip``, ``.tar``, ``.tgz``/``.tar.gz``), or None."""
    lower = (name or "").lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tgz", ".tar.gz")):
        return "tgz"
    if lower.endswith(".tar"):
        return "tar"
    return None


def detect_type(path, name=None):
    """The type of a bundle file from its first bytes: ``"zip"``, ``"tar"`` or ``"tgz"``.

    ``name`` is what messages call the file (the revision as the user gave it), default ``path``.

    :raises BundleError: when the file is missing or is none of the three.
    """
    name = name or path
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except (IOError, OSError) as exc:
        raise BundleError("Cannot read the revision %s: %s." % (name, exc.strerror or exc))
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tgz"
    if head[257:262] == b"ustar":
        return "tar"
    if len(head) == 512 and _is_old_tar(path):
        return "tar"
    if zipfile.is_zipfile(path):  # a zip with a prefix (self-extracting), which unzip reads too
        return "zip"
    raise BundleError(not_an_archive_message(name, head))


def not_an_archive_message(name, head):
    """What to tell about the revision ``name`` whose file starts with the bytes ``head`` and is no archive."""
    base = os.path.basename(str(name).rstrip("/"))
    if base.lower() in APPSPEC_NAMES:
        return ("revision %s is an AppSpec file, not a revision: pass its directory %s or a zip/tar/tgz bundle"
                % (name, os.path.dirname(str(name)) or "."))
    if not head:
        what = "an empty file"
    elif head[:3] == b"BZh":
        what = "a bzip2 file"
    elif head[:6] == b"\xfd7zXZ\x00":
        what = "an xz file"
    else:
        what = "its first bytes are %s" % _show_bytes(head[:8])
    return ("revision %s is not a zip, tar or tgz archive (%s): build it with rollout.codedeploy.revision or pass "
            "the revision directory" % (name, what))


def _show_bytes(head):
    """``76 65 72 73 ("vers")``: the hex of some bytes, with their text when they are printable ASCII."""
    shown = " ".join("%02x" % byte for byte in bytearray(head))
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return shown
    if text and all(32 <= ord(char) < 127 for char in text):
        return '%s ("%s")' % (shown, text)
    return shown


def _is_old_tar(path):
    try:
        with tarfile.open(path, "r:") as archive:
            return archive.next() is not None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return False


def _check_type(bundle_type):
    if bundle_type not in BUNDLE_TYPES:
        raise BundleError("Unknown bundle type %r: use one of zip, tar, tgz." % (bundle_type,))


# --------------------------------------------------------------------------------------
# Reading archives into a checked plan
# --------------------------------------------------------------------------------------

class _Entry(object):
    """One archive member, normalized. ``path`` is a tuple of path components."""

    __slots__ = ("name", "path", "kind", "mode", "target", "mtime", "member", "implicit")

    def __init__(self, name, path, kind, mode, target=None, mtime=None, member=None, implicit=False):
        self.name = name
        self.path = path
        self.kind = kind  # dir, file, symlink, hardlink
        self.mode = mode
        self.target = target
        self.mtime = mtime
        self.member = member
        self.implicit = implicit


class _Refused(Exception):
    def __init__(self, entry, why):
        self.entry = entry
        self.why = why
        super(_Refused, self).__init__(why)


def _split_name(name, entry):
    """Path components of a member name; refuses absolute paths and ``..``."""
    if "\x00" in name:
        raise _Refused(entry, "has a NUL character in its name")
    if name.startswith("/"):
        raise _Refused(entry, "has an absolute path: every entry must be relative to the revision root")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _Refused(entry, "has a '..' path component, which could write outside the revision")
    return parts


class _Archive(object):
    """A tar/tgz or zip archive opened for listing and reading members."""

    def __init__(self, path, bundle_type=None, name=None):
        self.path = path
        detected = detect_type(path, name)
        if bundle_type is not None:
            _check_type(bundle_type)
        # The content decides, whatever the declared type says (a "tar" that is gzipped is read as tgz).
        self.bundle_type = detected
        self._tar = self._zip = None
        try:
            if detected == "zip":
                self._zip = zipfile.ZipFile(path)
            else:
                self._tar = tarfile.open(path, "r:gz" if detected == "tgz" else "r:")
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise BundleError("Cannot open the %s bundle %s: %s. The file is truncated or not a valid archive; "
                              "download or build it again." % (detected, path, exc))

    def close(self):
        if self._tar is not None:
            self._tar.close()
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def entries(self):
        """Every member as an ``_Entry`` (raises ``_Refused`` for unsafe ones)."""
        try:
            if self._zip is not None:
                return [self._zip_entry(info) for info in self._zip.infolist()]
            return [self._tar_entry(member) for member in self._tar]
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise BundleError("Cannot read the %s bundle %s: %s. The file is truncated or corrupt; "
                              "download or build it again." % (self.bundle_type, self.path, exc))

    def _tar_entry(self, member):
        name = member.name
        path = _split_name(name, name)
        mode = member.mode & 0o7777
        mtime = member.mtime
        if member.isdir():
            return _Entry(name, path, "dir", mode, mtime=mtime, member=member)
        if member.issym():
            return _Entry(name, path, "symlink", mode, target=member.linkname, member=member)
        if member.islnk():
            return _Entry(name, path, "hardlink", mode, target=member.linkname, mtime=mtime, member=member)
        if member.ischr() or member.isblk():
            raise _Refused(name, "is a device file")
        if member.isfifo():
            raise _Refused(name, "is a FIFO (named pipe)")
        if member.isreg():
            return _Entry(name, path, "file", mode, mtime=mtime, member=member)
        raise _Refused(name, "has an unsupported tar entry type (%r)" % (member.type,))

    def _zip_entry(self, info):
        # unzip reads backslashes as path separators ("appears to use backslashes as path separators").
        name = info.filename.replace("\\", "/")
        path = _split_name(name, info.filename)
        unix = info.external_attr >> 16 if info.create_system == _UNIX else 0
        ftype = stat.S_IFMT(unix)
        perms = unix & 0o7777
        mtime = _zip_extra_mtime(info.extra or b"")
        if mtime is None:
            try:
                mtime = time.mktime(info.date_time + (0, 0, -1))  # DOS dates are local time, as unzip reads them
            except (OverflowError, ValueError):
                mtime = None
        if info.flag_bits & 0x1:
            raise _Refused(info.filename, "is encrypted; unzip would ask for a password")
        if name.endswith("/") or ftype == stat.S_IFDIR or (not unix and info.external_attr & 0x10):
            return _Entry(info.filename, path, "dir", perms if perms & 0o777 else 0o755, mtime=mtime, member=info)
        if ftype == stat.S_IFLNK:
            if info.file_size > _MAX_SYMLINK_TARGET:
                raise _Refused(info.filename, "is a symlink with a %d-byte target" % info.file_size)
            target = self._zip.read(info).decode("utf-8", "surrogateescape")
            return _Entry(info.filename, path, "symlink", 0o777, target=target, member=info)
        if ftype in (stat.S_IFCHR, stat.S_IFBLK):
            raise _Refused(info.filename, "is a device file")
        if ftype == stat.S_IFIFO:
            raise _Refused(info.filename, "is a FIFO (named pipe)")
        if ftype == stat.S_IFSOCK:
            raise _Refused(info.filename, "is a socket")
        return _Entry(info.filename, path, "file", perms if perms & 0o777 else 0o644, mtime=mtime, member=info)

    def open_member(self, entry):
        if self._zip is not None:
            return self._zip.open(entry.member)
        handle = self._tar.extractfile(entry.member)
        if handle is None:  # pragma: no cover - isreg() members always have content
            raise BundleError("Cannot read entry %s of the bundle %s." % (entry.name, self.path), entry=entry.name)
        return handle


class _Plan(object):
    """The checked tree of an archive: what would be written where."""

    def __init__(self, nodes, order, stripped):
        self.nodes = nodes        # path tuple -> _Entry (final state, implicit directories included)
        self.order = order        # entries in archive order (the final one of each path)
        self.stripped = stripped  # the single top directory whose contents are the root, or None


def _plan(archive):
    nodes = {}
    for entry in archive.entries():
        _add(nodes, entry)
    stripped = _single_top_directory(nodes)
    if stripped is not None:
        nodes = dict((path[1:], entry) for path, entry in nodes.items() if len(path) > 1)
        for entry in nodes.values():
            entry.path = entry.path[1:]
    for entry in nodes.values():
        if entry.kind == "hardlink":
            entry.target = _hardlink_path(entry, stripped)
    for entry in nodes.values():
        if entry.kind == "symlink":
            _check_symlink(nodes, entry)
        elif entry.kind == "hardlink":
            entry.target = _hardlink_file(nodes, entry)
    # dicts keep insertion order, and a replaced member was re-inserted: this is archive order.
    return _Plan(nodes, list(nodes.values()), stripped)


def _add(nodes, entry):
    path = entry.path
    if not path:
        if entry.kind != "dir":
            raise _Refused(entry.name, "names the revision root itself but is not a directory")
        return  # "./": the root, which is the destination directory
    for depth in range(1, len(path)):
        prefix = path[:depth]
        existing = nodes.get(prefix)
        if existing is None:
            nodes[prefix] = _Entry("/".join(prefix) + "/", prefix, "dir", 0o755, implicit=True)
        elif existing.kind == "symlink":
            raise _Refused(entry.name, "is beneath the symlink %s of the archive; writing through a symlink is refused"
                           % existing.name)
        elif existing.kind != "dir":
            raise _Refused(entry.name, "is beneath %s, which the archive makes a file" % existing.name)
    existing = nodes.get(path)
    if existing is not None:
        if existing.kind == "dir" and entry.kind == "dir":
            existing.mode = entry.mode
            existing.mtime = entry.mtime
            existing.implicit = False
            existing.name = entry.name
            return
        if existing.kind == "dir" or entry.kind == "dir":
            raise _Refused(entry.name, "appears both as a directory and as a %s"
                           % (entry.kind if existing.kind == "dir" else existing.kind))
        del nodes[path]  # a later member replaces an earlier one, as tar and unzip -o do
    nodes[path] = entry


def _single_top_directory(nodes):
    """The top directory to strip (docs/agent-compatibility.md §4), or None."""
    tops = set(path[0] for path in nodes)
    if len(tops) != 1:
        return None
    top = tops.pop()
    node = nodes.get((top,))
    if node is None or node.kind != "dir":
        return None
    for name in APPSPEC_NAMES:
        if (top, name) in nodes and nodes[(top, name)].kind != "dir":
            return top
    return None


def _resolve(nodes, base, target, budget, depth=0):
    """Resolve a relative symlink target from directory ``base`` through the archive's symlinks.

    Returns the resolved path tuple; raises ValueError("outside") or ValueError("loop").
    """
    current = list(base)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                raise ValueError("outside")
            current.pop()
            continue
        current.append(part)
        node = nodes.get(tuple(current))
        if node is not None and node.kind == "symlink":
            budget[0] -= 1
            if budget[0] <= 0 or depth >= _MAX_LINK_DEPTH:
                raise ValueError("loop")
            if node.target.startswith("/"):
                raise ValueError("outside")
            current = list(_resolve(nodes, current[:-1], node.target, budget, depth + 1))
    return tuple(current)


def _check_symlink(nodes, entry):
    target = entry.target or ""
    if not target:
        raise _Refused(entry.name, "is a symlink with an empty target")
    if "\x00" in target:
        raise _Refused(entry.name, "is a symlink whose target has a NUL character")
    if target.startswith("/"):
        raise _Refused(entry.name, "is a symlink to the absolute path %s, outside the revision; "
                       "use a relative link to a file inside the revision" % target)
    try:
        _resolve(nodes, entry.path[:-1], target, [_MAX_LINK_STEPS])
    except ValueError as exc:
        if str(exc) == "loop":
            raise _Refused(entry.name, "is a symlink (to %s) in a loop of symlinks" % target)
        raise _Refused(entry.name, "is a symlink to %s, which resolves outside the revision; "
                       "use a relative link to a file inside the revision" % target)


def _hardlink_path(entry, stripped):
    """The archive path a hardlink names, as a path tuple of the (stripped) tree."""
    name = entry.target or ""
    if name.startswith("/") or ".." in name.split("/"):
        raise _Refused(entry.name, "is a hardlink to %s, outside the archive; a hardlink may only point to a regular "
                       "file of the same archive" % name)
    path = tuple(part for part in name.split("/") if part not in ("", "."))
    if stripped is not None:
        if not path or path[0] != stripped:
            raise _Refused(entry.name, "is a hardlink to %s, outside the revision root %s/" % (name, stripped))
        path = path[1:]
    return path


def _hardlink_file(nodes, entry):
    """The path tuple of the regular file a hardlink (or a chain of them) shares its content with."""
    path = entry.target
    seen = set([entry.path])
    while True:
        node = nodes.get(path)
        shown = "/".join(path) or "."
        if node is None:
            raise _Refused(entry.name, "is a hardlink to %s, which is not in the archive" % shown)
        if path in seen:
            raise _Refused(entry.name, "is a hardlink in a loop of hardlinks (%s)" % shown)
        seen.add(path)
        if node.kind == "file":
            return path
        if node.kind != "hardlink":
            raise _Refused(entry.name, "is a hardlink to %s, which is a %s, not a regular file" % (shown, node.kind))
        path = node.target


def _checked_plan(archive):
    try:
        return _plan(archive)
    except _Refused as refused:
        raise BundleError("Refusing to unpack the bundle %s: entry %s %s. Nothing was written. Rebuild the bundle "
                          "from the revision directory (for example with rollout.codedeploy.revision)."
                          % (archive.path, refused.entry, refused.why), entry=refused.entry)


# --------------------------------------------------------------------------------------
# Unpacking
# --------------------------------------------------------------------------------------

def unpack(bundle_path, dest_dir, bundle_type=None):
    """Unpack a bundle into ``dest_dir`` (created if missing, must be empty) and return the revision root.

    Every member is checked before anything is written (see the module docstring); an unsafe
    archive raises ``BundleError`` naming the entry and leaves ``dest_dir`` untouched. File
    modes are kept (owners are not: files belong to the unpacking user). When the archive
    root holds exactly one directory containing ``appspec.yml`` (or ``appspec.yaml``), that
    directory's contents are unpacked directly into ``dest_dir``, as the agent does, so the
    returned root is always ``dest_dir`` (absolute) and the host layout matches the agent's.

    ``bundle_type`` (zip, tar, tgz) is validated, but the content decides how the file is read.
    :raises BundleError: unsafe or unreadable archive, non-empty destination, disk full.
    """
    dest = os.path.abspath(dest_dir)
    with _Archive(bundle_path, bundle_type) as archive:
        plan = _checked_plan(archive)
        created = False
        if os.path.lexists(dest):
            if not os.path.isdir(dest):
                raise BundleError("Cannot unpack the bundle %s into %s: that path exists and is not a directory."
                                  % (bundle_path, dest))
            if os.listdir(dest):
                raise BundleError("Cannot unpack the bundle %s into %s: the directory is not empty. Unpack into a new "
                                  "or empty directory." % (bundle_path, dest))
        else:
            try:
                os.makedirs(dest)
            except OSError as exc:
                raise _os_error(exc, bundle_path, dest, None)
            created = True
        current = None
        try:
            for current in _extract(archive, plan, dest):
                pass
        except BaseException as exc:
            _discard(dest, created)
            if isinstance(exc, OSError):
                raise _os_error(exc, bundle_path, dest, current)
            if isinstance(exc, (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError)):
                raise BundleError("Cannot unpack entry %s of the bundle %s: %s. The file is truncated or corrupt; "
                                  "download or build it again. Nothing was left in %s."
                                  % (current, bundle_path, exc, dest), entry=current)
            raise
    return dest


def _extract(archive, plan, dest):
    """Write the plan; yields the name of each entry before writing it (for error messages)."""
    def target(path):
        return os.path.join(dest, *path)

    nodes = plan.nodes
    directories = sorted((e for e in nodes.values() if e.kind == "dir"), key=lambda e: len(e.path))
    for entry in directories:
        yield entry.name
        os.mkdir(target(entry.path), 0o700)
    for entry in plan.order:
        if entry.kind != "file":
            continue
        yield entry.name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(target(entry.path), flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            source = archive.open_member(entry)
            try:
                shutil.copyfileobj(source, out, _CHUNK)
            finally:
                source.close()
            out.flush()
            os.fchmod(out.fileno(), entry.mode)
        _set_mtime(target(entry.path), entry.mtime)
    for entry in plan.order:
        if entry.kind == "hardlink":
            yield entry.name
            os.link(target(entry.target), target(entry.path))
    for entry in plan.order:
        if entry.kind == "symlink":
            yield entry.name
            os.symlink(entry.target, target(entry.path))
    for entry in reversed(directories):
        yield entry.name
        path = target(entry.path)
        os.chmod(path, entry.mode)
        _set_mtime(path, entry.mtime)


def _set_mtime(path, mtime):
    """Keep the archive's timestamp, as tar and unzip do (an out-of-range one is left alone)."""
    if mtime is None:
        return
    try:
        os.utime(path, (mtime, mtime))
    except (OverflowError, ValueError):
        pass


def _discard(dest, created):
    """Remove what a failed unpack wrote (the destination was empty or new)."""
    def retry(function, path, _exc_info):
        try:
            os.chmod(os.path.dirname(path), 0o700)
            function(path)
        except OSError:
            pass
    if created:
        shutil.rmtree(dest, onerror=retry)
        return
    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        path = os.path.join(dest, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=retry)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _os_error(exc, bundle_path, dest, entry):
    where = " (entry %s)" % entry if entry else ""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return BundleError("No space left on the device of %s while unpacking the bundle %s%s. Nothing was left "
                           "there. Free disk space (old revisions under the deployment root, logs) or unpack on a "
                           "larger file system, then retry." % (dest, bundle_path, where), entry=entry)
    return BundleError("Cannot unpack the bundle %s into %s%s: %s." % (bundle_path, dest, where, exc.strerror or exc),
                       entry=entry)


# --------------------------------------------------------------------------------------
# Reading the AppSpec without unpacking
# --------------------------------------------------------------------------------------

def read_appspec(bundle_path, name=None):
    """The AppSpec of a bundle, read from the archive without writing to disk.

    Honours the single-top-directory rule (the AppSpec may be in the archive's only
    top-level directory). The archive is checked like ``unpack`` checks it. ``name`` is what
    messages call the bundle (the revision as the user gave it), default ``bundle_path``.

    :returns: ``(text, member_name)``: the file's text and its name inside the archive.
    :raises BundleError: not an archive, unsafe archive, no AppSpec, an AppSpec that is not UTF-8.
    """
    with _Archive(bundle_path, name=name) as archive:
        plan = _checked_plan(archive)
        for appspec_name in APPSPEC_NAMES:
            node = plan.nodes.get((appspec_name,))
            if node is None or node.kind == "dir":
                continue
            if node.kind == "symlink":
                resolved = _resolve(plan.nodes, (), appspec_name, [_MAX_LINK_STEPS])
                node = plan.nodes.get(resolved)
                if node is None or node.kind == "dir":
                    continue
            if node.kind == "hardlink":
                node = plan.nodes[node.target]
            if node.kind != "file":
                continue
            try:
                handle = archive.open_member(node)
                try:
                    data = handle.read(_MAX_APPSPEC_SIZE + 1)
                finally:
                    handle.close()
            except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise BundleError("Cannot read %s from the bundle %s: %s." % (node.name, bundle_path, exc), entry=node.name)
            if len(data) > _MAX_APPSPEC_SIZE:
                raise BundleError("The AppSpec file %s in the bundle %s is larger than %d bytes."
                                  % (node.name, bundle_path, _MAX_APPSPEC_SIZE), entry=node.name)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleError("The application specification file is not UTF-8 text: %s (%s in the bundle %s: save "
                                  "the file as UTF-8)" % (exc, node.name, bundle_path), entry=node.name)
            return text, node.name
    where = " (nor in its single top-level directory)"
    raise BundleError("The bundle %s has no appspec.yml or appspec.yaml at its root%s. Put appspec.yml at the root of "
                      "the revision directory and build the bundle again." % (name or bundle_path, where))


def check_revision(bundle_path, name=None):
    """Check that a file is a revision: a zip, tar or tgz archive, safe to unpack, with its AppSpec at the root.

    :returns: ``dict(bundle_type, appspec_text, appspec_member)``.
    :raises BundleError: naming ``name`` (default ``bundle_path``), what is wrong and what to do.
    """
    text, member = read_appspec(bundle_path, name=name)
    return {"bundle_type": detect_type(bundle_path, name), "appspec_text": text, "appspec_member": member}


def directory_appspec(path):
    """The AppSpec file of a revision directory (at its root, or in its only subdirectory, as in a bundle), or None."""
    for candidate in (path, _only_subdirectory(path)):
        if candidate is None:
            continue
        for name in APPSPEC_NAMES:
            found = os.path.join(candidate, name)
            if os.path.isfile(found):
                return found
    return None


def _only_subdirectory(path):
    try:
        names = os.listdir(path)
    except OSError:
        return None
    if len(names) != 1 or not os.path.isdir(os.path.join(path, names[0])):
        return None
    return os.path.join(path, names[0])


# --------------------------------------------------------------------------------------
# Creating
# --------------------------------------------------------------------------------------

class _Source(object):
    __slots__ = ("name", "kind", "mode", "target", "path", "mtime")

    def __init__(self, name, kind, mode, path, target=None, mtime=FIXED_MTIME):
        self.name = name
        self.kind = kind
        self.mode = mode
        self.path = path
        self.target = target
        self.mtime = mtime


def create(source_dir, dest_path, bundle_type="tgz", exclude=None):
    """Bundle ``source_dir`` into ``dest_path`` deterministically.

    :arg bundle_type: zip, tar or tgz.
    :arg exclude: glob patterns; an entry is left out when one matches its path relative to
        ``source_dir`` (``logs/*.log``) or its name (``.git``); an excluded directory takes its
        contents with it.
    :returns: ``dict(sha256, bundle_type, size, entries)``.
    :raises BundleError: symlinks pointing outside ``source_dir``, special files, I/O errors.

    ``dest_path`` is written atomically (a temporary file beside it, then renamed) and is
    left out of the bundle when it lies inside ``source_dir``.
    """
    _check_type(bundle_type)
    source = os.path.abspath(source_dir)
    if not os.path.isdir(source):
        raise BundleError("Cannot bundle %s: it is not a directory." % source)
    dest = os.path.abspath(dest_path)
    parent = os.path.dirname(dest)
    try:
        if not os.path.isdir(parent):
            os.makedirs(parent)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise BundleError("Cannot write the bundle %s: %s." % (dest, exc.strerror or exc))
    os.close(fd)
    try:
        skip = set([os.path.realpath(dest), os.path.realpath(tmp)])
        items = _collect(source, skip, list(exclude or ()))
        if bundle_type == "zip":
            _write_zip(tmp, items)
        else:
            _write_tar(tmp, items, bundle_type == "tgz")
        os.chmod(tmp, 0o644)
        digest = sha256_file(tmp)
        size = os.path.getsize(tmp)
        os.rename(tmp, dest)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (OSError, IOError)) and not isinstance(exc, BundleError):
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise BundleError("No space left on the device of %s while writing the bundle; free disk space "
                                  "or write the bundle elsewhere." % dest)
            raise BundleError("Cannot bundle %s into %s: %s%s." % (
                source, dest, exc.strerror or exc, (" (%s)" % exc.filename) if getattr(exc, "filename", None) else ""))
        raise
    return {"sha256": digest, "bundle_type": bundle_type, "size": size, "entries": len(items)}


def _excluded(relative, name, patterns):
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _collect(source, skip, patterns):
    """The entries of ``source``: sorted by path, each directory before its contents."""
    real_source = os.path.realpath(source)
    items = []

    def walk(directory, prefix):
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise BundleError("Cannot read the directory %s: %s." % (directory, exc.strerror or exc), entry=prefix or ".")
        for name in names:
            path = os.path.join(directory, name)
            relative = prefix + name
            if os.path.realpath(path) in skip and not os.path.islink(path):
                continue
            if _excluded(relative, name, patterns):
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                target = os.readlink(path)
                if target.startswith("/"):
                    raise BundleError("Cannot bundle %s: %s is a symlink to the absolute path %s; a bundle keeps only "
                                      "relative symlinks to files inside the revision (unpacking refuses others). Make it "
                                      "relative, replace it with the file, or exclude it." % (source, relative, target),
                                      entry=relative)
                resolved = os.path.realpath(path)
                if not (resolved == real_source or resolved.startswith(real_source.rstrip(os.sep) + os.sep)):
                    raise BundleError("Cannot bundle %s: %s is a symlink to %s, which resolves outside the revision "
                                      "(%s). Replace it with the file itself or exclude it." % (source, relative, target, resolved),
                                      entry=relative)
                items.append(_Source(relative, "symlink", 0o777, path, target))
            elif stat.S_ISDIR(info.st_mode):
                items.append(_Source(relative, "dir", 0o755, path))
                walk(path, relative + "/")
            elif stat.S_ISREG(info.st_mode):
                mode = 0o755 if info.st_mode & 0o111 else 0o644
                items.append(_Source(relative, "file", mode, path, mtime=_file_mtime(info)))
            else:
                raise BundleError("Cannot bundle %s: %s is not a regular file, directory or symlink (a FIFO, socket or "
                                  "device); remove it or exclude it." % (source, relative), entry=relative)

    walk(source, "")
    return items


def _file_mtime(info):
    """A file's modification time in whole seconds, as tar keeps it (a time before 1970 becomes 0)."""
    return max(0, int(info.st_mtime))


def _zip_date(mtime):
    """The DOS date of a zip entry for ``mtime`` (UTC, clamped to what the format can hold)."""
    moment = tuple(time.gmtime(mtime)[:6])
    return min(max(moment, FIXED_ZIP_DATE), _LAST_ZIP_DATE)


def _zip_extra(mtime):
    """The extended timestamp extra field holding ``mtime`` (modification time only)."""
    return struct.pack("<HHBl", _ZIP_UT, 5, 1, min(mtime, 0x7FFFFFFF))


def _zip_extra_mtime(extra):
    """The Unix mtime of a zip entry's extended timestamp extra field, or None."""
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[offset:offset + 4])
        body = extra[offset + 4:offset + 4 + size]
        if tag == _ZIP_UT and len(body) >= 5 and body[0] & 1:
            return struct.unpack("<l", body[1:5])[0]
        offset += 4 + size
    return None


def _write_tar(tmp, items, compress):
    with open(tmp, "wb") as raw:
        stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) if compress else raw
        try:
            archive = tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT)
            try:
                for item in items:
                    info = tarfile.TarInfo(item.name)
                    info.mtime = item.mtime
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    info.mode = item.mode
                    if item.kind == "dir":
                        info.type = tarfile.DIRTYPE
                        archive.addfile(info)
                    elif item.kind == "symlink":
                        info.type = tarfile.SYMTYPE
                        info.linkname = item.target
                        archive.addfile(info)
                    else:
                        with open(item.path, "rb") as handle:
                            info.size = os.fstat(handle.fileno()).st_size
                            archive.addfile(info, handle)
            finally:
                archive.close()
        finally:
            if compress:
                stream.close()


def _write_zip(tmp, items):
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for item in items:
            name = item.name + "/" if item.kind == "dir" else item.name
            info = zipfile.ZipInfo(name, date_time=_zip_date(item.mtime))
            info.create_system = _UNIX
            if item.kind == "file":
                info.extra = _zip_extra(item.mtime)
            if item.kind == "dir":
                info.external_attr = ((stat.S_IFDIR | item.mode) << 16) | 0x10
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, b"")
            elif item.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | item.mode) << 16
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, item.target.encode("utf-8", "surrogateescape"))
            else:
                info.external_attr = (stat.S_IFREG | item.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(item.path, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    info.file_size = size
                    with archive.open(info, "w", force_zip64=size >= 0x7FFFFFFF) as out:
                        shutil.copyfileobj(handle, out, _CHUNK)
