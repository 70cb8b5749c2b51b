# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Install lifecycle event, as the CodeDeploy agent does it (docs/agent-compatibility.md §5).

1. ``run_cleanup``: the paths the group's previous Install created (``<gid>-cleanup``) are
   removed in reverse order (files and symlinks unlinked, directories rmdir'ed, non-empty
   directories left), then the cleanup file is deleted. Other groups' files are never touched.
2. ``plan_install``: the ``files`` section becomes an ordered instruction list (the agent's
   ``<gid>-install.json`` format: copy, mkdir, then chmod/setfacl/semanage/chown), checked
   against the host's disk and the agent's collision rules, with the agent's messages.
3. ``install``: cleanup, plan, ``<gid>-install.json``, execution with every created path
   recorded into the new cleanup file as it happens, then the last-successful and
   most-recent pointers.

Matching the agent (read from its installer.rb / install_instruction.rb and their tests):

* A directory source creates its destination (and missing ancestors) and copies its contents
  into it; a file source is installed as ``destination/basename(source)``.
* Creating the same directory twice is NOT an error: the second mkdir is dropped. So two
  ``files`` entries may install into the same directory (``app/`` and ``VERSION`` both into
  ``/srv/app``). The agent's "mkdir ... more than once" message is raised only when a
  directory would be created where a file is being installed; the reverse is the "calls for
  installing the file ..." message; two sources for one target file is the "two source
  files" message.
* Directories are created with the default mode (umask); files are copied with their mode,
  owner and times; a symlinked file is recreated as a symlink with the same target text.
