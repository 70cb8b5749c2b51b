# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure helpers of plugins/module_utils/ledger/__init__.py (no storage)."""

import datetime
import os
import re

import pytest
from hypothesis import given, strategies as st

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError


def test_deployment_ids_look_like_codedeploy_ids():
    ids = set(model.new_deployment_id() for _number in range(2000))
    assert len(ids) == 2000
    assert all(re.match(r"^d-[A-Z0-9]{9}$", i) for i in ids)
    assert set("".join(i[2:] for i in ids)) == set(model.ID_ALPHABET)


def test_times_are_utc_iso_with_milliseconds():
    moment = datetime.datetime(2026, 11, 22, 2, 3, 4, 123987, tzinfo=datetime.timezone.utc)
    assert model.format_time(moment) == "2026-11-22T02:03:04.123Z"
    assert model.format_time(moment.replace(tzinfo=None)) == "2026-11-22T02:03:04.123Z"
    paris = moment.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    assert model.format_time(paris) == "2026-11-22T02:03:04.123Z"
    assert model.parse_time("2026-11-22T02:03:04.123Z") == moment.replace(microsecond=123000)
    assert model.parse_time("2026-11-22T03:03:04+01:00") == moment.replace(microsecond=0)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", model.utc_now())
    with pytest.raises(LedgerError, match="not an ISO 8601 time"):
        model.parse_time("yesterday")


def test_leases():
    now = "2026-11-22T02:03:04.123Z"
    assert model.lease_expiry(now, 300) == "2026-11-22T02:08:04.123Z"
    assert model.lease_expiry(now, 0.5) == "2026-11-22T02:03:04.623Z"
    assert model.lease_expiry(now, 0) == now
    assert model.lease_expired(now, now) is True  # a lease ends at its expiry time
    assert model.lease_expired("2026-11-22T02:03:04.124Z", now) is False
    assert model.lease_expired(None, now) is True
    with pytest.raises(LedgerError, match="must not be negative"):
        model.lease_expiry(now, -1)
    with pytest.raises(LedgerError, match="must be a number"):
        model.lease_expiry(now, "soon")


@pytest.mark.parametrize("old,new,delta", [
    ("Pending", "InProgress", 1), ("InProgress", "Succeeded", -1), ("InProgress", "Failed", 0), ("Pending", "Failed", 1),
    ("Pending", "Skipped", 0), ("Pending", "Unknown", 0), ("Failed", "Succeeded", -1), ("Succeeded", "Succeeded", 0),
    ("InProgress", "Unknown", -1), ("Ready", "InProgress", 1),
])
def test_unhealthy_delta(old, new, delta):
    assert model.unhealthy_delta(old, new) == delta


@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(model.INSTANCE_STATUSES)), max_size=60))
def test_the_unhealthy_counter_always_equals_inprogress_plus_failed(changes):
    states = ["Pending"] * 5
    counter = 0
    for index, status in changes:
        counter += model.unhealthy_delta(states[index], status)
        states[index] = status
        assert counter == sum(1 for s in states if s in ("InProgress", "Failed"))


def test_normalize_instances():
    rows = model.normalize_instances([{"instance_id": "i-1", "host": "web-1", "zone": "a", "address": "10.0.0.1"}, "i-2"])
    assert rows == [{"instance_id": "i-1", "host": "web-1", "zone": "a", "extra": {"address": "10.0.0.1"}},
                    {"instance_id": "i-2", "host": "i-2", "zone": None, "extra": {}}]
    assert model.normalize_instances(None) == []
    with pytest.raises(LedgerError, match="instance i-1 is listed twice"):
        model.normalize_instances(["i-1", {"instance_id": "i-1"}])
    with pytest.raises(LedgerError, match="instance 2 of the deployment has no instance_id"):
        model.normalize_instances(["i-1", {"host": "web"}])


