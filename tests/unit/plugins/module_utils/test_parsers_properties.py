# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests of the two user-facing parsers: any input gives a result or the parser's own error.

``appspec.parse_appspec`` gets random YAML documents, random text (control characters, NUL,
lone surrogates, random bytes) and mutations of the sample AppSpec; ``selection.normalize_applications``
gets random nested structures. Neither may raise anything but its own error type, and an
AppSpecError's message must read as a sentence for a user, not as a Python exception.
"""

import os
import re

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as spec
from ansible_collections.rollout.codedeploy.plugins.module_utils import selection as sel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
with open(os.path.join(ROOT, "examples", "sample-app", "appspec.yml")) as _handle:
    SAMPLE = _handle.read()
SAMPLE_LINES = SAMPLE.splitlines()

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLASS_NAME = re.compile(r"Traceback|Exception|\b[A-Z][A-Za-z]*Error\b|Error:")

KEYS = list(spec._TOP_LEVEL_KEYS) + list(spec._SCRIPT_KEYS) + list(spec._FILE_KEYS) + list(spec._PERMISSION_KEYS) \
    + list(spec.EC2_LIFECYCLE_EVENTS) + ["object", "mode", "BeforeInstal", ""]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["0.0", "0", "linux", "windows", "0644", "0755", "u:alice:rwx", "d:g:dev:r-x", "OVERWRITE",
                     "file", "directory", "s0-s0:c0.c1023", "root", "1e400", "-1", "0x10", "~", "*.py"]),
)
KEY_STRATEGY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(), st.booleans())
TREES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(KEY_STRATEGY, children, max_size=5)), max_leaves=25)
APPSPEC_LIKE = st.fixed_dictionaries({}, optional={
    "version": SCALARS, "os": st.one_of(st.just("linux"), SCALARS), "files": TREES, "hooks": TREES,
    "permissions": TREES, "file_exists_behavior": SCALARS, "extra": TREES})


def check_appspec(text):
    try:
        result = spec.parse_appspec(text, source="appspec.yml")
    except spec.AppSpecError as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
        # A class name in the message is a leak, unless it is the document's own text quoted back.
        assert all(found.group(0) in text for found in CLASS_NAME.finditer(exc.message)), exc.message
        assert str(exc) == exc.message
        return None
    appspec, warnings = result
    assert isinstance(appspec, dict)
    assert isinstance(warnings, list)
    assert all(isinstance(w, str) for w in warnings)
    return result


def dump(tree):
    try:
        return yaml.safe_dump(tree, default_flow_style=False, allow_unicode=True)
    except yaml.YAMLError:  # a key PyYAML cannot represent; dump something else
        return yaml.safe_dump(repr(tree))


@SETTINGS
@given(TREES)
def test_random_yaml_documents(tree):
    check_appspec(dump(tree))


@SETTINGS
@given(APPSPEC_LIKE)
def test_random_appspec_shaped_documents(tree):
    check_appspec(dump(tree))


@SETTINGS
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=200))
def test_random_text(text):
    check_appspec(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes(data):
    check_appspec(data)


@SETTINGS
@given(st.lists(st.sampled_from(list("\x00\x01\x07\x1b\x7f\x85\ufeff\ufffe\ud800\udfff\t\n\r :-[]{}#&*!|>'\"%@`,?")
                                + ["version: 0.0\n", "os: linux\n", "hooks:\n", "  - ", "    ", "AfterInstall:\n",
                                   "location: a.sh\n", "timeout: ", "mode: ", "files:\n", "permissions:\n"]),
                max_size=60))
def test_yaml_punctuation_and_control_characters(tokens):
    check_appspec("".join(tokens))


def _mutate(lines, data):
    lines = list(lines)
    for _step in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1)) if lines else 0
        action = data.draw(st.sampled_from(["delete", "duplicate", "swap_type", "huge", "nest", "indent", "replace",
                                            "control"]))
        if not lines:
            lines = [""]
            index = 0
        line = lines[index]
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, line)
        elif action == "swap_type" and ":" in line:
            key = line.split(":", 1)[0]
            swapped = data.draw(st.sampled_from(["[]", "{}", "[1, 2]", "{a: 1}", "null", "true", "3.5", "-7", "''",
                                                 "!!binary aGk="]))
            lines[index] = "%s: %s" % (key, swapped)
        elif action == "huge" and ":" in line:
            key = line.split(":", 1)[0]
            huge = data.draw(st.sampled_from(["9" * 400, "1e999", "-1e999", ".nan", ".inf", "0x7fffffffffffffffff",
                                              "1_000_000"]))
            lines[index] = "%s: %s" % (key, huge)
        elif action == "nest":
            depth = data.draw(st.integers(min_value=1, max_value=60))
            lines[index] = line + " " + "[" * depth + "]" * depth if ":" in line else line
        elif action == "indent":
            lines[index] = data.draw(st.sampled_from(["", " ", "\t", "        "])) + line.lstrip()
        elif action == "replace":
            lines[index] = data.draw(st.text(max_size=30))
        elif action == "control":
            char = data.draw(st.sampled_from(["\x00", "\x07", "\x1b", "\ud800", "\ufffe", "\u2028", "\x85"]))
            position = data.draw(st.integers(min_value=0, max_value=len(line)))
            lines[index] = line[:position] + char + line[position:]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(st.data())
def test_mutations_of_the_sample_appspec(data):
    check_appspec(_mutate(SAMPLE_LINES, data))


def test_the_sample_appspec_is_valid():
    appspec, _warnings = check_appspec(SAMPLE)
    assert appspec["os"] == "linux"


# ----------------------------------------------------------------------------------------------
# The inventory settings normalizer
# ----------------------------------------------------------------------------------------------
GROUP_KEYS = sorted(set(sel.GROUP_KEYS) | set(sel.SELECTION_KEYS))
SETTING_KEYS = st.one_of(st.sampled_from(GROUP_KEYS + ["deployment_groups", "key", "value", "type", "names", "enabled",
                                                       "events", "ec2_tag_filters", "ec2_tag_set", "region", ""]),
                         st.text(max_size=6), st.integers(), st.booleans(), st.none())
SETTING_TREES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(SETTING_KEYS, children, max_size=5)), max_leaves=20)
GROUP_SPECS = st.one_of(st.none(), SETTING_TREES,
                        st.dictionaries(st.sampled_from(GROUP_KEYS), SETTING_TREES, max_size=5))
APPLICATIONS = st.one_of(
    SETTING_TREES,
    st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), st.one_of(
        st.none(), SETTING_TREES,
        st.fixed_dictionaries({"deployment_groups": st.one_of(
            SETTING_TREES, st.dictionaries(st.one_of(st.text(max_size=6), st.integers(), st.booleans()),
                                           GROUP_SPECS, max_size=3))})), max_size=3),
)


def check_selection(applications, custom_configs, regions, default_region):
    try:
        groups = sel.normalize_applications(applications, custom_configs, regions, default_region)
    except sel.SelectionError as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
        assert "Traceback" not in exc.message
        return
    assert isinstance(groups, list)
    assert all(isinstance(group, dict) for group in groups)


@SETTINGS
@given(APPLICATIONS, st.one_of(st.none(), SETTING_TREES),
       st.one_of(st.none(), st.lists(st.sampled_from(["us-east-1", "eu-west-1", "", "x"]), max_size=3), SETTING_TREES),
       st.one_of(st.none(), st.sampled_from(["us-east-1", "eu-west-1"]), SCALARS))
def test_random_inventory_settings(applications, custom_configs, regions, default_region):
    check_selection(applications, custom_configs, regions, default_region)
