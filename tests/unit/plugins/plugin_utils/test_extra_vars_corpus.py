# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input corpus of extra vars: tests/corpus/extra_vars/*.json, each the extra vars of one run of the
deploy, rollback or stop playbook (EXPECTED.json says which, and the words its refusal must hold).

Each file goes through what the playbook does with it: the task arguments of the playbook's first
rollout.codedeploy.deployment task are read from the playbook itself and filled from the extra vars, then
checked by the input contract as the action plugin checks them (and, for a revision the contract lets
through, fetched as the deployment service fetches it, which refuses it before anything is recorded).
A refusal must read as a sentence naming the input: no traceback, no Python exception class name, and
short even when the value is megabytes long or a YAML bomb.
"""

import json
import os
import re

import pytest
import yaml

from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import service

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "corpus", "extra_vars")
PLAYBOOKS = os.path.join(ROOT, "playbooks")
with open(os.path.join(CORPUS, "EXPECTED.json")) as _handle:
    EXPECTED = {name: value for name, value in json.load(_handle).items() if not name.startswith("_")}
PYTHON_TEXT = re.compile(r"Traceback|File \"|\b(KeyError|TypeError|AttributeError|ValueError|IndexError|RecursionError|"
                         r"MemoryError|UnicodeDecodeError|UnicodeEncodeError|OverflowError)\b|object at 0x")
SETTINGS = {"application": "web", "name": "production", "region": "us-east-1",
            "deployment_configs": {"TwoAtATime": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}}}
GROUPS = {"all": ["web-1", "api-1"], "ungrouped": [], "web_production": ["web-1"], "api_production": ["api-1"]}
PLUGIN_GROUPS = {"web_production": SETTINGS, "api_production": dict(SETTINGS, application="api")}
WHOLE = re.compile(r"^\{\{\s*(\w+)\s*\|\s*default\((.*)\)\s*\}\}$")
PART = re.compile(r"\{\{\s*(\w+)\s*\|\s*default\('([^']*)'\)\s*\}\}")


def task_arguments(playbook, extra_vars):
    """The arguments the playbook's first rollout.codedeploy.deployment task gets from these extra vars."""
    with open(os.path.join(PLAYBOOKS, playbook + ".yml")) as handle:
        plays = yaml.safe_load(handle)
    task = next(t for play in plays for t in play.get("tasks") or () if "rollout.codedeploy.deployment" in t)
    args = {}
    for key, value in task["rollout.codedeploy.deployment"].items():
        whole = WHOLE.match(value) if isinstance(value, str) else None
        if whole and whole.group(1) in extra_vars:
            args[key] = extra_vars[whole.group(1)]
        elif whole and whole.group(2) != "omit":
            args[key] = yaml.safe_load(whole.group(2))
        elif not whole:
            args[key] = PART.sub(lambda found: str(extra_vars.get(found.group(1), found.group(2))), value) if isinstance(value, str) else value
    return args


class NoAws(object):
    """A revision the contract lets through is fetched without AWS: a refused one must not need it."""

    def client(self, name):
        return None


def refusal(playbook, extra_vars, tmp_path):
    """The message the playbook's first task fails with, or None when the inputs are accepted."""
    args = task_arguments(playbook, extra_vars)
    try:
        if args["state"] == "stop_requested":
            contract.stop_request(args)
            return None
        contract.deployment_group(args.get("deployment_group"), GROUPS, PLUGIN_GROUPS)
        request = contract.start_request(args, SETTINGS, GROUPS, PLUGIN_GROUPS)
        if request["revision"] is not None:
            service.fetch_revision(request["revision"], NoAws(), cache=str(tmp_path / "bundles"))
    except (contract.InputError, service.ServiceError) as exc:
        return exc.message
    return None


def assert_user_message(message, field):
    assert isinstance(message, str) and message.strip()
    assert not PYTHON_TEXT.search(message), message
    assert len(message) < 2000, message[:300]
    assert field in message, (field, message)


def load(name):
    with open(os.path.join(CORPUS, name)) as handle:
        return yaml.safe_load(handle)


