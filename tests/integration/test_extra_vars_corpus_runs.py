"""Items of the extra vars corpus (tests/corpus/extra_vars) run as a user runs them, ansible-playbook with
-e @<file>, against the world: each run fails with the message EXPECTED.json names, without a Python
exception, and leaves no ledger row (so no group lock: the ledger's lock is the active deployment's row)
and no host changed."""
import json
import os
import re

import pytest

from test_refused_inputs import EXCEPTION_NAMES, _inventory, _run, _untouched
from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

CORPUS = os.path.join(paths.REPO, "tests", "corpus", "extra_vars")
with open(os.path.join(CORPUS, "EXPECTED.json")) as _handle:
    EXPECTED = json.load(_handle)
CHOSEN = [
    "deploy-deployment-group-list.json",
    "deploy-revision-s3-list.json",
    "deploy-revision-path-missing.json",
    "deploy-lease-over-a-day.json",
    "deploy-description-nul.json",
    "deploy-alarms-unknown-key.json",
    "deploy-host-lock-wait-word.json",
    "rollback-deployment-id-short.json",
    "rollback-host-lock-wait-float.json",
    "stop-force-maybe.json",
    "stop-deployment-id-number.json",
]


def test_corpus_items_fail_through_ansible_playbook(world, aws, fleet_hosts, tmp_path):
    web = world.launch_bound(aws, 1, {"Role": "web"})
    aws.target_group("web-tg")
    inventory = _inventory(world, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    assert {EXPECTED[name]["playbook"] for name in CHOSEN} == {"deploy", "rollback", "stop"}
    for name in CHOSEN:
        result = _run(world, EXPECTED[name]["playbook"] + ".yml", inventory, ["@" + os.path.join(CORPUS, name)], ledger_path)
        output = re.sub(r"\s+", " ", result.stdout + result.stderr)
        assert result.returncode != 0, name
        for words in EXPECTED[name]["error"]:
            shown = re.sub(r"\s+", " ", words).replace("\\x", "\\\\x")
            assert words in output or shown in output, (name, words, output[-3000:])
        assert not EXCEPTION_NAMES.search(output), (name, EXCEPTION_NAMES.search(output).group(0), output[-3000:])
        assert "Traceback" not in output and 'File "' not in output, name
        assert not os.path.exists(ledger_path) or not ledgers.open_ledger(ledger_path).list_deployments(), name
    assert _untouched(world, list(web.values()))
