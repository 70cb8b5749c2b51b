# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""THE ledger suite: every test runs on both backends, SQLite (a file in tmp_path) and DynamoDB (the world's moto server).

Multi-process tests fork real processes, as Ansible's forks do, and race them on one ledger.  For DynamoDB they
use a moto server of their own on loopback that runs one request at a time: the world's moto server runs requests
in parallel threads without locking its tables, so two concurrent updates of one item can lose one (an ADD, a
conditional put), which real DynamoDB never does.  Serialized requests give exactly DynamoDB's guarantee (each
request is atomic) and nothing more, so what these tests prove is the ledger's own concurrency logic.
"""
import collections
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledger_api
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError, ActiveDeploymentError, open_ledger

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REVISION = {"s3": {"bucket": "releases", "key": "web.tgz", "version": "v1", "sha256": "a" * 64}, "bundle_type": "tgz"}
FORK = multiprocessing.get_context("fork")


class Backend:
    """How to open one backend's ledger (picklable, so forked children can open their own)."""

    def __init__(self, name, location, aws=None):
        self.name = name
        self.location = location
        self.aws = aws

    def open(self, readonly=False):
        return open_ledger(self.location, aws=self.aws, readonly=readonly)


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "state" / "ledger.sqlite3"))
    request.getfixturevalue("aws")  # a freshly reset moto server
    world = request.getfixturevalue("world")
    env = world.moto.env()
    return Backend("dynamodb", "dynamodb://rollout-ledger-test", {
        "region": env["AWS_REGION"], "endpoint_url": world.moto.endpoint,
        "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"]})


# A moto server whose requests run one at a time (see the module docstring); prints its port.
SERIAL_MOTO = """
import threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serial(environ, start_response):
    with lock:
        return list(app(environ, start_response))
server = make_server("127.0.0.1", 0, serial, threaded=True, request_handler=MotoRequestHandler)
print(server.server_port, flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def serial_moto():
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    process = subprocess.Popen([sys.executable, "-c", SERIAL_MOTO], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                               env=env, text=True)
    try:
        port = int(process.stdout.readline())
        yield "http://127.0.0.1:%d" % port
    finally:
        process.kill()
        process.wait()


@pytest.fixture(params=["sqlite", "dynamodb"])
def mp_backend(request, tmp_path):
    """The backend for multi-process tests (DynamoDB: the serialized moto server, a table per test)."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "ledger.sqlite3"))
    endpoint = request.getfixturevalue("serial_moto")
    return Backend("dynamodb", "dynamodb://ledger-%s" % uuid.uuid4().hex[:12], {
        "region": "us-east-1", "endpoint_url": endpoint, "access_key": "testing", "secret_key": "testing"})


@pytest.fixture
def ledger(backend):
    opened = backend.open()
    yield opened
    opened.close()


def hosts(count, prefix="i-"):
    return [{"instance_id": "%s%03d" % (prefix, n), "host": "web-%d" % n, "zone": "us-east-1%s" % "abc"[n % 3]}
            for n in range(count)]


def create(ledger, count=3, group="production", **kwargs):
    kwargs.setdefault("deployment_group_id", "dg-1")
    kwargs.setdefault("revision", REVISION)
    kwargs.setdefault("deployment_config", "CodeDeployDefault.OneAtATime")
    kwargs.setdefault("instances", hosts(count))
    return ledger.create_deployment("web", group, **kwargs)


def finish(ledger, deployment, status="Succeeded"):
    return ledger.update_status(deployment["deployment_id"], status)


def statuses(deployment):
    return collections.Counter(i["status"] for i in deployment["instances"])


def check_counters(ledger, deployment_id):
    """The overview matches the instances, in get and in list, and ``unhealthy`` = InProgress + Failed."""
    full = ledger.get_deployment(deployment_id)
    counted = statuses(full)
    expected = dict((key, counted.get(key, 0)) for key in ledger_api.OVERVIEW_KEYS)
    assert full["overview"] == expected
    listed = [d for d in ledger.list_deployments(full["application"], full["deployment_group"], limit=0)
              if d["deployment_id"] == deployment_id][0]
    assert listed["overview"] == expected
    assert full["unhealthy"] == counted.get("InProgress", 0) + counted.get("Failed", 0)
    return full


