"""Weighted rerouting of blue/green deployments (plugins/plugin_utils/reroute.py) in the deployment service, with the fake ledger,
fake load balancers, a fake ALB listener and a clock that moves only when the service sleeps: green joins the green target group
at weight 0, the shift runs after the last green batch, blue leaves only at 100 %, an alarm or a stop sends traffic back."""
import copy

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import selection
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract, reroute
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import DeploymentService, ServiceError

from test_blue_green_service import GREEN_NAMES, ReadyLedger, ReadyWorld, request, settings
from test_service import FakeAws, fake_fetch

PREFIX = "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
LISTENER = PREFIX + "listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
BLUE_ARN = PREFIX + "targetgroup/web-blue/1111"
GREEN_ARN = PREFIX + "targetgroup/web-green/2222"
PAIR = {"target_groups": ["web-blue", "web-green"], "prod_traffic_route": {"listener_arns": [LISTENER], "rule_arns": []}}


class FakeElbv2:
    """One listener whose default action forwards to web-blue; every ModifyListener is kept as (blue, green) weights."""

    def __init__(self, forward=None):
        self.actions = [{"Type": "forward", "TargetGroupArn": BLUE_ARN}] if forward is None else forward
        self.history = []

    def describe_target_groups(self, Names):  # noqa: N803  # boto3's argument names
        arns = {"web-blue": BLUE_ARN, "web-green": GREEN_ARN}
        return {"TargetGroups": [{"TargetGroupName": n, "TargetGroupArn": arns[n]} for n in Names]}

    def describe_listeners(self, ListenerArns):  # noqa: N803
        assert ListenerArns == [LISTENER]
        return {"Listeners": [{"ListenerArn": LISTENER, "DefaultActions": copy.deepcopy(self.actions)}]}

    def modify_listener(self, ListenerArn, DefaultActions):  # noqa: N803
        self.actions = copy.deepcopy(DefaultActions)
        self.history.append(self.weights())

    def weights(self):
        groups = dict((g["TargetGroupArn"], g["Weight"]) for g in self.actions[0]["ForwardConfig"]["TargetGroups"])
        return groups.get(BLUE_ARN, 0), groups.get(GREEN_ARN, 0)


class FakeCloudwatch:
    def __init__(self):
        self.state = "OK"

    def describe_alarms(self, **kwargs):
        return {"MetricAlarms": [{"AlarmName": "web-5xx", "StateValue": self.state, "StateReason": "5xx above 1 %"}]}


class ShiftWorld(ReadyWorld):
    def __init__(self, forward=None, **kwargs):
        super(ShiftWorld, self).__init__(**kwargs)
        self.ledger = ReadyLedger()  # the fake ledger keeps swap records as the real ones do (ledger.merge_swap)
        self.elbv2 = FakeElbv2(forward)
        self.cloudwatch = FakeCloudwatch()

    def service(self):
        svc = DeploymentService(self.ledger, FakeAws(ec2=self.ec2, elbv2=self.elbv2, cloudwatch=self.cloudwatch), fetch=fake_fetch,
                                sleep=self._sleep, owner="tester", clock=lambda: self.now)
        svc.balancers = lambda plan, role=None: self.lb
        return svc

    def swap(self, plan):
        return self.ledger.deployments[plan.deployment_id]["swap"]


def pair_settings(config="Rollout.Canary10Percent5Minutes", alarms=False, **kwargs):
    group = settings(config=config, **kwargs)
    group["load_balancer"] = {"target_groups": [], "classic_elbs": [], "haproxy_backends": [], "target_group_pair_info": PAIR}
    if alarms:
        group["alarms"] = {"enabled": True, "names": ["web-5xx"], "ignore_poll_alarm_failure": False}
    return group


def _greens(world, plan):
    for host in GREEN_NAMES:
        assert world.run(plan, host)["status"] == "Succeeded"


