# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/traffic.py: the target-state decisions and the wait state machines.

moto never shows initial/draining/unhealthy targets, so the state machines are driven here by
scripted fake ELB clients (sequences of target states, one step per describe call) and a fake
clock whose sleep only advances the time: no real waiting.
"""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.rollout.codedeploy.plugins.module_utils import traffic as tr

I1 = "i-0123456789abcdef0"
I2 = "i-0fedcba9876543210"
VPC = "vpc-11111111"


def arn(name):
    return "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/%s/0123456789abcdef" % name


def client_error(code, message="boom", op="Operation"):
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


def thd(instance_id, state, reason=None, description=None, port=8080):
    health = {"State": state}
    if reason:
        health["Reason"] = reason
    if description:
        health["Description"] = description
    return {"Target": {"Id": instance_id, "Port": port}, "TargetHealth": health}


HEALTHY = ("healthy", None, None)
INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
UNHEALTHY = ("unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [502]")
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
GONE = ("unused", "Target.NotRegistered", "Target is not registered to the target group")
NOT_IN_USE = ("unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
STOPPED = ("unused", "Target.InvalidState", "Target is in the stopped state")


class Clock:
    """A monotonic clock whose sleep only moves the time forward."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeElbv2:
    """Target groups whose targets follow scripted state sequences (one step per describe that includes them)."""

    def __init__(self, groups=("web-tg",), target_type="instance", port=8080, lb=True, page_size=None):
        self.groups = {}
        for name in groups:
            self.groups[name] = {"TargetGroupName": name, "TargetGroupArn": arn(name), "Port": port, "VpcId": VPC,
                                 "TargetType": target_type, "LoadBalancerArns": ["arn:lb/%s" % name] if lb else [],
                                 "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port", "HealthCheckPath": "/health",
                                 "HealthCheckIntervalSeconds": 30, "HealthyThresholdCount": 5, "HealthCheckEnabled": True}
        self.scripts = {}        # (arn, instance, port) -> [state tuples]; the last one repeats
        self.on_register = {}    # key -> script installed by register_targets (default: [HEALTHY])
        self.on_deregister = {}  # key -> script installed by deregister_targets (default: [GONE])
        self.failures = {}       # operation -> [exceptions raised first, in order]
        self.calls = []
        self.page_size = page_size
        self.attributes = {"deregistration_delay.timeout_seconds": "300"}

    def set(self, name, instance_id, script, port=8080):
        self.scripts[(arn(name), instance_id, port)] = list(script)

    def _fail(self, operation):
        queue = self.failures.get(operation)
        if queue:
            raise queue.pop(0)

    def _step(self, key):
        script = self.scripts.get(key)
        if not script:
            return GONE
        state = script[0]
        if len(script) > 1:
            script.pop(0)
        return state

    def describe_target_groups(self, Names=None, TargetGroupArns=None, Marker=None):
        self.calls.append(("describe_target_groups", tuple(Names or TargetGroupArns or ()), Marker))
        self._fail("describe_target_groups")
        wanted = []
        for value in Names or TargetGroupArns or ():
            match = [g for g in self.groups.values() if value in (g["TargetGroupName"], g["TargetGroupArn"])]
            if not match:
                raise client_error("TargetGroupNotFound", "One or more target groups not found", "DescribeTargetGroups")
            wanted.extend(match)
        start = int(Marker or 0)
        if self.page_size:
            page = wanted[start:start + self.page_size]
            answer = {"TargetGroups": page}
            if start + self.page_size < len(wanted):
                answer["NextMarker"] = str(start + self.page_size)
            return answer
        return {"TargetGroups": wanted}

    def describe_target_health(self, TargetGroupArn, Targets=None):
        self.calls.append(("describe_target_health", TargetGroupArn, tuple((t["Id"], t.get("Port")) for t in Targets or ())))
        self._fail("describe_target_health")
        out = []
        if Targets:
            for target in Targets:
                state = self._step((TargetGroupArn, target["Id"], target.get("Port")))
                out.append(thd(target["Id"], *state, port=target.get("Port")))
        else:
            for key in sorted(k for k in self.scripts if k[0] == TargetGroupArn):
                state = self._step(key)
                if state[0] != "unused" or state[1] != "Target.NotRegistered":
                    out.append(thd(key[1], *state, port=key[2]))
        return {"TargetHealthDescriptions": out}

    def register_targets(self, TargetGroupArn, Targets):
        self.calls.append(("register_targets", TargetGroupArn, tuple((t["Id"], t["Port"]) for t in Targets)))
        self._fail("register_targets")
        for target in Targets:
            key = (TargetGroupArn, target["Id"], target["Port"])
            self.scripts[key] = list(self.on_register.get(key, [HEALTHY]))
        return {}

    def deregister_targets(self, TargetGroupArn, Targets):
        self.calls.append(("deregister_targets", TargetGroupArn, tuple((t["Id"], t["Port"]) for t in Targets)))
        self._fail("deregister_targets")
        for target in Targets:
            key = (TargetGroupArn, target["Id"], target["Port"])
            self.scripts[key] = list(self.on_deregister.get(key, [GONE]))
        return {}

    def describe_target_group_attributes(self, TargetGroupArn):
        self.calls.append(("describe_target_group_attributes", TargetGroupArn))
        return {"Attributes": [{"Key": k, "Value": v} for k, v in self.attributes.items()]}

    def count(self, operation):
        return len([c for c in self.calls if c[0] == operation])