# ------------------------------------------------------------------------------------------ creating and reading
def test_create_and_get(ledger):
    created = create(ledger, count=3, description="release 1.4", options={"file_exists_behavior": "OVERWRITE"}, owner="ci@ctl")
    deployment_id = created["deployment_id"]
    assert re.match(r"^d-[A-Z0-9]{9}$", deployment_id)
    assert created["orphaned"] == []
    assert "instances" not in created
    got = ledger.get_deployment(deployment_id)
    for key in ("deployment_id", "application", "deployment_group", "status", "create_time", "lease_expires", "owner", "overview"):
        assert got[key] == created[key], key
    assert got["application"] == "web" and got["deployment_group"] == "production" and got["deployment_group_id"] == "dg-1"
    assert got["status"] == "Created" and got["creator"] == "user" and got["description"] == "release 1.4"
    assert got["revision"] == REVISION
    assert got["deployment_config"] == "CodeDeployDefault.OneAtATime"
    assert got["options"] == {"file_exists_behavior": "OVERWRITE"}
    assert got["owner"] == "ci@ctl"
    assert TIME.match(got["create_time"]) and TIME.match(got["lease_expires"]) and got["lease_expires"] > got["create_time"]
    assert got["start_time"] is None and got["complete_time"] is None and got["error"] is None and got["rollback_info"] is None
    assert got["overview"] == {"Pending": 3, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0, "Ready": 0, "Unknown": 0}
    assert [i["instance_id"] for i in got["instances"]] == ["i-000", "i-001", "i-002"]
    first = got["instances"][0]
    assert first == {"instance_id": "i-000", "host": "web-0", "zone": "us-east-1a", "status": "Pending", "start": None, "end": None,
                     "error_code": None, "message": None, "out_of_service": False, "events": []}
    assert "instances" not in ledger.get_deployment(deployment_id, include_instances=False)


def test_instances_keep_their_order_and_extra_keys(ledger):
    instances = [{"instance_id": "i-zz", "host": "z", "address": "10.0.0.9"}, {"instance_id": "i-aa"}, "i-mm"]
    deployment = ledger.get_deployment(create(ledger, instances=instances)["deployment_id"])
    assert [i["instance_id"] for i in deployment["instances"]] == ["i-zz", "i-aa", "i-mm"]
    assert deployment["instances"][0]["address"] == "10.0.0.9"
    assert deployment["instances"][1]["host"] == "i-aa"


def test_bad_input_is_refused_with_a_message(ledger):
    with pytest.raises(LedgerError, match="listed twice"):
        create(ledger, instances=[{"instance_id": "i-1"}, {"instance_id": "i-1"}])
    with pytest.raises(LedgerError, match="no instance_id"):
        create(ledger, instances=[{"host": "web-1"}])
    with pytest.raises(LedgerError, match="not a deployment id"):
        create(ledger, deployment_id="D-1")
    with pytest.raises(LedgerError, match="needs the application"):
        ledger.list_deployments(deployment_group="production")
    with pytest.raises(LedgerError, match="not a deployment status"):
        ledger.list_deployments("web", statuses=["Done"])
    assert ledger.list_deployments() == []


def test_unknown_deployment(ledger, backend):
    with pytest.raises(LedgerError) as raised:
        ledger.get_deployment("d-AAAAAAAAA")
    assert raised.value.message == "no deployment d-AAAAAAAAA in the ledger %s" % ledger.location
    assert backend.name == "dynamodb" or ledger.location == backend.location
    for call in (lambda: ledger.update_status("d-AAAAAAAAA", "Failed"), lambda: ledger.renew_lease("d-AAAAAAAAA"),
                 lambda: ledger.record_events("d-AAAAAAAAA", "i-1", [{"event": "Install", "status": "Succeeded"}]),
                 lambda: ledger.finish_instance("d-AAAAAAAAA", "i-1", "Succeeded"),
                 lambda: ledger.try_start_instance("d-AAAAAAAAA", "i-1", 1),
                 lambda: ledger.request_stop("d-AAAAAAAAA")):
        with pytest.raises(LedgerError, match="no deployment d-AAAAAAAAA"):
            call()
    deployment_id = create(ledger)["deployment_id"]
    with pytest.raises(LedgerError, match="instance i-nope is not part of deployment %s" % deployment_id):
        ledger.finish_instance(deployment_id, "i-nope", "Succeeded")
    with pytest.raises(LedgerError, match="instance i-nope is not part of"):
        ledger.record_events(deployment_id, "i-nope", [{"event": "Install", "status": "Succeeded"}])


def test_explicit_deployment_id(ledger):
    created = create(ledger, deployment_id="d-ABCDEF123")
    assert created["deployment_id"] == "d-ABCDEF123"
    finish(ledger, created)
    with pytest.raises(LedgerError, match="d-ABCDEF123 already exists"):
        create(ledger, deployment_id="d-ABCDEF123")
    create(ledger)  # the failed attempt left no lock behind