def test_the_plan_knows_the_steps_and_the_start_puts_green_in_the_listener_at_weight_0():
    world = ShiftWorld()
    plan = world.open(pair_settings(), traffic_interval_seconds="3")
    assert plan.reroute["steps"] == [[10, 3], [100, 0]] and plan.reroute["configured_steps"] == [[10, 300], [100, 0]]
    assert plan.reroute["pair"]["blue"] == BLUE_ARN and plan.reroute["pair"]["green"] == GREEN_ARN
    assert plan.target_groups == ["web-blue", "web-green"]
    assert reroute.target_groups_for(plan, "green") == [GREEN_ARN] and reroute.target_groups_for(plan, "blue") == [BLUE_ARN]
    assert reroute.target_groups_for(plan) == ["web-blue", "web-green"]
    assert world.elbv2.history == [(100, 0)]
    swap = world.swap(plan)
    assert swap["state"] == "installing" and swap["blue_target_group"] == "web-blue" and swap["green_target_group"] == "web-green"
    assert [(t["step"], t["green_percent"]) for t in swap["traffic"]] == [(0, 0)]
    assert swap["traffic"][0]["weights"] == {"listener %s" % LISTENER: {"web-blue": 100, "web-green": 0}}
    assert swap["traffic"][0]["time"].endswith("Z")


def test_the_shift_runs_after_the_last_green_batch_and_blue_leaves_only_at_100_percent():
    world = ShiftWorld()
    plan = world.open(pair_settings(alarms=True), traffic_interval_seconds=4)
    for host in GREEN_NAMES[:2]:
        world.run(plan, host)
    assert world.service().after_batch(plan, GREEN_NAMES[:2])["proceed"] is True
    assert world.elbv2.history == [(100, 0)]  # not before every green host finished
    early = world.run(plan, "blue-1")
    assert early["skipped"]
    world.instances(plan)["blue-1"]["status"] = "Pending"
    for host in GREEN_NAMES[2:]:
        world.run(plan, host)
    refused = world.run(plan, "blue-1")
    assert refused["skipped"] and "traffic shift did not reach 100 % green (swap state: installing)" in refused["msg"]
    world.instances(plan)["blue-1"]["status"] = "Pending"
    renewals = world.ledger.renewals
    decision = world.service().after_batch(plan, GREEN_NAMES[2:])
    assert decision["proceed"] is True and "2 step(s) (10 %, 100 %)" in decision["msg"], decision
    assert world.elbv2.history == [(100, 0), (90, 10), (0, 100)]
    assert sum(world.sleeps) == pytest.approx(4) and world.ledger.renewals > renewals  # the canary's 4 s, alarms polled meanwhile
    swap = world.swap(plan)
    assert swap["state"] == "rerouted"
    assert [(t["step"], t["green_percent"]) for t in swap["traffic"]] == [(0, 0), (1, 10), (2, 100)]
    assert swap["traffic"][1]["reason"] == "step 1 of 2, 4 s at this share"
    assert swap["traffic"][2]["weights"] == {"listener %s" % LISTENER: {"web-blue": 0, "web-green": 100}}
    for host in ("blue-1", "blue-2"):
        assert world.run(plan, host)["status"] == "Succeeded"
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Succeeded", outcome
    # The shift ran once: a later batch check does not run it again.
    assert reroute.due(plan, world.ledger.get_deployment(plan.deployment_id)) is False


@pytest.mark.parametrize("act, code, state, words", [
    ("alarm", "ALARM_ACTIVE", "rolled_back", "Alarm at 10% green traffic (step 1 of 2)"),
    ("stop", "MANUAL_STOP", "stopped", "Stopped at 10% green traffic (step 1 of 2): stopped on request of ops during the traffic shift"),
])
def test_an_alarm_or_a_stop_during_a_step_sends_the_traffic_back_and_blue_never_leaves(act, code, state, words):
    world = ShiftWorld()
    plan = world.open(pair_settings(alarms=True), traffic_interval_seconds=30)

    def during_the_canary(count):
        if world.elbv2.weights() == (90, 10) and count >= 2:
            if act == "alarm":
                world.cloudwatch.state = "ALARM"
            else:
                world.ledger.request_stop(plan.deployment_id, requested_by="ops")
    world.on_sleep = during_the_canary
    _greens(world, plan)
    decision = world.service().after_batch(plan, GREEN_NAMES[2:])
    assert decision["proceed"] is False and decision["status"] == "Stopped" and decision["error_code"] == code
    assert words in decision["msg"] and "The blue hosts were not touched" in decision["msg"]
    assert world.elbv2.history == [(100, 0), (90, 10), (100, 0)]
    swap = world.swap(plan)
    assert swap["state"] == state and [t["green_percent"] for t in swap["traffic"]] == [0, 10, 0]
    assert swap["traffic"][-1]["reason"].startswith("back to blue: ")
    for host in ("blue-1", "blue-2"):
        assert world.run(plan, host)["skipped"]
    assert ("block", "i-b1") not in world.lb.calls
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Stopped" and outcome["error"]["code"] == code
    assert outcome["blue_green"]["deregistered_green"] == GREEN_NAMES and world.lb.registered == {"i-b1", "i-b2"}
    assert world.elbv2.history[-1] == (100, 0)