class FakeElb:
    """Classic load balancers whose instances follow scripted states (None = not listed)."""

    def __init__(self, names=("web-clb",)):
        self.names = list(names)
        self.scripts = {}  # (lb, instance) -> [(State, ReasonCode, Description) or None]
        self.on_register = {}
        self.on_deregister = {}
        self.failures = {}
        self.calls = []

    def set(self, name, instance_id, script):
        self.scripts[(name, instance_id)] = list(script)

    def _fail(self, operation):
        queue = self.failures.get(operation)
        if queue:
            raise queue.pop(0)

    def describe_load_balancers(self, LoadBalancerNames, Marker=None):
        self.calls.append(("describe_load_balancers", tuple(LoadBalancerNames), Marker))
        for name in LoadBalancerNames:
            if name not in self.names:
                raise client_error("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'" % name)
        return {"LoadBalancerDescriptions": [{"LoadBalancerName": n} for n in LoadBalancerNames]}

    def describe_instance_health(self, LoadBalancerName):
        self.calls.append(("describe_instance_health", LoadBalancerName))
        self._fail("describe_instance_health")
        out = []
        for (name, instance_id), script in sorted(self.scripts.items()):
            if name != LoadBalancerName or not script:
                continue
            state = script[0]
            if len(script) > 1:
                script.pop(0)
            if state is not None:
                out.append({"InstanceId": instance_id, "State": state[0], "ReasonCode": state[1], "Description": state[2]})
        return {"InstanceStates": out}

    def register_instances_with_load_balancer(self, LoadBalancerName, Instances):
        self.calls.append(("register", LoadBalancerName, tuple(i["InstanceId"] for i in Instances)))
        self._fail("register")
        for item in Instances:
            key = (LoadBalancerName, item["InstanceId"])
            self.scripts[key] = list(self.on_register.get(key, [IN_SERVICE]))
        return {}

    def deregister_instances_from_load_balancer(self, LoadBalancerName, Instances):
        self.calls.append(("deregister", LoadBalancerName, tuple(i["InstanceId"] for i in Instances)))
        self._fail("deregister")
        for item in Instances:
            key = (LoadBalancerName, item["InstanceId"])
            self.scripts[key] = list(self.on_deregister.get(key, [None]))
        return {}

    def count(self, operation):
        return len([c for c in self.calls if c[0] == operation])


IN_SERVICE = ("InService", "N/A", "N/A")
OUT = ("OutOfService", "Instance", "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.")
REGISTERING = ("Unknown", "ELB", "Instance registration is still in progress.")


def balancers(elbv2=None, elb=None, groups=("web-tg",), classic=(), poll=2.0):
    clock = Clock()
    lbs = tr.LoadBalancers(elbv2=elbv2, elb=elb, target_groups=groups, classic_elbs=classic,
                           sleep=clock.sleep, clock=clock, poll=poll)
    return lbs, clock