# ------------------------------------------------------------------------------------------ the group lock
def test_second_deployment_to_an_active_group_is_refused(ledger):
    first = create(ledger, owner="alice@controller-1")
    ledger.update_status(first["deployment_id"], "InProgress")
    with pytest.raises(ActiveDeploymentError) as raised:
        create(ledger)
    message = raised.value.message
    assert message.startswith("deployment group web/production already has an active deployment %s (InProgress since "
                              % first["deployment_id"])
    assert "started by alice@controller-1" in message
    assert "rollout.codedeploy.stop" in message
    assert raised.value.active["deployment_id"] == first["deployment_id"]
    assert raised.value.active["status"] == "InProgress"
    assert len(ledger.list_deployments("web", "production")) == 1
    other = create(ledger, group="staging")  # another group of the same application is free
    assert other["deployment_group"] == "staging"


def test_a_terminal_status_releases_the_group(ledger):
    for status in ("Succeeded", "Failed", "Stopped"):
        deployment = create(ledger)
        done = ledger.update_status(deployment["deployment_id"], status, "MANUAL_STOP" if status == "Stopped" else None)
        assert done["status"] == status and TIME.match(done["complete_time"]) and done["lease_expires"] is None
        assert done["start_time"] is not None
    assert [d["status"] for d in ledger.list_deployments("web", "production")] == ["Stopped", "Failed", "Succeeded"]


def test_an_expired_lease_is_an_orphan_marked_failed(ledger):
    orphan = create(ledger, count=3, lease_seconds=0, owner="bob@gone")
    orphan_id = orphan["deployment_id"]
    ledger.update_status(orphan_id, "InProgress")
    assert ledger.try_start_instance(orphan_id, "i-000", 1)
    assert ledger.get_deployment(orphan_id, include_instances=False)["lease_expired"] is True

    successor = create(ledger)
    assert successor["orphaned"] == [orphan_id]
    dead = check_counters(ledger, orphan_id)
    assert dead["status"] == "Failed" and dead["error"]["code"] == "TIMEOUT"
    assert orphan["lease_expires"] in dead["error"]["message"]
    assert successor["deployment_id"] in dead["error"]["message"] and "bob@gone" in dead["error"]["message"]
    assert TIME.match(dead["complete_time"]) and dead["lease_expires"] is None
    assert [i["status"] for i in dead["instances"]] == ["Unknown", "Skipped", "Skipped"]
    assert dead["unhealthy"] == 0
    # The killed controller, should it come back, learns it lost the deployment.
    with pytest.raises(LedgerError, match="already Failed"):
        ledger.update_status(orphan_id, "Succeeded")
    with pytest.raises(LedgerError, match="already Failed"):
        ledger.renew_lease(orphan_id)
    with pytest.raises(LedgerError, match="already Failed"):
        ledger.try_start_instance(orphan_id, "i-001", 5)
    assert ledger.update_status(orphan_id, "Failed")["error"]["code"] == "TIMEOUT"  # same status again: no change


def test_abandon_settles_without_the_controller_and_its_writes_are_refused(ledger):
    held = create(ledger, count=3, owner="ansible-playbook pid 1 on gone (user x)")
    held_id = held["deployment_id"]
    ledger.update_status(held_id, "InProgress")
    assert ledger.try_start_instance(held_id, "i-000", 2)
    ledger.finish_instance(held_id, "i-000", "Succeeded")
    assert ledger.try_start_instance(held_id, "i-001", 2)
    assert ledger.abandon(held_id, "Stopped", "MANUAL_STOP", "forced by ops") is True
    done = check_counters(ledger, held_id)
    assert done["status"] == "Stopped" and done["error"] == {"code": "MANUAL_STOP", "message": "forced by ops"}
    assert [i["status"] for i in done["instances"]] == ["Succeeded", "Unknown", "Skipped"]
    assert done["lease_expires"] is None and TIME.match(done["complete_time"])
    assert ledger.abandon(held_id, "Stopped", "MANUAL_STOP", "again") is False
    # The controller that lost it learns so on its next write, and nothing it sends is recorded.
    with pytest.raises(ledger_api.DeploymentSettledError, match="settled elsewhere .Stopped: MANUAL_STOP."):
        ledger.record_events(held_id, "i-001", [{"event": "Install", "status": "Succeeded"}])
    with pytest.raises(ledger_api.DeploymentSettledError):
        ledger.finish_instance(held_id, "i-001", "Succeeded")
    assert check_counters(ledger, held_id)["instances"][1]["status"] == "Unknown"
    assert create(ledger)["orphaned"] == []  # the group is free at once


