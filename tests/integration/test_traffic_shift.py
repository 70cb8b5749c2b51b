"""Weighted blue/green traffic shifting (plugins/module_utils/shift.py) against moto's ALB and the world's real HAProxy.

The steps come from deployment_config.traffic_steps; the Shifter runs them with a fake clock (no real waiting), and
after each step the test reads the load balancer back: DescribeListeners/DescribeRules in moto, ``show stat`` in HAProxy.
Against HAProxy a bounded load checks that the green servers' share of answers follows the weights."""
import pytest

from world.balancer import serving

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as dc
from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, shift
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.haproxy_runtime import TcpRuntime

pytestmark = [pytest.mark.fleet, pytest.mark.aws]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _alb(aws):
    net = aws.network()
    blue = aws.target_group("shift-blue")  # with an ALB and an HTTP:80 listener forwarding to it
    green = aws.target_group("shift-green", with_load_balancer=False)
    lb = aws.elbv2.describe_load_balancers(Names=["shift-blue-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = aws.elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"]
    assert net["vpc"]
    return blue, green, listener


def _listener_weights(aws, listener):
    action = aws.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
    return dict((group["TargetGroupArn"], group["Weight"]) for group in action["ForwardConfig"]["TargetGroups"]), action


def test_alb_listener_canary_then_linear_rule_and_alarm(world, aws):
    blue, green, listener = _alb(aws)
    # Stickiness on the forward action must survive every rewrite.
    aws.elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": blue, "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 120}}}])
    target = shift.AlbTarget(aws.elbv2, listener, "shift-blue", "shift-green")
    clock = FakeClock()
    seen = []

    def record(event):
        if event["event"] == "shift":
            weights, action = _listener_weights(aws, listener)
            seen.append((event["green_percent"], weights[blue], weights[green], event["elapsed"]))
            assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 120}

    steps = dc.traffic_steps("Rollout.Canary10Percent5Minutes")
    result = shift.Shifter(target, alarm_interval=60, sleep=clock.sleep, clock=clock).run(steps, lambda: None, record)
    assert result["status"] == "Succeeded"
    assert seen == [(10, 90, 10, 0), (100, 0, 100, 300)]
    assert target.read_weights() == {blue: 0, green: 100}

    # A listener rule, shifted linearly, with an alarm at 30 %: straight back to blue.
    rule = aws.elbv2.create_rule(ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                                 Actions=[{"Type": "forward", "TargetGroupArn": blue}])["Rules"][0]["RuleArn"]
    rule_target = shift.AlbTarget(aws.elbv2, listener, blue, green, rule_arns=[rule])
    clock = FakeClock()
    rule_weights = []

    def record_rule(event):
        described = aws.elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"][0]["ForwardConfig"]["TargetGroups"]
        rule_weights.append((event["event"], dict((g["TargetGroupArn"], g["Weight"]) for g in described)[green]))

    result = shift.Shifter(rule_target, alarm_interval=30, sleep=clock.sleep, clock=clock).run(
        dc.traffic_steps("Rollout.Linear10PercentEvery1Minute"), lambda: "web-5xx in ALARM" if clock.now >= 150 else None,
        record_rule)
    assert result["status"] == "RolledBack" and result["code"] == "ALARM_ACTIVE" and "web-5xx in ALARM" in result["message"]
    assert rule_weights == [("shift", 10), ("shift", 20), ("shift", 30), ("alarm", 30), ("rollback", 0)]
    assert rule_target.read_weights() == {blue: 100, green: 0}
    # The listener's default action was not touched by the rule's shift.
    assert _listener_weights(aws, listener)[0] == {blue: 0, green: 100}


def test_alb_refuses_a_listener_that_does_not_forward_to_blue(world, aws):
    blue, green, listener = _alb(aws)
    other = aws.target_group("shift-other", with_load_balancer=False)
    aws.elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": other}])
    with pytest.raises(shift.ShiftError) as caught:
        shift.AlbTarget(aws.elbv2, listener, blue, green).set_weights(10)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "forward to shift-other, not to the blue target group shift-blue" in caught.value.message


def _weights(balancer):
    rows = haproxy.parse_stat(balancer.command("show stat"))
    return dict((server, haproxy.weight_of(row)) for (proxy, server), row in rows.items()
                if proxy == "web" and server not in ("FRONTEND", "BACKEND"))


def test_haproxy_weights_follow_the_steps_and_the_traffic_follows(world, fleet_hosts):
    blue_hosts, green_hosts = fleet_hosts[:3], fleet_hosts[3:4]
    balancer = world.balancer
    balancer.configure({"web": [(h.name, h.address, 8080) for h in blue_hosts + green_hosts]})
    spec = haproxy.normalize_backends([{"backend": "web", "runtime_api": balancer.admin_address}])[0]
    backend = haproxy.Backend(spec, TcpRuntime(balancer.address, haproxy_port(balancer)), lambda: 0.0)
    target = shift.HaproxyTarget(backend, [h.name for h in blue_hosts], [h.name for h in green_hosts])
    versions = dict([(h.name, "blue") for h in blue_hosts] + [(h.name, "green") for h in green_hosts])
    with serving(world.fleet, blue_hosts + green_hosts, versions):
        balancer.wait_up("web")
        clock = FakeClock()
        seen = []
        shares = {}

        def record(event):
            if event["event"] != "shift":
                return
            weights = _weights(balancer)
            seen.append((event["green_percent"], weights))
            if event["green_percent"] in (25, 100):
                load = world.load(balancer.url("web"), max_requests=400, max_seconds=20, concurrency=4)
                result = load.run()
                assert result.failed == 0, result.summary()
                shares[event["green_percent"]] = 100.0 * result.bodies.get("sample-app green", 0) / result.count

        steps = dc.traffic_steps({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 25, "linear_interval": 1}})
        result = shift.Shifter(target, alarm_interval=60, sleep=clock.sleep, clock=clock).run(steps, None, record)
        assert result["status"] == "Succeeded"
        blue_names = [h.name for h in blue_hosts]
        green_name = green_hosts[0].name
        for percent, weights in seen:
            blue_weight, green_weight = shift.server_weights(percent, 3, 1)
            assert weights == dict([(name, blue_weight) for name in blue_names] + [(green_name, green_weight)]), percent
            assert shift.green_share([weights[name] for name in blue_names], [weights[green_name]]) == pytest.approx(percent, abs=0.5)
        assert [percent for percent, _weights_seen in seen] == [25, 50, 75, 100]
        # Round robin with weights is exact over a cycle; allow for the load's partial cycle.
        assert 15 <= shares[25] <= 35, shares
        assert shares[100] == 100.0, shares
        # An alarm at 50 %: straight back to blue, and all answers come from blue again.
        clock = FakeClock()
        result = shift.Shifter(target, alarm_interval=30, sleep=clock.sleep, clock=clock).run(
            [(50, 60), (100, 0)], lambda: (False, "p99 latency alarm") if clock.now >= 30 else (True, ""))
        assert result["status"] == "RolledBack" and result["green_percent"] == 0
        assert _weights(balancer) == dict([(name, shift.FULL_WEIGHT) for name in blue_names] + [(green_name, 0)])
        after = world.load(balancer.url("web"), max_requests=100, max_seconds=20, concurrency=2).run()
        assert after.failed == 0 and set(after.bodies) == {"sample-app blue"}, after.summary()


def haproxy_port(balancer):
    return int(balancer.admin_address.rsplit(":", 1)[1])