# ----------------------------------------------------------------------------------------------
# Pure decisions
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("descriptions, port, expected", [
    ([], None, True),
    ([thd(I1, *GONE)], None, True),
    ([thd(I1, *NOT_IN_USE)], None, True),
    ([thd(I1, *DRAINING)], None, False),
    ([thd(I1, "unhealthy.draining", "Target.HealthCheckFailed")], None, False),
    ([thd(I1, *HEALTHY)], None, False),
    ([thd(I1, *INITIAL)], None, False),
    ([thd(I1, *UNHEALTHY)], None, False),
    ([thd(I1, "unavailable", "Target.HealthCheckDisabled")], None, False),
    ([thd(I2, *HEALTHY)], None, True),                                      # another instance
    ([thd(I1, *HEALTHY, port=9090)], 8080, True),                           # another port
    ([thd(I1, *HEALTHY, port=9090)], 9090, False),
    ([thd(I1, *GONE, port=8080), thd(I1, *DRAINING, port=9090)], None, False),  # one port still draining
    ([thd(I1, *GONE, port=8080), thd(I1, *DRAINING, port=9090)], 8080, True),
])
def test_target_out(descriptions, port, expected):
    assert tr.target_out(descriptions, I1, port) is expected


@pytest.mark.parametrize("descriptions, port, expected", [
    ([thd(I1, *HEALTHY)], None, ("healthy", "healthy", None)),
    ([thd(I1, *INITIAL)], None, ("waiting", "initial", "Elb.InitialHealthChecking")),
    ([thd(I1, *UNHEALTHY)], None, ("waiting", "unhealthy", "Target.ResponseCodeMismatch")),
    ([thd(I1, *DRAINING)], None, ("waiting", "draining", "Target.DeregistrationInProgress")),
    ([thd(I1, "unavailable", "Target.HealthCheckDisabled")], None, ("healthy", "unavailable", "Target.HealthCheckDisabled")),
    ([thd(I1, "unavailable", "Elb.InternalError")], None, ("waiting", "unavailable", "Elb.InternalError")),
    ([thd(I1, *NOT_IN_USE)], None, ("healthy", "unused", "Target.NotInUse")),
    ([thd(I1, *GONE)], None, ("waiting", "unused", "Target.NotRegistered")),
    ([thd(I1, *STOPPED)], None, ("failed", "unused", "Target.InvalidState")),
    ([thd(I1, "unused", "Target.IpUnusable")], None, ("failed", "unused", "Target.IpUnusable")),
    ([], None, ("waiting", "unused", "Target.NotRegistered")),
    ([thd(I2, *HEALTHY)], None, ("waiting", "unused", "Target.NotRegistered")),
    ([thd(I1, *HEALTHY, port=9090)], 8080, ("waiting", "unused", "Target.NotRegistered")),
    ([thd(I1, *GONE, port=8080), thd(I1, *HEALTHY, port=9090)], None, ("healthy", "healthy", None)),  # registered entry wins
])
def test_target_verdict(descriptions, port, expected):
    assert tr.target_verdict(descriptions, I1, port) == expected


def classic_states(*items):
    return [{"InstanceId": i, "State": s[0], "ReasonCode": s[1], "Description": s[2]} for i, s in items]


@pytest.mark.parametrize("states, out, verdict", [
    ([], True, ("waiting", "OutOfService", "NotRegistered")),
    (classic_states((I1, IN_SERVICE)), False, ("healthy", "InService", "N/A")),
    (classic_states((I1, OUT)), True, ("waiting", "OutOfService", "Instance")),
    (classic_states((I1, REGISTERING)), False, ("waiting", "Unknown", "ELB")),
    (classic_states((I1, ("OutOfService", "Instance", "Instance is in stopped state."))), True,
     ("failed", "OutOfService", "Instance")),
    (classic_states((I2, IN_SERVICE)), True, ("waiting", "OutOfService", "NotRegistered")),
])
def test_classic_decisions(states, out, verdict):
    assert tr.classic_out(states, I1) is out
    assert tr.classic_verdict(states, I1) == verdict


