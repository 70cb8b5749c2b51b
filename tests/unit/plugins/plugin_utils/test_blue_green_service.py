"""Blue/green deployments in the deployment service, the plan, HostRun and the input contract, with the fake ledger and fake
load balancers: green batches then one blue batch, the green gate before blue leaves, KEEP_ALIVE / TERMINATE, and the
traffic rollback before and after the reroute."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract, strategy as strategies
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.host_run import HostRun
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import DeploymentService, ServiceError

from test_service import FakeAws, FakeLedger, fake_fetch

BLUE = [{"host": "blue-%d" % n, "instance_id": "i-b%d" % n, "zone": "us-east-1a"} for n in (1, 2)]
GREEN_NAMES = ["green-%d" % n for n in (1, 2, 3, 4)]
HOSTVARS = dict((name, {"codedeploy_instance_id": "i-g%d" % n}) for n, name in enumerate(GREEN_NAMES, 1))
GROUPS = {"web_production": [h["host"] for h in BLUE], "web_green": GREEN_NAMES, "web_empty": []}


def settings(action="KEEP_ALIVE", wait=0, ready="CONTINUE_DEPLOYMENT", fleet="DISCOVER_EXISTING", config="CodeDeployDefault.HalfAtATime"):
    return {"application": "web", "name": "production", "id": "web-production", "deployment_config": config,
            "deployment_style": {"type": "BLUE_GREEN", "traffic_control": True}, "load_balancer": {"target_groups": ["web-tg"]},
            "blue_green": {"terminate_blue_instances_on_deployment_success": {"action": action, "termination_wait_time_in_minutes": wait},
                           "deployment_ready_option": {"action_on_timeout": ready, "wait_time_in_minutes": 5 if ready != "CONTINUE_DEPLOYMENT" else 0},
                           "green_fleet_provisioning_option": {"action": fleet}}}


def request(group_settings, hostvars=None, **extra):
    args = {"deployment_group": "web_production", "revision": "/srv/rev", "green_hosts": "web_green"}
    args.update(extra)
    checked = contract.start_request(args, group_settings, GROUPS, {"web_production": group_settings},
                                     hostvars=HOSTVARS if hostvars is None else hostvars)
    checked["ledger"] = "/tmp/ledger"
    return checked


class RolesLedger(FakeLedger):
    """The fake ledger with admission and event writes."""

    def _instance(self, deployment_id, instance_id):
        return next(i for i in self.deployments[deployment_id]["instances"] if i["instance_id"] == instance_id)

    def try_start_instance(self, deployment_id, instance_id, max_unhealthy):
        self._instance(deployment_id, instance_id)["status"] = "InProgress"
        return True

    def record_events(self, deployment_id, instance_id, events):
        self._instance(deployment_id, instance_id)["events"].extend(events)


class FakeBalancers:
    """LoadBalancers' block/allow/resolve, keeping who is registered; ``refuse`` fails those instances' steps."""

    def __init__(self, registered=(), refuse=()):
        self.registered = set(registered)
        self.refuse = set(refuse)
        self.calls = []

    def resolve(self, hosts):
        return {}

    def block(self, instance, timeout=300, host=None):
        self.calls.append(("block", instance))
        if instance in self.refuse:
            raise TrafficError("web-tg refuses %s" % instance, code="ELB_INVALID_INSTANCE")
        self.registered.discard(instance)
        return {"target_groups": {"web-tg": "out"}}

    def allow(self, instance, timeout=300, host=None):
        self.calls.append(("allow", instance))
        if instance in self.refuse:
            raise TrafficError("web-tg refuses %s" % instance, code="ELB_INVALID_INSTANCE")
        self.registered.add(instance)
        return {"target_groups": {"web-tg": "healthy"}}


class FakeEc2:
    def __init__(self, fail=False):
        self.terminated = []
        self.fail = fail

    def terminate_instances(self, InstanceIds):  # noqa: N803  # boto3's argument name
        from botocore.exceptions import ClientError
        if self.fail:
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "TerminateInstances")
        self.terminated.extend(InstanceIds)
        return {"TerminatingInstances": [{"InstanceId": i, "CurrentState": {"Name": "shutting-down"}} for i in InstanceIds]}


class World:
    """One service over the fake ledger, load balancers and EC2; blue starts registered."""

    def __init__(self, refuse=(), ec2_fails=False):
        self.ledger = RolesLedger()
        self.lb = FakeBalancers(registered=[h["instance_id"] for h in BLUE], refuse=refuse)
        self.ec2 = FakeEc2(fail=ec2_fails)
        self.sleeps = []

    def service(self):
        # The clock moves only when the service sleeps.
        svc = DeploymentService(self.ledger, FakeAws(ec2=self.ec2), fetch=fake_fetch, sleep=self.sleeps.append, owner="tester",
                                clock=lambda: 1000.0 + sum(self.sleeps))
        svc.balancers = lambda plan, role=None: self.lb
        return svc

    def open(self, group_settings=None, **extra):
        group_settings = group_settings or settings()
        return self.service().open(request(group_settings, **extra), BLUE, group_settings).plan

    def run(self, plan, host, fail_events=()):
        def run_events(events):
            failed = [e for e in events if e in fail_events]
            if failed:
                return {"failed": True, "failed_event": failed[0], "error_code": "ScriptFailed", "msg": "%s failed on %s" % (failed[0], host),
                        "events": [{"event": e, "status": "Failed" if e == failed[0] else "Succeeded"} for e in events]}
            return {"events": [{"event": e, "status": "Succeeded"} for e in events]}
        return HostRun(self.service(), plan, host, run_events, sleep=lambda s: None).run()

    def instances(self, plan):
        return {i["host"]: i for i in self.ledger.deployments[plan.deployment_id]["instances"]}


# ------------------------------------------------------------------------------ the contract
@pytest.mark.parametrize("group_settings, value, hostvars, words", [
    (settings(), None, HOSTVARS, ["deployment group web_production is BLUE_GREEN", "-e green_hosts=web_green"]),
    (dict(settings(), deployment_style={"type": "IN_PLACE"}), "web_green", HOSTVARS, ["green_hosts='web_green'", "is IN_PLACE", "Leave green_hosts out"]),
    (settings(), "web_nope", HOSTVARS, ["'web_nope' is not a group of this inventory"]),
    (settings(), "web_empty", HOSTVARS, ["has no hosts"]),
    (settings(), ["web_green", "web_production"], HOSTVARS, ["blue-1 is in deployment group web_production", "cannot be blue and green"]),
    (settings(), "web_green", {}, ["green host green-1 has no EC2 instance id", "codedeploy_instance_id, instance_id, ec2_instance_id"]),
    (settings(), 42, HOSTVARS, ["green_hosts=42 is not accepted: a list of names"]),
])
def test_green_hosts_refusals_name_the_input_the_value_and_the_fix(group_settings, value, hostvars, words):
    args = {"deployment_group": "web_production", "revision": "/srv/rev"}
    if value is not None:
        args["green_hosts"] = value
    with pytest.raises(contract.InputError) as caught:
        contract.start_request(args, group_settings, GROUPS, {"web_production": group_settings}, hostvars=hostvars)
    assert caught.value.field == "green_hosts"
    for word in words:
        assert word in caught.value.message


def test_green_instance_ids_come_from_either_inventory_plugin():
    hostvars = {"green-1": {"instance_id": "i-1", "placement": {"availability_zone": "us-east-1b"}}, "green-2": {"ec2_instance_id": "i-2"},
                "green-3": {"codedeploy_instance_id": "i-3", "codedeploy_availability_zone": "us-east-1c"}, "green-4": {"instance_id": "i-4"}}
    checked = request(settings(), hostvars=hostvars)
    assert checked["green_hosts"] == ["web_green"]
    assert [(g["host"], g["instance_id"], g["zone"], g["role"]) for g in checked["green_fleet"]] == [
        ("green-1", "i-1", "us-east-1b", "green"), ("green-2", "i-2", None, "green"), ("green-3", "i-3", "us-east-1c", "green"),
        ("green-4", "i-4", None, "green")]


def test_a_blue_green_group_refuses_a_rollback_from_archives_and_outdated_only():
    with pytest.raises(contract.InputError, match="rolled back by deploying the earlier revision to a green fleet"):
        request(settings(), reuse_deployment="d-ABCDEFGHI", creator="rollback", revision=None)
    with pytest.raises(contract.InputError, match="update_outdated_instances_only=true is not accepted for BLUE_GREEN"):
        request(settings(), update_outdated_instances_only=True)


def test_a_copying_group_takes_no_green_hosts_and_refuses_them():
    copying = settings(fleet="COPY_AUTO_SCALING_GROUP")
    assert strategies.for_group(copying).name == "blue_green"
    checked = request(copying, green_hosts=None)
    assert checked["green_hosts"] is None and checked["green_fleet"] is None
    with pytest.raises(contract.InputError) as caught:
        request(copying)
    assert caught.value.field == "green_hosts"
    for word in ("green_hosts='web_green' is not accepted", "COPY_AUTO_SCALING_GROUP", "DISCOVER_EXISTING"):
        assert word in caught.value.message


def test_a_green_instance_that_is_also_blue_is_refused():
    hostvars = dict(HOSTVARS, **{"green-1": {"instance_id": "i-b1"}})
    world = World()
    with pytest.raises(ServiceError, match="i-b1 \\(blue-1 and green-1\\)"):
        world.service().open(request(settings(), hostvars=hostvars), BLUE, settings())


# ------------------------------------------------------------------------------ the plan
def test_the_plan_batches_green_by_the_config_then_every_blue_host_at_once():
    world = World()
    plan = world.open()
    assert plan.strategy == "blue_green"
    assert plan.batches == [["green-1", "green-2"], ["green-3", "green-4"], ["blue-1", "blue-2"]]
    assert plan.hosts == GREEN_NAMES + ["blue-1", "blue-2"] and plan.serial == [2]
    assert plan.minimum == 2 and plan.max_unhealthy == 2  # HalfAtATime over the 4 green hosts
    assert plan.roles == dict([(h, "green") for h in GREEN_NAMES] + [("blue-1", "blue"), ("blue-2", "blue")])
    assert plan.steps_for("blue-1") == [["BeforeBlockTraffic"], "BlockTraffic", ["AfterBlockTraffic"]]
    assert plan.steps_for("green-1")[1:] == ["AllowTraffic", ["AfterAllowTraffic"]]
    assert "BlockTraffic" not in plan.host_events("green-1") and "DownloadBundle" not in plan.host_events("blue-1")
    assert Plan.from_dict(plan.to_dict()) == plan
    assert {i["instance_id"]: i["role"] for i in world.ledger.deployments[plan.deployment_id]["instances"]} == dict(
        [("i-g%d" % n, "green") for n in (1, 2, 3, 4)] + [("i-b1", "blue"), ("i-b2", "blue")])
    assert world.ledger.deployments[plan.deployment_id]["status"] == "InProgress"


def test_an_uneven_green_fleet_gets_an_exact_serial_list():
    world = World()
    plan = world.open(settings(config="CodeDeployDefault.OneAtATime"), green_hosts="web_green")
    assert plan.batches[-1] == ["blue-1", "blue-2"] and plan.serial == [1, 1, 1, 1, 2]


def test_each_role_releases_the_host_lock_on_its_own_last_slice():
    plan = World().open()
    assert plan.host_arguments(["AfterBlockTraffic"], host="blue-1")["release_host_lock"] is True
    assert plan.host_arguments(["BeforeBlockTraffic"], host="blue-1")["release_host_lock"] is False
    # The fake appspec has no AfterAllowTraffic script: green's install slice is its last run on the host.
    assert plan.host_arguments(plan.steps_for("green-1")[0], host="green-1")["release_host_lock"] is True


# ------------------------------------------------------------------------------ hosts and the green gate
def test_blue_waits_for_green_then_leaves_the_load_balancers_and_keep_alive_leaves_it_running():
    world = World()
    plan = world.open()
    early = world.run(plan, "blue-1")
    assert early["skipped"] and "green host(s) have not finished" in early["msg"] and world.lb.calls == []
    world.instances(plan)["blue-1"]["status"] = "Pending"
    for host in GREEN_NAMES:
        assert world.run(plan, host)["status"] == "Succeeded"
    assert world.lb.registered == {"i-b1", "i-b2", "i-g1", "i-g2", "i-g3", "i-g4"}
    assert world.service().after_batch(plan, GREEN_NAMES[2:])["proceed"] is True
    for host in ("blue-1", "blue-2"):
        result = world.run(plan, host)
        assert result["status"] == "Succeeded" and [e["event"] for e in result["events"]] == [
            "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert world.lb.registered == {"i-g1", "i-g2", "i-g3", "i-g4"}
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Succeeded" and outcome["blue_green"]["action"] == "KEEP_ALIVE" and world.ec2.terminated == []
    assert "left running (KEEP_ALIVE)" in outcome["msg"] and outcome["rollback"] is None
    assert {world.instances(plan)[h].get("blue_fleet") for h in ("blue-1", "blue-2")} == {"kept alive"}


def _rerouted(world, plan):
    for host in GREEN_NAMES:
        world.run(plan, host)
    for host in ("blue-1", "blue-2"):
        world.run(plan, host)


def test_terminate_waits_renewing_the_lease_then_terminates_blue():
    world = World()
    plan = world.open(settings(action="TERMINATE", wait=2))
    _rerouted(world, plan)
    renewals = world.ledger.renewals
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Succeeded" and world.ec2.terminated == ["i-b1", "i-b2"]
    assert sum(world.sleeps) == 120 and world.ledger.renewals > renewals
    assert outcome["blue_green"]["terminated"] == ["i-b1", "i-b2"] and "terminated after 2 min" in outcome["msg"]
    assert {world.instances(plan)[h]["blue_fleet"] for h in ("blue-1", "blue-2")} == {"terminated"}


def test_a_continue_ends_the_termination_wait_and_blue_is_terminated_at_once():
    world = ReadyWorld()
    plan = world.open(settings(action="TERMINATE", wait=60))
    _rerouted(world, plan)
    answers = []

    def operator(count):
        if count == 3:
            assert world.ledger.deployments[plan.deployment_id]["swap"]["state"] == "termination_wait"
            answers.append(world.service().request_continue(plan.deployment_id, requested_by="ops@laptop"))

    world.on_sleep = operator
    outcome = world.service().settle(plan)
    assert answers[0]["changed"] and "end its termination wait" in answers[0]["msg"]
    assert outcome["status"] == "Succeeded" and world.ec2.terminated == ["i-b1", "i-b2"]
    assert sum(world.sleeps) == 6  # three 2 s polls, not 60 minutes
    assert "terminated when ops@laptop ended the termination wait after 6 s" in outcome["msg"]
    swap = world.ledger.deployments[plan.deployment_id]["swap"]
    assert swap["state"] == "rerouted" and swap["termination_continue"]["requested_by"] == "ops@laptop"
    with pytest.raises(ServiceError, match="already Succeeded"):
        world.service().request_continue(plan.deployment_id)


def test_a_stop_with_rollback_during_the_termination_wait_keeps_blue_and_puts_the_traffic_back():
    world = ReadyWorld()
    plan = world.open(settings(action="TERMINATE", wait=60), auto_rollback=False)
    _rerouted(world, plan)
    world.on_sleep = lambda count: count == 2 and world.ledger.request_stop(plan.deployment_id, rollback=True, requested_by="ops")
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Stopped" and outcome["error"]["code"] == "MANUAL_STOP"
    assert world.ec2.terminated == [] and world.lb.registered == {"i-b1", "i-b2"}
    assert "were not terminated" in outcome["msg"] and "Rolled the traffic back" in outcome["msg"]
    rollback = world.ledger.deployments[outcome["blue_green"]["rollback_deployment_id"]]
    assert rollback["status"] == "Succeeded" and rollback["rollback_info"]["rollback_triggering_deployment_id"] == plan.deployment_id


def test_a_termination_that_ec2_refuses_fails_the_deployment_and_says_so():
    world = World(ec2_fails=True)
    plan = world.open(settings(action="TERMINATE"))
    _rerouted(world, plan)
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Failed" and outcome["error"]["code"] == "TERMINATE_FAILED"
    assert "UnauthorizedOperation" in outcome["msg"] and "ec2:TerminateInstances" in outcome["msg"]
    assert sum(world.sleeps) == 0


# ------------------------------------------------------------------------------ failures and the traffic rollback
def test_green_failing_its_minimum_fails_before_the_reroute_and_blue_keeps_serving():
    world = World()
    plan = world.open(settings(action="TERMINATE"))
    world.run(plan, "green-1", fail_events=["ValidateService"])
    world.run(plan, "green-2")
    world.run(plan, "green-3", fail_events=["AfterAllowTraffic"])
    world.run(plan, "green-4", fail_events=["ValidateService"])
    after = world.service().after_batch(plan, ["green-3", "green-4"])
    assert after["proceed"] is False and after["error_code"] == "HEALTH_CONSTRAINTS" and "blue hosts keep serving" in after["msg"]
    for host in ("blue-1", "blue-2"):
        assert world.run(plan, host)["skipped"]
    assert world.lb.calls.count(("block", "i-b1")) == 0
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Failed" and outcome["error"]["code"] == "HEALTH_CONSTRAINTS"
    assert outcome["blue_green"]["phase"] == "before_reroute"
    assert outcome["blue_green"]["deregistered_green"] == ["green-2", "green-3"]  # the two that reached AllowTraffic
    assert world.lb.registered == {"i-b1", "i-b2"} and world.ec2.terminated == []
    assert "ValidateService failed on green-1" in outcome["error"]["message"] and "Traffic stays on the blue hosts" in outcome["msg"]
    rollback = world.ledger.deployments[outcome["blue_green"]["rollback_deployment_id"]]
    assert rollback["creator"] == "rollback" and rollback["status"] == "Succeeded"
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == plan.deployment_id
    assert world.ledger.deployments[plan.deployment_id]["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert [(i["host"], i["role"], i["status"], [e["event"] for e in i["events"]]) for i in rollback["instances"]] == [
        ("green-2", "green", "Succeeded", ["BlockTraffic"]), ("green-3", "green", "Succeeded", ["BlockTraffic"])]
    assert world.ledger.deployments[plan.deployment_id]["swap"]["rollback_deployment_id"] == rollback["deployment_id"]


def _rerouted_but_blue_2_cannot_leave():
    """Every green host served, blue-1 left, blue-2's BlockTraffic was refused: (world, plan), with automatic rollback on."""
    world = World()
    plan = world.open(auto_rollback=True)
    for host in GREEN_NAMES:
        world.run(plan, host)
    world.run(plan, "blue-1")
    world.lb.refuse = {"i-b2"}
    assert world.run(plan, "blue-2")["failed"]
    return world, plan


