"""The deployment service driven with a fake ledger and fake AWS clients: no world, no boto3 calls."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import DeploymentService, ServiceError, controller_gone

SPEC = {"version": 0.0, "os": "linux", "hooks": {"ValidateService": [{"location": "scripts/check.sh", "timeout": 60}]}}


class FakeLedger:
    """Just enough of the ledger API: deployments in a dict, one active deployment per group."""

    def __init__(self):
        self.deployments = {}
        self.renewals = 0

    def instance_history(self, application, group, instance_ids):
        return {}

    def last_successful(self, application, group):
        done = [d for d in self.deployments.values() if d["status"] == "Succeeded" and d["deployment_group"] == group]
        return done[-1] if done else None

    def create_deployment(self, application, group, group_id, revision, config, instances, **options):
        for other in self.deployments.values():
            if other["deployment_group"] == group and other["status"] not in ("Succeeded", "Failed", "Stopped"):
                raise AssertionError("the fake ledger's group is locked by %s" % other["deployment_id"])
        deployment_id = "d-%09d" % (len(self.deployments) + 1)
        self.deployments[deployment_id] = {
            "deployment_id": deployment_id, "application": application, "deployment_group": group, "status": "Created", "error": None,
            "creator": options.get("creator"), "description": options.get("description"), "options": options.get("options"),
            "revision": revision, "stop_request": None, "owner": options.get("owner"), "swap": None, "rollback_info": None,
            "instances": [dict(i, status="Pending", events=[]) for i in instances]}
        if options.get("rollback_of"):
            link = {"rollback_deployment_id": deployment_id, "rollback_triggering_deployment_id": options["rollback_of"]}
            self.deployments[options["rollback_of"]]["rollback_info"] = link
            self.deployments[deployment_id]["rollback_info"] = link
        return {"deployment_id": deployment_id, "orphaned": []}

    def update_swap(self, deployment_id, fields=None, append=None):
        record = self.deployments[deployment_id]
        record["swap"] = ledgers.merge_swap(record.get("swap"), fields, append)
        return record["swap"]

    def get_deployment(self, deployment_id, include_instances=True):
        record = dict(self.deployments[deployment_id])
        counts = {}
        for instance in record["instances"]:
            counts[instance["status"]] = counts.get(instance["status"], 0) + 1
        record["overview"] = counts
        return record

    def update_status(self, deployment_id, status, error_code=None, error_message=None):
        record = self.deployments[deployment_id]
        record["status"] = status
        if error_code:
            record["error"] = {"code": error_code, "message": error_message}

    def abandon(self, deployment_id, status, error_code, message):
        record = self.deployments[deployment_id]
        if record["status"] in ("Succeeded", "Failed", "Stopped"):
            return False
        for instance in record["instances"]:
            if instance["status"] == "InProgress":
                instance.update(status="Unknown", message=instance.get("message") or ledgers.ORPHAN_INSTANCE_MESSAGE)
            elif instance["status"] == "Pending":
                instance.update(status="Skipped", message=instance.get("message") or ledgers.ORPHAN_SKIPPED_MESSAGE)
        self.update_status(deployment_id, status, error_code, message)
        return True

    def renew_lease(self, deployment_id, lease_seconds=300, owner=None):
        self.renewals += 1

    def set_instance(self, deployment_id, instance_id, status, **fields):
        instance = next(i for i in self.deployments[deployment_id]["instances"] if i["instance_id"] == instance_id)
        instance.update(fields, status=status)

    def finish_instance(self, deployment_id, instance_id, status, **fields):
        self.set_instance(deployment_id, instance_id, status, **fields)

    def request_stop(self, deployment_id, rollback=False, requested_by=None):
        self.deployments[deployment_id]["stop_request"] = {"rollback": rollback, "requested_by": requested_by}

    def active(self, group):
        return [d["deployment_id"] for d in self.deployments.values()
                if d["deployment_group"] == group and d["status"] not in ("Succeeded", "Failed", "Stopped")]


class FakeCloudWatch:
    def __init__(self, states):
        self.states = states
        self.calls = 0

    def describe_alarms(self, **kwargs):
        self.calls += 1
        alarms = [{"AlarmName": n, "StateValue": self.states[n], "StateReason": "test"} for n in kwargs["AlarmNames"] if n in self.states]
        return {"MetricAlarms": alarms}


class Boom(Exception):
    pass


class FakeAws:
    region = "us-east-1"

    def __init__(self, **clients):
        self.clients = clients

    def client(self, name):
        if name not in self.clients:
            raise Boom("no fake %s client" % name)
        return self.clients[name]

    def account_id(self):
        return "123456789012"


def fake_fetch(revision, aws, cache):
    return ({"bundle": "/cache/b.tgz", "sha256": "a" * 64, "bundle_type": "tgz", "location": revision, "source": {"type": "local", "path": "/srv/rev"},
             "env": None}, SPEC, ["hook timeouts add up to more than an hour"])


HOSTS = [{"host": "web-%d" % n, "instance_id": "i-%d" % n, "zone": "us-east-1a"} for n in range(1, 5)]
SETTINGS = {"application": "web", "name": "production", "id": "web-production", "deployment_config": "CodeDeployDefault.HalfAtATime"}


def request(**extra):
    args = {"deployment_group": "web_production", "revision": "/srv/rev"}
    args.update(extra)
    checked = contract.start_request(args, SETTINGS, {"web_production": []}, {"web_production": SETTINGS})
    checked["ledger"] = "/tmp/ledger"
    return checked


def service(ledger, **clients):
    return DeploymentService(ledger, FakeAws(**clients), fetch=fake_fetch, sleep=lambda seconds: None, owner="tester")


def test_open_plans_half_at_a_time_and_records_in_progress():
    ledger = FakeLedger()
    opening = service(ledger).open(request(), HOSTS, SETTINGS)
    plan = opening.plan
    assert plan.batches == [["web-1", "web-2"], ["web-3", "web-4"]] and plan.serial == [2] and plan.minimum == 2 and plan.max_unhealthy == 2
    assert ledger.deployments[plan.deployment_id]["status"] == "InProgress"
    assert opening.warnings == ["hook timeouts add up to more than an hour"]
    assert plan.owner == "tester"
    assert plan.steps == [["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
                           "ValidateService"]]


def test_the_plan_survives_the_trip_through_facts():
    plan = service(FakeLedger()).open(request(), HOSTS, SETTINGS).plan
    again = Plan.from_dict(plan.to_dict())
    assert again == plan and again.deployment_id == plan.deployment_id


def test_check_mode_records_nothing():
    ledger = FakeLedger()
    opening = service(ledger).open(request(), HOSTS, SETTINGS, check_mode=True)
    assert opening.preview and not ledger.deployments
    assert "batch 1: web-" in opening.message and "ValidateService (scripts/check.sh)" in opening.message


def test_an_alarm_in_alarm_stops_before_start_and_unlocks():
    ledger = FakeLedger()
    settings = dict(SETTINGS, alarms={"enabled": True, "names": ["web-5xx"]})
    with pytest.raises(ServiceError) as caught:
        service(ledger, cloudwatch=FakeCloudWatch({"web-5xx": "ALARM"})).open(request(), HOSTS, settings)
    assert caught.value.code == "ALARM_ACTIVE"
    record = list(ledger.deployments.values())[0]
    assert record["status"] == "Stopped" and not ledger.active("production")


def test_an_error_after_opening_settles_the_deployment_and_releases_the_lock():
    ledger = FakeLedger()
    settings = dict(SETTINGS, alarms={"enabled": True, "names": ["web-5xx"]})
    with pytest.raises(Boom):
        service(ledger).open(request(), HOSTS, settings)  # no cloudwatch client: the alarm check blows up
    record = list(ledger.deployments.values())[0]
    assert record["status"] == "Failed" and record["error"]["code"] == "INTERNAL_ERROR"
    assert "no fake cloudwatch client" in record["error"]["message"]
    assert not ledger.active("production")
    assert service(ledger, cloudwatch=FakeCloudWatch({"web-5xx": "OK"})).open(request(), HOSTS, settings).plan.deployment_id


def test_after_batch_stops_on_request_then_on_alarm():
    ledger = FakeLedger()
    plan = service(ledger).open(request(), HOSTS, SETTINGS).plan
    assert service(ledger).after_batch(plan, ["web-1", "web-2"])["proceed"] is True and ledger.renewals == 1
    ledger.request_stop(plan.deployment_id, requested_by="ops")
    decision = service(ledger).after_batch(plan, ["web-3", "web-4"])
    assert decision["proceed"] is False and decision["error_code"] == "MANUAL_STOP"
    assert ledger.deployments[plan.deployment_id]["error"]["message"] == "stopped on request of ops after the current batch"

    settings = dict(SETTINGS, alarms={"enabled": True, "names": ["web-5xx"]})
    watch = FakeCloudWatch({"web-5xx": "OK"})
    plan = service(ledger, cloudwatch=watch).open(request(), HOSTS, settings).plan
    watch.states["web-5xx"] = "ALARM"
    decision = service(ledger, cloudwatch=watch).after_batch(plan, ["web-1"])
    assert decision["error_code"] == "ALARM_ACTIVE" and ledger.deployments[plan.deployment_id]["status"] == "Stopped"


def _finish_hosts(ledger, plan, statuses):
    for instance, status in zip(ledger.deployments[plan.deployment_id]["instances"], statuses):
        instance["status"] = status


def test_settle_applies_the_health_rule_and_picks_the_rollback_target():
    ledger = FakeLedger()
    good = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, good, ["Succeeded"] * 4)
    assert service(ledger).settle(good)["status"] == "Succeeded"

    bad = service(ledger).open(request(auto_rollback=True), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, bad, ["Succeeded", "Failed", "Failed", "Skipped"])
    outcome = service(ledger).settle(bad)
    assert outcome["status"] == "Failed" and outcome["error"]["code"] == "HEALTH_CONSTRAINTS"
    assert outcome["rollback"]["reuse_deployment"] == good.deployment_id
    assert outcome["rollback"]["hosts"] == ["web-1", "web-2", "web-3"]
    assert not ledger.active("production")


def test_settle_without_auto_rollback_names_no_target():
    ledger = FakeLedger()
    good = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, good, ["Succeeded"] * 4)
    service(ledger).settle(good)
    bad = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, bad, ["Failed"] * 4)
    assert service(ledger).settle(bad)["rollback"] is None


def test_a_rollback_reuses_the_earlier_revision_without_fetching(tmp_path):
    ledger = FakeLedger()
    good = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, good, ["Succeeded"] * 4)
    service(ledger).settle(good)
    (tmp_path / ("a" * 64 + ".tgz")).write_bytes(b"cached")

    def no_fetch(*_args):
        raise AssertionError("a rollback must not fetch")
    rollback = DeploymentService(ledger, FakeAws(), fetch=no_fetch, bundle_cache=str(tmp_path)).open(
        request(reuse_deployment=good.deployment_id, creator="rollback", only_hosts=["web-2"],
                deployment_config="CodeDeployDefault.OneAtATime"), HOSTS, SETTINGS).plan
    assert rollback.hosts == ["web-2"] and rollback.reuse_deployment == good.deployment_id
    # Hosts that lost the archive get the cached bundle.
    assert rollback.bundle == str(tmp_path / ("a" * 64 + ".tgz")) and rollback.fallback == "the controller's bundle cache"
    assert rollback.sha256 == "a" * 64


def test_request_stop_on_a_finished_deployment_changes_nothing():
    ledger = FakeLedger()
    plan = service(ledger).open(request(), HOSTS, SETTINGS).plan
    ledger.update_status(plan.deployment_id, "Succeeded")
    result = service(ledger).request_stop(plan.deployment_id)
    assert result["changed"] is False and "already Succeeded" in result["msg"]


def test_a_rollback_to_another_groups_deployment_is_refused_before_anything():
    ledger = FakeLedger()
    api = dict(SETTINGS, application="api", name="production")
    other = service(ledger).open(request(), HOSTS, api).plan
    _finish_hosts(ledger, other, ["Succeeded"] * 4)
    service(ledger).settle(other)
    before = dict(ledger.deployments)
    with pytest.raises(ServiceError) as caught:
        service(ledger).open(request(reuse_deployment=other.deployment_id, creator="rollback"), HOSTS, SETTINGS)
    assert caught.value.code == "DEPLOYMENT_GROUP_MISMATCH"
    assert "belongs to api/production, not to web/production" in caught.value.message
    assert ledger.deployments == before


def test_a_rollback_to_a_failed_deployment_is_refused():
    ledger = FakeLedger()
    bad = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, bad, ["Failed"] * 4)
    service(ledger).settle(bad)
    with pytest.raises(ServiceError) as caught:
        service(ledger).open(request(reuse_deployment=bad.deployment_id, creator="rollback"), HOSTS, SETTINGS)
    assert caught.value.code == "INVALID_ROLLBACK_TARGET"


def test_a_forced_stop_settles_at_once_and_unlocks():
    ledger = FakeLedger()
    plan = service(ledger).open(request(), HOSTS, SETTINGS).plan
    result = service(ledger).request_stop(plan.deployment_id, requested_by="ops@desk", force=True)
    record = ledger.deployments[plan.deployment_id]
    assert result["status"] == "Stopped" and record["status"] == "Stopped" and record["error"]["code"] == "MANUAL_STOP"
    assert "forced by ops@desk" in record["error"]["message"] and not ledger.active("production")


def test_a_stop_without_its_controller_leaves_no_instance_pending_or_in_progress():
    ledger = FakeLedger()
    plan = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, plan, ["Failed", "InProgress", "Pending", "Pending"])
    service(ledger).request_stop(plan.deployment_id, requested_by="ops@desk", force=True)
    statuses = [i["status"] for i in ledger.deployments[plan.deployment_id]["instances"]]
    assert statuses == ["Failed", "Unknown", "Skipped", "Skipped"]
    assert "before this instance's turn" in ledger.deployments[plan.deployment_id]["instances"][2]["message"]


def test_a_stop_for_a_dead_local_controller_needs_no_force(monkeypatch):
    import socket
    ledger = FakeLedger()
    dead = "ansible-playbook pid 999999 on %s (user root)" % socket.gethostname()
    plan = DeploymentService(ledger, FakeAws(), fetch=fake_fetch, owner=dead).open(request(), HOSTS, SETTINGS).plan
    result = service(ledger).request_stop(plan.deployment_id)
    assert result["status"] == "Stopped" and "is no longer running" in result["msg"]


@pytest.mark.parametrize("owner, gone", [
    ("ansible-playbook pid 999999 on {host} (user root)", True),
    ("ansible-playbook pid {pid} on {host} (user root)", False),
    ("ansible-playbook pid 999999 on another-machine (user root)", False),
    ("someone@else:1", False),
    (None, False),
])
def test_controller_gone(owner, gone):
    import os
    import socket
    text = owner.format(host=socket.gethostname(), pid=os.getpid()) if owner else owner
    assert controller_gone(text) is gone


def test_a_rollback_without_cache_fetches_the_recorded_source_and_checks_it(tmp_path):
    ledger = FakeLedger()
    good = service(ledger).open(request(), HOSTS, SETTINGS).plan
    _finish_hosts(ledger, good, ["Succeeded"] * 4)
    service(ledger).settle(good)
    checked = request(reuse_deployment=good.deployment_id, creator="rollback", deployment_config="CodeDeployDefault.OneAtATime")
    again = DeploymentService(ledger, FakeAws(), fetch=fake_fetch, bundle_cache=str(tmp_path)).open(checked, HOSTS, SETTINGS).plan
    assert again.bundle == "/cache/b.tgz" and "fetched again" in again.fallback
    ledger.update_status(again.deployment_id, "Stopped")

    def changed(revision, aws, cache):
        fetched, spec, warnings = fake_fetch(revision, aws, cache)
        return dict(fetched, sha256="f" * 64), spec, warnings
    other = DeploymentService(ledger, FakeAws(), fetch=changed, bundle_cache=str(tmp_path)).open(checked, HOSTS, SETTINGS).plan
    assert other.bundle is None and "now holds other content" in other.fallback