def _noting(order, name, step, weights):
    """``step`` (a load balancer's allow or block) that first notes (name, instance, the listener's weights) in ``order``."""
    def noted(instance, **kwargs):
        order.append((name, instance, weights()))
        return step(instance, **kwargs)
    return noted


def test_after_the_reroute_a_rollback_moves_the_weights_back_before_green_leaves():
    world = ShiftWorld()
    plan = world.open(pair_settings(), traffic_interval_seconds=0, auto_rollback=True)
    _greens(world, plan)
    world.service().after_batch(plan, GREEN_NAMES[2:])
    assert world.elbv2.weights() == (0, 100)
    world.run(plan, "blue-1")
    world.lb.refuse = {"i-b2"}
    world.run(plan, "blue-2")
    world.lb.refuse = set()
    order = []
    world.lb.allow = _noting(order, "allow", world.lb.allow, world.elbv2.weights)
    world.lb.block = _noting(order, "block", world.lb.block, world.elbv2.weights)
    outcome = world.service().settle(plan)
    assert outcome["status"] == "Failed" and outcome["blue_green"]["registered_blue"] == ["blue-1", "blue-2"]
    # Blue came back while green still carried the traffic; green left only once the listener sent everything to blue.
    assert [step[2] for step in order if step[0] == "allow"] == [(0, 100), (0, 100)]
    assert {step[2] for step in order if step[0] == "block"} == {(100, 0)}
    assert world.swap(plan)["state"] == "rolled_back" and world.swap(plan)["traffic"][-1]["green_percent"] == 0


def test_a_listener_that_still_splits_traffic_is_refused_before_anything_changes():
    split = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": BLUE_ARN, "Weight": 90},
                                                                    {"TargetGroupArn": GREEN_ARN, "Weight": 10}]}}]
    world = ShiftWorld(forward=split)
    with pytest.raises(ServiceError) as caught:
        world.open(pair_settings())
    assert "sends traffic to both target groups of the pair (web-blue weight 90, web-green weight 10)" in caught.value.message
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID" and world.elbv2.history == []
    assert next(iter(world.ledger.deployments.values()))["status"] == "Failed"


def test_after_a_finished_shift_the_green_group_serves_and_becomes_the_next_blue():
    served = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": BLUE_ARN, "Weight": 0},
                                                                     {"TargetGroupArn": GREEN_ARN, "Weight": 100}]}}]
    world = ShiftWorld(forward=served)
    plan = world.open(pair_settings(config="CodeDeployDefault.AllAtOnce"))
    assert plan.reroute["steps"] == [[100, 0]]
    assert plan.reroute["pair"]["blue"] == GREEN_ARN and plan.reroute["pair"]["green"] == BLUE_ARN
    assert world.swap(plan)["blue_target_group"] == "web-green"


def test_canary_without_a_weighted_load_balancer_is_refused_and_all_at_once_stays_codedeploys():
    world = ShiftWorld()
    with pytest.raises(ServiceError) as caught:
        world.open(settings(config="CodeDeployDefault.HalfAtATime"), deployment_config="Rollout.Linear10PercentEvery1Minute")
    assert "load_balancer.target_groups web-tg cannot carry a weight" in caught.value.message
    assert "target_group_pair_info" in caught.value.message and not world.ledger.deployments
    assert world.open(settings()).reroute is None  # CodeDeployDefault.* without a pair: all at once with BlockTraffic