def test_a_blue_host_that_cannot_leave_fails_and_auto_rollback_restores_blue_then_takes_green_out():
    world, plan = _rerouted_but_blue_2_cannot_leave()
    world.lb.refuse = set()
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Failed" and outcome["error"]["code"] == "ELB_INVALID_INSTANCE"
    assert outcome["blue_green"]["phase"] == "after_reroute"
    assert outcome["blue_green"]["registered_blue"] == ["blue-1", "blue-2"]
    assert outcome["blue_green"]["deregistered_green"] == GREEN_NAMES
    assert world.lb.registered == {"i-b1", "i-b2"}
    assert "Rolled the traffic back" in outcome["msg"] and "blue host(s) blue-2 did not complete" in outcome["error"]["message"]
    rollback = world.ledger.deployments[outcome["blue_green"]["rollback_deployment_id"]]
    assert [(i["host"], i["status"], [e["event"] for e in i["events"]]) for i in rollback["instances"]] == [
        ("blue-1", "Succeeded", ["AllowTraffic"]), ("blue-2", "Succeeded", ["AllowTraffic"])] + [
        (name, "Succeeded", ["BlockTraffic"]) for name in GREEN_NAMES]
    assert rollback["status"] == "Succeeded" and rollback["swap"]["state"] == "rolled_back"