def test_renewing_the_lease_keeps_the_group(ledger):
    deployment = create(ledger, lease_seconds=0)
    new_expiry = ledger.renew_lease(deployment["deployment_id"], owner="carol@ctl", lease_seconds=600)
    assert TIME.match(new_expiry)
    with pytest.raises(ActiveDeploymentError) as raised:
        create(ledger)
    assert raised.value.active["owner"] == "carol@ctl" and raised.value.active["lease_expires"] == new_expiry
    ledger.renew_lease(deployment["deployment_id"], lease_seconds=0)
    assert create(ledger)["orphaned"] == [deployment["deployment_id"]]


def test_status_changes(ledger):
    deployment_id = create(ledger)["deployment_id"]
    with pytest.raises(LedgerError, match="'Done' is not a deployment status"):
        ledger.update_status(deployment_id, "Done")
    started = ledger.update_status(deployment_id, "InProgress")
    assert TIME.match(started["start_time"])
    assert ledger.update_status(deployment_id, "Ready")["start_time"] == started["start_time"]
    failed = ledger.update_status(deployment_id, "Failed", "HEALTH_CONSTRAINTS", "too many hosts failed")
    assert failed["error"] == {"code": "HEALTH_CONSTRAINTS", "message": "too many hosts failed"}
    with pytest.raises(LedgerError, match="already Failed .HEALTH_CONSTRAINTS: too many hosts failed.; a finished deployment cannot"):
        ledger.update_status(deployment_id, "Succeeded")


# ------------------------------------------------------------------------------------------ instances and events
def test_admission_is_bounded_by_the_unhealthy_counter(ledger):
    deployment_id = create(ledger, count=5)["deployment_id"]
    assert ledger.try_start_instance(deployment_id, "i-000", 2) is True
    assert ledger.try_start_instance(deployment_id, "i-001", 2) is True
    assert ledger.try_start_instance(deployment_id, "i-002", 2) is False
    assert ledger.try_start_instance(deployment_id, "i-000", 2) is True  # already admitted: no second slot
    assert check_counters(ledger, deployment_id)["unhealthy"] == 2
    ledger.finish_instance(deployment_id, "i-000", "Succeeded")
    assert ledger.try_start_instance(deployment_id, "i-002", 2) is True
    ledger.finish_instance(deployment_id, "i-001", "Failed", error_code="HOOK_EXECUTION_FAILURE", message="check.sh exited 1")
    assert ledger.try_start_instance(deployment_id, "i-003", 2) is False  # the failure keeps its slot
    ledger.finish_instance(deployment_id, "i-002", "Succeeded")
    assert ledger.try_start_instance(deployment_id, "i-003", 2) is True
    ledger.set_instance(deployment_id, "i-004", "Skipped", message="deployment stopped")
    full = check_counters(ledger, deployment_id)
    assert full["unhealthy"] == 2
    assert [i["status"] for i in full["instances"]] == ["Succeeded", "Failed", "Succeeded", "InProgress", "Skipped"]
    with pytest.raises(LedgerError, match="already Succeeded; it cannot start again"):
        ledger.try_start_instance(deployment_id, "i-000", 10)
    with pytest.raises(LedgerError, match="already Failed; it cannot start again"):
        ledger.try_start_instance(deployment_id, "i-001", 10)


def test_instance_fields(ledger):
    deployment_id = create(ledger, count=3)["deployment_id"]
    assert ledger.try_start_instance(deployment_id, "i-000", 1)
    ledger.finish_instance(deployment_id, "i-000", "Failed", error_code="HOOK_EXECUTION_FAILURE", message="ValidateService failed",
                           out_of_service=True, last_event="ValidateService")
    ledger.set_instance(deployment_id, "i-001", "Failed", message="unreachable: ssh timed out")  # never started: still unhealthy
    ledger.set_instance(deployment_id, "i-002", "Ready", revision_sha256="b" * 64)
    with pytest.raises(LedgerError, match="'Done' is not a instance status"):
        ledger.set_instance(deployment_id, "i-002", "Done")
    full = check_counters(ledger, deployment_id)
    first, second, third = full["instances"]
    assert first["status"] == "Failed" and first["error_code"] == "HOOK_EXECUTION_FAILURE" and first["out_of_service"] is True
    assert first["last_event"] == "ValidateService" and TIME.match(first["start"]) and first["end"] >= first["start"]
    assert second["status"] == "Failed" and second["start"] is None and second["message"] == "unreachable: ssh timed out"
    assert third["status"] == "Ready" and third["revision_sha256"] == "b" * 64
    assert full["unhealthy"] == 2 and full["overview"]["Ready"] == 1


