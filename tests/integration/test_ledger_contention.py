"""A deployment whose SQLite ledger another process holds locked while a host finishes (docs/ledger.md, "Contention"):
the writes wait and retry, and the deployment ends Succeeded with every instance and event recorded."""
import sqlite3
import threading
import time

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import sqlite as sqlite_ledger

from test_deploy import _slow_revision, _wait_for, deploy, fleet, inventory, last_deployment

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

# Longer than SQLite's own busy timeout, so the write only gets through because the ledger retries it.
HOLD = sqlite_ledger.BUSY_TIMEOUT + 5


def _admitted(ledger_path):
    def check():
        try:
            book = ledgers.open_ledger(ledger_path, readonly=True)
            latest = book.list_deployments(limit=1)
        except ledgers.LedgerError:
            return None
        return latest and latest[0]["overview"].get("InProgress", 0) >= 1
    return check


def _hold(ledger_path, held):
    _wait_for(_admitted(ledger_path), "the first host to start", limit=180)
    other = sqlite3.connect(ledger_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    held.append(time.monotonic())
    time.sleep(HOLD)
    other.execute("COMMIT")
    other.close()
    held.append(time.monotonic())


def test_a_ledger_locked_while_a_host_finishes_still_records_everything(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 2, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    held = []
    holder = threading.Thread(target=_hold, args=(ledger_path, held), daemon=True)
    holder.start()
    result = deploy(world, inventory(world, tmp_path, load_balancer=False), _slow_revision(tmp_path, "v1", "1.0.0", 3), ledger_path)
    holder.join(timeout=HOLD + 60)
    assert len(held) == 2, "the lock was never taken"
    assert "Succeeded" in result.stdout, result.stdout[-3000:]
    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Succeeded" and deployment["overview"]["Succeeded"] == len(bound)
    for instance in deployment["instances"]:
        assert instance["status"] == "Succeeded" and instance["end"]
        assert instance["events"] and all(e["status"] == "Succeeded" for e in instance["events"])
        assert "ApplicationStart" in [e["event"] for e in instance["events"]]