* Permissions apply only to paths this Install creates (RETAIN'ed files are not included).

Deliberate differences (documented in docs and the changelog):

* Problems the agent only meets while executing (a file where a directory must be created, a
  missing source, OVERWRITE onto a directory) are reported while planning, before the host
  is changed, with the agent's "already exists" sentence where it applies.
* OVERWRITE replaces a file through a temporary file and a rename: a running application
  never reads a half-written file, and a symlink at the target is replaced rather than
  written through.
* A dangling symlink at a target counts as an existing file.
* Symlinked directories in the revision are followed as the agent does (``symlinks="follow"``),
  but one that points outside the revision or loops back to its own parent is refused;
  ``symlinks="preserve"`` recreates symlinked directories inside the installed tree as
  symlinks (docs/agent-compatibility.md §6 item 20).
* Mode, ACL and SELinux context are not applied through symlinks (the agent would change the
  link's target, which may be any file on the host); owner/group of a symlink is set on the
  link itself. A mode with setuid/setgid bits is applied again after chown, which clears them.
* SELinux contexts use semanage + restorecon like the agent; with only chcon it is used
  instead; without tools, or with SELinux disabled, the context is skipped with a warning.
* Cleanup can be turned off (``cleanup=False``): the previous deployment's files stay, and
  their entries are carried into the new cleanup file so a later cleanup still removes them.

Pure Python (standard library), Python 3.8 compatible: it runs on managed hosts.
"""

import errno
import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

from ansible_collections.rollout.codedeploy.plugins.module_utils.appspec import (
    AppSpecError,
    validate_file_acl,
    validate_file_permission,
)

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
SYMLINK_MODES = ("follow", "preserve")

# --------------------------------------------------------------------------------------
# The agent's messages (verbatim, so that a search finds them)
# --------------------------------------------------------------------------------------

MSG_FILE_EXISTS = "The deployment failed because a specified file already exists at this location: {0}"
MSG_TWO_SOURCES = ("The deployment failed because the application specification file specifies two source files named {0} "
                   "and {1} for the same destination ({2}). Remove one of the source file paths from the AppSpec file, and "
                   "then try again.")
MSG_FILE_OVER_DIRECTORY = ("The deployment failed because the application specification file calls for installing the file "
                           "{0}, but a file with that name already exists at the location ({1}). Update your AppSpec file or "
                           "directory structure, and then try again.")
MSG_MKDIR_TWICE = ("The deployment failed because the application specification file includes an mkdir command more than "
                   "once for the same destination path ({0}) from ({1}). Update the files section of the AppSpec file, and "
                   "then try again.")
MSG_PERMISSION_TWICE = ("The deployment failed because the permissions setting for ({0}) is specified more than once in the "
                        "application specification file. Update the files section of the AppSpec file, and then try again.")
MSG_INVALID_BEHAVIOR = ("The deployment failed because an invalid option was specified for fileExistsBehavior: {0}. Valid "
                        "options include OVERWRITE, RETAIN, and DISALLOW.")
MSG_ACL_FAILED = ("The deployment failed because of a problem with the acls permission settings in the application "
                  "specification file for this object: {0}. Failed command: {1}. Exit code: {2}")
MSG_CONTEXT_FAILED = ("The deployment failed because the application specification file contains an error in the settings "
                      "for the context parameter. Update the permissions section of the AppSpec file, and then try again. "
                      "Failed command: {0}. Exit code: {1}")
MSG_NO_USER = "can't find user for {0}"
MSG_NO_GROUP = "can't find group for {0}"

# Messages of this collection (the agent crashes with a Ruby error or does not check).
MSG_NO_SOURCE = "No such file or directory - {0}"
MSG_SOURCE_OUTSIDE = "The source {0} of files[{1}] resolves to {2}, outside the revision {3}"
MSG_LINK_OUTSIDE = "{0} is a symbolic link to the directory {1}, outside the revision {2}"
MSG_LINK_LOOP = "{0} is a symbolic link to {1}, one of its own parent directories"
MSG_SPECIAL_FILE = "{0} cannot be installed: it is not a regular file, a directory or a symbolic link"
MSG_NEWLINE = "{0} cannot be installed: its name contains a line break, which the cleanup file cannot record"
MSG_NO_ARCHIVE = "The revision is not unpacked at {0}"
MSG_CLEANUP_FAILED = "Cleanup of the previous deployment of this deployment group failed: cannot remove {0}: {1}"
MSG_EXECUTE_FAILED = "Install failed at {0}: {1}"

HINT_EXISTS = ("the previous deployment of this deployment group did not install it (its files are removed first), so it "
               "belongs to something else: remove it from the host, or deploy with file_exists_behavior OVERWRITE or RETAIN "
               "(in the AppSpec file or the deployment)")
HINT_EXISTS_NOT_DIRECTORY = "the revision installs a directory there but the host has a file: remove the file or change the destination"
HINT_OVERWRITE_DIRECTORY = ("the revision installs a file there but the host has a directory, which OVERWRITE does not replace: "
                            "remove the directory or change the destination")
HINT_TWO_SOURCES = "two entries of the files section install a file at the same place"
HINT_MKDIR_TWICE = "one entry of the files section installs a file where another needs a directory"
HINT_PERMISSION_TWICE = "two entries of the permissions section match this path: make their objects or patterns disjoint"


class InstallError(Exception):
    """The Install event failed.

    ``message`` starts with the agent's sentence (``agent_message``) where the agent has one,
    then says, in parentheses, where and how to fix it (``hint``). ``path`` is the file or
    directory concerned, when there is one.
    """

    def __init__(self, message, path=None, hint=None):
        self.agent_message = message
        self.path = path
        self.hint = hint
        self.message = "%s (%s)" % (message, hint) if hint else message
        super(InstallError, self).__init__(self.message)

    def __str__(self):
        return self.message


# --------------------------------------------------------------------------------------
# Paths and patterns
# --------------------------------------------------------------------------------------

def expand_path(path, cwd="/"):
    """Ruby's File.expand_path: absolute, normalized, no trailing slash; relative to ``cwd``."""
    path = str(path)
    if path.startswith("~"):
        path = os.path.expanduser(path)
    path = os.path.normpath(os.path.join(cwd, path))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def _inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def simple_glob(name, pattern):
    """The agent's glob for permissions: ``*`` matches any run of characters, nothing else is special.

    A name with a ``/`` never matches (patterns other than ``**`` apply one level down).
    """
    if "/" in name:
        return False
    regex = "".join(".*" if char == "*" else re.escape(char) for char in pattern)
    return re.match("(?:%s)\\Z" % regex, name, re.DOTALL) is not None


def _relative_below(name, obj, cwd="/"):
    """``name`` relative to the permission object when strictly below it, else None."""
    name = name.rstrip("/") or "/"
    base = expand_path(obj, cwd)
    if not base.endswith("/"):
        base += "/"
    if name.startswith(base):
        return name[len(base):]
    return None


def matches_pattern(permission, name, cwd="/"):
    rel = _relative_below(name, permission["object"], cwd)
    if rel is None:
        return False
    pattern = permission.get("pattern") or "**"
    return pattern == "**" or simple_glob(rel, pattern)


def matches_except(permission, name, cwd="/"):
    rel = _relative_below(name, permission["object"], cwd)
    if rel is None:
        return False
    return any(simple_glob(rel, item) for item in permission.get("except") or ())


# --------------------------------------------------------------------------------------
# The instruction builder (the agent's CommandBuilder)
# --------------------------------------------------------------------------------------

class CommandBuilder(object):
    """Collects instructions and enforces the agent's collision rules.

    ``cwd`` is what relative paths are resolved against ("/" on a host, like the agent's
    daemon; the agent's own tests use /tmp).
    """

    def __init__(self, cwd="/"):
        self.cwd = cwd
        self.instructions = []
        self.copy_targets = {}
        self.mkdir_targets = {}
        self.permission_targets = set()

    def _path(self, path):
        path = expand_path(path, self.cwd)
        if "\n" in path:
            raise InstallError(MSG_NEWLINE.format(json.dumps(path)), path=path, hint="rename it in the revision")
        return path

    def copy(self, source, destination, overwrite=False):
        destination = self._path(destination)
        if destination in self.copy_targets:
            raise InstallError(MSG_TWO_SOURCES.format(source, self.copy_targets[destination], destination), path=destination,
                               hint=HINT_TWO_SOURCES)
        if destination in self.mkdir_targets:
            raise InstallError(MSG_FILE_OVER_DIRECTORY.format(source, destination), path=destination, hint=HINT_MKDIR_TWICE)
        instruction = {"type": "copy", "source": source, "destination": destination}
        if overwrite:
            instruction["overwrite"] = True
        self.instructions.append(instruction)
        self.copy_targets[destination] = source

    def mkdir(self, destination):
        destination = self._path(destination)
        if destination in self.copy_targets:
            raise InstallError(MSG_MKDIR_TWICE.format(destination, self.copy_targets[destination]), path=destination,
                               hint=HINT_MKDIR_TWICE)
        if destination not in self.mkdir_targets:
            self.instructions.append({"type": "mkdir", "directory": destination})
            self.mkdir_targets[destination] = True

    def set_permissions(self, obj, permission):
        obj = self._path(obj)
        if obj in self.permission_targets:
            raise InstallError(MSG_PERMISSION_TWICE.format(obj), path=obj, hint=HINT_PERMISSION_TWICE)
        self.permission_targets.add(obj)
        if permission.get("mode") is not None:
            self.instructions.append({"type": "chmod", "mode": permission["mode"], "file": obj})
        if permission.get("acls") is not None:
            self.instructions.append({"type": "setfacl", "acl": [ace["ace"] for ace in permission["acls"]], "file": obj})
        context = permission.get("context")
        if context is not None:
            self.instructions.append({"type": "semanage", "file": obj,
                                      "context": {"user": context.get("name"), "role": None, "type": context.get("type"),
                                                  "range": context.get("range")}})
        if permission.get("owner") is not None or permission.get("group") is not None:
            self.instructions.append({"type": "chown", "owner": permission.get("owner"), "group": permission.get("group"),
                                      "file": obj})

    def copying_file(self, path):
        return expand_path(path, self.cwd) in self.copy_targets

    def making_directory(self, path):
        return expand_path(path, self.cwd) in self.mkdir_targets

    def find_matches(self, permission):
        """Installed paths a directory permission applies to: files first, then directories."""
        types = permission.get("type") or ("file", "directory")
        matches = []
        if "file" in types:
            for path in self.copy_targets:
                if matches_pattern(permission, path, self.cwd) and not matches_except(permission, path, self.cwd):
                    _validate(validate_file_acl, permission)
                    matches.append(path)
        if "directory" in types:
            for path in self.mkdir_targets:
                if matches_pattern(permission, path, self.cwd) and not matches_except(permission, path, self.cwd):
                    matches.append(path)
        return matches


def _validate(check, permission):
    try:
        check(permission)
    except AppSpecError as exc:
        raise InstallError(exc.agent_message, path=permission.get("object"), hint=exc.hint)


# --------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------

class InstallPlan(list):
    """The ordered instructions (a list of dicts in the agent's install.json format).

    ``behavior`` is the file_exists_behavior used; ``retained`` lists the existing files RETAIN
    kept; ``warnings`` are notes for the user.
    """

    def __init__(self, instructions=(), behavior="DISALLOW", retained=(), warnings=()):
        super(InstallPlan, self).__init__(instructions)
        self.behavior = behavior
        self.retained = list(retained)
        self.warnings = list(warnings)


def effective_behavior(appspec, file_exists_behavior=None):
    """The appspec's file_exists_behavior wins over the deployment's; DISALLOW by default."""
    behavior = (appspec or {}).get("file_exists_behavior") or file_exists_behavior or "DISALLOW"
    if behavior not in FILE_EXISTS_BEHAVIORS:
        raise InstallError(MSG_INVALID_BEHAVIOR.format(behavior), hint="file_exists_behavior is case-sensitive")
    return behavior


class _Planner(object):
    def __init__(self, archive_root, behavior, symlinks, cwd):
        self.archive_root = os.path.abspath(archive_root)
        self.real_archive = os.path.realpath(self.archive_root)
        self.behavior = behavior
        self.symlinks = symlinks
        self.builder = CommandBuilder(cwd)
        self.retained = []
        self.index = 0

    def add_files_entry(self, index, entry):
        self.index = index
        source = "" if entry.get("source") is None else str(entry.get("source"))
        destination = expand_path(entry.get("destination"), self.builder.cwd)
        path = os.path.normpath(os.path.join(self.archive_root, source.lstrip("/")))
        if not _inside(path, self.archive_root):
            raise InstallError(MSG_SOURCE_OUTSIDE.format(json.dumps(source), index, path, self.archive_root), path=path,
                               hint="use a path inside the revision without '..'")
        if os.path.isdir(path):
            real = os.path.realpath(path)
            if not _inside(real, self.real_archive):
                raise InstallError(MSG_LINK_OUTSIDE.format(path, real, self.archive_root), path=path,
                                   hint="files[%d]: ship the files in the revision" % index)
            self._fill_missing_ancestors(destination)
            self._directory_copy(path, destination, [real])
            return
        if not os.path.lexists(path):
            raise InstallError(MSG_NO_SOURCE.format(path), path=path,
                               hint="files[%d].source %s is not in the revision unpacked at %s: fix the source or add it to "
                                    "the bundle" % (index, json.dumps(source), self.archive_root))
        if not _inside(os.path.realpath(os.path.dirname(path)), self.real_archive):
            raise InstallError(MSG_SOURCE_OUTSIDE.format(json.dumps(source), index, os.path.realpath(path), self.archive_root),
                               path=path, hint="a directory on the way is a symbolic link out of the revision")
        target = os.path.join(destination, os.path.basename(path))
        self._fill_missing_ancestors(target)
        self._normal_copy(path, target)

    def _fill_missing_ancestors(self, destination):
        missing = []
        parent = os.path.dirname(destination)
        while parent not in ("/", "") and not os.path.lexists(parent):
            missing.insert(0, parent)
            parent = os.path.dirname(parent)
        if parent not in ("/", "") and not os.path.isdir(parent):
            raise InstallError(MSG_FILE_EXISTS.format(parent), path=parent,
                               hint="files[%d]: %s" % (self.index, HINT_EXISTS_NOT_DIRECTORY))
        for directory in missing:
            self.builder.mkdir(directory)

    def _directory_copy(self, source, destination, stack):
        if not os.path.isdir(destination):
            if os.path.lexists(destination):
                raise InstallError(MSG_FILE_EXISTS.format(destination), path=destination,
                                   hint="files[%d]: %s" % (self.index, HINT_EXISTS_NOT_DIRECTORY))
            self.builder.mkdir(destination)
        try:
            names = sorted(os.listdir(source))
        except OSError as exc:
            raise InstallError(MSG_EXECUTE_FAILED.format(source, exc.strerror or exc), path=source)
        for name in names:
            entry = os.path.join(source, name)
            target = os.path.join(destination, name)
            if os.path.isdir(entry):
                if os.path.islink(entry):
                    if self.symlinks == "preserve":
                        self._normal_copy(entry, target)
                        continue
                    real = os.path.realpath(entry)
                    if not _inside(real, self.real_archive):
                        raise InstallError(MSG_LINK_OUTSIDE.format(entry, real, self.archive_root), path=entry,
                                           hint="the agent would copy that directory from this host; ship its files in the "
                                                "revision, or deploy with symlinks=preserve to install the link itself")
                    if real in stack:
                        raise InstallError(MSG_LINK_LOOP.format(entry, real), path=entry,
                                           hint="following it never ends: remove the link or deploy with symlinks=preserve")
                else:
                    real = os.path.realpath(entry)
                self._directory_copy(entry, target, stack + [real])
            else:
                self._normal_copy(entry, target)

    def _normal_copy(self, source, destination):
        if not os.path.islink(source) and not os.path.isfile(source):
            raise InstallError(MSG_SPECIAL_FILE.format(source), path=source, hint="remove it from the revision")
        if os.path.lexists(destination):
            if self.behavior == "DISALLOW":
                raise InstallError(MSG_FILE_EXISTS.format(destination), path=destination, hint=HINT_EXISTS)
            if self.behavior == "OVERWRITE":
                if os.path.isdir(destination) and not os.path.islink(destination):
                    raise InstallError(MSG_FILE_EXISTS.format(destination), path=destination, hint=HINT_OVERWRITE_DIRECTORY)
                self.builder.copy(source, destination, overwrite=True)
            else:
                self.retained.append(expand_path(destination, self.builder.cwd))
            return
        self.builder.copy(source, destination)

    def add_permission(self, permission):
        builder = self.builder
        obj = expand_path(permission["object"], builder.cwd)
        types = permission.get("type") or ("file", "directory")
        if builder.copying_file(obj):
            if "file" in types:
                _validate(validate_file_permission, permission)
                _validate(validate_file_acl, permission)
                builder.set_permissions(obj, permission)
        elif builder.making_directory(obj) or os.path.isdir(obj):
            for match in builder.find_matches(permission):
                builder.set_permissions(match, permission)


def plan_install(appspec, archive_root, file_exists_behavior="DISALLOW", symlinks="follow", cwd="/"):
    """The Install instructions for a normalized appspec and an unpacked revision.

    Reads the host's disk (existing destinations), so call it after ``run_cleanup``.
    Returns an ``InstallPlan`` (a list of instruction dicts); raises ``InstallError``.
    """
    behavior = effective_behavior(appspec, file_exists_behavior)
    if symlinks not in SYMLINK_MODES:
        raise ValueError("symlinks must be one of %s, not %r" % (", ".join(SYMLINK_MODES), symlinks))
    if not os.path.isdir(archive_root):
        raise InstallError(MSG_NO_ARCHIVE.format(archive_root), path=archive_root, hint="run DownloadBundle first")
    planner = _Planner(archive_root, behavior, symlinks, cwd)
    for index, entry in enumerate(appspec.get("files") or ()):
        planner.add_files_entry(index, entry)
    for permission in appspec.get("permissions") or ():
        planner.add_permission(permission)
    return InstallPlan(planner.builder.instructions, behavior, planner.retained)


# --------------------------------------------------------------------------------------
# The cleanup file
# --------------------------------------------------------------------------------------

SEMANAGE_PREFIX = b"semanage\0"


def parse_cleanup(contents):
    """Commands of a cleanup file, in the order they run (last created first), as the agent parses it.

    Returns ``[("remove", path) | ("semanage", path)]``. A last line without its newline was
    cut off while being written and is dropped; lines are stripped; empty lines are skipped.
    """
    if isinstance(contents, str):
        contents = contents.encode("utf-8", "surrogateescape")
    if not contents:
        return []
    lines = contents.splitlines(True)
    if not lines[-1].endswith(b"\n"):
        lines.pop()
    commands = []
    for line in lines:
        if line.startswith(SEMANAGE_PREFIX):
            path = line.split(b"\0", 1)[1].strip()
            if path:
                commands.append(("semanage", os.fsdecode(path)))
            continue
        path = line.strip()
        if path:
            commands.append(("remove", os.fsdecode(path)))
    commands.reverse()
    return commands


def _complete_lines(contents):
    lines = contents.splitlines(True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()
    return [line for line in lines if line.strip()]


def _remove(path, report):
    try:
        if os.path.islink(path):
            os.unlink(path)
        elif os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                    raise
                report["kept"].append(path)
                return
        elif os.path.exists(path):
            os.unlink(path)
        else:
            report["missing"] += 1
            return
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            report["missing"] += 1
            return
        raise
    report["removed"] += 1


def run_cleanup(layout, group_id):
    """Remove what the group's previous Install created, then its cleanup file.

    Returns ``{"cleanup_file", "removed", "missing", "kept" (non-empty directories left), "contexts"}``.
    """
    path = layout.cleanup_file(group_id)
    report = {"cleanup_file": path, "removed": 0, "missing": 0, "kept": [], "contexts": 0}
    try:
        with open(path, "rb") as handle:
            contents = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            report["cleanup_file"] = None
            return report
        raise InstallError(MSG_CLEANUP_FAILED.format(path, exc.strerror or exc), path=path)
    for kind, target in parse_cleanup(contents):
        if kind == "semanage":
            if _which("semanage"):
                _run(["semanage", "fcontext", "-d", target])
                report["contexts"] += 1
            continue
        if not target.startswith("/"):
            continue
        try:
            _remove(target, report)
        except OSError as exc:
            raise InstallError(MSG_CLEANUP_FAILED.format(target, exc.strerror or exc), path=target,
                               hint="listed in %s: fix its permissions or remove it by hand, then deploy again" % path)
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise InstallError(MSG_CLEANUP_FAILED.format(path, exc.strerror or exc), path=path)
    return report


class _CleanupRecorder(object):
    """The new cleanup file, written line by line as paths are created (so a failed Install is cleaned next time)."""

    def __init__(self, path, carried=()):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory)
        self.handle = open(path, "wb")
        for line in carried:
            self.handle.write(line)
        self.handle.flush()

    def record(self, path, prefix=b""):
        self.handle.write(prefix + os.fsencode(path) + b"\n")
        self.handle.flush()

    def close(self):
        if self.handle.closed:
            return
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        finally:
            self.handle.close()


# --------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------

def _which(name):
    return shutil.which(name)


def _run(args):
    """Run a command without a shell; returns (exit status, output)."""
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _selinux_enabled():
    return os.path.isfile("/sys/fs/selinux/enforce") or os.path.isfile("/selinux/enforce")


def _temp_name(path):
    directory, name = os.path.split(path)
    return os.path.join(directory, ".%s.codedeploy-%d-%s" % (name, os.getpid(), os.urandom(4).hex()))


def _preserve(path, status):
    """FileUtils.copy(:preserve => true): times, then owner (when allowed), then mode."""
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    mode = stat.S_IMODE(status.st_mode)
    try:
        os.chown(path, status.st_uid, status.st_gid)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    os.chmod(path, mode)


def _copy_content(source, handle):
    with open(source, "rb") as src, os.fdopen(handle, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)


def _copy(source, destination, overwrite):
    if os.path.islink(source):
        target = os.readlink(source)
        if not overwrite:
            os.symlink(target, destination)
            return
        while True:
            tmp = _temp_name(destination)
            try:
                os.symlink(target, tmp)
                break
            except FileExistsError:
                continue
        try:
            os.replace(tmp, destination)
        except OSError:
            os.unlink(tmp)
            raise
        return
    status = os.stat(source)
    if not overwrite:
        handle = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        _copy_content(source, handle)
        _preserve(destination, status)
        return
    directory, name = os.path.split(destination)
    handle, tmp = tempfile.mkstemp(prefix=".%s.codedeploy-" % name, dir=directory)
    try:
        _copy_content(source, handle)
        _preserve(tmp, status)
        os.replace(tmp, destination)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_PERM_TEXT = {"0": "---", "1": "--x", "2": "-w-", "3": "-wx", "4": "r--", "5": "r-x", "6": "rw-", "7": "rwx"}


def _parse_canonical_ace(text):
    parts = text.split(":")
    default = parts[0] == "default"
    if default:
        parts = parts[1:]
    return {"default": default, "type": parts[0], "name": parts[1], "perms": parts[2]}


def _format_ace(ace):
    return "%s%s:%s:%s" % ("default:" if ace["default"] else "", ace["type"], ace["name"], ace["perms"])


def full_acl(aces, st_mode):
    """The ACL the agent passes to ``setfacl --set``: the entries declared, then the base entries
    from the file's mode (user::, group::, other::, mask:: when named entries need one) and,
    when there are default entries, the default base entries and default mask."""
    perm = ("%o" % st_mode)[-3:].rjust(3, "0")
    declared = [_parse_canonical_ace(text) for text in aces]
    additional = []

    def every():
        return declared + additional

    def add(default, ace_type, perms):
        additional.append({"default": default, "type": ace_type, "name": "", "perms": perms})

    add(False, "user", _PERM_TEXT[perm[0]])
    add(False, "group", _PERM_TEXT[perm[1]])
    add(False, "other", _PERM_TEXT[perm[2]])
    if any(not a["default"] and a["name"] for a in every()) and not any(not a["default"] and a["type"] == "mask" for a in every()):
        add(False, "mask", _PERM_TEXT[perm[1]])
    if any(a["default"] for a in every()):
        if not any(a["default"] and a["type"] == "user" and not a["name"] for a in every()):
            add(True, "user", _PERM_TEXT[perm[0]])
        if not any(a["default"] and a["type"] == "group" and not a["name"] for a in every()):
            add(True, "group", _PERM_TEXT[perm[1]])
        if not any(a["default"] and a["type"] == "other" for a in every()):
            add(True, "other", _PERM_TEXT[perm[2]])
        if any(a["default"] and a["name"] for a in every()) and not any(a["default"] and a["type"] == "mask" for a in every()):
            group = [a for a in every() if a["default"] and a["type"] == "group" and not a["name"]][0]
            add(True, "mask", group["perms"])
    return [_format_ace(a) for a in every()]


def _lookup_user(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise


def _lookup_group(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise


def resolve_owners(plan):
    """Look up every owner and group of the plan before the host is changed: ``{(owner, group): (uid, gid)}``."""
    ids = {}
    for instruction in plan:
        if instruction["type"] != "chown":
            continue
        owner, group = instruction.get("owner"), instruction.get("group")
        if (owner, group) in ids:
            continue
        where = ("permissions section of the AppSpec file, applied to %s: create it on this host before Install (e.g. in a "
                 "BeforeInstall script) or correct '%%s'" % instruction["file"])
        uid = gid = -1
        if owner is not None:
            try:
                uid = _lookup_user(owner)
            except KeyError:
                raise InstallError(MSG_NO_USER.format(owner), path=instruction["file"], hint=where % "owner")
        if group is not None:
            try:
                gid = _lookup_group(group)
            except KeyError:
                raise InstallError(MSG_NO_GROUP.format(group), path=instruction["file"], hint=where % "group")
        ids[(owner, group)] = (uid, gid)
    return ids


class _Executor(object):
    def __init__(self, recorder, owners):
        self.recorder = recorder
        self.owners = owners
        self.modes = {}
        self.counts = {"created_files": 0, "created_directories": 0, "overwritten": 0}
        self.permission_paths = set()
        self.links_skipped = set()
        self.contexts_skipped = []
        self.warnings = []

    def run(self, plan):
        for instruction in plan:
            kind = instruction["type"]
            path = instruction.get("destination") or instruction.get("directory") or instruction.get("file")
            try:
                getattr(self, "_" + kind)(instruction)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    raise InstallError(MSG_FILE_EXISTS.format(path), path=path, hint="it appeared while Install was running")
                raise InstallError(MSG_EXECUTE_FAILED.format(path, exc.strerror or exc), path=path,
                                   hint="%s instruction: %s" % (kind, json.dumps(instruction, sort_keys=True)))
        if self.links_skipped:
            self.warnings.append("mode, ACL and SELinux context were not applied to %d symbolic link(s) (e.g. %s): they would "
                                 "change the link's target; set them on the target itself"
                                 % (len(self.links_skipped), sorted(self.links_skipped)[0]))
        if self.contexts_skipped:
            self.warnings.append("SELinux context skipped for %d path(s) (e.g. %s): %s"
                                 % (len(self.contexts_skipped), self.contexts_skipped[0][0], self.contexts_skipped[0][1]))

    def _copy(self, instruction):
        destination = instruction["destination"]
        overwrite = bool(instruction.get("overwrite"))
        self.recorder.record(destination)
        _copy(instruction["source"], destination, overwrite)
        self.counts["overwritten" if overwrite else "created_files"] += 1

    def _mkdir(self, instruction):
        directory = instruction["directory"]
        try:
            os.mkdir(directory)
        except FileExistsError:
            if os.path.isdir(directory):
                return
            raise
        self.recorder.record(directory)
        self.counts["created_directories"] += 1

    def _skip_link(self, path):
        if os.path.islink(path):
            self.links_skipped.add(path)
            return True
        return False

    def _chmod(self, instruction):
        path = instruction["file"]
        self.permission_paths.add(path)
        if self._skip_link(path):
            return
        mode = int(instruction["mode"], 8)
        os.chmod(path, mode)
        self.modes[path] = mode

    def _setfacl(self, instruction):
        path = instruction["file"]
        self.permission_paths.add(path)
        if self._skip_link(path):
            return
        acl = ",".join(full_acl(instruction["acl"], os.stat(path).st_mode))
        command = "setfacl --set %s %s" % (acl, path)
        if not _which("setfacl"):
            raise InstallError(MSG_ACL_FAILED.format(path, command, 127), path=path,
                               hint="setfacl is not installed on this host: install the acl package")
        status, output = _run(["setfacl", "--set", acl, path])
        if status != 0:
            raise InstallError(MSG_ACL_FAILED.format(path, command, status), path=path,
                               hint=(output.strip() or "setfacl failed") + "; the file system must support ACLs")

    def _semanage(self, instruction):
        path = instruction["file"]
        self.permission_paths.add(path)
        if self._skip_link(path):
            return
        context = instruction["context"]
        real = os.path.realpath(path)
        semanage = _which("semanage") and _which("restorecon")
        if not semanage and not _which("chcon"):
            self.contexts_skipped.append((path, "no SELinux tools (semanage and restorecon, or chcon) on this host"))
            return
        if not _selinux_enabled():
            self.contexts_skipped.append((path, "SELinux is not enabled on this host"))
            return
        if semanage:
            args = ["semanage", "fcontext", "-a"]
            if context.get("user"):
                args += ["-s", context["user"]]
            args += ["-t", context["type"]]
            if context.get("range"):
                args += ["-r", context["range"]]
            status, output = _run(args + [real])
            if status != 0:
                # Already defined (a rule left behind): modify it instead.
                status, output = _run(["semanage", "fcontext", "-m"] + args[3:] + [real])
            if status != 0:
                raise InstallError(MSG_CONTEXT_FAILED.format(" ".join(args + [real]), status), path=path,
                                   hint=output.strip() or None)
            status, output = _run(["restorecon", "-v", real])
            if status != 0:
                raise InstallError(MSG_CONTEXT_FAILED.format("restorecon -v %s" % real, status), path=path,
                                   hint=output.strip() or None)
            self.recorder.record(real, prefix=SEMANAGE_PREFIX)
            return
        args = ["chcon"]
        if context.get("user"):
            args += ["-u", context["user"]]
        args += ["-t", context["type"]]
        if context.get("range"):
            args += ["-l", context["range"]]
        status, output = _run(args + [real])
        if status != 0:
            raise InstallError(MSG_CONTEXT_FAILED.format(" ".join(args + [real]), status), path=path,
                               hint=output.strip() or None)

    def _chown(self, instruction):
        path = instruction["file"]
        self.permission_paths.add(path)
        uid, gid = self.owners[(instruction.get("owner"), instruction.get("group"))]
        if os.path.islink(path):
            os.lchown(path, uid, gid)
            return
        os.chown(path, uid, gid)
        mode = self.modes.get(path)
        if mode is not None and mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(path, mode)


# --------------------------------------------------------------------------------------
# The Install event
# --------------------------------------------------------------------------------------

def install(layout, group_id, deployment_id, appspec, archive_root, file_exists_behavior="DISALLOW",
            cleanup=True, symlinks="follow"):
    """Run the Install event of one deployment on this host.

    ``file_exists_behavior`` is the deployment's (the appspec's value wins). ``cleanup=False``
    leaves the previous deployment's files in place (their cleanup entries are carried over,
    so a later Install with cleanup removes them); with it, files that the new revision also
    installs need OVERWRITE or RETAIN. ``symlinks``: "follow" (the agent) or "preserve".

    Returns ``{"cleanup", "file_exists_behavior", "instructions", "created_files",
    "created_directories", "overwritten", "retained", "permissions_applied", "warnings",
    "install_json", "cleanup_file", "deployment_dir"}``; raises ``InstallError``.
    """
    deployment_dir = layout.deployment_dir(group_id, deployment_id)
    cleanup_path = layout.cleanup_file(group_id)
    if not os.path.isdir(layout.instructions_dir):
        os.makedirs(layout.instructions_dir)
    carried = []
    if cleanup:
        cleanup_report = run_cleanup(layout, group_id)
    else:
        try:
            with open(cleanup_path, "rb") as handle:
                carried = _complete_lines(handle.read())
        except (IOError, OSError) as exc:
            if exc.errno != errno.ENOENT:
                raise InstallError(MSG_EXECUTE_FAILED.format(cleanup_path, exc.strerror or exc), path=cleanup_path)
        cleanup_report = {"skipped": True, "carried": len(carried), "cleanup_file": cleanup_path}

    plan = plan_install(appspec, archive_root, file_exists_behavior, symlinks=symlinks)
    owners = resolve_owners(plan)
    layout.write_install_json(group_id, plan)

    recorder = _CleanupRecorder(cleanup_path, carried)
    executor = _Executor(recorder, owners)
    try:
        executor.run(plan)
    finally:
        recorder.close()

    layout.set_last_successful(group_id, deployment_dir)
    layout.set_most_recent(group_id, deployment_dir)
    result = {
        "cleanup": cleanup_report,
        "file_exists_behavior": plan.behavior,
        "instructions": len(plan),
        "retained": len(plan.retained),
        "permissions_applied": len(executor.permission_paths),
        "warnings": plan.warnings + executor.warnings,
        "install_json": layout.install_json(group_id),
        "cleanup_file": cleanup_path,
        "deployment_dir": deployment_dir,
    }
    result.update(executor.counts)
    return result