def test_events_are_upserted_and_read_in_lifecycle_order(ledger):
    deployment_id = create(ledger, count=1)["deployment_id"]
    ledger.try_start_instance(deployment_id, "i-000", 1)
    ledger.record_events(deployment_id, "i-000", [
        {"event": "AfterInstall", "status": "InProgress", "start": "2026-11-22T02:03:05.000Z"},
        {"event": "ApplicationStop", "status": "Succeeded", "start": "2026-11-22T02:03:04.000Z", "end": "2026-11-22T02:03:04.250Z"},
        {"event": "DownloadBundle", "status": "Succeeded", "duration": 2},
    ])
    ledger.record_events(deployment_id, "i-000", [
        {"event": "AfterInstall", "status": "Failed", "start": "2026-11-22T02:03:05.000Z", "end": "2026-11-22T02:03:07.000Z",
         "error_code": "ScriptFailed", "message": "scripts/after.sh exited 3", "log_tail": "x" * 5000 + "END"},
        {"event": "BeforeInstall", "status": "Succeeded"},
    ])
    with pytest.raises(LedgerError, match="'Broken' is not a lifecycle event status"):
        ledger.record_events(deployment_id, "i-000", [{"event": "Install", "status": "Broken"}])
    events = ledger.get_deployment(deployment_id)["instances"][0]["events"]
    assert [e["event"] for e in events] == ["ApplicationStop", "DownloadBundle", "BeforeInstall", "AfterInstall"]
    assert events[0]["duration"] == 0.25 and events[1]["duration"] == 2
    after = events[3]
    assert after["status"] == "Failed" and after["error_code"] == "ScriptFailed" and after["duration"] == 2
    assert after["log_tail"].endswith("END") and len(after["log_tail"]) == ledger_api.MAX_LOG_TAIL
    assert set(after) == set(ledger_api.EVENT_FIELDS)


def test_stop_requests(ledger):
    deployment_id = create(ledger)["deployment_id"]
    assert ledger.stop_request(deployment_id) is None
    ledger.request_stop(deployment_id, rollback=True, requested_by="ops@laptop")
    request = ledger.stop_request(deployment_id)
    assert request["rollback"] is True and request["requested_by"] == "ops@laptop" and TIME.match(request["requested_at"])
    ledger.request_stop(deployment_id)
    assert ledger.stop_request(deployment_id)["rollback"] is False
    ledger.update_status(deployment_id, "Stopped", "MANUAL_STOP", "stopped by ops@laptop")
    with pytest.raises(LedgerError, match="already Stopped"):
        ledger.request_stop(deployment_id)


def test_continue_requests_only_reach_a_ready_deployment(ledger):
    deployment_id = create(ledger)["deployment_id"]
    assert ledger.get_deployment(deployment_id, include_instances=False)["continue_request"] is None
    ledger.update_status(deployment_id, "InProgress")
    with pytest.raises(LedgerError, match="is InProgress, not Ready"):
        ledger.request_continue(deployment_id)
    ledger.update_status(deployment_id, "Ready")
    ledger.request_continue(deployment_id, requested_by="awx approval")
    request = ledger.get_deployment(deployment_id, include_instances=False)["continue_request"]
    assert request["requested_by"] == "awx approval" and TIME.match(request["requested_at"])
    ledger.update_status(deployment_id, "Stopped", "MANUAL_STOP", "timed out")
    with pytest.raises(LedgerError, match="is Stopped, not Ready"):
        ledger.request_continue(deployment_id)
    with pytest.raises(LedgerError):
        ledger.request_continue("d-AAAAAAAAA")


