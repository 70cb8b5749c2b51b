# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/install.py (the Install event, docs/agent-compatibility.md §5).

The first part is a conformance table re-creating the CodeDeploy agent's own test cases
(test/instance_agent/plugins/codedeploy/install_instruction_test.rb and installer_test.rb):
cleanup-file parsing, the instruction builder's collision rules, permission matching, and
the installer's instructions for files, directories, symlinks and permissions (there with
mocks of File.exists?; here on a real file system under tmp_path). The rest runs real
Installs in tmp_path.
"""

import json
import os
import pwd
import grp
import stat

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import install as inst
from ansible_collections.rollout.codedeploy.plugins.module_utils.appspec import parse_ace, parse_appspec
from ansible_collections.rollout.codedeploy.plugins.module_utils.layout import Layout

GID = "dg-1111"
OTHER_GID = "dg-2222"
ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def perm(obj, **settings):
    """A normalized permissions entry, as appspec.py returns it."""
    entry = {"object": obj, "pattern": "**", "except": [], "type": ["file", "directory"], "owner": None, "group": None,
             "mode": None, "acls": None, "context": None}
    entry.update(settings)
    return entry


def agent_error(exc_info, expected):
    """The InstallError starts with the agent's sentence, verbatim."""
    assert exc_info.value.agent_message == expected
    assert exc_info.value.message.startswith(expected)


# ============================================================================================
# Conformance: cleanup-file parsing (install_instruction_test.rb, "Parsing a delete file")
# ============================================================================================

CLEANUP_PARSING = [
    ("an empty delete file", "", []),
    ("a single file to delete", "            test_delete_path\n", [("remove", "test_delete_path")]),
    ("multiple files to delete: reverse order",
     "            test_delete_path\n            another_delete_path\n",
     [("remove", "another_delete_path"), ("remove", "test_delete_path")]),
    ("removes mangled line at the end",
     "            test_delete_path\n            another_delete_path\nmangled",
     [("remove", "another_delete_path"), ("remove", "test_delete_path")]),
    ("with a semanage command", "semanage\0testfile.txt\n", [("semanage", "testfile.txt")]),
    # ours, same rules
    ("a single unfinished line", "/srv/a", []),
    ("blank lines are skipped", "/srv/a\n\n/srv/a/b\n", [("remove", "/srv/a/b"), ("remove", "/srv/a")]),
    ("bytes input", b"/srv/a\nsemanage\0/srv/a\n", [("semanage", "/srv/a"), ("remove", "/srv/a")]),
]


@pytest.mark.parametrize("name, contents, expected", CLEANUP_PARSING, ids=[c[0] for c in CLEANUP_PARSING])
def test_conformance_parse_cleanup(name, contents, expected):
    assert inst.parse_cleanup(contents) == expected, name


# ============================================================================================
# Conformance: the command builder (install_instruction_test.rb, "Testing the command builder")
# The agent's tests run in /tmp, so relative paths expand to /tmp/...
# ============================================================================================

EVERY_PART = perm("testfile.txt", mode="744", acls=[parse_ace("u:bob:7"), parse_ace("d:g:dev:4")],
                  context={"name": "name", "type": "type", "range": "s2-s3:c0,c2.c4,c6"}, owner="bob", group="dev")

MSG_TWO = ("The deployment failed because the application specification file specifies two source files named source and "
           "source for the same destination (/tmp/destination). Remove one of the source file paths from the AppSpec file, "
           "and then try again.")
MSG_MKDIR = ("The deployment failed because the application specification file includes an mkdir command more than once "
             "for the same destination path (/tmp/directory/dir1) from (source). Update the files section of the AppSpec "
             "file, and then try again.")
MSG_OVER_DIR = ("The deployment failed because the application specification file calls for installing the file target, "
                "but a file with that name already exists at the location (/tmp/directory/target). Update your AppSpec file "
                "or directory structure, and then try again.")
MSG_PERM_TWICE = ("The deployment failed because the permissions setting for (/tmp/testfile.txt) is specified more than "
                  "once in the application specification file. Update the files section of the AppSpec file, and then try "
                  "again.")

BUILDER = [
    ("have an empty command array", [], [], None),
    ("a single copy command", [("copy", "source", "destination")],
     [{"type": "copy", "source": "source", "destination": "/tmp/destination"}], None),
    ("a copy collides with another copy", [("copy", "source", "destination"), ("copy", "source", "destination")],
     None, MSG_TWO),
    ("a single mkdir command", [("mkdir", "directory")], [{"type": "mkdir", "directory": "/tmp/directory"}], None),
    ("creating a directory collides with a copy",
     [("mkdir", "directory"), ("copy", "source", "directory/dir1"), ("mkdir", "directory/dir1")], None, MSG_MKDIR),
    ("making a copy collides with a mkdir",
     [("mkdir", "directory/target"), ("copy", "file_target", "directory/target/file_target"), ("copy", "target", "directory/target")],
     None, MSG_OVER_DIR),
    ("two mkdirs to the same place", [("mkdir", "directory"), ("mkdir", "directory")],
     [{"type": "mkdir", "directory": "/tmp/directory"}], None),
    ("two mkdirs to the same place, one has a trailing /", [("mkdir", "directory"), ("mkdir", "directory/")],
     [{"type": "mkdir", "directory": "/tmp/directory"}], None),
    ("setting permissions twice", [("set_permissions", "testfile.txt", perm("testfile.txt")),
                                   ("set_permissions", "testfile.txt", perm("testfile.txt"))], None, MSG_PERM_TWICE),
    ("no commands for empty permissions", [("set_permissions", "testfile.txt", perm("testfile.txt"))], [], None),
    ("commands for each part of permissions", [("set_permissions", "testfile.txt", EVERY_PART)], [
        {"type": "chmod", "mode": "744", "file": "/tmp/testfile.txt"},
        {"type": "setfacl", "acl": ["user:bob:rwx", "default:group:dev:r--"], "file": "/tmp/testfile.txt"},
        {"type": "semanage", "context": {"user": "name", "role": None, "type": "type", "range": "s2-s3:c0,c2.c4,c6"},
         "file": "/tmp/testfile.txt"},
        {"type": "chown", "owner": "bob", "group": "dev", "file": "/tmp/testfile.txt"}], None),
    ("chown command with just owner", [("set_permissions", "testfile.txt", perm("testfile.txt", owner="bob"))],
     [{"type": "chown", "owner": "bob", "group": None, "file": "/tmp/testfile.txt"}], None),
    ("chown command with just group", [("set_permissions", "testfile.txt", perm("testfile.txt", group="dev"))],
     [{"type": "chown", "owner": None, "group": "dev", "file": "/tmp/testfile.txt"}], None),
]