def test_every_corpus_file_has_an_expectation():
    files = sorted(name for name in os.listdir(CORPUS) if name != "EXPECTED.json")
    assert files == sorted(EXPECTED)
    assert len(files) >= 30
    assert {EXPECTED[name]["playbook"] for name in files} == {"deploy", "rollback", "stop"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_extra_vars_are_refused(name, tmp_path):
    expected = EXPECTED[name]
    message = refusal(expected["playbook"], load(name), tmp_path)
    assert message is not None, "accepted"
    assert_user_message(message, expected["input"])
    for words in expected["error"]:
        assert words in message, message
    assert not os.path.exists(str(tmp_path / "bundles")) or not os.listdir(str(tmp_path / "bundles"))


def test_the_playbooks_pass_every_extra_var_the_corpus_names():
    """An input of the corpus that no task argument takes would be refused for another reason (or not at all)."""
    taken = set()
    for playbook in ("deploy", "rollback", "stop"):
        with open(os.path.join(PLAYBOOKS, playbook + ".yml")) as handle:
            taken.update(re.findall(r"\{\{\s*(\w+)\s*\|", handle.read()))
    named = {key for name in EXPECTED for key in load(name) if not EXPECTED[name].get("typo") == key}
    assert named <= taken, named - taken


def _bomb(depth=12, width=9):
    """A YAML bomb as Ansible would hand it over after reading `-e @file.yml`: one list aliased at every level."""
    text = "a: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, depth):
        text += "a%d: &a%d [%s]\n" % (level, level, ", ".join(["*a%d" % (level - 1)] * width))
    return yaml.safe_load(text)["a%d" % (depth - 1)]


HUGE = "w" * (3 * 1024 * 1024)
GENERATED = [
    # (name, playbook, extra vars, the input, words)
    ("description-megabytes", "deploy", {"description": "release " + HUGE}, "description", ["at most 4096 characters, not 3145736"]),
    ("deployment-group-megabytes", "deploy", {"deployment_group": HUGE}, "deployment_group", ["(3145728 characters)"]),
    ("revision-megabytes", "deploy", {"revision": "/srv/" + HUGE}, "revision", ["at most 4096 characters"]),
    ("alarms-bomb", "deploy", {"alarms": {"names": _bomb()}}, "alarms.names", ["a list of names", "[[[...], [...], [...]"]),
    ("auto-rollback-bomb", "deploy", {"auto_rollback": _bomb()}, "auto_rollback", ["true, false, or a mapping", "(cut short)"]),
    ("description-bomb", "deploy", {"description": {"text": _bomb()}}, "description", ["text (a string)"]),
    ("revision-s3-bomb", "deploy", {"revision": {"s3": {"bucket": _bomb(), "key": "k"}}}, "revision.s3.bucket", ["a non-empty string"]),
    ("alarms-many-unknown-keys", "deploy", {"alarms": {"k%d" % n: n for n in range(100000)}}, "alarms", ["and 99990 more"]),
    ("stop-deployment-id-bomb", "stop", {"deployment_id": _bomb()}, "deployment_id", ["a deployment id d-XXXXXXXXX"]),
    ("rollback-deployment-id-megabytes", "rollback", {"deployment_id": "d-" + HUGE}, "deployment_id", ["(3145730 characters)"]),
    ("lease-huge-number", "deploy", {"codedeploy_lease_seconds": 10 ** 5000}, "codedeploy_lease_seconds", ["(a number of about 5000 digits)"]),
]
BASE = {"deploy": {"deployment_group": "web_production", "revision": "s3://rollout-corpus/web/app-1.0.tgz"},
        "rollback": {"deployment_group": "web_production", "deployment_id": "d-ABCDEFGH1"}, "stop": {"deployment_id": "d-ABCDEFGH1"}}


@pytest.mark.parametrize("name, playbook, extra_vars, field, words", GENERATED, ids=[case[0] for case in GENERATED])
def test_huge_and_aliased_values_are_refused_in_a_short_message(name, playbook, extra_vars, field, words, tmp_path):
    message = refusal(playbook, dict(BASE[playbook], **extra_vars), tmp_path)
    assert message is not None, "%s accepted" % name
    assert_user_message(message, field)
    for word in words:
        assert word in message, message


def test_accepted_inputs_still_pass():
    """The corpus holds refusals only; the same inputs given well are accepted (so a refusal above is about the value)."""
    args = task_arguments("deploy", dict(BASE["deploy"], max_revisions="3", codedeploy_lease_seconds=600, codedeploy_host_lock_wait=0,
                                         description="release 1.0\n\tnotes", alarms=["web-5xx"], auto_rollback=True,
                                         revision={"s3": {"bucket": "b", "key": "k", "version": "v1"}}))
    request = contract.start_request(args, SETTINGS, GROUPS, PLUGIN_GROUPS)
    assert request["max_revisions"] == 3 and request["lease_seconds"] == 600 and request["host_lock_wait"] == 0
    assert request["description"] == "release 1.0\n\tnotes"
    assert contract.stop_request(task_arguments("stop", dict(BASE["stop"], force="yes")))["force"] is True
