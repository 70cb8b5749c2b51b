# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/appspec.py.

The first tables re-create the CodeDeploy agent's own AppSpec tests
(test/instance_agent/plugins/codedeploy/application_specification_test.rb): the agent's
messages are written out here literally, so a change of wording fails a test.
"""
import os
import textwrap

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as A

HEAD = "version: 0.0\nos: linux\n"
# The agent's tests use made-up event names; the agent accepts them when the deployment
# allows them, which is what allowed_events does here.
AGENT_TEST_EVENTS = ["test_hook", "empty_test_hook"]


def parse(text, **kwargs):
    kwargs.setdefault("source", "appspec.yml")
    return A.parse_appspec(textwrap.dedent(text), **kwargs)


def error_of(text, **kwargs):
    with pytest.raises(A.AppSpecError) as info:
        parse(text, **kwargs)
    return info.value


def perm(body):
    """An AppSpec with one permissions entry for object test/ (body indented under it)."""
    return HEAD + "permissions:\n  - object: 'test/'\n" + textwrap.indent(textwrap.dedent(body), "    ")


# The agent's full messages, written out.
EMPTY = ("The deployment failed because the application specification file was empty. "
         "Make sure your AppSpec file defines at minimum the 'version' and 'os' properties.")


def VERSION(value):
    return ("The deployment failed because an invalid version value (%s) was entered in the application specification file. "
            "Make sure your AppSpec file specifies \"0.0\" as the version, and then try again." % value)


def OS(value):
    return ("The deployment failed because the application specification file specifies an unsupported operating system (%s). "
            "Specify either \"linux\" or \"windows\" in the os section of the AppSpec file, and then try again." % value)


NO_LOCATION = ("The deployment failed because the application specification file specifies a script with no location value. "
               "Specify the location in the hooks section of the AppSpec file, and then try again.")
TIMEOUT = ("The deployment failed because an invalid timeout value was provided for a script in the application specification "
           "file. Make corrections in the hooks section of the AppSpec file, and then try again.")
NO_SOURCE = ("The deployment failed because the application specification file specifies a destination file, but no source "
             "file. Update the files section of the AppSpec file, and then try again.")


def NO_DESTINATION(source):
    return ("The deployment failed because the application specification file specifies only a source file (%s). Add the name "
            "of the destination file to the files section of the AppSpec file, and then try again." % source)


NO_OBJECT = ("The deployment failed because a permission listed in the application specification file has no object value. "
             "Update the permissions section of the AppSpec file, and then try again.")
PERMISSIONS_WINDOWS = ("The deployment failed because the application specification file specifiles file permissions, but the "
                       "deployment is targeting one or more Windows Server instances. Permissions are supported only for Amazon "
                       "Linux, Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the permissions section of "
                       "the AppSpec file, and then try again.")


def PERMISSION_TYPE(value):
    return ("The deployment failed because the application specification filespecifies a permission for an object type not "
            "supported for permissions (%s). Update the permissions section of the AppSpec file, and then try again." % value)


def MODE_LENGTH(mode):
    return ("The deployment failed because the length of a permissions mode (%s) in the application specification file is "
            "invalid. Permissions modes must be between one and four characters long. Update the permissions section of the "
            "AppSpec file, and then try again." % mode)


def MODE_CHAR(mode, char):
    return ("The deployment failed because the permissions mode (%s) in the application specification file contains an invalid "
            "character (%s). Update the permissions section of the AppSpec file, and then try again." % (mode, char))


def ACL_ENTRY(entry):
    return ("The deployment failed because of a problem with the acls permission settings in the application specification "
            "file. Invalid acl entry (%s)." % entry)


def ACL_BASE(entry):
    return ("The deployment failed because of a problem with the acls permission settings in the application specification "
            "file. Use mode to set the base acl entry (%s). Update the permissions section of the AppSpec file, and then try "
            "again." % entry)


def ACL_CHAR(entry, char):
    return ("The deployment failed because the access control list (ACL) named %s in the application specification file "
            "contains an invalid character (%s). Correct the ACL in the hooks section of the AppSpec file, and then try again."
            % (entry, char))


def CONTEXT_TYPE(inspected):
    return ("The deployment failed because the application specification file specifies an invalid context type (%s). Update "
            "the permissions section of the AppSpec file, and then try again." % inspected)


def RANGE(value):
    return ("The deployment failed because of a problem with the SELinux range specified (%s) for the context parameter in the "
            "permissions section of the application specification file. Make corrections in the permissions section of the "
            "AppSpec file, and then try again." % value)


def FILE_PATTERN(obj, pattern):
    return ("The deployment failed because the application specification file includes an object (%s) with an invalid pattern "
            "(%s), such as a pattern for a file applied to a directory. Correct the permissions section of the AppSpec file, "
            "and then try again." % (obj, pattern))


def FILE_EXCEPT(excepts, obj):
    return ("The deployment failed because the except parameter for a pattern in the permissions section (%s) for the object "
            "named %s contains an invalid format. Update the AppSpec file, and then try again." % (excepts, obj))


ACL_DEFAULT_ON_FILE = ("The deployment failed because the -d parameter has been specified to apply an acl setting to a file. "
                       "This parameter is supported for directories only. Update the AppSpec file, and then try again.")


def FILE_EXISTS(value):
    return ("The deployment failed because an invalid file_exists_behavior value (%s) was entered in the application "
            "specification file. Make sure your AppSpec file specifies one of DISALLOW,OVERWRITE,RETAIN as the "
            "file_exists_behavior, and then try again." % value)


def UNKNOWN_EVENTS(names):
    return "appspec.yml file contains unknown lifecycle events: %s" % names


# --------------------------------------------------------------------------------------
# 1. The agent's error cases
# --------------------------------------------------------------------------------------

AGENT_ERROR_CASES = [
    ("empty appspec", "", EMPTY),
    ("whitespace-only appspec", " \n", EMPTY),
    ("missing version", "os: linux\n", VERSION("")),
    ("invalid version", "version: invalid\nos: linux\n", VERSION("invalid")),
    ("missing os", "version: 0.0\n", OS("")),
    ("invalid os", "version: 0.0\nos: unsupported\n", OS("unsupported")),
    ("missing location", HEAD + "hooks:\n  test_hook:\n    - timeout: 30\n", NO_LOCATION),
    ("non numerical timeout", HEAD + "hooks:\n  test_hook:\n    - location: test_location\n      timeout: foo\n", TIMEOUT),
    ("file map missing destination", HEAD + "files:\n  - source: test_source\n", NO_DESTINATION("test_source")),
    ("file map missing source", HEAD + "files:\n  - destination: test_destination\n", NO_SOURCE),
    ("permission without object", HEAD + "permissions:\n  - pattern: test\n", NO_OBJECT),
    ("acl with too few parts", perm("acls:\n  - '7'\n"), ACL_ENTRY("7")),
    ("acl with too many parts", perm("acls:\n  - 'd:u:bob:7:rwx'\n"), ACL_ENTRY("d:u:bob:7:rwx")),
    ("acl with invalid first part", perm("acls:\n  - 'invalid:u:bob:7:rwx'\n"), ACL_ENTRY("invalid:u:bob:7:rwx")),
    ("acl with invalid second part", perm("acls:\n  - 'd:invalid:bob:7:rwx'\n"), ACL_ENTRY("d:invalid:bob:7:rwx")),
    ("acl with default twice", perm("acls:\n  - 'd:d:bob:7:rwx'\n"), ACL_ENTRY("d:d:bob:7:rwx")),
    ("acl mask with name", perm("acls:\n  - 'mask:name:rwx'\n"), ACL_ENTRY("mask:name:rwx")),
    ("acl other with name", perm("acls:\n  - 'd:other:name:rwx'\n"), ACL_ENTRY("d:other:name:rwx")),
    ("acl invalid permission character", perm("acls:\n  - 'user:bob:rwxd'\n"), ACL_CHAR("user:bob:rwxd", "d")),
    ("acl base user", perm("acls:\n  - 'u::7'\n"), ACL_BASE("u::7")),
    ("acl base group", perm("acls:\n  - 'g::7'\n"), ACL_BASE("g::7")),
    ("acl base other", perm("acls:\n  - 'o:7'\n"), ACL_BASE("o:7")),
    ("context invalid sensitivity range", perm("context:\n  name: 'name'\n  type: 'type'\n  range: 's3-s2:c0'\n"),
     RANGE("s3-s2:c0")),
    ("context missing sensitivity range part", perm("context:\n  name: name\n  type: type\n  range: 's3-:c0'\n"),
     "invalid range part s3-"),
    ("context missing sensitivity", perm("context:\n  name: name\n  type: type\n  range: ':c0'\n"), "invalid range part :c0"),
    ("context missing sensitivity value", perm("context:\n  name: name\n  type: type\n  range: 's'\n"), "invalid sensitivity s"),
    ("context negative sensitivity", perm("context:\n  name: name\n  type: type\n  range: 's0-s-1'\n"),
     "invalid sensitivity s-1"),
    ("context invalid sensitivity", perm("context:\n  name: name\n  type: type\n  range: 'sd3'\n"), "invalid sensitivity sd3"),
    ("context invalid sensitivity 2", perm("context:\n  name: name\n  type: type\n  range: 'd3'\n"), "invalid sensitivity d3"),
    ("context invalid category range", perm("context:\n  name: name\n  type: type\n  range: 's0:c2.c1'\n"),
     "invalid category range c2.c1"),
    ("context missing category range part", perm("context:\n  name: name\n  type: type\n  range: 's0:c2.'\n"),
     "invalid range part c2."),
    ("context missing category", perm("context:\n  name: name\n  type: type\n  range: 's0:'\n"), "invalid range part s0:"),
    ("context missing category value", perm("context:\n  name: name\n  type: type\n  range: 's0:c'\n"), "invalid category c"),
    ("context negative category", perm("context:\n  name: name\n  type: type\n  range: 's0:c-1'\n"), "invalid category c-1"),
    ("context category above 1023", perm("context:\n  name: name\n  type: type\n  range: 's0:c1024'\n"),
     "invalid category c1024"),
    ("context without type", perm("context:\n  name: 'name'\n"), CONTEXT_TYPE('{"name"=>"name"}')),
    ("context invalid category", perm("context:\n  name: name\n  type: type\n  range: 's0:cd3'\n"), "invalid category cd3"),
    ("context invalid category 2", perm("context:\n  name: name\n  type: type\n  range: 's0:d3'\n"), "invalid category d3"),
    ("context duplicate categories", perm("context:\n  name: name\n  type: type\n  range: 's0:c0.c2,c1'\n"),
     "duplicate categories"),
    ("mode with 5 digits", perm("mode: 12345\n"), MODE_LENGTH("12345")),
    ("mode with invalid char", perm("mode: 12a\n"), MODE_CHAR("12a", "a")),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in AGENT_ERROR_CASES], ids=[c[0] for c in AGENT_ERROR_CASES])
def test_agent_error_cases(text, expected):
    err = error_of(text, allowed_events=AGENT_TEST_EVENTS)
    assert err.agent_message == expected
    assert str(err).startswith(expected)
    assert err.message == str(err)


# --------------------------------------------------------------------------------------
# 2. The agent's success cases
# --------------------------------------------------------------------------------------

def agent_parse(text):
    spec, _warnings = parse(text, allowed_events=AGENT_TEST_EVENTS)
    return spec


def hook_values(spec, event, name):
    return [script[name] for script in spec["hooks"][event]]


def test_agent_no_hooks_or_files():
    spec = agent_parse("version: 0.0\nos: linux\n")
    assert spec == {"version": "0.0", "os": "linux", "files": [], "hooks": {}, "permissions": [],
                    "file_exists_behavior": None}


def test_agent_single_complete_hook():
    spec = agent_parse(HEAD + "hooks:\n  test_hook:\n    - location: test_location_1\n      runas: foo\n      timeout: 30\n")
    assert spec["hooks"]["test_hook"] == [{"location": "test_location_1", "timeout": 30, "runas": "foo", "sudo": False}]


def test_agent_sudo_hook():
    spec = agent_parse(HEAD + "hooks:\n  test_hook:\n    - location: test_location_1\n      sudo: true\n      runas: foo\n"
                       "      timeout: 30\n")
    assert spec["hooks"]["test_hook"] == [{"location": "test_location_1", "timeout": 30, "runas": "foo", "sudo": True}]


def test_agent_two_complete_hooks():
    spec = agent_parse(HEAD + "hooks:\n  test_hook:\n    - location: test_location_1\n      runas: foo\n      timeout: 30\n"
                       "    - location: test_location_2\n      runas: foo2\n      timeout: 30\n")
    assert hook_values(spec, "test_hook", "location") == ["test_location_1", "test_location_2"]


def test_agent_partial_hooks_runas():
    spec = agent_parse(HEAD + "hooks:\n  test_hook:\n    - location: test_location\n    - location: test_location_lr\n"
                       "      runas: foo3\n")
    assert hook_values(spec, "test_hook", "runas") == [None, "foo3"]


def test_agent_partial_hooks_timeout():
    spec = agent_parse(HEAD + "hooks:\n  test_hook:\n    - location: test_location\n    - location: test_location_lt\n"
                       "      timeout: 30\n")
    assert hook_values(spec, "test_hook", "timeout") == [3600, 30]


def test_agent_empty_hook_is_ignored():
    spec = agent_parse(HEAD + "hooks:\n  empty_test_hook:\n  test_hook:\n    - location: test_location\n      timeout: 30\n")
    assert "empty_test_hook" not in spec["hooks"]
    assert hook_values(spec, "test_hook", "location") == ["test_location"]


@pytest.mark.parametrize("files, expected", [
    ("  - source: test_source\n    destination: test_destination\n",
     [{"source": "test_source", "destination": "test_destination"}]),
    ("  - source: test_source\n    destination: test_destination\n  - source: test_source_2\n    destination: test_destination_2\n",
     [{"source": "test_source", "destination": "test_destination"},
      {"source": "test_source_2", "destination": "test_destination_2"}]),
], ids=["single file", "multiple files"])
def test_agent_file_mappings(files, expected):
    assert agent_parse(HEAD + "files:\n" + files)["files"] == expected


def test_agent_permission_pattern_of_double_star():
    spec = agent_parse(HEAD + "permissions:\n  - object: '/'\n    pattern: '**'\n")
    assert spec["permissions"][0]["pattern"] == "**"


def test_agent_multiple_permissions_and_defaults():
    spec = agent_parse(HEAD + "permissions:\n  - object: '/'\n  - object: test\n  - object: more\n")
    assert [p["object"] for p in spec["permissions"]] == ["/", "test", "more"]
    assert spec["permissions"][0] == {"object": "/", "pattern": "**", "except": [], "type": ["file", "directory"],
                                      "owner": None, "group": None, "mode": None, "acls": None, "context": None}


def test_agent_valid_permission_object():
    spec = agent_parse(HEAD + textwrap.dedent("""\
        permissions:
          - object: 'test'
            pattern: 'prefix*'
            except: ['*ReadMe', '*.tmp']
            type: ['file']
            owner: 'bob'
            group: 'dev'
            mode: 6763
            acls:
              - 'u:henry:7'
              - 'd:g:manager:rw'
            context:
              name: 'user_u'
              type: 'unconfined_t'
              range: 's3-s5:c0.c7,c13'
        """))
    permission = spec["permissions"][0]
    assert permission["object"] == "test"
    assert permission["pattern"] == "prefix*"
    assert permission["except"] == ["*ReadMe", "*.tmp"]
    assert permission["type"] == ["file"]
    assert permission["owner"] == "bob"
    assert permission["group"] == "dev"
    assert permission["mode"] == "6763"
    assert permission["acls"] == [
        {"default": False, "type": "user", "name": "henry", "read": True, "write": True, "execute": True,
         "ace": "user:henry:rwx"},
        {"default": True, "type": "group", "name": "manager", "read": True, "write": True, "execute": False,
         "ace": "default:group:manager:rw-"},
    ]
    assert permission["context"] == {"name": "user_u", "type": "unconfined_t", "range": "s3-s5:c0.c7,c13"}
    parsed = A.parse_selinux_range("s3-s5:c0.c7,c13")
    assert (parsed["low_sensitivity"], parsed["high_sensitivity"]) == (3, 5)
    assert parsed["categories"] == [0, 1, 2, 3, 4, 5, 6, 7, 13]


def aces(text):
    return [(a["default"], a["type"], a["name"], a["read"], a["write"], a["execute"])
            for a in agent_parse(perm(text))["permissions"][0]["acls"]]


def test_agent_acl_with_four_parts():
    assert aces("acls:\n  - 'd:u:bob:rwx'\n  - 'default:g:dev:rw'\n") == [
        (True, "user", "bob", True, True, True),
        (True, "group", "dev", True, True, False),
    ]


def test_agent_acl_with_three_parts():
    text = "acls:\n" + "".join("  - '%s'\n" % e for e in (
        "d:bob:rwx", "default::rw", "m::7", "mask::7", "g:dev:7", "group:dev:7", "u:bob:7", "user:bob:7", "u:mask:7", "u:other:7"))
    assert aces(text) == [
        (True, "user", "bob", True, True, True),
        (True, "user", "", True, True, False),
        (False, "mask", "", True, True, True),
        (False, "mask", "", True, True, True),
        (False, "group", "dev", True, True, True),
        (False, "group", "dev", True, True, True),
        (False, "user", "bob", True, True, True),
        (False, "user", "bob", True, True, True),
        (False, "user", "mask", True, True, True),
        (False, "user", "other", True, True, True),
    ]


def test_agent_acl_with_two_parts():
    assert aces("acls:\n  - 'bob:0'\n  - 'm:7'\n  - 'mask:'\n") == [
        (False, "user", "bob", False, False, False),
        (False, "mask", "", True, True, True),
        (False, "mask", "", False, False, False),
    ]


def test_agent_acl_present_but_empty():
    assert agent_parse(perm("acls: []\n"))["permissions"][0]["acls"] == []


def test_agent_acl_with_existing_aces():
    found = aces("acls:\n" + "".join("  - '%s'\n" % e for e in ("bob:6", "m:6", "d:bob:0", "d::3", "d:g::4", "d:o:3", "d:m:7")))
    assert len(found) == 7
    assert [f[:3] for f in found] == [(False, "user", "bob"), (False, "mask", ""), (True, "user", "bob"), (True, "user", ""),
                                      (True, "group", ""), (True, "other", ""), (True, "mask", "")]


def test_agent_single_sensitivity():
    spec = agent_parse(perm("context:\n  type: 'type'\n  range: 's5'\n"))
    assert spec["permissions"][0]["context"] == {"name": None, "type": "type", "range": "s5"}
    parsed = A.parse_selinux_range("s5")
    assert (parsed["low_sensitivity"], parsed["high_sensitivity"], parsed["categories"]) == (5, 5, None)


def test_agent_valid_category():
    spec = agent_parse(perm("context:\n  type: 'type'\n  range: 's0:c0.c1,c15,c7.c9'\n"))
    assert spec["permissions"][0]["context"]["range"] == "s0:c0.c1,c7.c9,c15"
    assert A.parse_selinux_range("s0:c0.c1,c15,c7.c9")["categories"] == [0, 1, 7, 8, 9, 15]


@pytest.mark.parametrize("text, expected", [("s3", "s3"), ("s3-s7:c5,c8.c10,c17", "s3-s7:c5,c8.c10,c17"),
                                            ("s2-s2:c3,c1,c2", "s2:c1.c3")])
def test_agent_context_get_range(text, expected):
    assert A.parse_selinux_range(text)["range"] == expected


@pytest.mark.parametrize("text, expected", [("d:u:bob:7", "default:user:bob:rwx"), ("m:0", "mask::---"),
                                            ("g:dev:r-x", "group:dev:r-x"), ("d:o:5", "default:other::r-x")])
def test_agent_ace_get_ace(text, expected):
    assert A.parse_ace(text)["ace"] == expected


@pytest.mark.parametrize("mode, expected", [
    ("7777", "7777"),
    ("0000", "0000"),  # the agent reads the YAML 1.1 integer 0 and gets 000; the scalar as written is 0000 (Decision)
    ("777", "777"),
    ("12", "012"),
    ("6763", "6763"),
])
def test_agent_valid_modes(mode, expected):
    assert agent_parse(perm("mode: %s\n" % mode))["permissions"][0]["mode"] == expected


# -- the install-time checks of the agent's LinuxPermissionInfo --------------------------

@pytest.mark.parametrize("body, expected", [
    ("pattern: 'glob'\n", FILE_PATTERN("/", "glob")),
    ("except:\n  - 'glob'\n", FILE_EXCEPT('["glob"]', "/")),
    ("", None),
    ("pattern: 'glob'\ntype:\n  - \"directory\"\n", None),
], ids=["pattern on a file", "except on a file", "plain", "pattern for directories only"])
def test_agent_validate_file_permission(body, expected):
    text = HEAD + "permissions:\n  - object: '/'\n" + textwrap.indent(body, "    ")
    permission = agent_parse(text)["permissions"][0]
    if expected is None:
        A.validate_file_permission(permission)
    else:
        with pytest.raises(A.AppSpecError) as info:
            A.validate_file_permission(permission)
        assert info.value.agent_message == expected


@pytest.mark.parametrize("entry, expected", [("user:name:rwx", None), ("d:user:name:rwx", ACL_DEFAULT_ON_FILE)])
def test_agent_validate_file_acl(entry, expected):
    permission = agent_parse(HEAD + "permissions:\n  - object: '/'\n    acls:\n      - '%s'\n" % entry)["permissions"][0]
    if expected is None:
        A.validate_file_acl(permission)
    else:
        with pytest.raises(A.AppSpecError) as info:
            A.validate_file_acl(permission)
        assert str(info.value).startswith(expected)


# --------------------------------------------------------------------------------------
# 3. Check order: version, os, hooks, files, permissions, file_exists_behavior, events
# --------------------------------------------------------------------------------------

BAD = {
    "version": "version: 9\n",
    "os": "os: solaris\n",
    "hooks": "hooks:\n  AfterInstall:\n    - timeout: 5\n",
    "files": "files:\n  - source: x\n",
    "permissions": "permissions:\n  - mode: 644\n",
    "file_exists_behavior": "file_exists_behavior: KEEP\n",
    "events": "hooks:\n  AfterInstal:\n    - location: a.sh\n",
}
GOOD = {"version": "version: 0.0\n", "os": "os: linux\n"}
EXPECTED_FIRST = {
    "version": VERSION("9"),
    "os": OS("solaris"),
    "hooks": NO_LOCATION,
    "files": NO_DESTINATION("x"),
    "permissions": NO_OBJECT,
    "file_exists_behavior": FILE_EXISTS("KEEP"),
    "events": UNKNOWN_EVENTS('["AfterInstal"]'),
}
ORDER = ["version", "os", "hooks", "files", "permissions", "file_exists_behavior", "events"]
ORDER_CASES = [(ORDER[i], later) for i in range(len(ORDER)) for later in ORDER[i + 1:] if {ORDER[i], later} != {"hooks", "events"}]


@pytest.mark.parametrize("first, later", ORDER_CASES, ids=["%s-before-%s" % c for c in ORDER_CASES])
def test_check_order_first_error_wins(first, later):
    # The later error is written first in the file: the order of checks, not of lines, decides.
    sections = [BAD[later], BAD[first]]
    for key, text in GOOD.items():
        if key not in (first, later):
            sections.insert(0, text)
    err = error_of("".join(sections))
    assert err.agent_message == EXPECTED_FIRST[first]


def test_check_order_inside_a_permission():
    # object is checked before the os, the os before the fields, the fields before an empty object
    assert error_of("version: 0.0\nos: windows\npermissions:\n  - mode: 9\n", os_family=None).agent_message == NO_OBJECT
    assert error_of("version: 0.0\nos: windows\npermissions:\n  - object: /x\n    mode: 9\n",
                    os_family=None).agent_message == PERMISSIONS_WINDOWS
    assert error_of(HEAD + "permissions:\n  - object: ' '\n    mode: 9\n").agent_message == MODE_CHAR("009", "9")
    assert error_of(HEAD + "permissions:\n  - object: ' '\n").agent_message == NO_OBJECT
    assert error_of(HEAD + "permissions:\n  - object: /x\n    type: [link]\n    mode: 9\n").agent_message == PERMISSION_TYPE("link")


# --------------------------------------------------------------------------------------
# 4. Each message, with where and how to fix
# --------------------------------------------------------------------------------------

MESSAGE_CASES = [
    # id, text, agent message, key, line, words of the hint
    ("version float", "version: 1.0\nos: linux\n", VERSION("1.0"), "version", 1, "version: 0.0"),
    ("version null", "version:\nos: linux\n", VERSION(""), "version", 1, "version: 0.0"),
    ("version false", "version: false\nos: linux\n", VERSION("false"), "version", 1, "version: 0.0"),
    ("version string 0", "version: '0'\nos: linux\n", VERSION("0"), "version", 1, "version: 0.0"),
    ("version three parts", "version: 0.0.0\nos: linux\n", VERSION("0.0.0"), "version", 1, "version: 0.0"),
    ("os upper case", "version: 0.0\nos: Linux\n", OS("Linux"), "os", 2, "case-sensitive"),
    ("os windows on linux", "version: 0.0\nos: windows\n", OS("windows"), "os", 2, "os: linux"),
    ("ecs appspec", "version: 0.0\nResources: []\n", OS(""), "os", 1, "ECS or Lambda"),
    ("empty location", HEAD + "hooks:\n  AfterInstall:\n    - location: '  '\n", NO_LOCATION,
     "hooks.AfterInstall[0].location", 5, "location"),
    ("null location", HEAD + "hooks:\n  AfterInstall:\n    - location:\n      timeout: 3\n", NO_LOCATION,
     "hooks.AfterInstall[0].location", 5, "location"),
    ("script as a string", HEAD + "hooks:\n  AfterInstall:\n    - scripts/a.sh\n", NO_LOCATION,
     "hooks.AfterInstall[0]", 5, "- location: scripts/a.sh"),
    ("timeout zero", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: 0\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, "greater than 0"),
    ("timeout negative", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: -5\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, "greater than 0"),
    ("timeout abc", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: abc\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, '"abc" is not a number'),
    ("timeout boolean", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: yes\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, "not a number"),
    ("timeout list", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: [1]\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, "not a number"),
    ("timeout infinite", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: .inf\n", TIMEOUT,
     "hooks.AfterInstall[0].timeout", 6, "timeout: 300"),
    ("no source", HEAD + "files:\n  - destination: /srv\n", NO_SOURCE, "files[0].source", 4, "source:"),
    ("no destination", HEAD + "files:\n  - source: /\n    destination:\n", NO_DESTINATION("/"), "files[0].destination", 4,
     "destination:"),
    ("no object", HEAD + "permissions:\n  - object:\n", NO_OBJECT, "permissions[0].object", 4, "object:"),
    ("permission type", HEAD + "permissions:\n  - object: /srv\n    type: [file, link]\n", PERMISSION_TYPE("link"),
     "permissions[0].type[1]", 5, "'file' and 'directory'"),
    ("mode digit 8", HEAD + "permissions:\n  - object: /srv\n    mode: 8\n", MODE_CHAR("008", "8"), "permissions[0].mode", 5,
     "octal"),
    ("mode python octal", HEAD + "permissions:\n  - object: /srv\n    mode: 0o64\n", MODE_CHAR("0o64", "o"),
     "permissions[0].mode", 5, "octal"),
    ("mode empty", HEAD + "permissions:\n  - object: /srv\n    mode: ''\n", MODE_LENGTH(""), "permissions[0].mode", 5, "empty"),
    ("acl entry", HEAD + "permissions:\n  - object: /srv\n    acls:\n      - ok:rwx\n      - nope\n", ACL_ENTRY("nope"),
     "permissions[0].acls[1]", 7, "u:alice:rwx"),
    ("acl character", HEAD + "permissions:\n  - object: /srv\n    acls: ['u:bob:8']\n", ACL_CHAR("u:bob:8", "8"),
     "permissions[0].acls[0]", 5, "octal digit"),
    ("acl base", HEAD + "permissions:\n  - object: /srv\n    acls: ['user::rw']\n", ACL_BASE("user::rw"),
     "permissions[0].acls[0]", 5, "mode"),
    ("context as a string", HEAD + "permissions:\n  - object: /srv\n    context: httpd_t\n", CONTEXT_TYPE('"httpd_t"'),
     "permissions[0].context", 5, "type:"),
    ("context type null", HEAD + "permissions:\n  - object: /srv\n    context: {type: ~, range: s0}\n",
     CONTEXT_TYPE('{"type"=>nil, "range"=>"s0"}'), "permissions[0].context.type", 5, "type:"),
    ("context range", HEAD + "permissions:\n  - object: /srv\n    context:\n      type: t\n      range: s1-s0\n", RANGE("s1-s0"),
     "permissions[0].context.range", 7, "high sensitivity"),
    ("file_exists_behavior lower case", HEAD + "file_exists_behavior: retain\n", FILE_EXISTS("retain"), "file_exists_behavior", 3,
     "file_exists_behavior: RETAIN"),
    ("file_exists_behavior number", HEAD + "file_exists_behavior: 1\n", FILE_EXISTS("1"), "file_exists_behavior", 3,
     "DISALLOW, OVERWRITE or RETAIN"),
]


@pytest.mark.parametrize("text, expected, key, line, hint", [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_messages_say_where_and_how(text, expected, key, line, hint):
    err = error_of(text)
    assert err.agent_message == expected
    assert str(err).startswith(expected + " (appspec.yml line %d, %s: " % (line, key))
    assert (err.key, err.line) == (key, line)
    assert hint in str(err)


# --------------------------------------------------------------------------------------
# 5. Unknown and reserved lifecycle events
# --------------------------------------------------------------------------------------

def test_unknown_event_lists_the_valid_ones():
    err = error_of(HEAD + "hooks:\n  AfterInstall:\n    - location: a.sh\n  AfterInstal:\n    - location: b.sh\n")
    assert err.agent_message == UNKNOWN_EVENTS('["AfterInstal"]')
    assert (err.key, err.line) == ("hooks.AfterInstal", 6)
    assert ("valid lifecycle events: BeforeBlockTraffic, AfterBlockTraffic, ApplicationStop, BeforeInstall, AfterInstall, "
            "ApplicationStart, ValidateService, BeforeAllowTraffic, AfterAllowTraffic") in str(err)
    assert "did you mean AfterInstall?" in str(err)


def test_several_unknown_events_and_case():
    err = error_of(HEAD + "hooks:\n  afterinstall:\n    - location: a.sh\n  Deploy:\n    - location: b.sh\n")
    assert err.agent_message == UNKNOWN_EVENTS('["afterinstall", "Deploy"]')
    assert "AfterInstall (for afterinstall)" in str(err)
    assert "case-sensitive" in str(err)


def test_allowed_events_restrict_hooks():
    no_lb = [e for e in A.EC2_LIFECYCLE_EVENTS if "Traffic" not in e]
    text = HEAD + "hooks:\n  BeforeAllowTraffic:\n    - location: a.sh\n"
    assert parse(text)[0]["hooks"]["BeforeAllowTraffic"][0]["location"] == "a.sh"
    err = error_of(text, allowed_events=no_lb)
    assert err.agent_message == UNKNOWN_EVENTS('["BeforeAllowTraffic"]')
    assert "valid lifecycle events: ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService" in str(err)


def test_unknown_event_without_scripts_only_warns():
    spec, warnings = parse(HEAD + "hooks:\n  AfterInstal:\n")
    assert spec["hooks"] == {}
    assert warnings == ["appspec.yml line 4, hooks.AfterInstal: unknown lifecycle event AfterInstal (with no scripts) is ignored"]


@pytest.mark.parametrize("event, instead", [("Install", "BeforeInstall or AfterInstall"),
                                            ("DownloadBundle", "ApplicationStop or BeforeInstall"),
                                            ("BlockTraffic", "BeforeBlockTraffic or AfterBlockTraffic"),
                                            ("AllowTraffic", "BeforeAllowTraffic or AfterAllowTraffic")])
def test_reserved_event_hooks_warn(event, instead):
    spec, warnings = parse(HEAD + "hooks:\n  %s:\n    - location: a.sh\n" % event)
    assert spec["hooks"][event][0]["location"] == "a.sh"
    assert len(warnings) == 1
    assert warnings[0].startswith("appspec.yml line 4, hooks.%s: %s is done by the deployment itself" % (event, event))
    assert instead in warnings[0]


def test_event_constants():
    assert A.EC2_LIFECYCLE_EVENTS == (
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall",
        "Install", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AllowTraffic",
        "AfterAllowTraffic")
    assert set(A.RESERVED_EVENTS) == {"DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"}
    assert set(A.OLD_REVISION_EVENTS) == {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
    assert set(A.RESERVED_EVENTS) | set(A.OLD_REVISION_EVENTS) <= set(A.EC2_LIFECYCLE_EVENTS)
    assert A.DEFAULT_SCRIPT_TIMEOUT == 3600


# --------------------------------------------------------------------------------------
# 6. YAML problems and wrong types: never a traceback
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ("version: [0.0\nos: linux\n", 2, "expected ',' or ']'"),
    ("version: 0.0\nos: linux\nhooks:\n\tAfterInstall: []\n", 4, "tab"),
    ("version: 0.0\nos: linux\n  files: []\n", 3, "mapping values are not allowed here"),
    ("version: 0.0\n---\nos: linux\n", 2, "expected a single document"),
    ("version: 0.0\nos: &a linux\nfiles: *b\n", 3, "undefined alias"),
    ("version: 0.0\nos: linux\nhooks: !!python/name:os.system\n", 3, "could not determine a constructor"),
], ids=["unclosed bracket", "tab", "bad indentation", "two documents", "unknown alias", "unsafe tag"])
def test_yaml_errors(text, line, words):
    err = error_of(text)
    assert str(err).startswith("The application specification file is not valid YAML: ")
    assert err.line == line
    assert words in str(err)


@pytest.mark.parametrize("text", ["~\n", "# only a comment\n", "false\n", "---\n...\n"])
def test_empty_documents(text):
    err = error_of(text)
    assert err.agent_message == EMPTY


@pytest.mark.parametrize("text, what", [("- version: 0.0\n", "a list"), ("just text\n", 'a string ("just text")'),
                                        ("42\n", "a number (42)")])
def test_document_must_be_a_mapping(text, what):
    err = error_of(text)
    assert str(err).startswith("The application specification file must be a YAML mapping of keys such as 'version' and 'os', "
                               "not %s." % what)
    assert err.line == 1


WRONG_TYPE_CASES = [
    ("hooks as a list", HEAD + "hooks:\n  - AfterInstall\n", "hooks", "a mapping of lifecycle event names to lists of scripts",
     "a list", 4),
    ("hooks as a string", HEAD + "hooks: AfterInstall\n", "hooks", "a mapping of lifecycle event names", 'a string ("AfterInstall")',
     3),
    ("scripts as a string", HEAD + "hooks:\n  AfterInstall: a.sh\n", "hooks.AfterInstall", "a list of scripts",
     'a string ("a.sh")', 4),
    ("script as a number", HEAD + "hooks:\n  AfterInstall:\n    - 5\n", "hooks.AfterInstall[0]", "a mapping with a 'location' key",
     "a number (5)", 5),
    ("location as a list", HEAD + "hooks:\n  AfterInstall:\n    - location: [a]\n", "hooks.AfterInstall[0].location", "a path",
     "a list", 5),
    ("runas as a mapping", HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      runas: {a: 1}\n",
     "hooks.AfterInstall[0].runas", "a user name", "a mapping", 6),
    ("files as a string", HEAD + "files: /srv\n", "files", "a list of source/destination mappings", 'a string ("/srv")', 3),
    ("files as a mapping", HEAD + "files:\n  source: /\n  destination: /srv\n", "files", "a list of source/destination",
     "a mapping", 4),
    ("files entry as a string", HEAD + "files:\n  - /srv\n", "files[0]", "a mapping with 'source' and 'destination'",
     'a string ("/srv")', 4),
    ("source as a list", HEAD + "files:\n  - source: [a]\n    destination: /srv\n", "files[0].source", "a path inside the revision",
     "a list", 4),
    ("permissions as a mapping", HEAD + "permissions:\n  object: /srv\n", "permissions", "a list of permission entries",
     "a mapping", 4),
    ("permission as a string", HEAD + "permissions:\n  - /srv\n", "permissions[0]", "a mapping with an 'object' key",
     'a string ("/srv")', 4),
    ("except as a string", HEAD + "permissions:\n  - object: /srv\n    except: '*.tmp'\n", "permissions[0].except",
     "a list of glob patterns", 'a string ("*.tmp")', 5),
    ("type as a string", HEAD + "permissions:\n  - object: /srv\n    type: file\n", "permissions[0].type",
     "a list of object types", 'a string ("file")', 5),
    ("acls as a string", HEAD + "permissions:\n  - object: /srv\n    acls: u:bob:7\n", "permissions[0].acls",
     "a list of ACL entries", 'a string ("u:bob:7")', 5),
    ("acl entry as a mapping", HEAD + "permissions:\n  - object: /srv\n    acls:\n      - {u: bob}\n", "permissions[0].acls[0]",
     "an ACL entry", "a mapping", 6),
    ("mode as a list", HEAD + "permissions:\n  - object: /srv\n    mode: [6, 4, 4]\n", "permissions[0].mode", "an octal mode",
     "a list", 5),
    ("owner as a list", HEAD + "permissions:\n  - object: /srv\n    owner: [a]\n", "permissions[0].owner", "a user name",
     "a list", 5),
]


@pytest.mark.parametrize("text, key, expected, found, line", [c[1:] for c in WRONG_TYPE_CASES], ids=[c[0] for c in WRONG_TYPE_CASES])
def test_wrong_types(text, key, expected, found, line):
    err = error_of(text)
    assert str(err).startswith("The application specification file has a value of the wrong type: %s must be %s"
                               % (key, expected))
    assert ", not %s." % found in str(err)
    assert (err.key, err.line) == (key, line)


# --------------------------------------------------------------------------------------
# 7. YAML 1.1 traps: mode and version as written
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    ("0644", "0644"),
    ("644", "644"),
    ("'0644'", "0644"),
    ('"0755"', "0755"),
    ("0755", "0755"),
    ("4755", "4755"),
    ("755", "755"),
    ("1", "001"),
    ("'12'", "012"),
    ("0000", "0000"),
    ("000", "000"),
    ("0", "000"),
], ids=lambda v: v)
def test_mode_is_read_as_written(written, expected):
    spec, _warnings = parse(HEAD + "permissions:\n  - object: /srv\n    mode: %s\n" % written)
    assert spec["permissions"][0]["mode"] == expected
    assert A.mode_to_int(expected) == int(expected, 8)


@pytest.mark.parametrize("written, expected", [("0x1A", MODE_CHAR("0x1A", "x")), ("0644.0", MODE_LENGTH("0644.0")),
                                               ("1_00", MODE_CHAR("1_00", "_")), ("true", MODE_CHAR("true", "t"))])
def test_mode_yaml_forms_that_are_not_octal_digits(written, expected):
    assert error_of(HEAD + "permissions:\n  - object: /srv\n    mode: %s\n" % written).agent_message == expected


def test_acl_entries_are_read_as_written():
    # YAML 1.1 would read 1:3 as the sexagesimal integer 63, and 7 as an integer
    spec, _warnings = parse(HEAD + "permissions:\n  - object: /srv\n    acls:\n      - 1:3\n      - d:bob:7\n")
    assert [a["ace"] for a in spec["permissions"][0]["acls"]] == ["user:1:-wx", "default:user:bob:rwx"]
    err = error_of(HEAD + "permissions:\n  - object: /srv\n    acls:\n      - 7\n")
    assert err.agent_message == ACL_ENTRY("7")


@pytest.mark.parametrize("written, warns", [("0.0", False), ("0", False), ("0.00", False), ("'0.0'", True), ('"0.0"', True),
                                            ("0x0", False)], ids=str)
def test_version_forms(written, warns):
    spec, warnings = parse("version: %s\nos: linux\n" % written)
    assert spec["version"] == "0.0"
    assert bool(warnings) is warns
    if warns:
        assert "the CodeDeploy agent accepts only the number" in warnings[0]


# --------------------------------------------------------------------------------------
# 8. Normalization, decisions and warnings
# --------------------------------------------------------------------------------------

def test_full_appspec_normalized():
    spec, warnings = parse("""\
        version: 0.0
        os: linux
        files:
          - source: /
            destination: /srv/app
          - source: config/app.conf
            destination: /etc/app
        permissions:
          - object: /srv/app
            pattern: "*.sh"
            except: [skip.sh]
            owner: app
            group: app
            mode: 0750
            type:
              - file
            context:
              type: httpd_sys_content_t
        hooks:
          ApplicationStop:
            - location: scripts/stop.sh
              timeout: 60
          AfterInstall:
            - location: /scripts/install.sh
              timeout: 300
              runas: app
            - location: scripts/migrate.sh
              timeout: "120"
              sudo: yes
        file_exists_behavior: OVERWRITE
        """)
    assert warnings == []
    assert spec == {
        "version": "0.0",
        "os": "linux",
        "files": [{"source": "/", "destination": "/srv/app"}, {"source": "config/app.conf", "destination": "/etc/app"}],
        "hooks": {
            "ApplicationStop": [{"location": "scripts/stop.sh", "timeout": 60, "runas": None, "sudo": False}],
            "AfterInstall": [{"location": "/scripts/install.sh", "timeout": 300, "runas": "app", "sudo": False},
                             {"location": "scripts/migrate.sh", "timeout": 120, "runas": None, "sudo": True}],
        },
        "permissions": [{"object": "/srv/app", "pattern": "*.sh", "except": ["skip.sh"], "type": ["file"], "owner": "app",
                         "group": "app", "mode": "0750", "acls": None,
                         "context": {"name": None, "type": "httpd_sys_content_t", "range": None}}],
        "file_exists_behavior": "OVERWRITE",
    }


@pytest.mark.parametrize("value", ["DISALLOW", "OVERWRITE", "RETAIN"])
def test_file_exists_behavior_values(value):
    assert parse(HEAD + "file_exists_behavior: %s\n" % value)[0]["file_exists_behavior"] == value


def test_context_without_range_works():
    spec, warnings = parse(HEAD + "permissions:\n  - object: /srv\n    context:\n      name: system_u\n      type: var_t\n")
    assert spec["permissions"][0]["context"] == {"name": "system_u", "type": "var_t", "range": None}
    assert warnings == []


def test_context_user_key_warns():
    spec, warnings = parse(HEAD + "permissions:\n  - object: /srv\n    context:\n      user: system_u\n      type: var_t\n")
    assert spec["permissions"][0]["context"]["name"] is None
    assert warnings == ["appspec.yml line 6, permissions[0].context.user: the agent reads the SELinux user from 'name', "
                        "so 'user' is ignored; rename it to 'name'"]


def test_scripts_values_converted_like_the_agent():
    spec, warnings = parse(HEAD + "hooks:\n  AfterInstall:\n    - location: '  a.sh  '\n      timeout: 30.7\n      runas: '  '\n"
                           "    - location: 12\n      timeout: '45s'\n      sudo: 1\n")
    assert spec["hooks"]["AfterInstall"] == [{"location": "a.sh", "timeout": 30, "runas": None, "sudo": False},
                                             {"location": "12", "timeout": 45, "runas": None, "sudo": True}]
    assert len(warnings) == 3
    assert "line 6, hooks.AfterInstall[0].timeout: timeout 30.7 is truncated to 30 seconds" in warnings[0]
    assert "line 10, hooks.AfterInstall[1].sudo: sudo should be true or false" in warnings[1]
    assert 'line 9, hooks.AfterInstall[1].timeout: timeout "45s" is read as 45 seconds' in warnings[2]


def test_event_timeouts_over_the_service_limit_warn():
    _spec, warnings = parse(HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: 3000\n    - location: b\n"
                            "      timeout: 1000\n")
    assert warnings == ["appspec.yml line 4, hooks.AfterInstall: the timeouts of this event's scripts add up to 4000 seconds; "
                        "CodeDeploy limits one lifecycle event to 3600 seconds in total"]


def test_unknown_keys_warn_and_are_ignored():
    spec, warnings = parse(HEAD + "hook:\n  AfterInstall: []\nfiles:\n  - source: /\n    destination: /srv\n    owner: app\n"
                           "hooks:\n  AfterInstall:\n    - location: a\n      tiemout: 5\n")
    assert spec["hooks"]["AfterInstall"][0]["timeout"] == 3600
    assert "files" in spec and spec["files"] == [{"source": "/", "destination": "/srv"}]
    assert len(warnings) == 3
    # hooks are read before files (the agent's order); unknown top-level keys come last
    assert "hooks.AfterInstall[0].tiemout: unknown key 'tiemout'" in warnings[0] and "did you mean 'timeout'?" in warnings[0]
    assert "files[0].owner: unknown key 'owner' in a files entry is ignored" in warnings[1]
    assert "set ownership in the permissions section" in warnings[1]
    assert warnings[2].startswith("appspec.yml line 3, hook: unknown key 'hook' in the AppSpec is ignored")
    assert "did you mean 'hooks'?" in warnings[2]


def test_duplicate_keys_warn_and_the_later_wins():
    spec, warnings = parse(HEAD + "file_exists_behavior: RETAIN\nfile_exists_behavior: OVERWRITE\n")
    assert spec["file_exists_behavior"] == "OVERWRITE"
    assert warnings == ["appspec.yml line 3, file_exists_behavior: duplicate key 'file_exists_behavior'; "
                        "the later value (line 4) wins"]


def test_anchors_and_merge_keys():
    spec, warnings = parse(HEAD + "x-script: &s {location: a.sh, timeout: 5}\nhooks:\n  AfterInstall:\n    - <<: *s\n"
                           "      runas: bob\n  ApplicationStart:\n    - *s\n")
    assert spec["hooks"] == {"AfterInstall": [{"location": "a.sh", "timeout": 5, "runas": "bob", "sudo": False}],
                             "ApplicationStart": [{"location": "a.sh", "timeout": 5, "runas": None, "sudo": False}]}
    assert len(warnings) == 1 and "unknown key 'x-script'" in warnings[0]


def test_os_family():
    assert parse("version: 0.0\nos: windows\n", os_family="windows")[0]["os"] == "windows"
    assert parse("version: 0.0\nos: windows\n", os_family=None)[0]["os"] == "windows"
    assert error_of("version: 0.0\nos: linux\n", os_family="windows").agent_message == OS("linux")
    err = error_of("version: 0.0\nos: windows\npermissions:\n  - object: C:\\app\n", os_family="windows")
    assert err.agent_message == PERMISSIONS_WINDOWS
    assert (err.key, err.line) == ("permissions[0]", 4)


def test_bytes_and_bom_input():
    spec, _warnings = A.parse_appspec(b"\xef\xbb\xbfversion: 0.0\nos: linux\n")
    assert spec["os"] == "linux"
    with pytest.raises(A.AppSpecError) as info:
        A.parse_appspec(b"version: 0.0\nos: \xff\n", source="x/appspec.yml")
    assert str(info.value).startswith("The application specification file is not UTF-8 text: ")


def test_error_attributes():
    err = A.AppSpecError("Something failed.", key="hooks.AfterInstall[0].timeout", line=7, hint="fix it", source="appspec.yml")
    assert str(err) == err.message == "Something failed. (appspec.yml line 7, hooks.AfterInstall[0].timeout: fix it)"
    assert (err.agent_message, err.key, err.line, err.hint) == ("Something failed.", "hooks.AfterInstall[0].timeout", 7, "fix it")
    assert str(A.AppSpecError("Bare.")) == "Bare."
    assert isinstance(err, Exception)


def test_parse_helpers_directly():
    assert A.parse_mode("644") == "644"
    assert A.parse_mode(7) == "007"
    with pytest.raises(A.AppSpecError):
        A.parse_mode(None)
    assert A.parse_ace("g:dev:r-x") == {"default": False, "type": "group", "name": "dev", "read": True, "write": False,
                                        "execute": True, "ace": "group:dev:r-x"}
    with pytest.raises(A.AppSpecError) as info:
        A.parse_selinux_range("")
    assert info.value.agent_message == "invalid range part "
    with pytest.raises(A.AppSpecError) as info:
        A.parse_selinux_range("s0:c1.c2.c3")
    assert info.value.agent_message == "invalid category c2.c3"
    assert A.parse_selinux_range("s0:c1,")["categories"] == [1]  # Ruby's split drops the trailing empty field
    with pytest.raises(A.AppSpecError) as info:
        A.parse_selinux_range("s0:,c1")
    assert info.value.agent_message == "invalid category "


# --------------------------------------------------------------------------------------
# 9. Files on disk and script paths
# --------------------------------------------------------------------------------------

def test_find_appspec(tmp_path):
    assert A.find_appspec(str(tmp_path)) is None
    (tmp_path / "appspec.yaml").write_text(HEAD)
    assert A.find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yaml")
    (tmp_path / "appspec.yml").write_text(HEAD)
    assert A.find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yml")


def test_load_appspec_file(tmp_path):
    (tmp_path / "appspec.yaml").write_text(HEAD + "hooks:\n  AfterInstall:\n    - location: a\n      timeout: x\n")
    with pytest.raises(A.AppSpecError) as info:
        A.load_appspec_file(str(tmp_path))
    assert info.value.source == str(tmp_path / "appspec.yaml")
    assert str(info.value).startswith(TIMEOUT + " (%s line 6, hooks.AfterInstall[0].timeout: " % (tmp_path / "appspec.yaml"))
    (tmp_path / "appspec.yml").write_text(HEAD)
    assert A.load_appspec_file(str(tmp_path))[0]["os"] == "linux"
    assert A.load_appspec_file(str(tmp_path / "appspec.yml"))[0]["version"] == "0.0"


def test_load_appspec_file_missing(tmp_path):
    with pytest.raises(A.AppSpecError) as info:
        A.load_appspec_file(str(tmp_path))
    expected = ('The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative '
                'path "appspec.yml". The revision was unpacked to directory "%s", and the AppSpec file was expected but not found '
                'at path "%s/appspec.yml". Consult the AWS CodeDeploy Appspec documentation for more information at '
                'http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html' % (tmp_path, tmp_path))
    assert info.value.agent_message == expected
    (tmp_path / "AppSpec.yml").write_text(HEAD)
    with pytest.raises(A.AppSpecError) as info:
        A.load_appspec_file(str(tmp_path))
    assert "rename AppSpec.yml to appspec.yml" in str(info.value)
    with pytest.raises(A.AppSpecError) as info:
        A.load_appspec_file(str(tmp_path / "nope.yml"))
    assert str(info.value).startswith("The application specification file cannot be read: ")


def _revision(tmp_path):
    root = tmp_path / "revision"
    (root / "scripts").mkdir(parents=True)
    for name in ("ok.sh", "stop.sh"):
        (root / "scripts" / name).write_text("#!/bin/sh\n")
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\n")
    os.symlink(str(outside), str(root / "scripts" / "escape.sh"))
    os.symlink("ok.sh", str(root / "scripts" / "alias.sh"))
    os.symlink(str(tmp_path), str(root / "up"))
    return root


SCRIPT_PATH_CASES = [
    ("present", "scripts/ok.sh", None),
    ("leading slash", "/scripts/ok.sh", None),
    ("symlink inside", "scripts/alias.sh", None),
    ("dot segments inside", "scripts/../scripts/./ok.sh", None),
    ("missing", "scripts/nope.sh", "missing"),
    ("dot-dot outside", "../outside.sh", "outside_revision"),
    ("dot-dot deep", "scripts/../../outside.sh", "outside_revision"),
    ("symlinked file outside", "scripts/escape.sh", "outside_revision"),
    ("symlinked directory outside", "up/outside.sh", "outside_revision"),
    ("directory", "scripts", "not_a_file"),
]


@pytest.mark.parametrize("location, problem", [c[1:] for c in SCRIPT_PATH_CASES], ids=[c[0] for c in SCRIPT_PATH_CASES])
def test_script_path_problems(tmp_path, location, problem):
    root = _revision(tmp_path)
    spec, _warnings = parse(HEAD + "hooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n  ValidateService:\n"
                            "    - location: scripts/ok.sh\n    - location: '%s'\n" % location)
    problems = A.script_path_problems(spec, str(root))
    if problem is None:
        assert problems == []
        return
    assert len(problems) == 1
    found = problems[0]
    assert (found["event"], found["index"], found["location"], found["problem"]) == ("ValidateService", 1, location, problem)
    if problem == "missing":
        assert found["message"].startswith("Script does not exist at specified location: %s" % (root / "scripts" / "nope.sh"))
        assert found["path"] == str(root / "scripts" / "nope.sh")
    elif problem == "outside_revision":
        assert "outside the revision %s" % root in found["message"]
    else:
        assert "not a regular file" in found["message"]


def test_script_path_problems_skip_reserved_events(tmp_path):
    root = _revision(tmp_path)
    spec, _warnings = parse(HEAD + "hooks:\n  Install:\n    - location: nope.sh\n  AfterInstall:\n    - location: gone.sh\n")
    problems = A.script_path_problems(spec, str(root))
    assert [(p["event"], p["problem"]) for p in problems] == [("AfterInstall", "missing")]


@pytest.mark.parametrize("text, line, column, name", [
    ("version: 0.0\nos: linux\n# bell \x07\n", 3, 8, "U+0007 (BEL)"),
    (b"version: 0.0\nos: linux\n# bell \x07\n", 3, 8, "U+0007 (BEL)"),
    ("\x00version: 0.0\n", 1, 1, "U+0000 (NUL)"),
    ("version: 0.0\nos: linux\nfiles:\n  - source: a\x7f\n", 4, 14, "U+007F (DEL)"),
    ("version: 0.0\nos: \x9blinux\n", 2, 5, "U+009B (control character)"),
])
def test_unacceptable_characters_are_named_with_line_and_column(text, line, column, name):
    with pytest.raises(A.AppSpecError) as info:
        A.parse_appspec(text, source="rev/appspec.yml")
    message = info.value.message
    assert "the character %s at line %d, column %d is not allowed in YAML" % (name, line, column) in message
    assert "rev/appspec.yml line %d" % line in message and info.value.line == line
    assert "ReaderError" not in message and "#x00" not in message


@pytest.mark.parametrize("value, words", [
    ("2024-01-01", "a date (2024-01-01)"),
    ("2024-01-01 10:00:00", "a timestamp (2024-01-01T10:00:00)"),
    ("!!binary aGk=", "binary data"),
    ("!!set {a: null}", "a set"),
])
def test_no_python_type_names_in_messages(value, words):
    with pytest.raises(A.AppSpecError) as info:
        A.parse_appspec("version: 0.0\nos: linux\nhooks:\n  AfterInstall: %s\n" % value, source="appspec.yml")
    assert words in info.value.message
    for python_name in ("datetime", "bytes", "set'", "NoneType"):
        assert python_name not in info.value.message