@pytest.mark.parametrize("name, calls, expected, error", BUILDER, ids=[c[0] for c in BUILDER])
def test_conformance_command_builder(name, calls, expected, error):
    builder = inst.CommandBuilder(cwd="/tmp")

    def run():
        for call in calls:
            getattr(builder, call[0])(*call[1:])
    if error:
        with pytest.raises(inst.InstallError) as exc_info:
            run()
        agent_error(exc_info, error)
    else:
        run()
        assert json.loads(json.dumps(builder.instructions)) == expected, name


def _target_builder():
    builder = inst.CommandBuilder(cwd="/tmp")
    builder.mkdir("directory/target")
    builder.copy("file_target", "directory/target/file_target")
    return builder


def test_conformance_copying_file_and_making_directory():
    builder = _target_builder()
    assert builder.copying_file("/tmp/directory/target/file_target")
    assert not builder.copying_file("/tmp/directory/target")
    assert not builder.making_directory("/tmp/directory/target/file_target")
    assert builder.making_directory("/tmp/directory/target")


MATCHES = [
    ("/tmp/directory/target", ["file"], "file*", [], "/tmp/directory/target/file_target", True),
    ("/tmp/directory/target", ["directory"], "file*", [], "/tmp/directory/target/file_target", False),
    ("/tmp/directory/target", ["file"], "filefile*", [], "/tmp/directory/target/file_target", False),
    ("/tmp/directory/target", ["file"], "file*", ["*target"], "/tmp/directory/target/file_target", False),
    ("/tmp/directory/", ["directory"], "tar*", [], "/tmp/directory/target", True),
    ("/tmp/directory/", ["file"], "tar*", [], "/tmp/directory/target", False),
    ("/tmp/directory/", ["directory"], "tarr*", [], "/tmp/directory/target", False),
    ("/tmp/directory/", ["directory"], "tar*", ["*et"], "/tmp/directory/target", False),
    # ours: ** matches any depth, other patterns one level, the object itself never
    ("/tmp", ["file", "directory"], "**", [], "/tmp/directory/target/file_target", True),
    ("/tmp", ["file"], "*", [], "/tmp/directory/target/file_target", False),
    ("/tmp/directory/target/file_target", ["file"], "**", [], "/tmp/directory/target/file_target", False),
    ("/tmp/directory", ["directory"], "*", [], "/tmp/directory/target", True),
    ("/tmp/directory", ["directory"], "t*t", [], "/tmp/directory/target", True),
    ("/tmp/directory", ["directory"], "t?rget", [], "/tmp/directory/target", False),  # only * is special
]


@pytest.mark.parametrize("obj, types, pattern, excepts, path, found", MATCHES)
def test_conformance_find_matches(obj, types, pattern, excepts, path, found):
    builder = _target_builder()
    permission = perm(obj, type=types, pattern=pattern)
    permission["except"] = excepts
    assert (path in builder.find_matches(permission)) is found


@pytest.mark.parametrize("name, pattern, matches", [
    ("a", "a", True), ("ab", "a", False), ("ab", "a*", True), ("ab", "*b", True), ("ab", "*", True), ("", "*", True),
    ("axxb", "a*b", True), ("axxc", "a*b", False), ("a.b", "a.b", True), ("axb", "a.b", False), ("a/b", "*", False),
    ("[x]", "[x]", True), ("x", "[x]", False), ("abcabc", "*abc", True), ("abcab", "a**b", True),
])
def test_simple_glob(name, pattern, matches):
    assert inst.simple_glob(name, pattern) is matches


# ============================================================================================
# Conformance: the installer's instructions (installer_test.rb), on a real file system
# ============================================================================================

def make_tree(root, entries):
    """Create ``entries`` under root: "dir/" -> directory, "file" -> text, ("link", target) -> symlink."""
    for name, value in sorted(entries.items()):
        path = os.path.join(root, name)
        if name.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(value, tuple):
            os.symlink(value[1], path)
        else:
            with open(path, "w") as handle:
                handle.write(value if value is not None else name)


def resolve(value, archive, host):
    if isinstance(value, str):
        if value.startswith("A/"):
            return os.path.join(archive, value[2:])
        if value.startswith("H/"):
            return os.path.join(host, value[2:])
        return value
    if isinstance(value, list):
        return [resolve(item, archive, host) for item in value]
    if isinstance(value, dict):
        return dict((key, resolve(item, archive, host)) for key, item in value.items())
    return value


def cp(src, dst, overwrite=False):
    instruction = {"type": "copy", "source": src, "destination": dst}
    if overwrite:
        instruction["overwrite"] = True
    return instruction


def md(path):
    return {"type": "mkdir", "directory": path}


EXISTS = "The deployment failed because a specified file already exists at this location: "
TWO_FILES = [{"source": "src1", "destination": "H/dst1"}, {"source": "src2", "destination": "H/dst2"}]
ONE_FILE = [{"source": "src1", "destination": "H/dst1"}]
DIRECTORY = {"src1/": None}