def test_a_blue_host_that_cannot_come_back_keeps_green_serving_and_fails_the_rollback_deployment():
    world, plan = _rerouted_but_blue_2_cannot_leave()
    outcome = world.service().settle(plan)
    assert outcome["blue_green"]["registered_blue"] == ["blue-1"] and outcome["blue_green"]["deregistered_green"] == []
    assert {"i-g1", "i-g2", "i-g3", "i-g4", "i-b1"} <= world.lb.registered
    rollback = world.ledger.deployments[outcome["blue_green"]["rollback_deployment_id"]]
    assert rollback["status"] == "Failed" and rollback["error"]["code"] == "ELASTIC_LOAD_BALANCING_INVALID"
    statuses = dict((i["host"], i["status"]) for i in rollback["instances"])
    assert statuses == dict([("blue-1", "Succeeded"), ("blue-2", "Failed")] + [(name, "Skipped") for name in GREEN_NAMES])
    assert "AllowTraffic on blue-2: web-tg refuses i-b2" in outcome["msg"]


def test_after_the_reroute_without_auto_rollback_the_traffic_stays_on_green():
    world = World()
    plan = world.open()
    for host in GREEN_NAMES:
        world.run(plan, host)
    world.lb.refuse = {"i-b2"}
    world.run(plan, "blue-1")
    world.run(plan, "blue-2")
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Failed" and "automatic rollback is off" in outcome["msg"]
    assert world.lb.registered == {"i-b2", "i-g1", "i-g2", "i-g3", "i-g4"}
    assert outcome["blue_green"]["rollback_deployment_id"] is None and len(world.ledger.deployments) == 1


