# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger writes under contention: the one retry policy (plugins/module_utils/ledger/__init__.py RetryPolicy),
a SQLite ledger whose file another connection holds locked, and a DynamoDB ledger whose (stub) client throttles."""

import sqlite3
import threading
import time

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import sqlite as sqlite_ledger

botocore_exceptions = pytest.importorskip("botocore.exceptions")
dynamodb = pytest.importorskip("ansible_collections.rollout.codedeploy.plugins.module_utils.ledger.dynamodb")


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures, reason="database is locked"):
    calls = []

    def operation():
        calls.append(1)
        if len(calls) <= failures:
            raise model.LedgerBusy(reason, "end the other process")
        return "done"
    return operation, calls


# ------------------------------------------------------------------ the policy
def test_policy_retries_busy_attempts_with_growing_jittered_pauses():
    fake = FakeClock()
    policy = model.RetryPolicy(bound=120, sleep=fake.sleep, clock=fake.clock, jitter=lambda: 1.0)
    operation, calls = flaky(5)
    assert policy.run(operation) == "done"
    assert len(calls) == 6
    assert fake.sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]
    low = model.RetryPolicy(jitter=lambda: 0.0)
    assert low.delay(1) == 0.025 and low.delay(40) == model.RETRY_MAX_DELAY / 2
    assert model.RetryPolicy(jitter=lambda: 1.0).delay(40) == model.RETRY_MAX_DELAY


def test_policy_gives_up_at_its_bound_with_the_reason_and_a_hint():
    fake = FakeClock()
    policy = model.RetryPolicy(bound=10, sleep=fake.sleep, clock=fake.clock, jitter=lambda: 1.0)
    operation, calls = flaky(10 ** 6)
    with pytest.raises(model.LedgerUnavailable) as caught:
        policy.run(operation)
    assert fake.now == pytest.approx(10)
    assert caught.value.attempts == len(calls)
    assert "database is locked" in caught.value.message and "end the other process" in caught.value.message
    named = caught.value.about("the end of instance i-1 in deployment d-AAAAAAAAA (Succeeded)", "/tmp/l.sqlite3")
    assert named.message.startswith("the ledger /tmp/l.sqlite3 could not record the end of instance i-1 in deployment "
                                    "d-AAAAAAAAA (Succeeded): database is locked; it kept trying for 10.0 s")
    assert "Error" not in named.message and "Exception" not in named.message


def test_policy_never_retries_logic_errors():
    fake = FakeClock()
    policy = model.RetryPolicy(sleep=fake.sleep, clock=fake.clock)
    calls = []

    def refuse():
        calls.append(1)
        raise model.LedgerError("deployment d-AAAAAAAAA is already Failed")
    with pytest.raises(model.LedgerError, match="already Failed"):
        policy.run(refuse)
    assert calls == [1] and fake.sleeps == []


# ------------------------------------------------------------------ SQLite: the file locked by another connection
def _hold_lock(path, seconds, ready):
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def _locked_ledger(tmp_path, bound, hold):
    path = str(tmp_path / "ledger.sqlite3")
    ledger = sqlite_ledger.SQLiteLedger(path, timeout=0.1, retry=model.RetryPolicy(bound=bound, max_delay=0.2))
    summary = ledger.create_deployment("web", "production", "dg-1", {"sha256": "a" * 64}, "CodeDeployDefault.OneAtATime",
                                       [{"instance_id": "i-1", "host": "web-1"}])
    deployment_id = summary["deployment_id"]
    ledger.update_status(deployment_id, "InProgress")
    assert ledger.try_start_instance(deployment_id, "i-1", 1)
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, hold, ready))
    holder.start()
    assert ready.wait(5)
    return ledger, deployment_id, holder


def test_sqlite_write_waits_for_a_lock_that_is_released(tmp_path):
    ledger, deployment_id, holder = _locked_ledger(tmp_path, bound=10, hold=1.0)
    started = time.monotonic()
    try:
        ledger.record_events(deployment_id, "i-1", [{"event": "Install", "status": "Succeeded"}])
        ledger.finish_instance(deployment_id, "i-1", "Succeeded")
    finally:
        holder.join()
    assert time.monotonic() - started >= 0.9
    instance = ledger.get_deployment(deployment_id)["instances"][0]
    assert instance["status"] == "Succeeded" and [e["event"] for e in instance["events"]] == ["Install"]


def test_sqlite_write_held_past_the_bound_fails_clearly(tmp_path):
    ledger, deployment_id, holder = _locked_ledger(tmp_path, bound=0.5, hold=2.0)
    try:
        with pytest.raises(model.LedgerUnavailable) as caught:
            ledger.finish_instance(deployment_id, "i-1", "Succeeded")
    finally:
        holder.join()
    message = caught.value.message
    assert message.startswith("the ledger %s could not record the end of instance i-1 in deployment %s (Succeeded): database is locked"
                              % (ledger.path, deployment_id))
    assert "fuser %s" % ledger.path in message and "OperationalError" not in message
    # Once the lock is gone the same write goes through, and reads never waited for it.
    ledger.finish_instance(deployment_id, "i-1", "Succeeded")
    assert ledger.get_deployment(deployment_id)["instances"][0]["status"] == "Succeeded"


def test_sqlite_reads_are_not_blocked_by_a_held_write_lock(tmp_path):
    ledger, deployment_id, holder = _locked_ledger(tmp_path, bound=0.5, hold=1.0)
    try:
        assert ledger.get_deployment(deployment_id, include_instances=False)["status"] == "InProgress"
    finally:
        holder.join()


# ------------------------------------------------------------------ DynamoDB: a stub client that throttles
def _client_error(code, message, operation="UpdateItem"):
    return botocore_exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


class ThrottlingClient:
    """Raises each of ``failures`` once, then answers; counts the calls."""

    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = []

    def update_item(self, **kwargs):
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return {}


def _stub_ledger(client, fake, bound=30):
    ledger = dynamodb.DynamoDBLedger.__new__(dynamodb.DynamoDBLedger)
    ledger.table, ledger.location, ledger.readonly = "ledger", "dynamodb://ledger", False
    ledger.retry = model.RetryPolicy(bound=bound, sleep=fake.sleep, clock=fake.clock, jitter=lambda: 1.0)
    ledger._client, ledger._pid, ledger._static, ledger._aws = client, __import__("os").getpid(), {}, {}
    ledger._require_unsettled = lambda deployment_id, what: None  # the stub client answers writes only
    return ledger


def test_dynamodb_throttling_and_conflicts_are_retried_then_succeed():
    fake = FakeClock()
    client = ThrottlingClient([
        _client_error("ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the table was exceeded."),
        _client_error("ThrottlingException", "Rate of requests exceeds the allowed throughput."),
        _client_error("TransactionConflictException", "Transaction is ongoing for the item"),
    ])
    ledger = _stub_ledger(client, fake)
    ledger.record_events("d-AAAAAAAAA", "i-1", [{"event": "Install", "status": "Succeeded"}])
    assert len(client.calls) == 4
    assert fake.sleeps == [0.05, 0.1, 0.2]


def test_dynamodb_conditional_check_failures_are_logic_and_not_retried():
    fake = FakeClock()
    client = ThrottlingClient([_client_error("ConditionalCheckFailedException", "The conditional request failed")])
    ledger = _stub_ledger(client, fake)
    with pytest.raises(dynamodb._ConditionFailed):  # pylint: disable=protected-access
        ledger._update_item(dynamodb._deployment_key("d-AAAAAAAAA"), dynamodb._Expr(), "SET a = :a")  # pylint: disable=protected-access
    assert len(client.calls) == 1 and fake.sleeps == []


def test_dynamodb_throttled_past_the_bound_names_the_write_and_the_cause():
    fake = FakeClock()
    client = ThrottlingClient([_client_error("ProvisionedThroughputExceededException", "throughput exceeded")] * 1000)
    ledger = _stub_ledger(client, fake, bound=5)
    with pytest.raises(model.LedgerUnavailable) as caught:
        ledger.record_events("d-AAAAAAAAA", "i-1", [{"event": "Install", "status": "Succeeded"}])
    message = caught.value.message
    assert message.startswith("the ledger dynamodb://ledger could not record event Install of instance i-1 in deployment d-AAAAAAAAA: "
                              "DynamoDB refused update_item: throughput exceeded; it kept trying for 5.0 s")
    assert "raise its capacity" in message and "Exception" not in message
    assert fake.now == pytest.approx(5)