INSTALLER = [
    # name, archive, host, files, file_exists_behavior, expected instructions, expected error
    ("regular files: an entry for each file", {"src1": "", "src2": ""}, {"dst1/": None, "dst2/": None}, TWO_FILES, "DISALLOW",
     [cp("A/src1", "H/dst1/src1"), cp("A/src2", "H/dst2/src2")], None),
    ("regular files: already exists, DISALLOW", {"src1": "", "src2": ""}, {"dst1/": None, "dst2/src2": ""}, TWO_FILES,
     "DISALLOW", None, EXISTS + "H/dst2/src2"),
    ("regular files: already exists, OVERWRITE", {"src1": ""}, {"dst1/src1": ""}, ONE_FILE, "OVERWRITE",
     [cp("A/src1", "H/dst1/src1", overwrite=True)], None),
    ("regular files: already exists, RETAIN", {"src1": ""}, {"dst1/src1": ""}, ONE_FILE, "RETAIN", [], None),
    ("regular files: invalid file_exists_behavior", {"src1": ""}, {"dst1/src1": ""}, ONE_FILE, "SOMETHING_WEIRD", None,
     "The deployment failed because an invalid option was specified for fileExistsBehavior: SOMETHING_WEIRD. Valid options "
     "include OVERWRITE, RETAIN, and DISALLOW."),
    ("regular files: mkdir when the destination directory does not exist", {"src1": ""}, {}, ONE_FILE, "DISALLOW",
     [md("H/dst1"), cp("A/src1", "H/dst1/src1")], None),
    ("regular files: mkdir for multiple levels of missing directories", {"src1": ""}, {"dst1/": None},
     [{"source": "src1", "destination": "H/dst1/foo/bar"}], "DISALLOW",
     [md("H/dst1/foo"), md("H/dst1/foo/bar"), cp("A/src1", "H/dst1/foo/bar/src1")], None),
    ("symbolic links: a symlink of a regular file is copied (as a link)", {"src1": ("link", "elsewhere.txt")}, {"dst1/": None},
     ONE_FILE, "DISALLOW", [cp("A/src1", "H/dst1/src1")], None),
    ("symbolic links: a symlink of a file inside a source directory", {"src1/foo": ("link", "../x"), "x": ""}, {"dst1/": None},
     ONE_FILE, "DISALLOW", [cp("A/src1/foo", "H/dst1/foo")], None),
    ("symbolic links: a symlinked directory inside a source directory is followed (agent v1.8)",
     {"src1/foo": ("link", "real"), "src1/real/bar": ""}, {"dst1/": None}, ONE_FILE, "DISALLOW",
     [md("H/dst1/foo"), cp("A/src1/foo/bar", "H/dst1/foo/bar"), md("H/dst1/real"), cp("A/src1/real/bar", "H/dst1/real/bar")],
     None),
    ("directories: a mkdir when the destination doesn't exist", DIRECTORY, {}, ONE_FILE, "DISALLOW", [md("H/dst1")], None),
    ("directories: mkdirs for multiple levels of missing parents", DIRECTORY, {"dst1/": None},
     [{"source": "src1", "destination": "H/dst1/foo/bar"}], "DISALLOW", [md("H/dst1/foo"), md("H/dst1/foo/bar")], None),
    ("directories: no mkdir when the destination exists", DIRECTORY, {"dst1/": None}, ONE_FILE, "DISALLOW", [], None),
    ("directories: a copy after the mkdir for each entry (sorted)", {"src1/foo": "", "src1/bar": ""}, {}, ONE_FILE, "DISALLOW",
     [md("H/dst1"), cp("A/src1/bar", "H/dst1/bar"), cp("A/src1/foo", "H/dst1/foo")], None),
    ("directories: an entry already exists, DISALLOW", {"src1/foo": "", "src1/bar": ""}, {"dst1/bar": ""}, ONE_FILE,
     "DISALLOW", None, EXISTS + "H/dst1/bar"),
    ("subdirectories: a mkdir for the subdirectory if missing", {"src1/foo/": None}, {"dst1/": None}, ONE_FILE, "DISALLOW",
     [md("H/dst1/foo")], None),
    ("subdirectories: no mkdir for the subdirectory if it exists", {"src1/foo/": None}, {"dst1/foo/": None}, ONE_FILE,
     "DISALLOW", [], None),
    ("subdirectories: a copy for each entry", {"src1/foo/bar": ""}, {"dst1/": None}, ONE_FILE, "DISALLOW",
     [md("H/dst1/foo"), cp("A/src1/foo/bar", "H/dst1/foo/bar")], None),
    ("subdirectories: an entry already exists", {"src1/foo/bar": ""}, {"dst1/foo/bar": ""}, ONE_FILE, "DISALLOW", None,
     EXISTS + "H/dst1/foo/bar"),
    ("no files to install", {"src1": ""}, {}, [], "DISALLOW", [], None),
    ("the whole archive with source /", {"appspec.yml": "", "a/b": ""}, {}, [{"source": "/", "destination": "H/app"}],
     "DISALLOW", [md("H/app"), md("H/app/a"), cp("A/a/b", "H/app/a/b"), cp("A/appspec.yml", "H/app/appspec.yml")], None),
    # The question of the same directory from two files entries: the agent drops the second
    # mkdir (CommandBuilder#mkdir: "unless @mkdir_targets.include?"), so the sample app's
    # layout (app/ and VERSION both into /srv/sample-app) installs.
    ("the same directory from two files entries is created once", {"app/server.py": "", "VERSION": ""}, {},
     [{"source": "app/", "destination": "H/srv/sample-app"}, {"source": "VERSION", "destination": "H/srv/sample-app"}],
     "DISALLOW", [md("H/srv"), md("H/srv/sample-app"), cp("A/app/server.py", "H/srv/sample-app/server.py"),
                  cp("A/VERSION", "H/srv/sample-app/VERSION")], None),
    ("two directories merged into one destination", {"a/x": "", "b/y": ""}, {"d/": None},
     [{"source": "a", "destination": "H/d/m"}, {"source": "b", "destination": "H/d/m"}], "DISALLOW",
     [md("H/d/m"), cp("A/a/x", "H/d/m/x"), cp("A/b/y", "H/d/m/y")], None),
    ("two sources for one file", {"a/x": "", "b/x": ""}, {"d/": None},
     [{"source": "a", "destination": "H/d"}, {"source": "b", "destination": "H/d"}], "DISALLOW", None,
     "The deployment failed because the application specification file specifies two source files named A/b/x and A/a/x "
     "for the same destination (H/d/x). Remove one of the source file paths from the AppSpec file, and then try again."),
    ("a directory where another entry installs a file", {"conf": "", "confdir/z": ""}, {"d/": None},
     [{"source": "conf", "destination": "H/d"}, {"source": "confdir", "destination": "H/d/conf"}], "DISALLOW", None,
     "The deployment failed because the application specification file includes an mkdir command more than once for the "
     "same destination path (H/d/conf) from (A/conf). Update the files section of the AppSpec file, and then try again."),
    ("a file where another entry creates a directory", {"conf": "", "confdir/z": ""}, {"d/": None},
     [{"source": "confdir", "destination": "H/d/conf"}, {"source": "conf", "destination": "H/d"}], "DISALLOW", None,
     "The deployment failed because the application specification file calls for installing the file A/conf, but a file "
     "with that name already exists at the location (H/d/conf). Update your AppSpec file or directory structure, and then "
     "try again."),
    ("RETAIN does not hide a collision inside the revision", {"a/x": "", "b/x": ""}, {"d/x": ""},
     [{"source": "a", "destination": "H/d"}, {"source": "b", "destination": "H/d"}], "RETAIN", [], None),
    ("OVERWRITE still refuses two sources for one file", {"a/x": "", "b/x": ""}, {"d/x": ""},
     [{"source": "a", "destination": "H/d"}, {"source": "b", "destination": "H/d"}], "OVERWRITE", None,
     "The deployment failed because the application specification file specifies two source files named A/b/x and A/a/x "
     "for the same destination (H/d/x). Remove one of the source file paths from the AppSpec file, and then try again."),
    # ours: found while planning, where the agent fails while executing
    ("a file on the host where the revision has a directory", {"src1/foo/bar": ""}, {"dst1/foo": ""}, ONE_FILE, "OVERWRITE",
     None, EXISTS + "H/dst1/foo"),
    ("a file on the host where a missing ancestor would go", {"src1": ""}, {"dst1": ""},
     [{"source": "src1", "destination": "H/dst1/sub"}], "DISALLOW", None, EXISTS + "H/dst1"),
    ("OVERWRITE onto a directory", {"src1": ""}, {"dst1/src1/": None}, ONE_FILE, "OVERWRITE", None, EXISTS + "H/dst1/src1"),
    ("RETAIN keeps a directory where the revision has a file", {"src1": ""}, {"dst1/src1/": None}, ONE_FILE, "RETAIN", [], None),
    ("a dangling symlink on the host counts as existing", {"src1": ""}, {"dst1/src1": ("link", "/nonexistent/x")}, ONE_FILE,
     "DISALLOW", None, EXISTS + "H/dst1/src1"),
    ("a missing source", {}, {}, ONE_FILE, "DISALLOW", None, "No such file or directory - A/src1"),
    ("a source outside the revision", {}, {}, [{"source": "../etc", "destination": "H/x"}], "DISALLOW", None,
     'The source "../etc" of files[0] resolves to %s, outside the revision A/'),
]