def test_a_stopped_blue_green_deployment_takes_green_out_again():
    world = World()
    plan = world.open()
    world.run(plan, "green-1")
    world.run(plan, "green-2")
    world.ledger.request_stop(plan.deployment_id)
    assert world.service().after_batch(plan, ["green-1", "green-2"])["status"] == "Stopped"
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Stopped" and outcome["blue_green"]["deregistered_green"] == ["green-1", "green-2"]
    assert world.lb.registered == {"i-b1", "i-b2"}


def test_check_mode_shows_each_role_and_records_nothing():
    world = World()
    opening = world.service().open(request(settings()), BLUE, settings(), check_mode=True)
    assert opening.preview and not world.ledger.deployments
    assert "green-1 (i-g1, green)" in opening.message and "blue-2 (i-b2, blue)" in opening.message
    assert "each green host runs: ApplicationStop" in opening.message
    assert "each blue host runs: BeforeBlockTraffic; BlockTraffic; AfterBlockTraffic" in opening.message


# ------------------------------------------------------------------------------ the ready wait (STOP_DEPLOYMENT)
class ReadyLedger(RolesLedger):
    """The fake ledger with continue requests, as the real ones: refused unless the deployment is Ready."""

    def create_deployment(self, *args, **kwargs):
        summary = super(ReadyLedger, self).create_deployment(*args, **kwargs)
        self.deployments[summary["deployment_id"]]["continue_request"] = None
        return summary

    def request_continue(self, deployment_id, requested_by=None):
        from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError
        if self.deployments[deployment_id]["status"] != "Ready":
            raise LedgerError("%s is %s, not Ready" % (deployment_id, self.deployments[deployment_id]["status"]))
        self.deployments[deployment_id]["continue_request"] = {"requested_by": requested_by, "requested_at": "now"}