@pytest.mark.parametrize("member, expected", [
    ({"target_groups": {"a": "unused"}, "classic_elbs": {"c": "OutOfService"}}, True),
    ({"target_groups": {"a": "draining", "b": "unused"}, "classic_elbs": {}}, True),
    ({"target_groups": {"a": "healthy", "b": "unused"}, "classic_elbs": {}}, False),
    ({"target_groups": {"a": "initial"}, "classic_elbs": {}}, False),
    ({"target_groups": {}, "classic_elbs": {"c": "InService"}}, False),
    ({"target_groups": {}, "classic_elbs": {}}, True),
])
def test_out_of_service(member, expected):
    assert tr.out_of_service(member) is expected


# ----------------------------------------------------------------------------------------------
# BlockTraffic
# ----------------------------------------------------------------------------------------------
def test_block_deregisters_and_waits_through_draining():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    elbv2.on_deregister[(arn("web-tg"), I1, 8080)] = [DRAINING, DRAINING, GONE]
    lbs, clock = balancers(elbv2)
    result = lbs.block(I1, timeout=60)
    assert elbv2.count("deregister_targets") == 1
    assert ("deregister_targets", arn("web-tg"), ((I1, 8080),)) in elbv2.calls
    assert result["changed"] is True
    assert result["action"] == "BlockTraffic"
    assert result["waited"] == 3
    assert clock.sleeps == [2.0, 2.0]
    assert result["duration"] == 4.0
    entry = result["target_groups"]["web-tg"]
    assert (entry["state"], entry["reason"], entry["changed"]) == ("unused", "Target.NotRegistered", True)


def test_block_deregisters_every_port_of_the_instance():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY], port=8080)
    elbv2.set("web-tg", I1, [HEALTHY], port=9090)
    elbv2.set("web-tg", I2, [HEALTHY], port=8080)
    elbv2.on_deregister[(arn("web-tg"), I1, 9090)] = [DRAINING, GONE]
    lbs, _clock = balancers(elbv2)
    result = lbs.block(I1)
    assert ("deregister_targets", arn("web-tg"), ((I1, 8080), (I1, 9090))) in elbv2.calls
    assert result["waited"] == 2
    assert elbv2.scripts[(arn("web-tg"), I2, 8080)] == [HEALTHY]   # the other instance is untouched


def test_block_of_an_instance_that_is_not_registered_changes_nothing():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I2, [HEALTHY])
    lbs, clock = balancers(elbv2)
    result = lbs.block(I1)
    assert result["changed"] is False
    assert result["waited"] == 0
    assert elbv2.count("deregister_targets") == 0
    assert clock.sleeps == []
    assert result["target_groups"]["web-tg"]["state"] == "unused"


def test_block_of_a_draining_instance_waits_without_deregistering_again():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [DRAINING, DRAINING, GONE])
    lbs, _clock = balancers(elbv2)
    result = lbs.block(I1)
    assert elbv2.count("deregister_targets") == 0
    assert result["changed"] is False
    assert result["waited"] == 2


def test_block_times_out_while_draining_with_a_clear_message():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    elbv2.on_deregister[(arn("web-tg"), I1, 8080)] = [DRAINING]
    lbs, clock = balancers(elbv2, poll=5)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.block(I1, timeout=30)
    error = caught.value
    assert error.code == "TIMEOUT"
    assert (error.load_balancer, error.instance_id, error.state) == ("web-tg", I1, "draining")
    assert "BlockTraffic timed out after 30 s on %s" % I1 in error.message
    assert "target group web-tg reports draining (Target.DeregistrationInProgress" in error.message
    assert "deregistration_delay.timeout_seconds = 300" in error.message
    assert clock.now - 1000.0 == 30.0   # waited exactly the timeout, never beyond it
    assert all(s <= 5 for s in clock.sleeps)