@pytest.mark.parametrize("name, archive_entries, host_entries, files, behavior, expected, error", INSTALLER,
                         ids=[c[0] for c in INSTALLER])
def test_conformance_installer_instructions(tmp_path, name, archive_entries, host_entries, files, behavior, expected, error):
    archive = str(tmp_path / "archive")
    host = str(tmp_path / "host")
    os.makedirs(archive)
    os.makedirs(host)
    make_tree(archive, archive_entries)
    make_tree(host, host_entries)
    appspec = {"files": [resolve(entry, archive, host) for entry in files], "permissions": []}
    if error:
        with pytest.raises(inst.InstallError) as exc_info:
            inst.plan_install(appspec, archive, behavior)
        wanted = resolve(error, archive, host)
        if "%s" in wanted:
            wanted = wanted.replace("%s", os.path.normpath(os.path.join(archive, "../etc"))).replace("A/", archive)
        else:
            wanted = wanted.replace("A/", archive + "/").replace("H/", host + "/")
        agent_error(exc_info, wanted)
    else:
        plan = inst.plan_install(appspec, archive, behavior)
        assert list(plan) == resolve(expected, archive, host), name


def test_conformance_installer_permissions(tmp_path):
    """installer_test.rb "with permissions": a file object, "/" with pattern dst* on directories,
    and dst3/ with pattern file* except *2 on both types."""
    archive = str(tmp_path / "archive")
    base = str(tmp_path / "base")
    make_tree(archive, {"src1": "", "src2/": None, "src3/file1": "", "src3/file2": "", "src3/dir1/file1": ""})
    make_tree(base, {"dst1/": None})
    permissions = [perm(base + "/dst1/src1", type=["file"], mode="601"),
                   perm(base, type=["directory"], pattern="dst*", mode="702"),
                   perm(base + "/dst3/", type=["file", "directory"], pattern="file*", mode="703")]
    permissions[2]["except"] = ["*2"]
    appspec = {"files": [{"source": "src%d" % n, "destination": "%s/dst%d" % (base, n)} for n in (1, 2, 3)],
               "permissions": permissions}
    plan = inst.plan_install(appspec, archive)
    assert list(plan) == [
        cp(archive + "/src1", base + "/dst1/src1"),
        md(base + "/dst2"),
        md(base + "/dst3"),
        md(base + "/dst3/dir1"),
        cp(archive + "/src3/dir1/file1", base + "/dst3/dir1/file1"),
        cp(archive + "/src3/file1", base + "/dst3/file1"),
        cp(archive + "/src3/file2", base + "/dst3/file2"),
        {"type": "chmod", "mode": "601", "file": base + "/dst1/src1"},
        {"type": "chmod", "mode": "702", "file": base + "/dst2"},
        {"type": "chmod", "mode": "702", "file": base + "/dst3"},
        {"type": "chmod", "mode": "703", "file": base + "/dst3/file1"},
    ]


@pytest.mark.parametrize("name, permission, error", [
    ("a pattern on a file object", perm("H/d/f", pattern="*.txt"),
     "The deployment failed because the application specification file includes an object (H/d/f) with an invalid pattern "
     "(*.txt), such as a pattern for a file applied to a directory. Correct the permissions section of the AppSpec file, and "
     "then try again."),
    ("except on a file object", dict(perm("H/d/f"), **{"except": ["x"]}),
     'The deployment failed because the except parameter for a pattern in the permissions section (["x"]) for the object '
     "named H/d/f contains an invalid format. Update the AppSpec file, and then try again."),
    ("a default ACL on a file object", perm("H/d/f", acls=[parse_ace("d:u:bob:7")]),
     "The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This parameter "
     "is supported for directories only. Update the AppSpec file, and then try again."),
    ("a default ACL matching a file below a directory object", perm("H/d", acls=[parse_ace("d:u:bob:7")]),
     "The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This parameter "
     "is supported for directories only. Update the AppSpec file, and then try again."),
    ("two entries for one path", None, MSG_PERM_TWICE.replace("/tmp/testfile.txt", "H/d/f")),
])
def test_conformance_permission_errors(tmp_path, name, permission, error):
    archive = str(tmp_path / "archive")
    host = str(tmp_path / "host")
    make_tree(archive, {"f": ""})
    os.makedirs(host)
    if permission is None:
        permissions = [perm("H/d/f", mode="600"), perm("H/d", mode="644")]
    else:
        permissions = [permission]
    appspec = {"files": [{"source": "f", "destination": host + "/d"}], "permissions": resolve(permissions, archive, host)}
    with pytest.raises(inst.InstallError) as exc_info:
        inst.plan_install(appspec, archive)
    agent_error(exc_info, resolve(error, archive, host).replace("H/", host + "/"))


def test_permissions_type_directory_on_a_file_object_is_ignored(tmp_path):
    archive = str(tmp_path / "archive")
    make_tree(archive, {"f": ""})
    appspec = {"files": [{"source": "f", "destination": str(tmp_path / "d")}],
               "permissions": [perm(str(tmp_path / "d/f"), type=["directory"], mode="600")]}
    assert [i["type"] for i in inst.plan_install(appspec, archive)] == ["mkdir", "copy"]


def test_permissions_of_an_object_not_installed_are_ignored(tmp_path):
    archive = str(tmp_path / "archive")
    make_tree(archive, {"f": ""})
    appspec = {"files": [{"source": "f", "destination": str(tmp_path / "d")}],
               "permissions": [perm(str(tmp_path / "nowhere"), mode="600"), perm("/etc/hostname", mode="600")]}
    assert [i["type"] for i in inst.plan_install(appspec, archive)] == ["mkdir", "copy"]


def test_appspec_file_exists_behavior_wins(tmp_path):
    archive = str(tmp_path / "archive")
    make_tree(archive, {"f": ""})
    make_tree(str(tmp_path), {"d/f": "old"})
    appspec = {"files": [{"source": "f", "destination": str(tmp_path / "d")}], "file_exists_behavior": "RETAIN"}
    plan = inst.plan_install(appspec, archive, "DISALLOW")
    assert list(plan) == [] and plan.behavior == "RETAIN" and plan.retained == [str(tmp_path / "d/f")]
    assert inst.plan_install({"files": []}, archive, None).behavior == "DISALLOW"


# ============================================================================================
# Conformance: instruction execution (install_instruction_test.rb, "parsing an install file")
# ============================================================================================

def test_conformance_full_acl():
    """'contains a setfacl command': the entries declared, then those the agent derives from mode 100421."""
    acl = inst.full_acl(["user:bob:rwx", "default:user:bob:rwx"], 0o100421)
    assert ",".join(acl) == ("user:bob:rwx,default:user:bob:rwx,user::r--,group::-w-,other::--x,mask::-w-,default:user::r--,"
                             "default:group::-w-,default:other::--x,default:mask::-w-")


