"""Weighted traffic shifting (plugins/module_utils/shift.py) against a scripted ELB and a scripted HAProxy, with a fake clock.

The real ones are exercised by tests/integration/test_traffic_shift.py."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, shift
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import ClientError

BLUE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/1111"
GREEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/2222"
OTHER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-other/3333"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/aaaa/bbbb"
RULE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/aaaa/bbbb/cccc"


# ------------------------------------------------------------------ arithmetic
@pytest.mark.parametrize("percent, blue, green, weights", [
    (0, 1, 1, (100, 0)), (100, 1, 1, (0, 100)), (0, 4, 2, (100, 0)),
    (10, 1, 1, (252, 28)), (90, 1, 1, (28, 252)), (50, 1, 1, (256, 256)),
    (10, 3, 1, (255, 85)), (50, 2, 4, (256, 128)), (20, 1, 4, (256, 16)),
])
def test_server_weights(percent, blue, green, weights):
    assert shift.server_weights(percent, blue, green) == weights


@pytest.mark.parametrize("percent", [0, 1, 2, 5, 10, 33, 50, 67, 90, 98, 99, 100])
@pytest.mark.parametrize("blue, green", [(1, 1), (2, 3), (5, 1), (1, 7), (10, 10)])
def test_server_weights_give_the_share(percent, blue, green):
    blue_weight, green_weight = shift.server_weights(percent, blue, green)
    assert 0 <= blue_weight <= haproxy.MAX_WEIGHT and 0 <= green_weight <= haproxy.MAX_WEIGHT
    share = shift.green_share([blue_weight] * blue, [green_weight] * green)
    if 0 < percent < 100:
        # No pair of weights HAProxy accepts does better (brute force over the green weight, best blue weight for each).
        best = min(abs(shift.green_share([wb] * blue, [wg] * green) - percent)
                   for wg in range(1, 257) for wb in range(1, 257))
        assert abs(share - percent) <= best + 1e-9
        assert best > 0.5 or abs(share - percent) < 0.5
    else:
        assert share == percent
    if 0 < percent < 100:
        assert blue_weight >= 1 and green_weight >= 1


@pytest.mark.parametrize("args", [(101, 1, 1), (-1, 1, 1), (10, 0, 1), (10, 1, 0), (True, 1, 1), (10.5, 1, 1)])
def test_server_weights_refuse(args):
    with pytest.raises(ValueError):
        shift.server_weights(*args)


def test_alb_weights_and_share():
    assert shift.alb_weights(0) == (100, 0)
    assert shift.alb_weights(35) == (65, 35)
    assert shift.green_share([65], [35]) == 35.0
    assert shift.green_share([0, 0], [0]) is None


@pytest.mark.parametrize("steps", [[], [(101, 0)], [(10, -1)], [(10,)], ["x"], [(10, True)]])
def test_check_steps_refuses(steps):
    with pytest.raises(ValueError):
        shift.check_steps(steps)


def test_forward_groups():
    assert shift.forward_groups({"Type": "forward", "TargetGroupArn": BLUE}) == {BLUE: 1}
    assert shift.forward_groups({"Type": "forward", "TargetGroupArn": BLUE, "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": BLUE, "Weight": 3}, {"TargetGroupArn": GREEN}]}}) == {BLUE: 3, GREEN: 1}
    assert shift.forward_groups({"Type": "fixed-response"}) == {}


# ------------------------------------------------------------------ ALB
def _client_error(code, message):
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


class FakeElbv2:
    def __init__(self, default_actions, rules=None):
        self.default_actions = default_actions
        self.rules = rules or {}
        self.calls = []

    def describe_target_groups(self, Names):
        found = [{"TargetGroupArn": arn, "TargetGroupName": shift._tg_name(arn)} for arn in (BLUE, GREEN, OTHER)  # pylint: disable=protected-access
                 if shift._tg_name(arn) in Names]  # pylint: disable=protected-access
        if not found:
            raise _client_error("TargetGroupNotFound", "One or more target groups not found")
        return {"TargetGroups": found}

    def describe_listeners(self, ListenerArns):
        if ListenerArns != [LISTENER]:
            raise _client_error("ListenerNotFound", "One or more listeners not found")
        return {"Listeners": [{"ListenerArn": LISTENER, "Port": 80, "DefaultActions": self.default_actions}]}

    def describe_rules(self, RuleArns):
        return {"Rules": [{"RuleArn": arn, "Actions": self.rules[arn]} for arn in RuleArns if arn in self.rules]}

    def modify_listener(self, ListenerArn, DefaultActions):
        self.calls.append(("modify_listener", ListenerArn, DefaultActions))
        self.default_actions = DefaultActions

    def modify_rule(self, RuleArn, Actions):
        self.calls.append(("modify_rule", RuleArn, Actions))
        self.rules[RuleArn] = Actions


def test_alb_default_action_weights_keep_other_actions_and_stickiness():
    auth = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {"Issuer": "https://id.example"}}
    forward = {"Type": "forward", "Order": 2, "TargetGroupArn": BLUE, "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": BLUE, "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}
    elbv2 = FakeElbv2([auth, forward])
    target = shift.AlbTarget(elbv2, LISTENER, "web-blue", "web-green")
    assert target.read_weights() == {BLUE: 1, GREEN: 0}
    result = target.set_weights(10)
    assert result == {"green_percent": 10, "weights": {BLUE: 90, GREEN: 10}, "share": 10.0, "changed": True}
    name, arn, actions = elbv2.calls[-1]
    assert (name, arn) == ("modify_listener", LISTENER)
    assert actions[0]["AuthenticateOidcConfig"] == {"Issuer": "https://id.example", "UseExistingClientSecret": True}
    assert actions[1] == {"Type": "forward", "Order": 2, "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": BLUE, "Weight": 90}, {"TargetGroupArn": GREEN, "Weight": 10}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}
    assert target.read_weights() == {BLUE: 90, GREEN: 10}
    assert target.set_weights(10)["changed"] is False and len(elbv2.calls) == 1
    target.set_weights(100)
    assert target.read_weights() == {BLUE: 0, GREEN: 100}


def test_alb_rules():
    elbv2 = FakeElbv2([{"Type": "fixed-response"}], {RULE: [{"Type": "forward", "TargetGroupArn": BLUE}]})
    target = shift.AlbTarget(elbv2, LISTENER, BLUE, GREEN, rule_arns=[RULE])
    target.set_weights(40)
    assert elbv2.calls[-1][0:2] == ("modify_rule", RULE)
    assert target.read_weights() == {BLUE: 60, GREEN: 40}
    assert elbv2.default_actions == [{"Type": "fixed-response"}]


@pytest.mark.parametrize("actions, rules, words", [
    ([{"Type": "forward", "TargetGroupArn": OTHER}], None, ["forward to web-other, not to the blue target group web-blue"]),
    ([{"Type": "fixed-response"}], None, ["do not forward to the blue target group web-blue", "fixed-response"]),
    ([{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": BLUE, "Weight": 5},
                                                             {"TargetGroupArn": OTHER, "Weight": 5}]}}], None,
     ["also forward to web-other besides the blue target group web-blue"]),
    ([{"Type": "forward", "TargetGroupArn": BLUE}], [RULE + "-missing"], ["was not found"]),
])
def test_alb_refuses(actions, rules, words):
    target = shift.AlbTarget(FakeElbv2(actions, {RULE: actions}), LISTENER, BLUE, GREEN, rule_arns=rules)
    with pytest.raises(shift.ShiftError) as caught:
        target.set_weights(10)
    assert caught.value.code == shift.ELASTIC_LOAD_BALANCING_INVALID
    for word in words:
        assert word in caught.value.message


def test_alb_api_errors_are_worded():
    target = shift.AlbTarget(FakeElbv2([]), LISTENER + "x", BLUE, GREEN)
    with pytest.raises(shift.ShiftError) as caught:
        target.read_weights()
    assert "ListenerNotFound: One or more listeners not found" in caught.value.message
    with pytest.raises(shift.ShiftError) as caught:
        shift.AlbTarget(FakeElbv2([]), LISTENER, "nope", GREEN).resolve()
    assert "find the blue target group nope" in caught.value.message
    with pytest.raises(shift.ShiftError) as caught:
        shift.AlbTarget(FakeElbv2([]), LISTENER, BLUE, BLUE).resolve()
    assert "both web-blue" in caught.value.message


# ------------------------------------------------------------------ HAProxy
HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,weight,chkfail"


class FakeRuntime:
    def __init__(self, weights, refuse=None):
        self.weights = dict(weights)
        self.sent = []
        self.refuse = refuse

    def send(self, text):
        self.sent.append(text)
        if text.startswith("show stat"):
            lines = [HEADER, "web,FRONTEND,,,0,0,,0,OPEN,,"]
            lines += ["web,%s,0,0,0,0,,0,UP,%d,0" % (server, weight) for server, weight in self.weights.items()]
            return "\n".join(lines) + "\n\n"
        if text.startswith("set weight"):
            if self.refuse:
                return self.refuse
            server, weight = text.split()[2].split("/")[1], int(text.split()[3])
            self.weights[server] = weight
            return "\n"
        raise AssertionError(text)


def _backend(runtime, servers=None):
    spec = {"backend": "web", "runtime_api": {"kind": "tcp", "address": "10.0.0.5", "port": 9999}, "servers": servers or {},
            "drain_timeout": 5, "up_timeout": 5}
    return haproxy.Backend(spec, runtime, lambda: 0.0)


def test_haproxy_weights():
    runtime = FakeRuntime({"b1": 1, "b2": 1, "b3": 1, "g1": 1})
    target = shift.HaproxyTarget(_backend(runtime, {"host-g1": "g1"}), ["b1", "b2", "b3"], ["host-g1"])
    result = target.set_weights(10)
    assert result["weights"] == {"b1": 255, "b2": 255, "b3": 255, "g1": 85} and result["share"] == 10.0 and result["changed"]
    assert "set weight web/g1 85" in runtime.sent
    assert target.read_weights() == {"b1": 255, "b2": 255, "b3": 255, "g1": 85}
    sent = len(runtime.sent)
    assert target.set_weights(10)["changed"] is False
    assert not [text for text in runtime.sent[sent:] if text.startswith("set weight")]
    assert target.set_weights(100)["weights"] == {"b1": 0, "b2": 0, "b3": 0, "g1": 100}
    assert target.set_weights(0)["weights"] == {"b1": 100, "b2": 100, "b3": 100, "g1": 0}


def test_haproxy_refusals():
    runtime = FakeRuntime({"b1": 1, "g1": 1}, refuse="Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n")
    with pytest.raises(shift.ShiftError) as caught:
        shift.HaproxyTarget(_backend(runtime), ["b1"], ["g1"]).set_weights(50)
    assert "static LB algorithm" in caught.value.message and "static-rr" in caught.value.message
    with pytest.raises(shift.ShiftError) as caught:
        shift.HaproxyTarget(_backend(FakeRuntime({"b1": 1})), ["b1"], ["g9"]).set_weights(50)
    assert "has no server g9" in caught.value.message
    with pytest.raises(shift.ShiftError) as caught:
        shift.HaproxyTarget(_backend(runtime), ["b1"], ["b1"])
    assert "both the blue and the green fleet" in caught.value.message
    with pytest.raises(shift.ShiftError) as caught:
        shift.HaproxyTarget(_backend(runtime), ["b1"], [])
    assert "the green fleet has no server" in caught.value.message


def test_weight_command():
    assert haproxy.weight_command("web", "srv-1", 0) == "set weight web/srv-1 0"
    for weight in (-1, 257, "5", True):
        with pytest.raises(ValueError):
            haproxy.weight_command("web", "srv", weight)
    with pytest.raises(haproxy.HaproxyError):
        haproxy.weight_command("web", "srv\nshutdown", 5)
    assert haproxy.weight_of({"weight": "12"}) == 12 and haproxy.weight_of({"weight": ""}) is None


# ------------------------------------------------------------------ the Shifter
class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingTarget:
    def __init__(self, label="fake", fail_at=None, fail_rollback=False):
        self.label = label
        self.history = []
        self.fail_at = fail_at
        self.fail_rollback = fail_rollback

    def set_weights(self, green_percent):
        if green_percent == self.fail_at or (green_percent == 0 and self.fail_rollback):
            raise shift.ShiftError("%s refused %d%%" % (self.label, green_percent), target=self.label)
        self.history.append(green_percent)
        return {"green_percent": green_percent, "weights": {"blue": 100 - green_percent, "green": green_percent},
                "share": float(green_percent), "changed": True}


def test_shifter_timeline_linear():
    clock = Clock()
    target = RecordingTarget()
    checks, records = [], []

    def check():
        checks.append(clock.now - 1000.0)

    steps = [(10, 60), (20, 60), (100, 0)]
    result = shift.Shifter([target], alarm_interval=25, sleep=clock.sleep, clock=clock).run(steps, check, records.append)
    assert result["status"] == shift.SUCCEEDED and result["code"] is None and result["green_percent"] == 100
    assert target.history == [10, 20, 100]
    assert [(event["step"], event["green_percent"], event["elapsed"]) for event in records] == [(1, 10, 0), (2, 20, 60), (3, 100, 120)]
    assert records[0]["weights"] == {"fake": target.set_weights(10)}
    assert checks == [0, 25, 50, 60, 85, 110, 120]
    assert clock.sleeps == [25, 25, 10, 25, 25, 10]
    assert result["duration"] == 120 and result["completed_steps"] == 3 and result["timeline"] == records


def test_shifter_all_at_once_without_alarms():
    clock = Clock()
    target = RecordingTarget()
    result = shift.Shifter(target, sleep=clock.sleep, clock=clock).run([(100, 0)])
    assert result["status"] == shift.SUCCEEDED and target.history == [100] and clock.sleeps == []


@pytest.mark.parametrize("answer, words", [
    (False, "an alarm is active"), ("web-5xx is in ALARM", "web-5xx is in ALARM"), ((False, "latency high"), "latency high"),
])
def test_shifter_rolls_back_on_alarm(answer, words):
    clock = Clock()
    targets = [RecordingTarget("alb"), RecordingTarget("haproxy")]

    def check():
        return answer if clock.now - 1000.0 >= 400 else (True, "")

    records = []
    result = shift.Shifter(targets, alarm_interval=60, sleep=clock.sleep, clock=clock).run(
        [(10, 300), (50, 300), (100, 0)], check, records.append)
    assert result["status"] == shift.ROLLED_BACK and result["code"] == shift.ALARM_ACTIVE
    assert result["green_percent"] == 0 and result["completed_steps"] == 2
    assert "Alarm at 50% green traffic (step 2 of 3): " + words in result["message"]
    assert "moved back to the blue fleet" in result["message"]
    for target in targets:
        assert target.history == [10, 50, 0]
    assert [event["event"] for event in records] == ["shift", "shift", "alarm", "rollback"]
    assert records[2]["elapsed"] == 420 and records[3]["reason"] == words and records[3]["ok"] is True


def test_shifter_alarm_before_the_first_step():
    clock = Clock()
    target = RecordingTarget()
    result = shift.Shifter(target, sleep=clock.sleep, clock=clock).run([(10, 60), (100, 0)], lambda: "already in ALARM")
    assert result["status"] == shift.ROLLED_BACK and result["completed_steps"] == 0 and target.history == [0]
    assert "Alarm at 0% green traffic (step 0 of 2): already in ALARM" in result["message"]


def test_shifter_alarm_and_failed_rollback():
    clock = Clock()
    target = RecordingTarget(fail_rollback=True)
    result = shift.Shifter(target, sleep=clock.sleep, clock=clock).run([(10, 60), (100, 0)],
                                                                       lambda: "boom" if clock.now > 1000 else None)
    assert result["status"] == shift.FAILED and result["code"] == shift.ALARM_ACTIVE and result["green_percent"] == 10
    assert "Moving traffic back to the blue fleet failed: fake refused 0%" in result["message"]


def test_shifter_target_failure_rolls_back_and_raises():
    clock = Clock()
    good, bad = RecordingTarget("good"), RecordingTarget("bad", fail_at=50)
    with pytest.raises(shift.ShiftError) as caught:
        shift.Shifter([good, bad], sleep=clock.sleep, clock=clock).run([(10, 60), (50, 60), (100, 0)])
    assert good.history == [10, 50, 0] and bad.history == [10, 0]
    assert caught.value.rollback == {"ok": True, "message": ""}
    assert caught.value.message == "bad refused 50% Traffic was moved back to the blue fleet."


def test_shifter_alarm_check_errors_roll_back_and_propagate():
    clock = Clock()
    target = RecordingTarget()

    def check():
        if clock.now > 1000:
            raise RuntimeError("CloudWatch unreachable")

    with pytest.raises(RuntimeError):
        shift.Shifter(target, sleep=clock.sleep, clock=clock).run([(10, 60), (100, 0)], check)
    assert target.history == [10, 0]


def test_shifter_refuses_bad_settings():
    with pytest.raises(ValueError):
        shift.Shifter([])
    with pytest.raises(ValueError):
        shift.Shifter(RecordingTarget(), alarm_interval=0)
