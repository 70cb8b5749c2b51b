# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input corpus of inventory sources: tests/corpus/inventory/*.codedeploy.yml, read by the real
inventory plugin through Ansible's InventoryManager (what ansible-inventory runs), plus a few through the
ansible-inventory command itself.

EXPECTED.json says, for each file, the words the plugin's error must hold (the key, the value, the fix).
Every refusal must come from the settings check, before any AWS client is made, and read as a sentence:
no traceback, no Python exception class name.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from ansible.inventory import manager as inventory_manager
from ansible.parsing.dataloader import DataLoader

from ansible_collections.rollout.codedeploy.plugins.inventory import codedeploy

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "corpus", "inventory")
with open(os.path.join(CORPUS, "EXPECTED.json")) as _handle:
    EXPECTED = {name: value for name, value in json.load(_handle).items() if not name.startswith("_")}
PYTHON_TEXT = re.compile(r"Traceback|File \"|\b(KeyError|TypeError|AttributeError|ValueError|IndexError|RecursionError|"
                         r"MemoryError|UnicodeDecodeError)\b|<[A-Za-z_]+ instance at 0x|object at 0x")
UNREACHABLE = "http://127.0.0.1:9"


class NoAws(Exception):
    """Raised when the plugin asks for an AWS client: a refused source must not get that far."""


@pytest.fixture
def refusal(monkeypatch):
    """Parse one source with the inventory manager; return the codedeploy plugin's error message (or None)."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", UNREACHABLE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "corpus")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "corpus")
    clients = []

    def no_client(self, *args, **kwargs):
        clients.append(args)
        raise NoAws("an AWS client was asked for %r" % (args,))

    monkeypatch.setattr(codedeploy.InventoryModule, "client", no_client)
    failures = []
    monkeypatch.setattr(inventory_manager.display, "error_as_warning",
                        lambda msg, exception=None, **kwargs: failures.append((msg, exception)))
    monkeypatch.setattr(inventory_manager.display, "warning", lambda msg, *args, **kwargs: failures.append((msg, None)))

    def run(path):
        del failures[:]
        inventory = inventory_manager.InventoryManager(DataLoader(), sources=[path])
        assert not clients, clients
        assert "codedeploy_deployment_groups" not in inventory.groups["all"].get_vars()
        ours = [exc for msg, exc in failures if exc is not None and ("'auto'" in msg or "codedeploy" in msg)]
        return ours[0].message if ours else None
    return run


def assert_user_message(message):
    assert isinstance(message, str) and message.strip()
    assert not PYTHON_TEXT.search(message), message
    assert "Could not connect" not in message and UNREACHABLE not in message, message
    assert len(message) < 2000, message[:300]


def test_every_corpus_file_has_an_expectation():
    files = sorted(name for name in os.listdir(CORPUS) if name != "EXPECTED.json")
    assert files == sorted(EXPECTED)
    assert len(files) >= 60


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "error" in EXPECTED[n]))
def test_corpus_source_is_refused(refusal, name):
    path = os.path.join(CORPUS, name)
    started = time.monotonic()
    message = refusal(path)
    assert time.monotonic() - started < 20, "took %.1f s" % (time.monotonic() - started)
    assert message is not None, "accepted"
    assert_user_message(message)
    for words in EXPECTED[name]["error"]:
        assert words in message, message


def test_a_source_without_the_plugin_key_is_not_read_by_the_plugin(refusal):
    """Without `plugin:` Ansible's yaml plugin reads the file as a static inventory (with warnings): no
    deployment group is made, and the deploy playbook's contract then lists none (see EXPECTED.json)."""
    name = "missing-plugin-key.codedeploy.yml"
    assert "not_read" in EXPECTED[name]
    assert refusal(os.path.join(CORPUS, name)) is None


GOOD = ("plugin: rollout.codedeploy.codedeploy\nregions: [us-east-1]\napplications:\n  web:\n    deployment_groups:\n"
        "      production:\n        ec2_tag_filters: [{key: Role, value: web}]\n")
GENERATED = {
    "latin-1.codedeploy.yml": (GOOD.replace("production", "caf\xe9").encode("latin-1"), ["YAML parsing failed", "'utf-8' codec"]),
    "nul-byte.codedeploy.yml": (GOOD.replace("production", "prod\x00").encode(), ["unacceptable character #x0000"]),
    "bell-byte.codedeploy.yml": (GOOD.replace("web}", "w\x07b}").encode(), ["unacceptable character #x0007"]),
    # YAML keeps the last of two equal keys: the first application or group would vanish without a word.
    "duplicate-application-names.codedeploy.yml": (
        (GOOD + "  web:\n    deployment_groups:\n      staging:\n        ec2_tag_filters: [{key: Env, value: staging}]\n").encode(),
        ["key applications.web", "is given twice (lines 4 and 8)", "Merge the two or rename one"]),
    "duplicate-group-names.codedeploy.yml": (
        (GOOD + "      production:\n        ec2_tag_filters: [{key: Env, value: prod}]\n").encode(),
        ["key applications.web.deployment_groups.production", "is given twice (lines 6 and 8); YAML would keep only the last one"]),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_bytes_a_yaml_file_cannot_hold(refusal, tmp_path, name):
    data, words = GENERATED[name]
    path = tmp_path / name
    path.write_bytes(data)
    message = refusal(str(path))
    assert message is not None, "accepted"
    assert_user_message(message)
    for word in words:
        assert word in message, message


def test_a_huge_source_is_refused_quickly(refusal, tmp_path):
    """3 MB: a long comment and a 1 MB tag value that a KEY_ONLY filter would ignore; the message shows it cut short."""
    path = tmp_path / "huge.codedeploy.yml"
    path.write_text("plugin: rollout.codedeploy.codedeploy\nregions: [us-east-1]\n" + "# padding\n" * 220000
                    + "applications:\n  web:\n    deployment_groups:\n      production:\n        ec2_tag_filters:\n"
                    + "          - {key: Role, type: KEY_ONLY, value: '" + "w" * (1024 * 1024) + "'}\n")
    assert path.stat().st_size > 3 * 1024 * 1024
    started = time.monotonic()
    message = refusal(str(path))
    assert time.monotonic() - started < 30
    assert_user_message(message)
    assert "key ec2_tag_filters[0].value" in message and "a KEY_ONLY filter ignores the value" in message
    assert "(1048576 characters)" in message


CLI_CASES = ["typo-group-key.codedeploy.yml", "yaml-bomb-alarm-names.codedeploy.yml", "group-without-selectors.codedeploy.yml",
             "applications-empty.codedeploy.yml"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_ansible_inventory_shows_the_message_unchanged(name, tmp_path):
    """The same refusal through `ansible-inventory -i <file> --list`, as a user (or AWX) runs it."""
    env = dict(os.environ, AWS_ENDPOINT_URL=UNREACHABLE, AWS_ACCESS_KEY_ID="corpus", AWS_SECRET_ACCESS_KEY="corpus",
               ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", COLUMNS="1000",
               ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_HOME=str(tmp_path))
    command = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    result = subprocess.run([command, "-i", os.path.join(CORPUS, name), "--list"], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    output = re.sub(r"\s+", " ", result.stdout + result.stderr)
    assert result.returncode != 0, output[-2000:]
    for words in EXPECTED[name]["error"]:
        assert re.sub(r"\s+", " ", words) in output, output[-3000:]
    assert "Traceback" not in output and "Could not connect" not in output
