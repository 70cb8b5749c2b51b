# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EC2/on-premises AppSpec rules of the CodeDeploy agent, in one place.

``parse_appspec`` reads an ``appspec.yml`` text and either returns the normalized AppSpec
with a list of warnings, or raises ``AppSpecError`` carrying the agent's own message
(so users can search for it), followed by where the problem is and how to fix it.

Checks run in the agent's order and the first error wins: version, os, hooks, files,
permissions, file_exists_behavior; then, like the agent once the file is parsed, the
lifecycle event names. See docs/agent-compatibility.md §1, §2 and §6 for the rules and the
places where this collection deliberately differs from the agent ("Decision" lines):

* ``version``: float ``0.0``, integer ``0`` and the quoted string ``"0.0"`` are accepted.
* ``mode``: read from the YAML scalar as written, so an unquoted ``0644`` is ``0644``
  (YAML 1.1 would otherwise read it as the integer 420). ACL entries are read the same
  way (an unquoted ``- 1:30`` is not turned into the sexagesimal integer 90).
* ``context`` without ``range`` is valid.

Pure Python (standard library plus PyYAML), Python 3.8 compatible: it runs on the
controller and on managed hosts.
"""

import datetime
import difflib
import json
import math
import os
import re

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import LIFECYCLE_ORDER

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as _yaml_exc:  # pragma: no cover - depends on the interpreter
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = _yaml_exc


# --------------------------------------------------------------------------------------
# Lifecycle events
# --------------------------------------------------------------------------------------

#: Every EC2/on-premises lifecycle event, in the order a deployment with a load balancer
#: runs them on one host (reserved events included).
EC2_LIFECYCLE_EVENTS = LIFECYCLE_ORDER

#: Events done by the deployment itself; hooks keyed on them never run.
RESERVED_EVENTS = ("DownloadBundle", "Install", "BlockTraffic", "AllowTraffic")

#: Events whose scripts come from the last successful revision on the host.
OLD_REVISION_EVENTS = ("ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic")

#: Events that run scripts, in lifecycle order.
SCRIPT_EVENTS = tuple(e for e in EC2_LIFECYCLE_EVENTS if e not in RESERVED_EVENTS)

#: Default timeout of one hook script, in seconds.
DEFAULT_SCRIPT_TIMEOUT = 3600

#: The service's limit on the total of one event's script timeouts, in seconds.
MAX_EVENT_TIMEOUT = 3600

APPSPEC_FILE_NAMES = ("appspec.yml", "appspec.yaml")
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
PERMISSION_TYPES = ("file", "directory")
SUPPORTED_OSES = ("linux", "windows")

_TOP_LEVEL_KEYS = ("version", "os", "files", "hooks", "permissions", "file_exists_behavior")
_SCRIPT_KEYS = ("location", "timeout", "runas", "sudo")
_FILE_KEYS = ("source", "destination")
_PERMISSION_KEYS = ("object", "pattern", "except", "type", "owner", "group", "mode", "acls", "context")
_CONTEXT_KEYS = ("name", "type", "range")


# --------------------------------------------------------------------------------------
# The agent's messages (verbatim, typos included, so that a search finds them)
# --------------------------------------------------------------------------------------

MSG_EMPTY = ("The deployment failed because the application specification file was empty. "
             "Make sure your AppSpec file defines at minimum the 'version' and 'os' properties.")
MSG_VERSION = ("The deployment failed because an invalid version value ({0}) was entered in the application "
               "specification file. Make sure your AppSpec file specifies \"0.0\" as the version, and then try again.")
MSG_OS = ("The deployment failed because the application specification file specifies an unsupported operating "
          "system ({0}). Specify either \"linux\" or \"windows\" in the os section of the AppSpec file, and then try again.")
MSG_NO_LOCATION = ("The deployment failed because the application specification file specifies a script with no "
                   "location value. Specify the location in the hooks section of the AppSpec file, and then try again.")
MSG_TIMEOUT = ("The deployment failed because an invalid timeout value was provided for a script in the application "
               "specification file. Make corrections in the hooks section of the AppSpec file, and then try again.")
MSG_NO_SOURCE = ("The deployment failed because the application specification file specifies a destination file, "
                 "but no source file. Update the files section of the AppSpec file, and then try again.")
MSG_NO_DESTINATION = ("The deployment failed because the application specification file specifies only a source file "
                      "({0}). Add the name of the destination file to the files section of the AppSpec file, and then try again.")
MSG_NO_OBJECT = ("The deployment failed because a permission listed in the application specification file has no "
                 "object value. Update the permissions section of the AppSpec file, and then try again.")
MSG_PERMISSIONS_WINDOWS = ("The deployment failed because the application specification file specifiles file permissions, "
                           "but the deployment is targeting one or more Windows Server instances. Permissions are supported "
                           "only for Amazon Linux, Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the "
                           "permissions section of the AppSpec file, and then try again.")
MSG_PERMISSION_TYPE = ("The deployment failed because the application specification filespecifies a permission for an "
                       "object type not supported for permissions ({0}). Update the permissions section of the AppSpec file, "
                       "and then try again.")
MSG_MODE_LENGTH = ("The deployment failed because the length of a permissions mode ({0}) in the application specification "
                   "file is invalid. Permissions modes must be between one and four characters long. Update the "
                   "permissions section of the AppSpec file, and then try again.")
MSG_MODE_CHAR = ("The deployment failed because the permissions mode ({0}) in the application specification file contains "
                 "an invalid character ({1}). Update the permissions section of the AppSpec file, and then try again.")
MSG_ACL_ENTRY = ("The deployment failed because of a problem with the acls permission settings in the application "
                 "specification file. Invalid acl entry ({0}).")
MSG_ACL_BASE = ("The deployment failed because of a problem with the acls permission settings in the application "
                "specification file. Use mode to set the base acl entry ({0}). Update the permissions section of the "
                "AppSpec file, and then try again.")
MSG_ACL_CHAR = ("The deployment failed because the access control list (ACL) named {0} in the application specification "
                "file contains an invalid character ({1}). Correct the ACL in the hooks section of the AppSpec file, and "
                "then try again.")
MSG_ACL_DEFAULT_ON_FILE = ("The deployment failed because the -d parameter has been specified to apply an acl setting to "
                           "a file. This parameter is supported for directories only. Update the AppSpec file, and then try again.")
MSG_CONTEXT_TYPE = ("The deployment failed because the application specification file specifies an invalid context type "
                    "({0}). Update the permissions section of the AppSpec file, and then try again.")
MSG_RANGE = ("The deployment failed because of a problem with the SELinux range specified ({0}) for the context "
             "parameter in the permissions section of the application specification file. Make corrections in the "
             "permissions section of the AppSpec file, and then try again.")
MSG_RANGE_PART = "invalid range part {0}"
MSG_SENSITIVITY = "invalid sensitivity {0}"
MSG_CATEGORY = "invalid category {0}"
MSG_CATEGORY_RANGE = "invalid category range {0}.{1}"
MSG_DUPLICATE_CATEGORIES = "duplicate categories"
MSG_FILE_PATTERN = ("The deployment failed because the application specification file includes an object ({0}) with an "
                    "invalid pattern ({1}), such as a pattern for a file applied to a directory. Correct the permissions "
                    "section of the AppSpec file, and then try again.")
MSG_FILE_EXCEPT = ("The deployment failed because the except parameter for a pattern in the permissions section ({0}) for "
                   "the object named {1} contains an invalid format. Update the AppSpec file, and then try again.")
MSG_FILE_EXISTS_BEHAVIOR = ("The deployment failed because an invalid file_exists_behavior value ({0}) was entered in the "
                            "application specification file. Make sure your AppSpec file specifies one of "
                            "DISALLOW,OVERWRITE,RETAIN as the file_exists_behavior, and then try again.")
MSG_UNKNOWN_EVENTS = "appspec.yml file contains unknown lifecycle events: {0}"
MSG_SCRIPT_MISSING = "Script does not exist at specified location: {0}"
MSG_APPSPEC_NOT_FOUND = ("The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at "
                         "revision-relative path \"appspec.yml\". The revision was unpacked to directory \"{0}\", and the "
                         "AppSpec file was expected but not found at path \"{1}\". Consult the AWS CodeDeploy Appspec "
                         "documentation for more information at "
                         "http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html")

# Messages of this collection (no agent equivalent: the agent crashes or accepts silently).
MSG_YAML_SYNTAX = "The application specification file is not valid YAML: {0}"
MSG_NOT_MAPPING = "The application specification file must be a YAML mapping of keys such as 'version' and 'os', not {0}."
MSG_WRONG_TYPE = "The application specification file has a value of the wrong type: {0} must be {1}, not {2}."
MSG_NO_YAML = ("The Python library PyYAML is required to read the application specification file; "
               "install it with 'pip install PyYAML' or the python3-yaml system package.")
MSG_NOT_UTF8 = "The application specification file is not UTF-8 text: {0}"
MSG_UNREADABLE = "The application specification file cannot be read: {0}"
MSG_TOO_DEEP = "The application specification file is nested too deeply to be read."


class AppSpecError(Exception):
    """An invalid AppSpec.

    ``message`` starts with the agent's sentence (``agent_message``) and adds, in
    parentheses, the file, line and key path of the problem and how to fix it.
    ``key`` is the path of the offending key (``hooks.AfterInstall[0].timeout``);
    ``line`` is 1-based, or None when unknown.
    """

    def __init__(self, message, key=None, line=None, hint=None, source=None):
        self.agent_message = message
        self.key = key
        self.line = line
        self.hint = hint
        self.source = source
        self.message = _compose_message(message, key, line, hint, source)
        super(AppSpecError, self).__init__(self.message)

    def __str__(self):
        return self.message


def _compose_message(message, key, line, hint, source):
    where = []
    place = source or ""
    if line is not None:
        place = "%s line %d" % (place, line) if place else "line %d" % line
    if place:
        where.append(place)
    if key:
        where.append(key)
    detail = ", ".join(where)
    if hint:
        detail = "%s: %s" % (detail, hint) if detail else hint
    if not detail:
        return message
    return "%s (%s)" % (message, detail)


# --------------------------------------------------------------------------------------
# Ruby-compatible rendering of values inside the agent's messages
# --------------------------------------------------------------------------------------

def _ruby_inspect(value):
    """Render a value like Ruby's #inspect (the agent interpolates arrays and hashes so)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s=>%s" % (_ruby_inspect(k), _ruby_inspect(v)) for k, v in value.items()) + "}"
    return _ruby_str(value)