def test_normalize_events():
    records = model.normalize_events([
        {"event": "Install", "status": "Succeeded", "start": "2026-11-22T02:03:04.000Z", "end": "2026-11-22T02:03:06.500Z"},
        {"event": "AfterInstall", "status": "Failed", "duration": "3", "log_tail": "y" * 10 + "x" * model.MAX_LOG_TAIL, "extra": 1},
        {"event": "Install", "status": "Failed"},
    ])
    assert [r["event"] for r in records] == ["Install", "AfterInstall"]
    assert records[0] == dict(dict((k, None) for k in model.EVENT_FIELDS), event="Install", status="Failed")
    assert records[1]["duration"] == 3.0 and records[1]["log_tail"] == "x" * model.MAX_LOG_TAIL and "extra" not in records[1]
    assert model.normalize_events({"event": "ValidateService", "status": "Succeeded", "start": "2026-11-22T02:03:04.000Z",
                                   "end": "2026-11-22T02:03:04.250Z"})[0]["duration"] == 0.25
    assert model.normalize_events([{"event": "X", "status": "Succeeded", "start": "bad", "end": "worse"}])[0]["duration"] is None
    with pytest.raises(LedgerError, match="'Done' is not a lifecycle event status"):
        model.normalize_events([{"event": "Install", "status": "Done"}])
    with pytest.raises(LedgerError, match="needs at least 'event' and 'status'"):
        model.normalize_events([{"status": "Succeeded"}])


def test_events_sort_in_lifecycle_order_with_unknown_names_last():
    names = ["Custom2", "AfterInstall", "ApplicationStop", "Custom1", "BeforeBlockTraffic", "AllowTraffic"]
    ordered = model.sort_events([{"event": n} for n in names])
    assert [e["event"] for e in ordered] == ["BeforeBlockTraffic", "ApplicationStop", "AfterInstall", "AllowTraffic", "Custom2", "Custom1"]


def test_lifecycle_order_is_the_appspec_order():
    assert model.LIFECYCLE_ORDER == tuple(appspec.EC2_LIFECYCLE_EVENTS)


def test_revision_sha256():
    assert model.revision_sha256({"sha256": "a"}) == "a"
    assert model.revision_sha256({"s3": {"bucket": "b", "sha256": "b"}}) == "b"
    assert model.revision_sha256({"s3": {"bucket": "b"}}) is None
    assert model.revision_sha256("s3://b/k") is None


def test_parse_location():
    assert model.parse_location(None) == ("sqlite", os.path.expanduser(model.DEFAULT_LOCATION))
    assert model.parse_location("") == ("sqlite", os.path.expanduser(model.DEFAULT_LOCATION))
    assert model.parse_location("~/x/ledger.db") == ("sqlite", os.path.expanduser("~/x/ledger.db"))
    assert model.parse_location("relative.db") == ("sqlite", os.path.abspath("relative.db"))
    assert model.parse_location("dynamodb://team-ledger") == ("dynamodb", "team-ledger")
    with pytest.raises(LedgerError, match="not a DynamoDB ledger location"):
        model.parse_location("dynamodb://a")
    with pytest.raises(LedgerError, match="not a DynamoDB ledger location"):
        model.parse_location("dynamodb://bad name")
    with pytest.raises(LedgerError, match="unknown ledger location 's3://b/k'"):
        model.parse_location("s3://b/k")


def row(**fields):
    base = model.new_record("web", "production", "dg-1", {"sha256": "a"}, "CodeDeployDefault.AllAtOnce", "user", None, None,
                            "alice@ctl", "2026-11-22T02:03:04.123Z", 300, "d-ABCDEFGHI")
    base.update(fields)
    return base


def test_messages():
    summary = model.shape_deployment(row(status="InProgress", start_time="2026-11-22T02:03:05.000Z"), model.empty_overview())
    message = model.active_message(summary)
    assert message.startswith("deployment group web/production already has an active deployment d-ABCDEFGHI "
                              "(InProgress since 2026-11-22T02:03:05.000Z, started by alice@ctl, lease expires 2026-11-22T02:08:04.123Z); "
                              "wait for it, stop it with the playbook rollout.codedeploy.stop (-e deployment_id=d-ABCDEFGHI)")
    orphan = model.orphan_message(summary, "d-NEW000000", "2026-11-22T03:00:00.000Z")
    assert "alice@ctl" in orphan and "expired at 2026-11-22T02:08:04.123Z" in orphan and "d-NEW000000" in orphan
    assert model.missing_message("d-ABCDEFGHI", "/l.db") == "no deployment d-ABCDEFGHI in the ledger /l.db"
    assert model.missing_message("42", "/l.db").endswith("(deployment ids look like d-XXXXXXXXX)")