class ReadyWorld(World):
    """A world whose clock moves only when the service sleeps; ``on_sleep`` runs at each sleep (another process acting)."""

    def __init__(self, **kwargs):
        super(ReadyWorld, self).__init__(**kwargs)
        self.ledger = ReadyLedger()
        self.now = 1000.0
        self.on_sleep = None
        self.statuses = []

    def _sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        deployment = next(iter(self.ledger.deployments.values()))
        self.statuses.append(deployment["status"])
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))

    def service(self):
        svc = DeploymentService(self.ledger, FakeAws(ec2=self.ec2), fetch=fake_fetch, sleep=self._sleep, owner="tester",
                                clock=lambda: self.now)
        svc.balancers = lambda plan, role=None: self.lb
        return svc

    def phase(self, plan, name):
        copy = Plan.from_dict(plan.to_dict())
        copy.phase = name
        return copy


def test_a_stop_deployment_plan_installs_green_first_then_reroutes_green_and_blue():
    world = ReadyWorld()
    plan = world.open(settings(ready="STOP_DEPLOYMENT"))
    assert plan.ready_wait == 300 and plan.serial == [2] and plan.first_play_hosts() == GREEN_NAMES
    assert plan.reroute_hosts == GREEN_NAMES + ["blue-1", "blue-2"] and plan.reroute_serial == [2]
    install, reroute = world.phase(plan, "install"), world.phase(plan, "reroute")
    assert install.host_events("green-1")[-1] == "ValidateService" and "BeforeAllowTraffic" not in install.host_events("green-1")
    assert reroute.host_events("green-1") == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert reroute.host_events("blue-1") == install.host_events("blue-1") == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert plan.host_events("green-1") == install.host_events("green-1") + reroute.host_events("green-1")  # check mode shows it all
    # Each phase releases the host lock at its own end.
    assert install.host_arguments(install.steps_for("green-1")[-1], host="green-1")["release_host_lock"] is True
    assert Plan.from_dict(plan.to_dict()) == plan