def test_block_waits_for_all_load_balancers_at_once():
    elbv2 = FakeElbv2(groups=("a-tg", "b-tg"))
    elb = FakeElb()
    for name in ("a-tg", "b-tg"):
        elbv2.set(name, I1, [HEALTHY])
    elbv2.on_deregister[(arn("a-tg"), I1, 8080)] = [DRAINING, DRAINING, DRAINING, GONE]
    elbv2.on_deregister[(arn("b-tg"), I1, 8080)] = [DRAINING, GONE]
    elb.set("web-clb", I1, [IN_SERVICE])
    elb.on_deregister[("web-clb", I1)] = [IN_SERVICE, OUT]
    lbs, clock = balancers(elbv2, elb, groups=("a-tg", "b-tg"), classic=("web-clb",))
    result = lbs.block(I1)
    assert result["waited"] == 4          # the longest drain, not the sum
    assert len(clock.sleeps) == 3
    assert elb.count("deregister") == 1
    assert result["classic_elbs"]["web-clb"]["state"] == "OutOfService"
    assert set(result["target_groups"]) == {"a-tg", "b-tg"}


def test_block_tolerates_throttling_while_polling():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    elbv2.on_deregister[(arn("web-tg"), I1, 8080)] = [GONE]
    lbs, _clock = balancers(elbv2)
    original = elbv2.describe_target_health
    state = {"calls": 0}

    def flaky(**kwargs):
        state["calls"] += 1
        if state["calls"] in (2, 3):   # the two first polls after deregistering
            raise client_error("Throttling", "Rate exceeded")
        return original(**kwargs)

    elbv2.describe_target_health = flaky
    result = lbs.block(I1)
    assert result["waited"] == 3


def test_block_maps_access_denied_to_elastic_load_balancing_invalid():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    elbv2.failures["deregister_targets"] = [client_error("AccessDenied", "not authorized to perform elasticloadbalancing:DeregisterTargets")]
    lbs, _clock = balancers(elbv2)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.block(I1)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "Could not deregister %s from target group web-tg" % I1 in caught.value.message
    assert "AccessDenied" in caught.value.message and "permissions" in caught.value.message
    assert "Traceback" not in caught.value.message


def test_block_retries_a_throttled_deregistration():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    elbv2.failures["deregister_targets"] = [client_error("Throttling"), client_error("Throttling")]
    lbs, clock = balancers(elbv2)
    result = lbs.block(I1)
    assert elbv2.count("deregister_targets") == 3
    assert clock.sleeps[:2] == [2.0, 4.0]  # backoff
    assert result["changed"] is True


# ----------------------------------------------------------------------------------------------
# AllowTraffic
# ----------------------------------------------------------------------------------------------
def test_allow_registers_and_waits_through_initial():
    elbv2 = FakeElbv2()
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = [INITIAL, INITIAL, HEALTHY]
    lbs, clock = balancers(elbv2)
    result = lbs.allow(I1, timeout=60)
    assert ("register_targets", arn("web-tg"), ((I1, 8080),)) in elbv2.calls
    assert result["changed"] is True
    assert result["waited"] == 3
    assert clock.sleeps == [2.0, 2.0]
    assert result["target_groups"]["web-tg"]["state"] == "healthy"
    assert result["warnings"] == []


def test_allow_keeps_waiting_on_unhealthy_until_it_turns_healthy():
    elbv2 = FakeElbv2()
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = [INITIAL, UNHEALTHY, UNHEALTHY, HEALTHY]
    lbs, _clock = balancers(elbv2)
    assert lbs.allow(I1)["waited"] == 4


def test_allow_times_out_on_unhealthy_naming_the_group_state_reason_and_health_check():
    elbv2 = FakeElbv2()
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = [INITIAL, UNHEALTHY]
    lbs, clock = balancers(elbv2, poll=10)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.allow(I1, timeout=45)
    error = caught.value
    assert error.code == "TIMEOUT"
    assert (error.state, error.reason, error.load_balancer) == ("unhealthy", "Target.ResponseCodeMismatch", "web-tg")
    for part in ("AllowTraffic timed out after 45 s on %s" % I1, "target group web-tg reports unhealthy",
                 "Target.ResponseCodeMismatch: Health checks failed with these codes: [502]",
                 "health check HTTP port traffic-port path /health", "raise the traffic timeout"):
        assert part in error.message
    assert clock.now - 1000.0 == 45.0