def test_status_changes():
    now = "2026-11-22T02:04:00.000Z"
    assert model.status_changes(row(), "InProgress", None, None, now) == {"status": "InProgress", "start_time": now}
    assert model.status_changes(row(start_time="x"), "Ready", None, None, now) == {"status": "Ready"}
    assert model.status_changes(row(start_time="x"), "Failed", "TIMEOUT", "slow", now) == {
        "status": "Failed", "error_code": "TIMEOUT", "error_message": "slow", "complete_time": now, "lease_expires": None}
    assert model.status_changes(row(), "Stopped", None, None, now)["start_time"] == "2026-11-22T02:03:04.123Z"
    assert model.status_changes(row(status="Succeeded"), "Succeeded", None, None, now) is None
    with pytest.raises(LedgerError, match=r"d-ABCDEFGHI is already Failed \(TIMEOUT: gone\); a finished deployment cannot become InProgress"):
        model.status_changes(row(status="Failed", error_code="TIMEOUT", error_message="gone"), "InProgress", None, None, now)
    with pytest.raises(LedgerError, match="'Done' is not a deployment status"):
        model.status_changes(row(), "Done", None, None, now)


def test_instance_changes():
    now = "2026-11-22T02:04:00.000Z"
    changes, extra = model.instance_changes("Failed", {"error_code": "X", "message": None, "out_of_service": 1, "script": "a.sh"},
                                            now, finishing=True)
    assert changes == {"status": "Failed", "error_code": "X", "message": None, "out_of_service": True, "end": now}
    assert extra == {"script": "a.sh"}
    assert model.instance_changes("InProgress", {}, now, finishing=False) == ({"status": "InProgress", "start": now}, {})
    assert model.instance_changes("Ready", {"end": "e"}, now, finishing=True)[0]["end"] == "e"
    with pytest.raises(LedgerError, match="events cannot be set"):
        model.instance_changes("Ready", {"events": []}, now, finishing=False)
    with pytest.raises(LedgerError, match="'Done' is not a instance status"):
        model.instance_changes("Done", {}, now, finishing=False)


def test_start_refusal():
    assert model.start_refusal("d-1", "i-1", "Pending", "InProgress") is None
    assert model.start_refusal("d-1", "i-1", "InProgress", "Created") is None
    assert "already Stopped" in model.start_refusal("d-1", "i-1", "Pending", "Stopped")
    assert "i-1 of deployment d-1 is already Succeeded" in model.start_refusal("d-1", "i-1", "Succeeded", "InProgress")


def test_shape_deployment():
    now = "2026-11-22T02:04:00.000Z"
    shaped = model.shape_deployment(row(), model.overview_from_counts({"Pending": 2, "Bogus": 5}), None, now)
    assert shaped["error"] is None and shaped["rollback_info"] is None and shaped["stop_request"] is None
    assert shaped["revision"] == {"sha256": "a"} and shaped["options"] == {} and shaped["lease_expired"] is False
    assert shaped["overview"] == {"Pending": 2, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0, "Ready": 0, "Unknown": 0}
    assert "instances" not in shaped
    later = model.shape_deployment(row(stop_requested_at=now, stop_rollback=1, stop_requested_by="ops", rollback_deployment_id="d-2",
                                       error_code="MANUAL_STOP"), model.empty_overview(), [], "2030-01-01T00:00:00.000Z")
    assert later["lease_expired"] is True and later["instances"] == []
    assert later["stop_request"] == {"rollback": True, "requested_at": now, "requested_by": "ops"}
    assert later["rollback_info"] == {"rollback_deployment_id": "d-2", "rollback_triggering_deployment_id": None, "rollback_message": None}
    assert later["error"] == {"code": "MANUAL_STOP", "message": None}
    finished = model.shape_deployment(row(status="Failed", lease_expires=None), model.empty_overview(), None, now)
    assert finished["lease_expired"] is False


def test_new_record_checks():
    with pytest.raises(LedgerError, match="needs an application and a deployment group"):
        model.new_record("", "g", None, None, None, "user", None, None, None, "2026-11-22T02:03:04.123Z", 300, None)
    with pytest.raises(LedgerError, match="not a deployment id"):
        model.new_record("a", "g", None, None, None, "user", None, None, None, "2026-11-22T02:03:04.123Z", 300, "d-lower0000")


