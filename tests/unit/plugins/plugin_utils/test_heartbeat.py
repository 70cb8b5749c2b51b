"""The lease heartbeat: renews while the controller lives, stops when the deployment settles or the controller is gone."""
import os
import subprocess
import sys
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import heartbeat


def _open(tmp_path, lease=2):
    book = ledgers.open_ledger(str(tmp_path / "ledger.sqlite3"))
    summary = book.create_deployment("web", "production", "g", {"location": "x"}, "CodeDeployDefault.OneAtATime", [],
                                     owner="me", lease_seconds=lease)
    book.update_status(summary["deployment_id"], "InProgress")
    return book, summary["deployment_id"]


def test_renews_until_the_deployment_is_settled(tmp_path):
    book, deployment_id = _open(tmp_path)
    first = book.get_deployment(deployment_id, include_instances=False)["lease_expires"]
    ticks, leases = [], []

    def sleep(seconds):
        ticks.append(seconds)
        leases.append(book.get_deployment(deployment_id, include_instances=False)["lease_expires"])
        if len(ticks) == 3:
            book.update_status(deployment_id, "Succeeded")
        time.sleep(1.1)
    assert heartbeat.beat(book, deployment_id, "me", 2, os.getpid(), sleep=sleep, limit=10) == "settled"
    assert len(ticks) == 3 and leases[0] >= first and leases[2] > leases[0]


def test_stops_when_the_controller_is_gone(tmp_path):
    book, deployment_id = _open(tmp_path)
    assert heartbeat.beat(book, deployment_id, "me", 2, 123, is_alive=lambda pid: False, limit=5) == "controller gone"


def test_a_zombie_or_missing_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while heartbeat.alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not heartbeat.alive(child.pid)  # exited and not yet reaped: a zombie
    child.wait()
    assert heartbeat.alive(os.getpid())


def test_the_detached_process_keeps_the_lease_past_its_length(tmp_path):
    book, deployment_id = _open(tmp_path, lease=1)
    pid = heartbeat.start(str(tmp_path / "ledger.sqlite3"), {}, deployment_id, "me", 1, os.getpid())
    assert pid
    try:
        time.sleep(2.5)
        assert not book.get_deployment(deployment_id, include_instances=False)["lease_expired"]
    finally:
        book.update_status(deployment_id, "Succeeded")
    deadline = time.monotonic() + 10
    while heartbeat.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not heartbeat.alive(pid)


def test_a_controller_that_dies_during_a_renewal_gets_its_lease_handed_back(tmp_path):
    book, deployment_id = _open(tmp_path, lease=60)
    answers = iter([True, False])
    assert heartbeat.beat(book, deployment_id, "me", 60, 123, is_alive=lambda pid: next(answers), sleep=lambda s: None, limit=3) \
        == "controller gone"
    assert book.get_deployment(deployment_id, include_instances=False)["lease_expired"]


def test_a_controller_that_dies_between_renewals_ends_the_heartbeat_within_a_watch(tmp_path):
    book, deployment_id = _open(tmp_path, lease=300)
    naps, answers = [], iter([True, True, True, False])
    assert heartbeat.beat(book, deployment_id, "me", 300, 123, is_alive=lambda pid: next(answers), sleep=naps.append, limit=3) \
        == "controller gone"
    assert naps == [heartbeat.WATCH, heartbeat.WATCH]  # not the whole 60 s until the next renewal