def test_allow_of_a_healthy_instance_changes_nothing():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [HEALTHY])
    lbs, clock = balancers(elbv2)
    result = lbs.allow(I1)
    assert result["changed"] is False
    assert elbv2.count("register_targets") == 0
    assert result["waited"] == 1
    assert clock.sleeps == []


def test_allow_re_registers_a_draining_instance():
    elbv2 = FakeElbv2()
    elbv2.set("web-tg", I1, [DRAINING])
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = [INITIAL, HEALTHY]
    lbs, _clock = balancers(elbv2)
    result = lbs.allow(I1)
    assert elbv2.count("register_targets") == 1
    assert result["changed"] is True


def test_allow_fails_at_once_for_a_stopped_instance():
    elbv2 = FakeElbv2()
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = [STOPPED]
    lbs, clock = balancers(elbv2)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.allow(I1, timeout=600)
    assert caught.value.code == "ELB_INVALID_INSTANCE"
    assert "Target.InvalidState" in caught.value.message and "web-tg" in caught.value.message
    assert clock.sleeps == []


def test_allow_maps_a_refused_registration_to_elb_invalid_instance():
    elbv2 = FakeElbv2()
    elbv2.failures["register_targets"] = [client_error("InvalidTarget", "The following targets are not in a running state")]
    lbs, _clock = balancers(elbv2)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.allow(I1)
    assert caught.value.code == "ELB_INVALID_INSTANCE"
    assert caught.value.load_balancer == "web-tg"
    assert I1 in caught.value.message and "InvalidTarget" in caught.value.message


@pytest.mark.parametrize("script, warned", [
    ([NOT_IN_USE], True),
    ([("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")], False),
])
def test_allow_counts_no_health_checks_and_unused_groups_as_healthy(script, warned):
    elbv2 = FakeElbv2()
    elbv2.on_register[(arn("web-tg"), I1, 8080)] = script
    lbs, _clock = balancers(elbv2)
    result = lbs.allow(I1)
    assert result["waited"] == 1
    assert bool(result["warnings"]) is warned
    if warned:
        assert "web-tg routes no traffic" in result["warnings"][0]


def test_allow_uses_the_port_given_for_a_target_group():
    elbv2 = FakeElbv2()
    lbs, _clock = balancers(elbv2, groups=[{"name": "web-tg", "port": 9000}])
    result = lbs.allow(I1)
    assert ("register_targets", arn("web-tg"), ((I1, 9000),)) in elbv2.calls
    assert result["target_groups"]["web-tg"]["port"] == 9000


def test_allow_on_classic_waits_through_unknown_and_out_of_service():
    elb = FakeElb()
    elb.on_register[("web-clb", I1)] = [REGISTERING, OUT, IN_SERVICE]
    lbs, _clock = balancers(elb=elb, groups=(), classic=("web-clb",))
    result = lbs.allow(I1)
    assert elb.count("register") == 1
    assert result["waited"] == 3
    assert result["classic_elbs"]["web-clb"]["state"] == "InService"


def test_allow_on_classic_times_out_with_the_load_balancer_named():
    elb = FakeElb()
    elb.on_register[("web-clb", I1)] = [OUT]
    lbs, _clock = balancers(elb=elb, groups=(), classic=("web-clb",))
    with pytest.raises(tr.TrafficError) as caught:
        lbs.allow(I1, timeout=10)
    assert caught.value.code == "TIMEOUT"
    assert "classic load balancer web-clb reports OutOfService" in caught.value.message


def test_connection_errors_while_registering_are_retried_then_reported():
    elbv2 = FakeElbv2()
    elbv2.failures["register_targets"] = [EndpointConnectionError(endpoint_url="http://127.0.0.1:1")] * 10
    lbs, _clock = balancers(elbv2)
    with pytest.raises(tr.TrafficError) as caught:
        lbs.allow(I1)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "could not be reached" in caught.value.message
    assert elbv2.count("register_targets") == 5