# ------------------------------------------------------------------------------------------ the lock's owner
class _Parent(object):
    def __init__(self, pid):
        self.pid = pid


@pytest.mark.parametrize("parent, job, pattern", [
    (None, None, r"^[^@ ]+@%s pid %d$"),
    (None, 42, r"^[^@ ]+@%s pid %d, AWX job 42$"),
    (4242, None, r"^\S+ pid 4242 on %s \(user [^)]+\)$"),
    (4242, "1234", r"^\S+ pid 4242 on %s \(user [^)]+\), AWX job 1234$"),
    (4242, "", r"^\S+ pid 4242 on %s \(user [^)]+\)$"),
])
def test_controller_owner_names_the_controller_process(monkeypatch, parent, job, pattern):
    monkeypatch.setattr(model.multiprocessing, "parent_process", lambda: _Parent(parent) if parent else None)
    monkeypatch.setattr(model, "_program", lambda pid: "ansible-playbook" if pid == 4242 else None)
    host = model.socket.gethostname()
    expected = pattern % ((re.escape(host), os.getpid()) if "%d" in pattern else (re.escape(host),))
    assert re.match(expected, model.controller_owner(job)), model.controller_owner(job)
    assert model.default_owner(job) == model.controller_owner(job)
    if parent:
        assert model.controller_owner(job).startswith("ansible-playbook pid 4242 on ")


def test_default_owner_keeps_its_signature_and_names_this_process_outside_workers():
    assert re.match(r"^[^@ ]+@\S+ pid %d$" % os.getpid(), model.default_owner())


def test_controller_owner_from_a_real_multiprocessing_child():
    import multiprocessing
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(model.controller_owner("7")))
    child.start()
    owner = queue.get(timeout=30)
    child.join(30)
    assert " pid %d on " % os.getpid() in owner and owner.endswith(", AWX job 7")
    assert model._program(os.getpid()) in owner  # the parent's program (python or pytest here; ansible-playbook under Ansible)


def test_program_reads_the_command_line():
    assert model._program(os.getpid())
    assert model._program(2 ** 22 + 12345) is None


def test_active_message_shows_the_owner():
    summary = {"application": "web", "deployment_group": "prod", "deployment_id": "d-ABCDEFGHI", "status": "InProgress",
               "start_time": "2026-11-22T02:03:04.123Z", "lease_expires": "2026-11-22T02:08:04.123Z",
               "owner": "ansible-playbook pid 4242 on ctl (user deploy), AWX job 17"}
    message = model.active_message(summary)
    assert "started by ansible-playbook pid 4242 on ctl (user deploy), AWX job 17" in message


# ------------------------------------------------------------------------------------------ no credential is stored
PRESIGNED = "https://b.s3.amazonaws.com/app.tgz?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=c2lnbmF0dXJl"


def test_records_never_hold_url_credentials():
    revision = {"location": PRESIGNED, "source": {"type": "url", "url": PRESIGNED, "sha256": "ab"}, "sha256": "ab"}
    record = model.new_record("web", "prod", "dg", revision, "CodeDeployDefault.AllAtOnce", "user", {}, "from " + PRESIGNED,
                              None, "2026-11-22T02:03:04.123Z", 300, None)
    changes = model.status_changes({"status": "InProgress", "start_time": "x"}, "Failed", "REVISION_MISSING",
                                   "revision %s could not be downloaded" % PRESIGNED, "2026-11-22T02:03:05.000Z")
    instance, _extra = model.instance_changes("Failed", {"message": "cannot fetch " + PRESIGNED}, "now", finishing=True)
    events = model.normalize_events([{"event": "DownloadBundle", "status": "Failed", "message": "GET " + PRESIGNED,
                                      "log_tail": "curl https://user:hunter2@h/x\n"}])
    stored = repr((record, changes, instance, events))
    for secret in ("AKIAIOSFODNN7EXAMPLE", "c2lnbmF0dXJl", "hunter2"):
        assert secret not in stored
    assert "AWSAccessKeyId=REDACTED" in record["revision"] and "Signature=REDACTED" in record["description"]
    assert model.load_json(record["revision"])["sha256"] == "ab"