@pytest.mark.parametrize("aces, mode, expected", [
    (["group:dev:r-x"], 0o100750, "group:dev:r-x,user::rwx,group::r-x,other::---,mask::r-x"),
    (["group:dev:r-x", "mask::rwx"], 0o100750, "group:dev:r-x,mask::rwx,user::rwx,group::r-x,other::---"),
    (["mask::r--"], 0o100640, "mask::r--,user::rw-,group::r--,other::---"),
    (["default:group::rwx", "default:user:bob:r--"], 0o40755,
     "default:group::rwx,default:user:bob:r--,user::rwx,group::r-x,other::r-x,default:user::rwx,default:other::r-x,"
     "default:mask::rwx"),
    ([], 0o100644, "user::rw-,group::r--,other::r--"),
])
def test_full_acl_base_entries(aces, mode, expected):
    assert ",".join(inst.full_acl(aces, mode)) == expected


class Commands(object):
    """Records commands instead of running them; tools present as told."""

    def __init__(self, monkeypatch, tools=("setfacl", "semanage", "restorecon", "chcon"), status=None, selinux=True):
        self.calls = []
        self.status = status or {}
        monkeypatch.setattr(inst, "_which", lambda name: "/usr/sbin/" + name if name in tools else None)
        monkeypatch.setattr(inst, "_run", self.run)
        monkeypatch.setattr(inst, "_selinux_enabled", lambda: selinux)

    def run(self, args):
        self.calls.append(" ".join(args))
        for prefix, status in self.status.items():
            if " ".join(args).startswith(prefix):
                return status, "boom"
        return 0, ""


# ============================================================================================
# Real Installs in tmp_path
# ============================================================================================

@pytest.fixture
def world(tmp_path):
    class World(object):
        pass
    w = World()
    w.tmp = str(tmp_path)
    w.layout = Layout(str(tmp_path / "deployment-root"))
    w.host = str(tmp_path / "host")
    os.makedirs(w.host)
    return w


def revision(w, deployment_id, entries, group_id=GID):
    archive = w.layout.archive_dir(group_id, deployment_id)
    os.makedirs(archive)
    make_tree(archive, entries)
    return archive


SAMPLE = """\
version: 0.0
os: linux
files:
  - source: app/
    destination: {host}/srv/sample-app
  - source: VERSION
    destination: {host}/srv/sample-app
permissions:
  - object: {host}/srv/sample-app
    pattern: "*.py"
    type:
      - file
    owner: {me}
    group: {group}
    mode: "0755"
  - object: {host}/srv/sample-app/VERSION
    owner: {me}
    group: {group}
    mode: "0644"
"""


def sample_spec(w, text=SAMPLE):
    spec, _warnings = parse_appspec(text.format(host=w.host, me=ME, group=MY_GROUP))
    return spec


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def read(path):
    with open(path) as handle:
        return handle.read()


def cleanup_lines(w, group_id=GID):
    with open(w.layout.cleanup_file(group_id), "rb") as handle:
        return handle.read().decode().splitlines()


def test_install_sample_app_twice(world):
    w = world
    spec = sample_spec(w)
    entries = {"app/server.py": "print(1)\n", "VERSION": "1\n", "appspec.yml": "", "scripts/x.sh": ""}
    archive = revision(w, "d-1", entries)
    os.chmod(os.path.join(archive, "app/server.py"), 0o600)
    os.chmod(os.path.join(archive, "VERSION"), 0o600)
    result = inst.install(w.layout, GID, "d-1", spec, archive, "DISALLOW")
    app = os.path.join(w.host, "srv/sample-app")
    assert result["created_files"] == 2 and result["created_directories"] == 2
    assert result["overwritten"] == 0 and result["retained"] == 0 and result["permissions_applied"] == 2
    assert result["warnings"] == []
    assert result["cleanup"]["cleanup_file"] is None
    assert mode_of(os.path.join(app, "server.py")) == 0o755
    assert mode_of(os.path.join(app, "VERSION")) == 0o644
    assert read(os.path.join(app, "VERSION")) == "1\n"
    assert cleanup_lines(w) == [w.host + "/srv", app, app + "/server.py", app + "/VERSION"]
    with open(w.layout.install_json(GID)) as handle:
        instructions = json.load(handle)["instructions"]
    assert [i["type"] for i in instructions] == ["mkdir", "mkdir", "copy", "copy", "chmod", "chown", "chmod", "chown"]
    assert w.layout.last_successful(GID) == w.layout.deployment_dir(GID, "d-1")
    assert w.layout.most_recent(GID) == w.layout.deployment_dir(GID, "d-1")

    # the next deployment of the group: the previous files are cleaned first, so DISALLOW passes
    entries["VERSION"] = "2\n"
    archive2 = revision(w, "d-2", entries)
    result = inst.install(w.layout, GID, "d-2", spec, archive2, "DISALLOW")
    assert result["cleanup"]["removed"] == 4 and result["cleanup"]["kept"] == [] and result["cleanup"]["missing"] == 0
    assert read(os.path.join(app, "VERSION")) == "2\n"
    assert w.layout.last_successful(GID) == w.layout.deployment_dir(GID, "d-2")


def test_unquoted_quoted_and_short_modes_give_the_intended_permissions(world):
    w = world
    text = """\
version: 0.0
os: linux
files:
  - {{source: a, destination: {host}/m}}
  - {{source: b, destination: {host}/m}}
  - {{source: c, destination: {host}/m}}
permissions:
  - {{object: {host}/m/a, mode: 0640}}
  - {{object: {host}/m/b, mode: "0640"}}
  - {{object: {host}/m/c, mode: 640}}
"""
    spec = sample_spec(w, text)
    archive = revision(w, "d-1", {"a": "", "b": "", "c": ""})
    inst.install(w.layout, GID, "d-1", spec, archive, "DISALLOW")
    for name in "abc":
        assert mode_of(os.path.join(w.host, "m", name)) == 0o640, name


def test_copy_preserves_mode_and_times_and_directories_get_the_umask(world):
    w = world
    archive = revision(w, "d-1", {"tree/sub/f": "x"})
    os.chmod(os.path.join(archive, "tree/sub/f"), 0o751)
    os.utime(os.path.join(archive, "tree/sub/f"), (1000000, 1000000))
    os.chmod(os.path.join(archive, "tree/sub"), 0o700)
    old = os.umask(0o022)
    try:
        inst.install(w.layout, GID, "d-1", {"files": [{"source": "tree", "destination": w.host + "/t"}]}, archive)
    finally:
        os.umask(old)
    assert mode_of(w.host + "/t/sub/f") == 0o751
    assert os.stat(w.host + "/t/sub/f").st_mtime == 1000000
    assert mode_of(w.host + "/t/sub") == 0o755  # mkdir, as the agent: not the source directory's mode