def test_codedeploy_ready_wait_seconds_overrides_the_minutes_and_is_refused_elsewhere():
    plan = ReadyWorld().open(settings(ready="STOP_DEPLOYMENT"), ready_wait_seconds="7")
    assert plan.ready_wait == 7
    with pytest.raises(contract.InputError, match="only for a BLUE_GREEN group whose .* is STOP_DEPLOYMENT.*CONTINUE_DEPLOYMENT"):
        request(settings(), ready_wait_seconds=7)
    with pytest.raises(contract.InputError, match="ready_wait_seconds=0 is not accepted"):
        request(settings(ready="STOP_DEPLOYMENT"), ready_wait_seconds=0)
    assert ReadyWorld().open(settings()).ready_wait is None


def _installed(world, plan):
    install = world.phase(plan, "install")
    for host in GREEN_NAMES:
        if world.instances(plan)[host]["status"] == "Pending":
            assert world.run(install, host)["status"] == "Ready"
    return install


def test_the_installed_green_fleet_waits_ready_then_a_continue_reroutes_it():
    world = ReadyWorld()
    plan = world.open(settings(ready="STOP_DEPLOYMENT"))
    install = world.phase(plan, "install")
    for host in GREEN_NAMES[:2]:
        world.run(install, host)
    assert world.service().after_batch(install, GREEN_NAMES[:2])["proceed"] is True  # green still to install: no wait yet
    assert world.sleeps == []
    _installed(world, plan)
    assert world.lb.registered == {"i-b1", "i-b2"}  # nothing moved yet
    assert {world.instances(plan)[h]["status"] for h in GREEN_NAMES} == {"Ready"}
    with pytest.raises(ServiceError, match="is InProgress, not Ready") as caught:
        world.service().request_continue(plan.deployment_id)
    assert caught.value.code == "DEPLOYMENT_IS_NOT_READY"
    renewals = world.ledger.renewals

    def approve(count):
        if count == 3:
            assert world.service().request_continue(plan.deployment_id, "awx approval")["changed"] is True
    world.on_sleep = approve
    after = world.service().after_batch(install, GREEN_NAMES[2:])
    assert after["proceed"] is True and after["status"] == "InProgress" and "continued by awx approval" in after["msg"]
    assert world.statuses == ["Ready"] * 3 and len(world.sleeps) == 3 and world.ledger.renewals >= renewals + 3
    reroute = world.phase(plan, "reroute")
    for host in GREEN_NAMES:
        result = world.run(reroute, host)
        assert result["status"] == "Succeeded" and [e["event"] for e in result["events"]] == [
            "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert world.service().after_batch(reroute, GREEN_NAMES[2:])["proceed"] is True and len(world.sleeps) == 3  # no second wait
    for host in ("blue-1", "blue-2"):
        assert world.run(reroute, host)["status"] == "Succeeded"
    assert world.lb.registered == {"i-g1", "i-g2", "i-g3", "i-g4"}
    assert world.service().settle(plan)["status"] == "Succeeded"


def test_a_ready_wait_without_a_continue_stops_the_deployment_and_registers_nothing():
    world = ReadyWorld()
    plan = world.open(settings(ready="STOP_DEPLOYMENT"), ready_wait_seconds=5)
    install = _installed(world, plan)
    after = world.service().after_batch(install, GREEN_NAMES[2:])
    assert after["proceed"] is False and after["status"] == "Stopped" and after["error_code"] == "TIMEOUT"
    assert sum(world.sleeps) == 5 and set(world.statuses) == {"Ready"}
    assert "waited 5 s in status Ready" in after["msg"]
    with pytest.raises(ServiceError, match="already Stopped; there is nothing to continue"):
        world.service().request_continue(plan.deployment_id)
    reroute = world.phase(plan, "reroute")
    for host in GREEN_NAMES + ["blue-1", "blue-2"]:
        assert world.run(reroute, host)["skipped"]
    assert world.lb.calls == [] and world.lb.registered == {"i-b1", "i-b2"}
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Stopped" and outcome["error"]["code"] == "TIMEOUT"
    assert outcome["blue_green"]["phase"] == "before_reroute" and outcome["blue_green"]["deregistered_green"] == []


def test_a_stop_request_ends_the_ready_wait_and_failed_green_hosts_do_not_reroute():
    world = ReadyWorld()
    plan = world.open(settings(ready="STOP_DEPLOYMENT"))
    install = world.phase(plan, "install")
    for host in GREEN_NAMES:
        world.run(install, host, fail_events=["ValidateService"] if host == "green-4" else ())
    assert world.instances(plan)["green-4"]["status"] == "Failed"
    reroute = world.phase(plan, "reroute")
    skipped = world.run(reroute, "green-4")
    assert skipped["skipped"] and "it was not installed (Failed)" in skipped["msg"]
    assert world.instances(plan)["green-4"]["status"] == "Failed"
    world.on_sleep = lambda count: world.ledger.request_stop(plan.deployment_id, requested_by="ops")
    after = world.service().after_batch(install, GREEN_NAMES[2:])
    assert after["status"] == "Stopped" and after["error_code"] == "MANUAL_STOP" and "while the green fleet waited" in after["msg"]
    assert len(world.sleeps) == 1


def test_check_mode_says_that_a_stop_deployment_plan_waits_for_a_continue():
    world = ReadyWorld()
    opening = world.service().open(request(settings(ready="STOP_DEPLOYMENT")), BLUE, settings(ready="STOP_DEPLOYMENT"), check_mode=True)
    assert "waits in status Ready up to 5 min for rollout.codedeploy.continue" in opening.message and not world.ledger.deployments
    plain = world.service().open(request(settings()), BLUE, settings(), check_mode=True)
    assert "status Ready" not in plain.message


class ListingLedger(ReadyLedger):
    def list_deployments(self, application=None, deployment_group=None, statuses=None, limit=50):
        found = [dict(d) for d in self.deployments.values()
                 if d["deployment_group"] == deployment_group and (not statuses or d["status"] in statuses)]
        return found[:limit] if limit else found


def test_a_continue_by_deployment_group_finds_the_deployment_that_waits_ready():
    world = ReadyWorld()
    world.ledger = ListingLedger()
    group_settings = settings(ready="STOP_DEPLOYMENT")
    plan = world.open(group_settings)
    refusal = "no deployment waiting in status Ready or in its termination wait: its deployment %s is InProgress" % plan.deployment_id
    with pytest.raises(ServiceError, match=refusal):
        world.service().request_continue_group(group_settings, "web_production")
    world.ledger.update_status(plan.deployment_id, "Ready")
    done = world.service().request_continue_group(group_settings, "web_production", "awx")
    assert done["deployment_id"] == plan.deployment_id and world.ledger.deployments[plan.deployment_id]["continue_request"]["requested_by"] == "awx"
    world.ledger.update_status(plan.deployment_id, "Succeeded")
    with pytest.raises(ServiceError, match="it has no active deployment"):
        world.service().request_continue_group(group_settings, "web_production")


def test_the_continue_inputs_name_what_is_missing():
    with pytest.raises(contract.InputError, match="no deployment_id given.*-e deployment_group=<group>"):
        contract.continue_request({})
    with pytest.raises(contract.InputError, match="deployment_id='d-1' is not accepted"):
        contract.continue_request({"deployment_id": "d-1"})
    assert contract.continue_request({"deployment_id": "d-ABCDEFGHI"})["deployment_id"] == "d-ABCDEFGHI"
    by_group = contract.continue_request({"deployment_group": "web_production"}, GROUPS, {"web_production": settings()})
    assert by_group == {"deployment_id": None, "deployment_group": "web_production", "aws": {}}


class NoteTaker:
    """A notifier that keeps the names of the events it was asked to send."""

    def __init__(self, names):
        self.names = names

    def instance_event(self, name, deployment, instance):
        self.names.append((name, instance.get("host")))
        return []

    def deployment_event(self, name, deployment):
        self.names.append((name, deployment["status"]))
        return []


def test_the_ready_wait_sends_instance_ready_and_deployment_ready_triggers():
    world = ReadyWorld()
    names = []
    plain = world.service

    def service():
        svc = plain()
        svc.notifier = lambda plan: NoteTaker(names)
        return svc
    world.service = service
    plan = world.open(settings(ready="STOP_DEPLOYMENT"), ready_wait_seconds=1)
    del names[:]
    _installed(world, plan)
    assert ("InstanceReady", "green-1") in names and ("InstanceStart", "green-1") in names
    assert not [n for n in names if n[0] == "InstanceSuccess"]
    world.service().after_batch(world.phase(plan, "install"), GREEN_NAMES[2:])
    assert ("DeploymentReady", "Ready") in names