# ----------------------------------------------------------------------------------------------
# Resolution and members
# ----------------------------------------------------------------------------------------------
def test_target_groups_are_resolved_once_by_name_and_by_arn():
    elbv2 = FakeElbv2(groups=("a-tg", "b-tg", "c-tg"), page_size=1)
    lbs, _clock = balancers(elbv2, groups=("a-tg", arn("b-tg"), {"name": "c-tg", "port": 81}))
    lbs.allow(I1)
    lbs.block(I1)
    lbs.allow(I2)
    names = [c for c in elbv2.calls if c[0] == "describe_target_groups"]
    assert names == [("describe_target_groups", ("a-tg", "c-tg"), None), ("describe_target_groups", ("a-tg", "c-tg"), "1"),
                     ("describe_target_groups", (arn("b-tg"),), None)]
    groups = lbs.resolve()
    assert [(g["name"], g["port"]) for g in groups] == [("a-tg", 8080), ("b-tg", 8080), ("c-tg", 81)]


@pytest.mark.parametrize("groups, classic, needle", [
    (("web-tg", "nope-tg"), (), "Target group nope-tg does not exist"),
    ((arn("nope-tg"),), (), "Target group %s does not exist" % arn("nope-tg")),
    (("web-tg",), ("nope-clb",), "Classic load balancer nope-clb does not exist"),
    (("",), (), "names no target group"),
    (({"name": "web-tg", "port": "http"},), (), "is not a port number"),
    (("arn-like-name",), (), "Target group arn-like-name does not exist"),
])
def test_missing_or_invalid_load_balancers_fail_before_touching_the_instance(groups, classic, needle):
    elbv2 = FakeElbv2()
    elb = FakeElb()
    with pytest.raises(tr.TrafficError) as caught:
        lbs, _clock = balancers(elbv2, elb, groups=groups, classic=classic)
        lbs.block(I1)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert needle in caught.value.message
    assert elbv2.count("deregister_targets") == 0 and elb.count("deregister") == 0


def test_target_groups_of_another_target_type_are_refused():
    lbs, _clock = balancers(FakeElbv2(target_type="ip"))
    with pytest.raises(tr.TrafficError) as caught:
        lbs.resolve()
    assert "target type ip" in caught.value.message


@pytest.mark.parametrize("kwargs, needle", [
    ({"target_groups": ("web-tg",)}, "no elbv2 client"),
    ({"classic_elbs": ("web-clb",)}, "no elb client"),
])
def test_missing_clients_are_reported(kwargs, needle):
    with pytest.raises(tr.TrafficError) as caught:
        tr.LoadBalancers(**kwargs).resolve()
    assert needle in caught.value.message


def test_members_reads_each_load_balancer_once():
    elbv2 = FakeElbv2(groups=("a-tg", "b-tg"))
    elb = FakeElb()
    elbv2.set("a-tg", I1, [HEALTHY])
    elbv2.set("b-tg", I1, [DRAINING])
    elbv2.set("a-tg", I2, [UNHEALTHY])
    elb.set("web-clb", I2, [IN_SERVICE])
    lbs, _clock = balancers(elbv2, elb, groups=("a-tg", "b-tg"), classic=("web-clb",))
    members = lbs.members([I1, I2, "i-00000000000000000"])
    assert members[I1] == {"target_groups": {"a-tg": "healthy", "b-tg": "draining"}, "classic_elbs": {"web-clb": "OutOfService"}}
    assert members[I2] == {"target_groups": {"a-tg": "unhealthy", "b-tg": "unused"}, "classic_elbs": {"web-clb": "InService"}}
    assert tr.out_of_service(members["i-00000000000000000"]) is True
    assert tr.out_of_service(members[I1]) is False
    assert elbv2.count("describe_target_health") == 2 and elb.count("describe_instance_health") == 1


def test_no_load_balancers_is_a_no_op():
    lbs, clock = balancers(groups=())
    for action in (lbs.block, lbs.allow):
        result = action(I1)
        assert result["changed"] is False and result["waited"] == 0
        assert result["target_groups"] == {} and result["classic_elbs"] == {}
    assert clock.sleeps == []