def test_other_groups_files_are_never_touched(world):
    w = world
    archive = revision(w, "d-1", {"f": "mine"})
    spec = {"files": [{"source": "f", "destination": w.host + "/shared"}]}
    inst.install(w.layout, OTHER_GID, "d-1", spec, archive)
    archive2 = revision(w, "d-2", {"f": "yours"})
    with pytest.raises(inst.InstallError) as exc_info:
        inst.install(w.layout, GID, "d-2", spec, archive2, "DISALLOW")
    agent_error(exc_info, EXISTS + w.host + "/shared/f")
    assert "OVERWRITE or RETAIN" in exc_info.value.message
    assert exc_info.value.path == w.host + "/shared/f"
    assert read(w.host + "/shared/f") == "mine"
    # a failure while planning changes nothing of this group
    assert not os.path.exists(w.layout.install_json(GID)) and not os.path.exists(w.layout.cleanup_file(GID))
    assert w.layout.last_successful(GID) is None
    # and the other group's cleanup still owns the file
    assert cleanup_lines(w, OTHER_GID) == [w.host + "/shared", w.host + "/shared/f"]


def test_overwrite_replaces_and_records_for_cleanup(world):
    w = world
    make_tree(w.host, {"d/f": "theirs", "d/link": ("link", "f")})
    archive = revision(w, "d-1", {"f": "ours", "link": "a file now"})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}, {"source": "link", "destination": w.host + "/d"}]}
    result = inst.install(w.layout, GID, "d-1", spec, archive, "OVERWRITE")
    assert result["overwritten"] == 2 and result["created_files"] == 0
    assert read(w.host + "/d/f") == "ours"
    assert not os.path.islink(w.host + "/d/link") and read(w.host + "/d/link") == "a file now"
    assert [n for n in os.listdir(w.host + "/d") if n.startswith(".")] == []  # no temporary files left
    assert cleanup_lines(w) == [w.host + "/d/f", w.host + "/d/link"]
    # the agent's rule: OVERWRITE'd files are the group's now, so the next cleanup removes them
    inst.run_cleanup(w.layout, GID)
    assert os.listdir(w.host + "/d") == []


def test_retain_keeps_and_does_not_record_nor_apply_permissions(world):
    w = world
    make_tree(w.host, {"d/f": "theirs"})
    os.chmod(w.host + "/d/f", 0o600)
    archive = revision(w, "d-1", {"f": "ours", "g": "new"})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}, {"source": "g", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d", mode="0644")]}
    result = inst.install(w.layout, GID, "d-1", spec, archive, "RETAIN")
    assert result["retained"] == 1 and result["created_files"] == 1 and result["permissions_applied"] == 1
    assert read(w.host + "/d/f") == "theirs" and mode_of(w.host + "/d/f") == 0o600
    assert mode_of(w.host + "/d/g") == 0o644
    assert cleanup_lines(w) == [w.host + "/d/g"]


def test_permissions_only_on_paths_this_install_created(world):
    w = world
    make_tree(w.host, {"app/old.py": "", "app/lib/": None})
    os.chmod(w.host + "/app/old.py", 0o600)
    os.chmod(w.host + "/app/lib", 0o700)
    archive = revision(w, "d-1", {"src/new.py": "", "src/lib/deep.py": "", "src/pkg/x.py": ""})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}],
            "permissions": [perm(w.host + "/app", mode="0751")]}
    result = inst.install(w.layout, GID, "d-1", spec, archive)
    assert mode_of(w.host + "/app/old.py") == 0o600      # there before: untouched
    assert mode_of(w.host + "/app/lib") == 0o700         # existing directory: untouched
    assert mode_of(w.host + "/app") != 0o751                # the object itself never
    assert mode_of(w.host + "/app/new.py") == 0o751
    assert mode_of(w.host + "/app/lib/deep.py") == 0o751  # ** matches any depth
    assert mode_of(w.host + "/app/pkg") == 0o751           # a directory this Install created
    assert mode_of(w.host + "/app/pkg/x.py") == 0o751
    assert result["permissions_applied"] == 4


def test_pattern_other_than_double_star_is_one_level(world):
    w = world
    archive = revision(w, "d-1", {"src/a.py": "", "src/sub/b.py": ""})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}],
            "permissions": [perm(w.host + "/app", pattern="*.py", type=["file"], mode="0700")]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert mode_of(w.host + "/app/a.py") == 0o700
    assert mode_of(w.host + "/app/sub/b.py") != 0o700


def test_files_before_directories_in_the_plan(world):
    w = world
    archive = revision(w, "d-1", {"src/sub/f": ""})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}],
            "permissions": [perm(w.host + "/app", mode="0750")]}
    plan = inst.plan_install(spec, archive)
    assert [(i["type"], i.get("file") or i.get("destination") or i.get("directory")) for i in plan] == [
        ("mkdir", w.host + "/app"), ("mkdir", w.host + "/app/sub"), ("copy", w.host + "/app/sub/f"),
        ("chmod", w.host + "/app/sub/f"), ("chmod", w.host + "/app/sub")]


def test_owner_and_group_are_looked_up_and_applied(world, monkeypatch):
    w = world
    calls = []
    monkeypatch.setattr(inst.os, "chown", lambda path, uid, gid: calls.append((os.path.basename(path), uid, gid)))
    archive = revision(w, "d-1", {"a": "", "b": "", "c": ""})
    spec = {"files": [{"source": n, "destination": w.host + "/d"} for n in "abc"],
            "permissions": [perm(w.host + "/d/a", owner="root", group="root"), perm(w.host + "/d/b", owner="0"),
                            perm(w.host + "/d/c", group=MY_GROUP)]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert ("a", 0, 0) in calls
    assert ("b", 0, -1) in calls
    assert ("c", -1, os.getgid()) in calls


@pytest.mark.parametrize("field, name, message", [
    ("owner", "no-such-user-4242", "can't find user for no-such-user-4242"),
    ("group", "no-such-group-4242", "can't find group for no-such-group-4242"),
])
def test_unknown_owner_fails_before_anything_is_installed(world, field, name, message):
    w = world
    archive = revision(w, "d-1", {"f": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d/f", **{field: name})]}
    with pytest.raises(inst.InstallError) as exc_info:
        inst.install(w.layout, GID, "d-1", spec, archive)
    agent_error(exc_info, message)
    assert "BeforeInstall" in exc_info.value.message and w.host + "/d/f" in exc_info.value.message
    assert not os.path.exists(w.host + "/d")


def test_setuid_mode_survives_chown(world):
    w = world
    archive = revision(w, "d-1", {"tool": "#!/bin/sh\n"})
    spec = {"files": [{"source": "tool", "destination": w.host + "/bin"}],
            "permissions": [perm(w.host + "/bin/tool", mode="4755", owner=ME, group=MY_GROUP)]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert mode_of(w.host + "/bin/tool") == 0o4755


def test_setfacl_runs_with_the_full_acl(world, monkeypatch):
    w = world
    commands = Commands(monkeypatch)
    archive = revision(w, "d-1", {"src/f": ""})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}],
            "permissions": [perm(w.host + "/app", type=["file"], mode="0640", acls=[parse_ace("u:nobody:5")])]}
    result = inst.install(w.layout, GID, "d-1", spec, archive)
    assert commands.calls == ["setfacl --set user:nobody:r-x,user::rw-,group::r--,other::---,mask::r-- %s/app/f" % w.host]
    assert result["permissions_applied"] == 1


def test_setfacl_missing_fails_and_the_partial_install_is_cleaned_next_time(world, monkeypatch):
    w = world
    Commands(monkeypatch, tools=())
    archive = revision(w, "d-1", {"src/f": "", "src/g": ""})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}],
            "permissions": [perm(w.host + "/app/f", acls=[parse_ace("u:nobody:5")])]}
    with pytest.raises(inst.InstallError) as exc_info:
        inst.install(w.layout, GID, "d-1", spec, archive)
    agent_error(exc_info, "The deployment failed because of a problem with the acls permission settings in the application "
                          "specification file for this object: %s/app/f. Failed command: setfacl --set "
                          "user:nobody:r-x,user::rw-,group::r--,other::r--,mask::r-- %s/app/f. Exit code: 127" % (w.host, w.host))
    assert "install the acl package" in exc_info.value.message
    assert cleanup_lines(w) == [w.host + "/app", w.host + "/app/f", w.host + "/app/g"]
    assert w.layout.last_successful(GID) is None
    # the next Install of the group removes what the failed one created
    archive2 = revision(w, "d-2", {"other": ""})
    result = inst.install(w.layout, GID, "d-2", {"files": [{"source": "other", "destination": w.host + "/x"}]}, archive2)
    assert result["cleanup"]["removed"] == 3
    assert not os.path.exists(w.host + "/app")