def test_codedeploy_traffic_interval_seconds_is_checked():
    assert request(pair_settings(), traffic_interval_seconds="2")["traffic_interval_seconds"] == 2
    with pytest.raises(contract.InputError, match="codedeploy_traffic_interval_seconds=5 is only for a BLUE_GREEN deployment whose "
                                                  "deployment config shifts traffic in steps.*CodeDeployDefault.AllAtOnce moves all traffic at once"):
        request(pair_settings(config="CodeDeployDefault.AllAtOnce"), traffic_interval_seconds=5)
    with pytest.raises(contract.InputError, match="traffic_interval_seconds=-1 is not accepted"):
        request(pair_settings(), traffic_interval_seconds=-1)


def test_steps_and_alarm_interval():
    assert reroute.scaled_steps([(10, 60), (20, 60), (100, 0)], 2) == [[10, 2], [20, 2], [100, 0]]
    assert reroute.scaled_steps([(10, 300), (100, 0)]) == [[10, 300], [100, 0]]
    assert reroute.alarm_interval([[10, 300], [100, 0]]) == 10.0
    assert reroute.alarm_interval([[10, 2], [100, 0]]) == 0.5
    assert reroute.alarm_interval([[100, 0]]) == 10.0


# ------------------------------------------------------------------------------ the inventory settings
GROUP = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_style": {"type": "BLUE_GREEN"},
         "deployment_config": "Rollout.Canary10Percent5Minutes"}


@pytest.mark.parametrize("load_balancer, extra, key, words", [
    ({"target_group_pair_info": dict(PAIR, target_groups=["a", "b", "c"])}, {}, "load_balancer.target_group_pair_info.target_groups",
     "a pair is exactly two target groups"),
    ({"target_group_pair_info": {"target_groups": ["a", "b"], "prod_traffic_route": {"listener_arns": ["web-listener"]}}}, {},
     "load_balancer.target_group_pair_info.prod_traffic_route.listener_arns[0]", "is not a listener ARN"),
    ({"target_group_pair_info": {"target_groups": ["a", "b"], "prod_traffic_route": {"rule_arns": [LISTENER]}}}, {},
     "load_balancer.target_group_pair_info.prod_traffic_route.rule_arns[0]", "is not a listener rule ARN"),
    ({"target_group_pair_info": {"target_groups": ["a", "b"]}}, {}, "load_balancer.target_group_pair_info.prod_traffic_route",
     "names no listener and no rule"),
    ({"target_group_pair_info": PAIR, "target_groups": ["web-tg"]}, {}, "load_balancer.target_groups", "is given with target_group_pair_info"),
    ({"target_group_pair_info": PAIR}, {"deployment_style": {"type": "IN_PLACE"}, "deployment_config": "CodeDeployDefault.OneAtATime"},
     "load_balancer.target_group_pair_info", "only a BLUE_GREEN deployment has"),
    ({"classic_elbs": ["web-elb"], "target_group_pair_info": PAIR}, {}, "deployment_config", "load_balancer.classic_elbs web-elb cannot carry a weight"),
    ({"targetGroupPairInfoList": [PAIR]}, {}, "load_balancer.targetGroupPairInfoList", "name one pair as a mapping: target_group_pair_info"),
])
def test_pair_settings_are_checked_naming_the_key(load_balancer, extra, key, words):
    spec = dict(GROUP, load_balancer=load_balancer, **extra)
    with pytest.raises(selection.SelectionError) as caught:
        selection.normalize_deployment_group("web", "production", spec, regions=["us-east-1"], default_region="us-east-1")
    assert caught.value.key == key and words in caught.value.message, caught.value.message


def test_a_pair_with_a_rule_is_normalized():
    rule = PREFIX + "listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
    spec = dict(GROUP, load_balancer={"target_group_pair_info": {"target_groups": [{"name": "a"}, "b"],
                                                                 "prod_traffic_route": {"rule_arns": [rule]}}})
    group = selection.normalize_deployment_group("web", "production", spec, regions=["us-east-1"], default_region="us-east-1")
    assert group["load_balancer"]["target_group_pair_info"] == {"target_groups": ["a", "b"],
                                                                "prod_traffic_route": {"listener_arns": [], "rule_arns": [rule]}}
    assert group["deployment_style"]["traffic_control"] is True
    assert selection.rule_listener(rule) == LISTENER