def _ruby_str(value):
    """Render a value like Ruby's #to_s, as the agent's "#{value}" does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return _ruby_inspect(value)
    return str(value)


def _describe(value):
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean (%s)" % _ruby_str(value)
    if isinstance(value, (int, float)):
        return "a number (%s)" % _ruby_str(value)
    if isinstance(value, str):
        return "a string (%s)" % json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.datetime):
        return "a timestamp (%s)" % value.isoformat()
    if isinstance(value, datetime.date):
        return "a date (%s)" % value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return "binary data (!!binary)"
    if isinstance(value, (set, frozenset)):
        return "a set (!!set)"
    return "a value of an unsupported YAML type"


# --------------------------------------------------------------------------------------
# Walking the YAML node graph (to know line numbers and scalar texts)
# --------------------------------------------------------------------------------------

class _Field(object):
    """A value in the document: its YAML node, its constructed value and its key path."""

    __slots__ = ("node", "value", "key", "line")

    def __init__(self, node, value, key, line):
        self.node = node
        self.value = value
        self.key = key
        self.line = line


class _Reader(object):
    def __init__(self, loader, source):
        self.loader = loader
        self.source = source
        self.warnings = []

    # -- errors and warnings ----------------------------------------------------------
    def error(self, message, key=None, line=None, hint=None):
        return AppSpecError(message, key=key, line=line, hint=hint, source=self.source)

    def warn(self, text, key=None, line=None):
        where = []
        if self.source:
            where.append(self.source)
        if line is not None:
            where.append("line %d" % line)
        prefix = " ".join(where)
        if key:
            prefix = "%s, %s" % (prefix, key) if prefix else key
        self.warnings.append("%s: %s" % (prefix, text) if prefix else text)

    # -- nodes ------------------------------------------------------------------------
    @staticmethod
    def line_of(node):
        if node is None or getattr(node, "start_mark", None) is None:
            return None
        return node.start_mark.line + 1

    def construct(self, node, key):
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.error(MSG_YAML_SYNTAX.format(_yaml_problem(exc)), key=key, line=_yaml_line(exc) or self.line_of(node),
                             hint="fix or quote this value")

    def field(self, node, key):
        return _Field(node, self.construct(node, key), key, self.line_of(node))

    def is_mapping(self, field):
        return isinstance(field.node, yaml.MappingNode)

    def is_sequence(self, field):
        return isinstance(field.node, yaml.SequenceNode)

    def is_scalar(self, field):
        return isinstance(field.node, yaml.ScalarNode)

    def plain_text(self, field):
        """The scalar as written, for plain (unquoted) scalars; the constructed value otherwise."""
        node = field.node
        if isinstance(node, yaml.ScalarNode) and node.style is None and field.value is not None \
                and not isinstance(field.value, str):
            return node.value
        return field.value

    def mapping(self, field):
        """Ordered {name: (key_field, value_field)} of a mapping field; warns about duplicate keys."""
        node = field.node
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise self.error(MSG_YAML_SYNTAX.format(_yaml_problem(exc)), key=field.key, line=_yaml_line(exc) or field.line,
                             hint="fix the merge key (<<) of this mapping")
        items = {}
        for key_node, value_node in node.value:
            key_value = self.construct(key_node, field.key)
            if isinstance(key_value, (list, dict)):
                raise self.error(MSG_WRONG_TYPE.format("a key", "a string", _describe(key_value)),
                                 key=field.key, line=self.line_of(key_node), hint="use a plain name as the key")
            name = key_value if isinstance(key_value, str) else _ruby_str(key_value)
            path = "%s.%s" % (field.key, name) if field.key else name
            if name in items:
                self.warn("duplicate key '%s'; the later value (line %s) wins" % (name, self.line_of(key_node)),
                          key=path, line=items[name][0].line)
            items[name] = (_Field(key_node, key_value, path, self.line_of(key_node)),
                           self.field(value_node, path))
        return items

    def sequence(self, field):
        return [self.field(node, "%s[%d]" % (field.key, index)) for index, node in enumerate(field.node.value)]

    def wrong_type(self, field, expected, hint=None):
        return self.error(MSG_WRONG_TYPE.format(field.key, expected, _describe(field.value)),
                          key=field.key, line=field.line, hint=hint)

    def warn_unknown_keys(self, items, known, what, advice=None):
        for name, (key_field, _value) in items.items():
            if name not in known:
                text = "unknown key '%s' in %s is ignored (known keys: %s)" % (name, what, ", ".join(known))
                close = difflib.get_close_matches(name, known, n=1)
                if close:
                    text += "; did you mean '%s'?" % close[0]
                elif advice and name in advice:
                    text += "; " + advice[name]
                self.warn(text, key=key_field.key, line=key_field.line)


def _yaml_problem(exc):
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        text = "%s: %s" % (context, problem) if context else problem
    else:
        text = str(exc).splitlines()[0] if str(exc) else "the YAML parser could not read it"
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        text += " at line %d, column %d" % (mark.line + 1, mark.column + 1)
    return text


def _character_name(char):
    """``U+0007 (BEL)`` for a control character, ``U+FFFE`` for others."""
    code = ord(char)
    names = {0: "NUL", 7: "BEL", 8: "BS", 11: "VT", 12: "FF", 27: "ESC", 127: "DEL"}
    name = names.get(code) or ("control character" if code < 32 or 127 <= code < 160 else None)
    return "U+%04X%s" % (code, " (%s)" % name if name else "")


def _unreadable_yaml(exc, text, source):
    """The AppSpecError for a character YAML does not accept (PyYAML's reader refuses it), with its line and column."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if isinstance(position, int) and isinstance(text, str) and 0 <= position <= len(text):
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        char = text[position] if position < len(text) else None
    else:
        line = column = char = None
    if char is None and isinstance(character, str) and character:
        char = character
    elif char is None and isinstance(character, int):
        char = chr(character)
    what = "the character %s" % _character_name(char) if char is not None else "a character"
    where = "line %d, column %d" % (line, column) if line is not None else "an unknown place"
    problem = "%s at %s is not allowed in YAML" % (what, where)
    return AppSpecError(MSG_YAML_SYNTAX.format(problem), line=line, source=source,
                        hint="delete it (it may be invisible in an editor), or write it as an escape such as \\x07 inside a "
                             "double-quoted string")


def _yaml_line(exc):
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

def parse_appspec(text, source=None, allowed_events=None, os_family="linux"):
    """Parse and validate an EC2/on-premises AppSpec.

    :arg text: the file's content (str, or bytes in UTF-8).
    :arg source: a name for messages (a path, or "appspec.yml").
    :arg allowed_events: lifecycle event names hooks may use; None means every
        EC2/on-premises event (``EC2_LIFECYCLE_EVENTS``).
    :arg os_family: the host's family: "linux" (only ``os: linux`` passes, like the agent
        on Linux), "windows", or None to accept either.
    :returns: ``(appspec, warnings)``.
    :raises AppSpecError: for an invalid AppSpec, with the agent's message first.
    """
    if not HAS_YAML:
        raise AppSpecError(MSG_NO_YAML, source=source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AppSpecError(MSG_NOT_UTF8.format(exc), source=source, hint="save the file as UTF-8")
    if text is None:
        text = ""
    if text.startswith(u"\ufeff"):
        text = text[1:]

    try:
        # The loader checks every character when it is built: a control character fails here.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise _unreadable_yaml(exc, text, source)
    try:
        reader = _Reader(loader, source)
        try:
            root_node = loader.get_single_node()
        except yaml.reader.ReaderError as exc:
            raise _unreadable_yaml(exc, text, source)
        except yaml.YAMLError as exc:
            raise AppSpecError(MSG_YAML_SYNTAX.format(_yaml_problem(exc)), line=_yaml_line(exc), source=source,
                               hint="check the indentation and quoting there (tabs are not allowed)")
        if root_node is None:
            raise reader.error(MSG_EMPTY, hint="start the file with 'version: 0.0' and 'os: linux'")
        root = reader.field(root_node, "")
        if root.value is None or root.value is False:
            raise reader.error(MSG_EMPTY, line=root.line, hint="start the file with 'version: 0.0' and 'os: linux'")
        if not reader.is_mapping(root):
            raise reader.error(MSG_NOT_MAPPING.format(_describe(root.value)), line=root.line,
                               hint="write the AppSpec as 'key: value' lines, starting with 'version: 0.0' and 'os: linux'")
        return _parse_document(reader, root, allowed_events, os_family)
    except RecursionError:
        # PyYAML composes and constructs nodes recursively: thousands of nested '[' or '{' exhaust the stack.
        raise AppSpecError(MSG_TOO_DEEP, source=source,
                           hint="an AppSpec needs only a few levels of nesting; look for unclosed or repeated '[' or '{'")
    finally:
        loader.dispose()


def _get(items, name):
    pair = items.get(name)
    return pair[1] if pair is not None else None


def _parse_document(reader, root, allowed_events, os_family):
    items = reader.mapping(root)
    version = _parse_version(reader, root, _get(items, "version"))
    os_name = _parse_os(reader, root, _get(items, "os"), os_family, items)
    hooks, hook_keys = _parse_hooks(reader, _get(items, "hooks"))
    files = _parse_files(reader, _get(items, "files"))
    permissions = _parse_permissions(reader, _get(items, "permissions"), os_name)
    file_exists_behavior = _parse_file_exists_behavior(reader, _get(items, "file_exists_behavior"))
    _check_events(reader, hooks, hook_keys, items.get("hooks"), allowed_events)
    reader.warn_unknown_keys(items, _TOP_LEVEL_KEYS, "the AppSpec")

    appspec = {
        "version": version,
        "os": os_name,
        "files": files,
        "hooks": hooks,
        "permissions": permissions,
        "file_exists_behavior": file_exists_behavior,
    }
    return appspec, reader.warnings


def _parse_version(reader, root, field):
    value = field.value if field is not None else None
    line = field.line if field is not None else root.line
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return "0.0"
    if isinstance(value, str) and value.strip() == "0.0":
        reader.warn("the quoted version \"0.0\" is accepted here, but the CodeDeploy agent accepts only the number: "
                    "write version: 0.0 without quotes to keep the bundle valid for both", key="version", line=line)
        return "0.0"
    if field is None:
        hint = "add 'version: 0.0' at the top of the file"
    else:
        hint = "the only AppSpec version is 0.0: write 'version: 0.0'"
    raise reader.error(MSG_VERSION.format(_ruby_str(value)), key="version", line=line, hint=hint)


def _parse_os(reader, root, field, os_family, items):
    value = field.value if field is not None else None
    line = field.line if field is not None else root.line
    if os_family is None:
        supported = SUPPORTED_OSES
    else:
        supported = (os_family,)
    if isinstance(value, str) and value in supported:
        return value
    if field is None:
        hint = "add 'os: linux'"
        if "Resources" in items or "Hooks" in items:
            hint += "; this looks like an ECS or Lambda AppSpec, and only EC2/on-premises ones are deployed here"
    elif isinstance(value, str) and value in SUPPORTED_OSES:
        hint = "this deployment targets %s hosts: use 'os: %s'" % (os_family, os_family)
    elif isinstance(value, str) and value.strip().lower() in supported:
        hint = "the value is case-sensitive: write 'os: %s'" % value.strip().lower()
    else:
        hint = "write 'os: linux'"
    raise reader.error(MSG_OS.format(_ruby_str(value)), key="os", line=line, hint=hint)


# -- hooks -------------------------------------------------------------------------------

def _parse_hooks(reader, field):
    hooks = {}
    hook_keys = {}
    if field is None or field.value is None:
        return hooks, hook_keys
    if not reader.is_mapping(field):
        raise reader.wrong_type(field, "a mapping of lifecycle event names to lists of scripts",
                                hint="write e.g. 'hooks:' then '  AfterInstall:' then '    - location: scripts/install.sh'")
    for event, (key_field, scripts_field) in reader.mapping(field).items():
        hook_keys[event] = (key_field, scripts_field)
        if scripts_field.value is None:
            continue
        if not reader.is_sequence(scripts_field):
            raise reader.wrong_type(scripts_field, "a list of scripts",
                                    hint="put each script in a list item: '- location: scripts/run.sh'")
        scripts = [_parse_script(reader, script_field) for script_field in reader.sequence(scripts_field)]
        hooks[event] = scripts
        total = sum(script["timeout"] for script in scripts)
        if total > MAX_EVENT_TIMEOUT:
            reader.warn("the timeouts of this event's scripts add up to %d seconds; CodeDeploy limits one lifecycle "
                        "event to %d seconds in total" % (total, MAX_EVENT_TIMEOUT), key=scripts_field.key,
                        line=key_field.line)
    return hooks, hook_keys


def _parse_script(reader, field):
    if not reader.is_mapping(field):
        if isinstance(field.value, str):
            raise reader.error(MSG_NO_LOCATION, key=field.key, line=field.line,
                               hint="a script is a mapping: write '- location: %s'" % field.value)
        raise reader.wrong_type(field, "a mapping with a 'location' key", hint="write '- location: scripts/run.sh'")
    items = reader.mapping(field)
    location_field = _get(items, "location")
    if location_field is None or location_field.value is None:
        raise reader.error(MSG_NO_LOCATION, key="%s.location" % field.key, line=field.line,
                           hint="add 'location:' with the script's path inside the revision")
    if not reader.is_scalar(location_field):
        raise reader.wrong_type(location_field, "a path", hint="write the script's path inside the revision")
    location = _ruby_str(location_field.value).strip()
    if not location:
        raise reader.error(MSG_NO_LOCATION, key=location_field.key, line=location_field.line,
                           hint="write the script's path inside the revision after 'location:'")

    runas = None
    runas_field = _get(items, "runas")
    if runas_field is not None and runas_field.value is not None:
        if not reader.is_scalar(runas_field):
            raise reader.wrong_type(runas_field, "a user name")
        runas = _ruby_str(runas_field.value).strip() or None

    sudo = False
    sudo_field = _get(items, "sudo")
    if sudo_field is not None and sudo_field.value is not None:
        if isinstance(sudo_field.value, bool):
            sudo = sudo_field.value
        else:
            # The agent tests the value's truth the Ruby way: anything but nil and false is true.
            sudo = True
            reader.warn("sudo should be true or false; %s is taken as true, as the agent does"
                        % _describe(sudo_field.value), key=sudo_field.key, line=sudo_field.line)

    timeout = _parse_timeout(reader, _get(items, "timeout"), field)
    reader.warn_unknown_keys(items, _SCRIPT_KEYS, "a hook script")
    return {"location": location, "timeout": timeout, "runas": runas, "sudo": sudo}


_RUBY_INT_PREFIX = re.compile(r"\s*([+-]?[0-9]+(?:_[0-9]+)*)")


def _parse_timeout(reader, field, script_field):
    if field is None or field.value is None:
        return DEFAULT_SCRIPT_TIMEOUT
    value = field.value
    hint = "use a whole number of seconds greater than 0, e.g. 'timeout: 300'"
    if isinstance(value, bool) or not reader.is_scalar(field):
        raise reader.error(MSG_TIMEOUT, key=field.key, line=field.line, hint="%s is not a number; %s" % (_describe(value), hint))
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise reader.error(MSG_TIMEOUT, key=field.key, line=field.line, hint=hint)
        seconds = int(value)
        if seconds != value:
            reader.warn("timeout %s is truncated to %d seconds, as the agent does" % (_ruby_str(value), seconds),
                        key=field.key, line=field.line)
    elif isinstance(value, str):
        # The agent converts with Ruby's String#to_i: the leading integer, 0 when there is none.
        match = _RUBY_INT_PREFIX.match(value)
        seconds = int(match.group(1).replace("_", "")) if match else 0
        if seconds > 0 and value.strip() != match.group(1):
            reader.warn("timeout %s is read as %d seconds, as the agent does; write the number alone"
                        % (json.dumps(value), seconds), key=field.key, line=field.line)
        if seconds <= 0:
            raise reader.error(MSG_TIMEOUT, key=field.key, line=field.line,
                               hint="%s is not a number; %s" % (json.dumps(value), hint))
    else:
        raise reader.error(MSG_TIMEOUT, key=field.key, line=field.line, hint="%s is not a number; %s" % (_describe(value), hint))
    if seconds <= 0:
        raise reader.error(MSG_TIMEOUT, key=field.key, line=field.line,
                           hint="%d is not greater than 0; %s" % (seconds, hint))
    return seconds


def _check_events(reader, hooks, hook_keys, hooks_item, allowed_events):
    allowed = tuple(EC2_LIFECYCLE_EVENTS if allowed_events is None else allowed_events)
    valid = [event for event in allowed if event not in RESERVED_EVENTS]
    unknown = []
    for event, (key_field, _scripts_field) in hook_keys.items():
        if event in allowed:
            if event in RESERVED_EVENTS and hooks.get(event):
                reader.warn("%s is done by the deployment itself: scripts listed under it never run; use %s instead"
                            % (event, _neighbours(event)), key=key_field.key, line=key_field.line)
            continue
        if event in hooks:
            unknown.append((event, key_field))
        else:
            reader.warn("unknown lifecycle event %s (with no scripts) is ignored" % event,
                        key=key_field.key, line=key_field.line)
    if not unknown:
        return
    names = [event for event, _key in unknown]
    first = unknown[0][1]
    suggestions = []
    for event in names:
        close = difflib.get_close_matches(event, valid, n=1, cutoff=0.6)
        if close:
            suggestions.append(close[0] if len(names) == 1 else "%s (for %s)" % (close[0], event))
    hint = "valid lifecycle events: %s" % ", ".join(valid)
    if suggestions:
        hint += "; did you mean %s?" % " or ".join(suggestions)
    hint += " (names are case-sensitive)"
    raise reader.error(MSG_UNKNOWN_EVENTS.format(_ruby_inspect(names)), key=first.key, line=first.line, hint=hint)


def _neighbours(event):
    return {
        "DownloadBundle": "ApplicationStop or BeforeInstall",
        "Install": "BeforeInstall or AfterInstall",
        "BlockTraffic": "BeforeBlockTraffic or AfterBlockTraffic",
        "AllowTraffic": "BeforeAllowTraffic or AfterAllowTraffic",
    }.get(event, "another event")


# -- files -------------------------------------------------------------------------------

def _scalar_text(reader, field, what):
    if not reader.is_scalar(field):
        raise reader.wrong_type(field, what)
    return _ruby_str(field.value)


def _parse_files(reader, field):
    if field is None or field.value is None:
        return []
    if not reader.is_sequence(field):
        raise reader.wrong_type(field, "a list of source/destination mappings",
                                hint="write 'files:' then '  - source: /' and '    destination: /srv/app'")
    files = []
    for entry in reader.sequence(field):
        if not reader.is_mapping(entry):
            raise reader.wrong_type(entry, "a mapping with 'source' and 'destination'",
                                    hint="write '- source: /' and '  destination: /srv/app'")
        items = reader.mapping(entry)
        source_field = _get(items, "source")
        destination_field = _get(items, "destination")
        if source_field is None or source_field.value is None:
            raise reader.error(MSG_NO_SOURCE, key="%s.source" % entry.key, line=entry.line,
                               hint="add 'source:' with a path inside the revision ('/' for all of it)")
        source = _scalar_text(reader, source_field, "a path inside the revision")
        if destination_field is None or destination_field.value is None:
            raise reader.error(MSG_NO_DESTINATION.format(source), key="%s.destination" % entry.key, line=entry.line,
                               hint="add 'destination:' with the directory on the host")
        destination = _scalar_text(reader, destination_field, "a directory on the host")
        reader.warn_unknown_keys(items, _FILE_KEYS, "a files entry", advice={
            "owner": "set ownership in the permissions section",
            "group": "set ownership in the permissions section",
            "mode": "set modes in the permissions section",
            "overwrite": "use file_exists_behavior: OVERWRITE at the top level",
        })
        files.append({"source": source, "destination": destination})
    return files


# -- permissions -------------------------------------------------------------------------

def _parse_permissions(reader, field, os_name):
    if field is None or field.value is None:
        return []
    if not reader.is_sequence(field):
        raise reader.wrong_type(field, "a list of permission entries",
                                hint="write 'permissions:' then '  - object: /srv/app' and its settings")
    permissions = []
    for entry in reader.sequence(field):
        if not reader.is_mapping(entry):
            raise reader.wrong_type(entry, "a mapping with an 'object' key", hint="write '- object: /srv/app'")
        permissions.append(_parse_permission(reader, entry, os_name))
    return permissions


def _parse_permission(reader, entry, os_name):
    items = reader.mapping(entry)
    object_field = _get(items, "object")
    if object_field is None or object_field.value is None:
        raise reader.error(MSG_NO_OBJECT, key="%s.object" % entry.key, line=entry.line,
                           hint="add 'object:' with the installed file or directory the entry applies to")
    if os_name != "linux":
        raise reader.error(MSG_PERMISSIONS_WINDOWS, key=entry.key, line=entry.line,
                           hint="remove the permissions section or deploy with 'os: linux'")
    obj = _scalar_text(reader, object_field, "a path on the host").strip()

    pattern = "**"
    pattern_field = _get(items, "pattern")
    if pattern_field is not None and pattern_field.value is not None:
        pattern = _scalar_text(reader, pattern_field, "a glob pattern")

    excepts = []
    except_field = _get(items, "except")
    if except_field is not None and except_field.value is not None:
        if not reader.is_sequence(except_field):
            raise reader.wrong_type(except_field, "a list of glob patterns", hint="write e.g. except: ['*.tmp']")
        excepts = [_scalar_text(reader, item, "a glob pattern") for item in reader.sequence(except_field)]

    types = list(PERMISSION_TYPES)
    type_field = _get(items, "type")
    if type_field is not None and type_field.value is not None:
        if not reader.is_sequence(type_field):
            raise reader.wrong_type(type_field, "a list of object types",
                                    hint="write e.g. type: [file] or type: [file, directory]")
        types = []
        for item in reader.sequence(type_field):
            if item.value not in PERMISSION_TYPES or not isinstance(item.value, str):
                raise reader.error(MSG_PERMISSION_TYPE.format(_ruby_str(item.value)), key=item.key, line=item.line,
                                   hint="the object types are 'file' and 'directory'")
            types.append(item.value)

    owner = _optional_name(reader, _get(items, "owner"), "a user name")
    group = _optional_name(reader, _get(items, "group"), "a group name")
    mode = _parse_mode_field(reader, _get(items, "mode"))
    acls = _parse_acls_field(reader, _get(items, "acls"))
    context = _parse_context_field(reader, _get(items, "context"))

    if not obj:
        raise reader.error(MSG_NO_OBJECT, key=object_field.key, line=object_field.line,
                           hint="write the installed file or directory after 'object:'")
    reader.warn_unknown_keys(items, _PERMISSION_KEYS, "a permissions entry")
    return {
        "object": obj,
        "pattern": pattern,
        "except": excepts,
        "type": types,
        "owner": owner,
        "group": group,
        "mode": mode,
        "acls": acls,
        "context": context,
    }


def _optional_name(reader, field, what):
    if field is None or field.value is None:
        return None
    return _scalar_text(reader, field, what)


def _parse_mode_field(reader, field):
    if field is None or field.value is None:
        return None
    if not reader.is_scalar(field):
        raise reader.wrong_type(field, "an octal mode such as 644 or \"0755\"")
    # Decision: the scalar as written, so an unquoted 0644 stays 0644 (YAML 1.1 reads 420).
    text = field.node.value if field.node.style is None else _ruby_str(field.value)
    try:
        return parse_mode(text)
    except AppSpecError as exc:
        raise reader.error(exc.agent_message, key=field.key, line=field.line, hint=exc.hint)


def parse_mode(text):
    """Validate a permissions mode as the agent does; returns it left-padded to 3 digits.

    Decision: an empty mode is an error (the agent would pad it to 000).
    """
    text = "" if text is None else str(text)
    hint = "write 1 to 4 octal digits, e.g. mode: 644 or mode: \"2775\""
    if not text:
        raise AppSpecError(MSG_MODE_LENGTH.format(text), hint="the mode is empty; " + hint)
    padded = text.rjust(3, "0")
    if len(padded) > 4:
        raise AppSpecError(MSG_MODE_LENGTH.format(padded), hint=hint)
    for char in padded:
        if char not in "01234567":
            raise AppSpecError(MSG_MODE_CHAR.format(padded, char), hint=hint)
    return padded


def mode_to_int(mode):
    """The numeric value of a normalized mode string ("0644" -> 0o644)."""
    return int(mode, 8)


def _parse_acls_field(reader, field):
    if field is None or field.value is None:
        return None
    if not reader.is_sequence(field):
        raise reader.wrong_type(field, "a list of ACL entries", hint="write e.g. acls: ['u:alice:rwx', 'd:g:dev:r-x']")
    aces = []
    for item in reader.sequence(field):
        if not reader.is_scalar(item):
            raise reader.wrong_type(item, "an ACL entry such as u:alice:rwx")
        text = reader.plain_text(item)
        try:
            aces.append(parse_ace(_ruby_str(text)))
        except AppSpecError as exc:
            raise reader.error(exc.agent_message, key=item.key, line=item.line, hint=exc.hint)
    return aces


_ACE_TYPES = {"u": "user", "user": "user", "g": "group", "group": "group",
              "m": "mask", "mask": "mask", "o": "other", "other": "other"}
_ACE_HINT = ("an entry is [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:permissions, "
             "e.g. u:alice:rwx, g:dev:5 or d:g:dev:r-x")


def parse_ace(entry):
    """Parse one ACL entry the agent's way.

    Returns ``{"default", "type", "name", "read", "write", "execute", "ace"}`` where ``ace``
    is the setfacl form (``default:user:bob:rwx``).
    """
    entry = "" if entry is None else str(entry)
    parts = entry.split(":")
    parts.reverse()
    if len(parts) < 2 or len(parts) > 4:
        raise AppSpecError(MSG_ACL_ENTRY.format(entry), hint=_ACE_HINT)
    default = False
    ace_type = None
    name = ""
    if len(parts) == 4:
        if parts[3] not in ("d", "default"):
            raise AppSpecError(MSG_ACL_ENTRY.format(entry), hint=_ACE_HINT)
        default = True
    if len(parts) >= 3:
        if parts[2] in ("d", "default"):
            if default:
                raise AppSpecError(MSG_ACL_ENTRY.format(entry), hint=_ACE_HINT)
            default = True
        elif parts[2] in _ACE_TYPES:
            ace_type = _ACE_TYPES[parts[2]]
        else:
            raise AppSpecError(MSG_ACL_ENTRY.format(entry), hint=_ACE_HINT)
    qualifier = parts[1]
    if qualifier in ("m", "mask", "o", "other"):
        if ace_type is None:
            ace_type = _ACE_TYPES[qualifier]
        else:
            name = _ACE_TYPES[qualifier]
    else:
        if ace_type is None:
            ace_type = "user"
        name = qualifier
    if ace_type in ("mask", "other") and name:
        raise AppSpecError(MSG_ACL_ENTRY.format(entry), hint="mask and other entries take no name; " + _ACE_HINT)
    if not default and ace_type != "mask" and not name:
        raise AppSpecError(MSG_ACL_BASE.format(entry),
                           hint="the owner, owning group and other entries come from mode; ACL entries name a user or group")

    perms = parts[0]
    if len(perms) == 1 and perms in "01234567":
        bits = int(perms)
        read, write, execute = bool(bits & 4), bool(bits & 2), bool(bits & 1)
    else:
        read = write = execute = False
        for char in perms:
            if char == "r":
                read = True
            elif char == "w":
                write = True
            elif char == "x":
                execute = True
            elif char != "-":
                raise AppSpecError(MSG_ACL_CHAR.format(entry, char),
                                   hint="permissions are one octal digit or letters among r, w, x and -")
    ace = "%s%s:%s:%s%s%s" % ("default:" if default else "", ace_type, name,
                              "r" if read else "-", "w" if write else "-", "x" if execute else "-")
    return {"default": default, "type": ace_type, "name": name,
            "read": read, "write": write, "execute": execute, "ace": ace}


def _parse_context_field(reader, field):
    if field is None or field.value is None:
        return None
    hint = "write 'context:' with 'type:' (e.g. httpd_sys_content_t) and optionally 'name:' and 'range:'"
    if not reader.is_mapping(field):
        raise reader.error(MSG_CONTEXT_TYPE.format(_ruby_inspect(field.value)), key=field.key, line=field.line, hint=hint)
    items = reader.mapping(field)
    type_field = _get(items, "type")
    if type_field is None or type_field.value is None:
        raise reader.error(MSG_CONTEXT_TYPE.format(_ruby_inspect(field.value)), key="%s.type" % field.key, line=field.line,
                           hint=hint)
    context_type = _scalar_text(reader, type_field, "an SELinux type")
    name_field = _get(items, "name")
    name = None
    if name_field is not None and name_field.value is not None:
        name = _scalar_text(reader, name_field, "an SELinux user")
    elif "user" in items:
        user_key = items["user"][0]
        reader.warn("the agent reads the SELinux user from 'name', so 'user' is ignored; rename it to 'name'",
                    key=user_key.key, line=user_key.line)
    range_text = None
    range_field = _get(items, "range")
    if range_field is not None and range_field.value is not None:
        text = _scalar_text(reader, range_field, "an SELinux range such as s0-s3:c0.c7")
        try:
            range_text = parse_selinux_range(text)["range"]
        except AppSpecError as exc:
            raise reader.error(exc.agent_message, key=range_field.key, line=range_field.line, hint=exc.hint)
    reader.warn_unknown_keys(items, _CONTEXT_KEYS + ("user",), "a context")
    return {"name": name, "type": context_type, "range": range_text}


_RANGE_HINT = "a range is s<level>[-s<level>][:c<n>[.c<n>][,...]], e.g. s0, s0-s3 or s0-s3:c0.c7,c13"


def _split_parts(text, separator):
    expected = 2 if separator in text else 1
    parts = text.split(separator, 1)
    if len(parts) != expected or any(part == "" for part in parts):
        raise AppSpecError(MSG_RANGE_PART.format(text), hint=_RANGE_HINT)
    return parts


def _level(text, prefix, message, maximum=None):
    if text is None or len(text) < 2 or not text.startswith(prefix):
        raise AppSpecError(message.format(text), hint=_RANGE_HINT)
    digits = text.replace(prefix, "", 1)
    if not digits or any(char not in "0123456789" for char in digits):
        raise AppSpecError(message.format(text), hint=_RANGE_HINT)
    value = int(digits)
    if maximum is not None and value > maximum:
        raise AppSpecError(message.format(text), hint="categories go from c0 to c%d" % maximum)
    return value


def parse_selinux_range(text):
    """Parse an SELinux MLS range the agent's way.

    Returns ``{"low_sensitivity", "high_sensitivity", "categories" (sorted list or None),
    "range" (the agent's canonical form, e.g. ``s3-s7:c5,c8.c10``)}``.
    """
    text = "" if text is None else str(text)
    parts = _split_parts(text, ":")
    sensitivities = _split_parts(parts[0], "-")
    low = _level(sensitivities[0], "s", MSG_SENSITIVITY)
    high = low
    if len(sensitivities) == 2:
        high = _level(sensitivities[1], "s", MSG_SENSITIVITY)
        if high < low:
            raise AppSpecError(MSG_RANGE.format(text), hint="the high sensitivity must not be below the low one")
    categories = None
    if len(parts) == 2:
        pieces = parts[1].split(",")
        while pieces and pieces[-1] == "":  # Ruby's String#split drops trailing empty fields
            pieces.pop()
        categories = []
        for piece in pieces:
            if "." in piece:
                bounds = _split_parts(piece, ".")
                first = _level(bounds[0], "c", MSG_CATEGORY, 1023)
                last = _level(bounds[1], "c", MSG_CATEGORY, 1023)
                if last < first:
                    raise AppSpecError(MSG_CATEGORY_RANGE.format(bounds[0], bounds[1]), hint="write the lower category first")
                categories.extend(range(first, last + 1))
            else:
                categories.append(_level(piece, "c", MSG_CATEGORY, 1023))
        categories.sort()
        if len(set(categories)) != len(categories):
            raise AppSpecError(MSG_DUPLICATE_CATEGORIES, hint="list each category once in " + json.dumps(text))
    return {"low_sensitivity": low, "high_sensitivity": high, "categories": categories,
            "range": _format_range(low, high, categories)}


def _format_range(low, high, categories):
    text = "s%d" % low
    if high != low:
        text += "-s%d" % high
    if categories is not None:
        runs = []
        index = 0
        while index < len(categories):
            start = end = categories[index]
            index += 1
            while index < len(categories) and categories[index] == end + 1:
                end = categories[index]
                index += 1
            runs.append("c%d" % start if start == end else "c%d.c%d" % (start, end))
        text += ":" + ",".join(runs)
    return text


# -- file_exists_behavior ----------------------------------------------------------------

def _parse_file_exists_behavior(reader, field):
    if field is None or field.value is None:
        return None
    value = field.value
    if isinstance(value, str) and value in FILE_EXISTS_BEHAVIORS:
        return value
    hint = "use DISALLOW, OVERWRITE or RETAIN"
    if isinstance(value, str) and value.strip().upper() in FILE_EXISTS_BEHAVIORS:
        hint = "the value is case-sensitive: write 'file_exists_behavior: %s'" % value.strip().upper()
    raise reader.error(MSG_FILE_EXISTS_BEHAVIOR.format(_ruby_str(value)), key=field.key, line=field.line, hint=hint)


# --------------------------------------------------------------------------------------
# Install-time rules that depend on what the object is
# --------------------------------------------------------------------------------------

def validate_file_permission(permission):
    """For a permissions entry whose object is a file: pattern must be ** and except empty."""
    if "file" in permission.get("type", PERMISSION_TYPES):
        if permission.get("pattern", "**") != "**":
            raise AppSpecError(MSG_FILE_PATTERN.format(permission["object"], permission["pattern"]),
                               key="permissions", hint="%s is a file: remove 'pattern' from its entry" % permission["object"])
        if permission.get("except"):
            raise AppSpecError(MSG_FILE_EXCEPT.format(_ruby_inspect(permission["except"]), permission["object"]),
                               key="permissions", hint="%s is a file: remove 'except' from its entry" % permission["object"])


def validate_file_acl(permission):
    """For a permissions entry applied to a file: no default (d:) ACL entries."""
    for ace in permission.get("acls") or ():
        if ace.get("default"):
            raise AppSpecError(MSG_ACL_DEFAULT_ON_FILE, key="permissions",
                               hint="%s is a file: remove the default entry %s" % (permission.get("object"), ace["ace"]))


# --------------------------------------------------------------------------------------
# Files on disk
# --------------------------------------------------------------------------------------

def find_appspec(directory):
    """The AppSpec file of a revision directory: appspec.yml, else appspec.yaml, else None."""
    for name in APPSPEC_FILE_NAMES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_appspec_file(path, allowed_events=None, os_family="linux"):
    """Read and parse an AppSpec file (or the AppSpec of a revision directory).

    :returns: ``(appspec, warnings)``.
    :raises AppSpecError: when the file is missing, unreadable or invalid.
    """
    if os.path.isdir(path):
        found = find_appspec(path)
        if found is None:
            directory = os.path.abspath(path)
            hint = "put appspec.yml at the root of the revision"
            try:
                near = [name for name in os.listdir(directory) if name.lower() in APPSPEC_FILE_NAMES]
            except OSError:
                near = []
            if near:
                hint = "the name is case-sensitive: rename %s to appspec.yml" % near[0]
            raise AppSpecError(MSG_APPSPEC_NOT_FOUND.format(directory, os.path.join(directory, "appspec.yml")),
                               hint=hint)
        path = found
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise AppSpecError(MSG_UNREADABLE.format(exc), source=path)
    return parse_appspec(data, source=path, allowed_events=allowed_events, os_family=os_family)


def _inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def script_path_problems(appspec, revision_root):
    """Problems of the hook scripts of a parsed AppSpec within a revision directory.

    Returns a list (empty when all is well) of ``{"event", "index", "location", "path",
    "problem", "message"}`` where problem is ``outside_revision`` (the location resolves
    outside the revision, through ``..`` or a symlink), ``missing`` or ``not_a_file``.
    Scripts of reserved events are skipped: they never run.
    """
    root = os.path.abspath(revision_root)
    real_root = os.path.realpath(root)
    problems = []
    for event, scripts in (appspec.get("hooks") or {}).items():
        if event in RESERVED_EVENTS:
            continue
        for index, script in enumerate(scripts or ()):
            location = script["location"]
            path = os.path.normpath(os.path.join(root, location.lstrip("/")))
            problem = message = None
            if not _inside(path, root):
                problem = "outside_revision"
                message = ("%s script %s resolves to %s, outside the revision %s: use a path inside the revision "
                           "without '..'" % (event, location, path, root))
            elif not _inside(os.path.realpath(path), real_root):
                problem = "outside_revision"
                message = ("%s script %s resolves through a symlink to %s, outside the revision %s: ship the script "
                           "itself in the revision" % (event, location, os.path.realpath(path), root))
            elif not os.path.exists(path):
                problem = "missing"
                message = (MSG_SCRIPT_MISSING.format(path)
                           + " (%s script %s: add it to the revision or fix hooks.%s[%d].location)" % (event, location, event, index))
            elif not os.path.isfile(path):
                problem = "not_a_file"
                message = "%s script %s is not a regular file (%s): point location at the script file" % (event, location, path)
            if problem:
                problems.append({"event": event, "index": index, "location": location, "path": path,
                                 "problem": problem, "message": message})
    return problems