def test_selinux_with_semanage(world, monkeypatch):
    w = world
    commands = Commands(monkeypatch)
    archive = revision(w, "d-1", {"f": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d/f", context={"name": "name", "type": "type", "range": "s0"})]}
    result = inst.install(w.layout, GID, "d-1", spec, archive)
    target = os.path.realpath(w.host + "/d/f")
    assert commands.calls == ["semanage fcontext -a -s name -t type -r s0 " + target, "restorecon -v " + target]
    assert cleanup_lines(w) == [w.host + "/d", w.host + "/d/f", "semanage\0" + target]
    assert result["warnings"] == []
    commands.calls[:] = []
    inst.run_cleanup(w.layout, GID)
    assert commands.calls == ["semanage fcontext -d " + target]
    assert not os.path.exists(w.host + "/d")


def test_selinux_context_without_range_works(world, monkeypatch):
    w = world
    commands = Commands(monkeypatch)
    archive = revision(w, "d-1", {"f": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d/f", context={"name": None, "type": "httpd_sys_content_t", "range": None})]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert commands.calls[0] == "semanage fcontext -a -t httpd_sys_content_t " + os.path.realpath(w.host + "/d/f")


@pytest.mark.parametrize("failing, command", [
    ("semanage fcontext", "semanage fcontext -a -t t {0}"),
    ("restorecon", "restorecon -v {0}"),
])
def test_selinux_failure_message(world, monkeypatch, failing, command):
    w = world
    Commands(monkeypatch, status={failing: 1})
    archive = revision(w, "d-1", {"f": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d/f", context={"name": None, "type": "t", "range": None})]}
    with pytest.raises(inst.InstallError) as exc_info:
        inst.install(w.layout, GID, "d-1", spec, archive)
    agent_error(exc_info, "The deployment failed because the application specification file contains an error in the "
                          "settings for the context parameter. Update the permissions section of the AppSpec file, and then "
                          "try again. Failed command: %s. Exit code: 1" % command.format(os.path.realpath(w.host + "/d/f")))


def test_selinux_with_chcon_only(world, monkeypatch):
    w = world
    commands = Commands(monkeypatch, tools=("chcon",))
    archive = revision(w, "d-1", {"f": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d/f", context={"name": "u", "type": "t", "range": "s0"})]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert commands.calls == ["chcon -u u -t t -l s0 " + os.path.realpath(w.host + "/d/f")]
    assert cleanup_lines(w) == [w.host + "/d", w.host + "/d/f"]


@pytest.mark.parametrize("tools, selinux, reason", [
    ((), True, "no SELinux tools (semanage and restorecon, or chcon) on this host"),
    (("semanage", "restorecon", "chcon"), False, "SELinux is not enabled on this host"),
])
def test_selinux_skipped_with_a_warning(world, monkeypatch, tools, selinux, reason):
    w = world
    commands = Commands(monkeypatch, tools=tools, selinux=selinux)
    archive = revision(w, "d-1", {"f": "", "g": ""})
    spec = {"files": [{"source": "f", "destination": w.host + "/d"}, {"source": "g", "destination": w.host + "/d"}],
            "permissions": [perm(w.host + "/d", context={"name": None, "type": "t", "range": None})]}
    result = inst.install(w.layout, GID, "d-1", spec, archive)
    assert commands.calls == []
    assert result["warnings"] == ["SELinux context skipped for 2 path(s) (e.g. %s/d/f): %s" % (w.host, reason)]


def test_symlinked_file_is_recreated_as_a_link_and_permissions_skip_links(world):
    w = world
    make_tree(w.tmp, {"outside": "secret"})
    os.chmod(w.tmp + "/outside", 0o600)
    archive = revision(w, "d-1", {"src/real": "", "src/link": ("link", "real"), "src/out": ("link", w.tmp + "/outside")})
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}], "permissions": [perm(w.host + "/app", mode="0755")]}
    result = inst.install(w.layout, GID, "d-1", spec, archive)
    assert os.readlink(w.host + "/app/link") == "real"
    assert os.readlink(w.host + "/app/out") == w.tmp + "/outside"
    assert mode_of(w.tmp + "/outside") == 0o600  # the agent would have chmod'ed the link's target
    assert mode_of(w.host + "/app/real") == 0o755
    assert len(result["warnings"]) == 1 and "2 symbolic link(s)" in result["warnings"][0]


def test_symlinked_directory_followed_or_preserved(world):
    w = world
    entries = {"src/releases/v1/x": "", "src/current": ("link", "releases/v1")}
    archive = revision(w, "d-1", entries)
    spec = {"files": [{"source": "src", "destination": w.host + "/follow"}]}
    inst.install(w.layout, GID, "d-1", spec, archive)
    assert os.path.isdir(w.host + "/follow/current") and not os.path.islink(w.host + "/follow/current")
    assert os.path.isfile(w.host + "/follow/current/x")
    archive2 = revision(w, "d-1", entries, group_id=OTHER_GID)
    spec2 = {"files": [{"source": "src", "destination": w.host + "/preserve"}]}
    inst.install(w.layout, OTHER_GID, "d-1", spec2, archive2, symlinks="preserve")
    assert os.readlink(w.host + "/preserve/current") == "releases/v1"
    assert os.path.isfile(w.host + "/preserve/current/x")
    assert cleanup_lines(w, OTHER_GID)[-1] == w.host + "/preserve/releases/v1/x"
    # cleanup removes the link itself, never what it points to through it
    inst.run_cleanup(w.layout, OTHER_GID)
    assert not os.path.lexists(w.host + "/preserve")


@pytest.mark.parametrize("entries, message", [
    ({"src/loop": ("link", ".")}, "is a symbolic link to {archive}/src, one of its own parent directories"),
    ({"src/etc": ("link", "/etc")}, "is a symbolic link to the directory /etc, outside the revision"),
])
def test_symlinked_directory_refused(world, entries, message):
    w = world
    archive = revision(w, "d-1", entries)
    with pytest.raises(inst.InstallError) as exc_info:
        inst.plan_install({"files": [{"source": "src", "destination": w.host + "/app"}]}, archive)
    assert message.format(archive=archive) in exc_info.value.message
    assert "symlinks=preserve" in exc_info.value.message
    inst.plan_install({"files": [{"source": "src", "destination": w.host + "/app"}]}, archive, symlinks="preserve")


def test_top_level_source_symlinked_outside_is_refused(world):
    w = world
    archive = revision(w, "d-1", {"etc": ("link", "/etc")})
    with pytest.raises(inst.InstallError, match="outside the revision"):
        inst.plan_install({"files": [{"source": "etc", "destination": w.host + "/app"}]}, archive)


def test_special_files_are_refused(world):
    w = world
    archive = revision(w, "d-1", {"src/": None})
    os.mkfifo(os.path.join(archive, "src/fifo"))
    with pytest.raises(inst.InstallError, match="not a regular file, a directory or a symbolic link"):
        inst.plan_install({"files": [{"source": "src", "destination": w.host + "/app"}]}, archive)


def test_name_with_a_line_break_is_refused(world):
    w = world
    archive = revision(w, "d-1", {"src/a\nb": ""})
    with pytest.raises(inst.InstallError, match="line break"):
        inst.plan_install({"files": [{"source": "src", "destination": w.host + "/app"}]}, archive)


def test_missing_archive(world):
    with pytest.raises(inst.InstallError) as exc_info:
        inst.plan_install({"files": []}, world.tmp + "/nowhere")
    assert exc_info.value.message == "The revision is not unpacked at %s/nowhere (run DownloadBundle first)" % world.tmp


def test_install_error_attributes():
    error = inst.InstallError("The deployment failed because X", path="/p", hint="do Y")
    assert error.message == str(error) == "The deployment failed because X (do Y)"
    assert error.agent_message == "The deployment failed because X" and error.path == "/p" and error.hint == "do Y"
    assert inst.InstallError("plain").message == "plain" and inst.InstallError("plain").path is None


# -- cleanup ------------------------------------------------------------------------------------

def write_cleanup(w, lines, group_id=GID, tail="\n"):
    os.makedirs(w.layout.instructions_dir, exist_ok=True)
    with open(w.layout.cleanup_file(group_id), "w") as handle:
        handle.write("\n".join(lines) + tail)


def test_run_cleanup_reverse_order_nonempty_dirs_stay_missing_tolerated(world):
    w = world
    h = w.host
    make_tree(h, {"app/a": "", "app/sub/b": "", "app/sub/user-data": "", "app/link": ("link", h + "/keep"), "keep/x": ""})
    write_cleanup(w, [h + "/app", h + "/app/a", h + "/app/sub", h + "/app/sub/b", h + "/app/link", h + "/app/gone"])
    write_cleanup(w, [h + "/keep/x"], group_id=OTHER_GID)
    report = inst.run_cleanup(w.layout, GID)
    assert report["removed"] == 3 and report["missing"] == 1
    assert report["kept"] == [h + "/app/sub", h + "/app"]
    assert sorted(os.listdir(h + "/app")) == ["sub"] and os.listdir(h + "/app/sub") == ["user-data"]
    assert os.path.isfile(h + "/keep/x")  # not through the link, and not the other group's
    assert not os.path.exists(w.layout.cleanup_file(GID))
    assert os.path.exists(w.layout.cleanup_file(OTHER_GID))


def test_run_cleanup_without_file(world):
    assert inst.run_cleanup(world.layout, GID) == {"cleanup_file": None, "removed": 0, "missing": 0, "kept": [], "contexts": 0}


def test_run_cleanup_drops_an_unfinished_last_line(world):
    w = world
    make_tree(w.host, {"a": "", "ab": ""})
    write_cleanup(w, [w.host + "/a", w.host + "/ab"], tail="")
    inst.run_cleanup(w.layout, GID)
    assert os.listdir(w.host) == ["ab"]


def test_run_cleanup_failure_keeps_the_cleanup_file(world, monkeypatch):
    w = world
    make_tree(w.host, {"a": ""})
    write_cleanup(w, [w.host + "/a"])

    def denied(_path):
        raise OSError(13, "Permission denied")
    monkeypatch.setattr(inst.os, "unlink", denied)
    with pytest.raises(inst.InstallError) as exc_info:
        inst.run_cleanup(w.layout, GID)
    monkeypatch.undo()
    assert exc_info.value.message.startswith("Cleanup of the previous deployment of this deployment group failed: cannot "
                                             "remove %s/a: Permission denied" % w.host)
    assert os.path.exists(w.layout.cleanup_file(GID))


def test_cleanup_can_be_turned_off_and_entries_are_carried(world):
    w = world
    archive = revision(w, "d-1", {"v1.js": ""})
    inst.install(w.layout, GID, "d-1", {"files": [{"source": "v1.js", "destination": w.host + "/assets"}]}, archive)
    archive2 = revision(w, "d-2", {"v2.js": ""})
    result = inst.install(w.layout, GID, "d-2", {"files": [{"source": "v2.js", "destination": w.host + "/assets"}]},
                          archive2, cleanup=False)
    assert result["cleanup"] == {"skipped": True, "carried": 2, "cleanup_file": w.layout.cleanup_file(GID)}
    assert sorted(os.listdir(w.host + "/assets")) == ["v1.js", "v2.js"]
    assert cleanup_lines(w) == [w.host + "/assets", w.host + "/assets/v1.js", w.host + "/assets/v2.js"]
    # with cleanup back on, everything the group installed goes
    inst.run_cleanup(w.layout, GID)
    assert not os.path.exists(w.host + "/assets")


def test_plan_is_deterministic_and_json_serializable(world):
    w = world
    archive = revision(w, "d-1", dict(("src/%s" % n, "") for n in ("b", "a", "c/d", "c/e")))
    spec = {"files": [{"source": "src", "destination": w.host + "/app"}]}
    first = inst.plan_install(spec, archive)
    assert list(first) == list(inst.plan_install(spec, archive))
    assert json.loads(json.dumps(first)) == list(first)