def test_swap_records_merge_append_and_outlive_the_deployment(ledger):
    deployment_id = create(ledger)["deployment_id"]
    assert ledger.get_deployment(deployment_id, include_instances=False)["swap"] is None
    ledger.update_swap(deployment_id, {"state": "shifting", "green_asg": {"name": "CodeDeploy_web_x"}})
    ledger.update_swap(deployment_id, append={"traffic": {"step": 1, "green_percent": 10}})
    ledger.update_status(deployment_id, "Failed", "ALARM_ACTIVE", "alarm")
    swap = ledger.update_swap(deployment_id, {"state": "rolled_back", "green_asg": None},
                              append={"traffic": {"step": 2, "green_percent": 0}})
    assert swap == {"state": "rolled_back", "traffic": [{"step": 1, "green_percent": 10}, {"step": 2, "green_percent": 0}]}
    assert ledger.get_deployment(deployment_id)["swap"] == swap
    listed = ledger.list_deployments(limit=1)[0]
    assert listed["deployment_id"] == deployment_id and listed["swap"] == swap
    with pytest.raises(LedgerError, match="not a list"):
        ledger.update_swap(deployment_id, append={"state": "x"})
    with pytest.raises(LedgerError, match="must be a mapping"):
        ledger.update_swap(deployment_id, ["state"])
    with pytest.raises(LedgerError):
        ledger.update_swap("d-AAAAAAAAA", {"state": "x"})
    assert ledger.get_deployment(deployment_id)["swap"] == swap


def test_a_version_1_sqlite_ledger_gains_the_continue_and_swap_columns(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(str(path))
    from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import sqlite as sqlite_backend
    for statement in sqlite_backend.SCHEMA:
        old.execute(statement.replace("        continue_requested_at TEXT,\n", "").replace(
            "        continue_requested_by TEXT,\n", "").replace(",\n        swap TEXT)", ")"))
    old.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    old.commit()
    columns = [row[1] for row in old.execute("PRAGMA table_info(deployments)")]
    assert "continue_requested_at" not in columns and "swap" not in columns and "stop_requested_by" in columns
    old.close()
    ledger = open_ledger(str(path))
    deployment_id = create(ledger)["deployment_id"]
    ledger.update_status(deployment_id, "Ready")
    ledger.request_continue(deployment_id)
    ledger.update_swap(deployment_id, {"state": "ready"})
    found = ledger.get_deployment(deployment_id)
    assert found["continue_request"]["requested_at"] and found["swap"] == {"state": "ready"}
    version = sqlite3.connect(str(path)).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert version == str(sqlite_backend.SCHEMA_VERSION) == "3"


def test_rollbacks_are_linked_both_ways(ledger):
    bad = create(ledger)
    ledger.update_status(bad["deployment_id"], "Failed", "HOOK_EXECUTION_FAILURE", "ValidateService failed on web-1")
    rollback = create(ledger, rollback_of=bad["deployment_id"])
    assert rollback["creator"] == "rollback"
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == bad["deployment_id"]
    assert rollback["rollback_info"]["rollback_message"]
    triggering = ledger.get_deployment(bad["deployment_id"])
    assert triggering["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    finish(ledger, rollback)
    other = create(ledger)
    ledger.link_rollback(rollback["deployment_id"], other["deployment_id"], "alarm web-5xx fired")
    assert ledger.get_deployment(other["deployment_id"])["rollback_info"] == {
        "rollback_deployment_id": None, "rollback_triggering_deployment_id": rollback["deployment_id"],
        "rollback_message": "alarm web-5xx fired"}
    with pytest.raises(LedgerError, match="no deployment d-ZZZZZZZZZ"):
        ledger.link_rollback("d-ZZZZZZZZZ", other["deployment_id"], "x")
    with pytest.raises(LedgerError, match="no deployment d-ZZZZZZZZZ"):
        create(ledger, group="staging", rollback_of="d-ZZZZZZZZZ")


# ------------------------------------------------------------------------------------------ listing and history
def test_list_deployments(ledger):
    made = []
    for group, status in (("production", "Succeeded"), ("production", "Failed"), ("staging", "Succeeded"), ("production", None)):
        deployment = create(ledger, group=group)
        if status:
            ledger.update_status(deployment["deployment_id"], status)
        made.append(deployment["deployment_id"])
    create_app = ledger.create_deployment("api", "production", None, REVISION, None, hosts(1))
    assert [d["deployment_id"] for d in ledger.list_deployments("web", "production")] == [made[3], made[1], made[0]]
    assert [d["deployment_id"] for d in ledger.list_deployments("web")] == made[::-1]
    assert [d["deployment_id"] for d in ledger.list_deployments()] == [create_app["deployment_id"]] + made[::-1]
    assert [d["deployment_id"] for d in ledger.list_deployments("web", statuses=["Succeeded"])] == [made[2], made[0]]
    assert [d["deployment_id"] for d in ledger.list_deployments("web", limit=2)] == [made[3], made[2]]
    assert all("instances" not in d for d in ledger.list_deployments())
    assert ledger.list_deployments("nothing") == []
    assert ledger.last_successful("web", "production")["deployment_id"] == made[0]
    assert ledger.last_successful("web", "nothing") is None


def test_instance_history(ledger):
    old = create(ledger, count=3, revision={"sha256": "1" * 64})
    for instance_id, status in (("i-000", "Succeeded"), ("i-001", "Failed"), ("i-002", "Succeeded")):
        ledger.try_start_instance(old["deployment_id"], instance_id, 5)
        ledger.finish_instance(old["deployment_id"], instance_id, status)
    finish(ledger, old, "Failed")
    new = create(ledger, count=4, revision={"s3": {"bucket": "b", "key": "k", "sha256": "2" * 64}})
    ledger.try_start_instance(new["deployment_id"], "i-000", 5)
    ledger.finish_instance(new["deployment_id"], "i-000", "Succeeded")
    ledger.set_instance(new["deployment_id"], "i-002", "Skipped")  # not touched: the old record stays the latest
    history = ledger.instance_history("web", "production", ["i-000", "i-001", "i-002", "i-003", "i-404"])
    assert history == {
        "i-000": {"deployment_id": new["deployment_id"], "status": "Succeeded", "revision_sha256": "2" * 64},
        "i-001": {"deployment_id": old["deployment_id"], "status": "Failed", "revision_sha256": "1" * 64},
        "i-002": {"deployment_id": old["deployment_id"], "status": "Succeeded", "revision_sha256": "1" * 64},
    }
    assert ledger.instance_history("web", "staging", ["i-000"]) == {}
    assert ledger.instance_history("web", "production", []) == {}
    many = ["i-%03d" % n for n in range(250)]
    assert set(ledger.instance_history("web", "production", many)) == {"i-000", "i-001", "i-002"}


def test_readonly_open_creates_nothing(backend, tmp_path):
    with pytest.raises(ledger_api.LedgerMissingError, match="no ledger|no DynamoDB table"):
        backend.open(readonly=True)
    if backend.name == "sqlite":
        assert not os.path.exists(os.path.dirname(backend.location))
    written = backend.open()
    deployment_id = create(written)["deployment_id"]
    reader = backend.open(readonly=True)
    assert reader.get_deployment(deployment_id)["deployment_id"] == deployment_id


# ------------------------------------------------------------------------------------------ several processes
def _race_create(backend, barrier, results, index):
    ledger = backend.open()
    barrier.wait()
    try:
        deployment = ledger.create_deployment("web", "production", None, REVISION, None, hosts(2), owner="racer-%d" % index)
        results.put(("won", deployment["deployment_id"]))
    except ActiveDeploymentError as exc:
        results.put(("refused", exc.active["deployment_id"]))
    except Exception as exc:  # pylint: disable=broad-except
        results.put(("error", repr(exc)))


def _run(target, args_list, timeout=120):
    processes = [FORK.Process(target=target, args=args) for args in args_list]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0, "worker exited with %s" % process.exitcode


def test_racing_processes_create_exactly_one_deployment(mp_backend):
    # Nothing exists yet: the racers also race to create the file (or the table) and its schema.
    count = 8
    barrier, results = FORK.Barrier(count), FORK.Queue()
    _run(_race_create, [(mp_backend, barrier, results, n) for n in range(count)])
    outcomes = [results.get(timeout=10) for _worker in range(count)]
    winners = [value for kind, value in outcomes if kind == "won"]
    assert len(winners) == 1, outcomes
    assert sorted(outcomes) == sorted([("won", winners[0])] + [("refused", winners[0])] * (count - 1))
    assert [d["deployment_id"] for d in mp_backend.open().list_deployments()] == winners


def _admit(ledger, deployment_id, instance_ids, barrier, results):
    barrier.wait()
    results.put([i for i in instance_ids if ledger.try_start_instance(deployment_id, i, 3)])


def test_racing_admission_never_exceeds_the_limit(mp_backend):
    ledger = mp_backend.open()  # opened before the fork: each child must reconnect by itself
    deployment_id = create(ledger, count=24)["deployment_id"]
    count = 6
    barrier, results = FORK.Barrier(count), FORK.Queue()
    _run(_admit, [(ledger, deployment_id, ["i-%03d" % n for n in range(k, 24, count)], barrier, results) for k in range(count)])
    admitted = sum((results.get(timeout=10) for _worker in range(count)), [])
    assert len(admitted) == 3
    full = check_counters(ledger, deployment_id)
    assert sorted(i["instance_id"] for i in full["instances"] if i["status"] == "InProgress") == sorted(admitted)


def _work(backend, deployment_id, instance_ids, shared_events, barrier, limit):
    ledger = backend.open()
    barrier.wait()
    for number, instance_id in enumerate(instance_ids):
        while not ledger.try_start_instance(deployment_id, instance_id, limit):
            time.sleep(0.005)
        events = ledger_api.LIFECYCLE_ORDER
        for start in range(0, len(events), 4):  # one call per step, as the controller does
            ledger.record_events(deployment_id, instance_id, [
                {"event": e, "status": "Succeeded", "log_tail": "%s on %s" % (e, instance_id)} for e in events[start:start + 4]])
        ledger.finish_instance(deployment_id, instance_id, "Failed" if number == 0 else "Succeeded")
    for event in shared_events:
        ledger.record_events(deployment_id, "i-shared", [{"event": event, "status": "Succeeded"}])


def test_concurrent_bookkeeping_loses_nothing(mp_backend):
    ledger = mp_backend.open()
    workers = 6
    deployment_id = create(ledger, instances=hosts(18) + [{"instance_id": "i-shared"}])["deployment_id"]
    barrier = FORK.Barrier(workers)
    events = list(ledger_api.LIFECYCLE_ORDER)
    # Each worker deploys 3 instances (its first one fails and keeps its slot: 6 slots for failures, 2 for work)
    # and records a share of the events of one instance that every worker writes to.
    _run(_work, [(mp_backend, deployment_id, ["i-%03d" % n for n in range(k * 3, k * 3 + 3)], events[k::workers], barrier, 8)
                 for k in range(workers)])
    full = check_counters(ledger, deployment_id)
    by_id = dict((i["instance_id"], i) for i in full["instances"])
    for n in range(18):
        instance = by_id["i-%03d" % n]
        assert instance["status"] == ("Failed" if n % 3 == 0 else "Succeeded")
        assert [e["event"] for e in instance["events"]] == events
        assert all(e["log_tail"] == "%s on %s" % (e["event"], instance["instance_id"]) for e in instance["events"])
    assert [e["event"] for e in by_id["i-shared"]["events"]] == events
    assert full["overview"]["Failed"] == 6 and full["overview"]["Succeeded"] == 12 and full["unhealthy"] == 6


def _killed_controller(backend, ready):
    ledger = backend.open()
    deployment = ledger.create_deployment("web", "production", None, REVISION, None, hosts(3), lease_seconds=0, owner="doomed")
    ledger.update_status(deployment["deployment_id"], "InProgress")
    ledger.try_start_instance(deployment["deployment_id"], "i-000", 1)
    ledger.record_events(deployment["deployment_id"], "i-000", [{"event": "BeforeInstall", "status": "InProgress"}])
    ready.put(deployment["deployment_id"])
    ready.close()
    ready.join_thread()  # flushed before the kill
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_controller_killed_mid_run_is_reported_by_the_next_run(backend):
    ready = FORK.Queue()
    process = FORK.Process(target=_killed_controller, args=(backend, ready))
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL
    orphan_id = ready.get(timeout=5)
    ledger = backend.open()
    successor = create(ledger)
    assert successor["orphaned"] == [orphan_id]
    dead = ledger.get_deployment(orphan_id)
    assert dead["status"] == "Failed" and dead["error"]["code"] == "TIMEOUT" and "doomed" in dead["error"]["message"]
    assert [i["status"] for i in dead["instances"]] == ["Unknown", "Skipped", "Skipped"]
    assert dead["instances"][0]["events"][0]["status"] == "InProgress"


def _die_holding_the_write_lock(path, ready):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE deployments SET status = 'Baking'")
    ready.put(True)
    ready.close()
    ready.join_thread()
    os.kill(os.getpid(), signal.SIGKILL)


def test_sqlite_a_process_killed_inside_a_write_blocks_nothing(tmp_path):
    """SQLite only: a fork killed while it holds the write lock leaves neither the lock nor its half-done write."""
    path = str(tmp_path / "ledger.sqlite3")
    ledger = open_ledger(path)
    deployment_id = create(ledger)["deployment_id"]
    ready = FORK.Queue()
    process = FORK.Process(target=_die_holding_the_write_lock, args=(path, ready))
    process.start()
    process.join(60)
    assert ready.get(timeout=5) and process.exitcode == -signal.SIGKILL
    ledger.update_status(deployment_id, "InProgress")
    assert ledger.get_deployment(deployment_id)["status"] == "InProgress"
    assert open_ledger(path).list_deployments()[0]["status"] == "InProgress"
