# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout.codedeploy.traffic_shift: argument handling (action plugin + module_utils/shift_task.py) and the run on fake targets."""

import pytest

from ansible_collections.rollout.codedeploy.plugins.action.traffic_shift import parse_arguments
from ansible_collections.rollout.codedeploy.plugins.module_utils import shift_task

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
ALB = {"listener_arn": LISTENER, "blue_target_group": "web-blue", "green_target_group": "web-green"}
HAP = {"haproxy_backend": "web", "runtime_api": "127.0.0.1:9999", "blue_servers": ["b1", "b2"], "green_servers": ["g1"]}


@pytest.mark.parametrize("args, steps", [
    (ALB, [(100, 0)]),
    (dict(ALB, deployment_config="CodeDeployDefault.AllAtOnce"), [(100, 0)]),
    (dict(ALB, deployment_config="Rollout.Canary10Percent5Minutes"), [(10, 300), (100, 0)]),
    (dict(ALB, deployment_config="Rollout.Canary10Percent5Minutes", interval_scale=0.01), [(10, 3.0), (100, 0)]),
    (dict(ALB, deployment_config="Rollout.Linear10PercentEvery1Minute", interval_scale=0),
     [(p, 0) for p in range(10, 101, 10)]),
    (dict(ALB, deployment_config={"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 30, "linear_interval": 2}}),
     [(30, 120), (60, 120), (90, 120), (100, 0)]),
    (dict(HAP, steps=[{"percent": 5, "wait_seconds": 2}, {"percent": 100}]), [(5, 2), (100, 0)]),
    (dict(HAP, direction="back", deployment_config="Rollout.Canary10Percent5Minutes"), [(0, 0)]),
])
def test_accepted_inputs_become_steps(args, steps):
    req, aws = parse_arguments(args)
    assert req["steps"] == steps
    assert aws == {}


def test_alb_and_haproxy_requests_carry_their_settings():
    req, aws = parse_arguments(dict(ALB, rule_arns=["default"], region="eu-west-1", secret_key="s3cr3t", access_key="AK"))
    assert req["kind"] == "alb" and req["alb"]["rule_arns"] == ["default"] and req["haproxy"] is None
    assert aws == {"region": "eu-west-1", "secret_key": "s3cr3t", "access_key": "AK"}
    req, aws = parse_arguments(dict(HAP, haproxy_servers={"b1": "srv-b1"}, alarms=["a1", "a1 "]))
    assert req["kind"] == "haproxy" and req["haproxy"]["spec"]["backend"] == "web"
    assert req["haproxy"]["spec"]["runtime_api"]["port"] == 9999 and req["haproxy"]["spec"]["servers"] == {"b1": "srv-b1"}
    assert req["alarms"] == ["a1", "a1"]


@pytest.mark.parametrize("args, field, words", [
    ({}, "listener_arn", "give listener_arn"),
    (dict(ALB, haproxy_backend="web"), "haproxy_backend", "not both"),
    (dict(ALB, listener_arn="web-listener"), "listener_arn", "listener's ARN"),
    (dict(ALB, green_target_group=None), "green_target_group", "name the target group"),
    (dict(ALB, green_target_group="web-blue"), "green_target_group", "different target groups"),
    (dict(ALB, blue_servers=["b1"]), "blue_servers", "is for haproxy_backend"),
    (dict(HAP, runtime_api=None), "runtime_api", "runtime API"),
    (dict(HAP, runtime_api="nowhere"), "runtime_api", "HOST:PORT"),
    (dict(HAP, green_servers=[]), "green_servers", "green fleet"),
    (dict(HAP, green_servers=["b1"]), "green_servers", "not both"),
    (dict(HAP, blue_target_group="x"), "blue_target_group", "is for listener_arn"),
    (dict(ALB, deployment_config="Rollout.Canary99Percent"), "deployment_config", "Unknown predefined traffic-shifting config"),
    (dict(ALB, deployment_config="CodeDeployDefault.LambdaCanary10Percent5Minutes"), "deployment_config", "Rollout."),
    (dict(ALB, deployment_config="Rollout.Canary10Percent5Minutes", steps=[{"percent": 100}]), "steps", "not both"),
    (dict(ALB, steps=[{"percent": 50}]), "steps", "must reach percent: 100"),
    (dict(ALB, steps=[{"percent": 60}, {"percent": 20}, {"percent": 100}]), "steps[1].percent", "direction: back"),
    (dict(ALB, steps=[{"percent": 101}]), "steps[0].percent", "0 to 100"),
    (dict(ALB, steps=[{"percent": 100, "wait_seconds": -1}]), "steps[0].wait_seconds", ">= 0"),
    (dict(ALB, interval_scale=-0.5), "interval_scale", ">= 0"),
    (dict(ALB, alarm_interval=0), "alarm_interval", "> 0"),
])
def test_refusals_name_the_field_the_value_and_the_fix(args, field, words):
    with pytest.raises(shift_task.RequestError) as caught:
        parse_arguments(args)
    assert caught.value.field == field
    assert "traffic_shift: %s=" % field in caught.value.message
    assert words in caught.value.message
    assert caught.value.code == "INVALID_INPUT"


@pytest.mark.parametrize("args, words", [
    (dict(ALB, direction="sideways"), "direction"),
    (dict(ALB, steps=[{"percent": 10, "bake": 3}]), "bake"),
    (dict(ALB, unknown_option=1), "unknown_option"),
    (dict(ALB, interval_scale="fast"), "interval_scale"),
])
def test_the_argument_spec_refuses_wrong_types_and_names(args, words):
    with pytest.raises(ValueError) as caught:
        parse_arguments(args)
    assert "rollout.codedeploy.traffic_shift" in str(caught.value) and words in str(caught.value)


class FakeTarget:
    def __init__(self, label="lb"):
        self.label = label
        self.green = 0
        self.calls = []

    def set_weights(self, percent):
        changed = percent != self.green
        self.green = percent
        self.calls.append(percent)
        return {"green_percent": percent, "weights": {"blue": 100 - percent, "green": percent}, "share": float(percent),
                "changed": changed}

    def read_weights(self):
        return {"blue": 100 - self.green, "green": self.green}


class Clock:
    def __init__(self):
        self.now = 1764515045.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_forward_reports_each_step_with_weights_and_iso_time():
    req, _aws = parse_arguments(dict(ALB, deployment_config="Rollout.Canary10Percent5Minutes"))
    clock, target = Clock(), FakeTarget()
    result = shift_task.run_forward([target], req, sleep=clock.sleep, clock=clock)
    assert result["status"] == "Succeeded" and result["changed"] and "failed" not in result
    assert [(s["green_percent"], s["weights"]["lb"], s["at"]) for s in result["steps"]] == [
        (10, {"blue": 90, "green": 10}, "2025-11-30T15:04:05.000Z"),
        (100, {"blue": 0, "green": 100}, "2025-11-30T15:09:05.000Z")]


def test_an_alarm_sends_traffic_back_and_fails_naming_it():
    req, _aws = parse_arguments(dict(ALB, deployment_config="Rollout.Linear10PercentEvery1Minute", alarms=["web-5xx"]))
    clock, target = Clock(), FakeTarget()
    start = clock.now
    result = shift_task.run_forward([target], req, sleep=clock.sleep, clock=clock,
                                    check_alarms=lambda: (False, "Alarm in ALARM: web-5xx") if clock.now - start >= 90 else (True, ""))
    assert result["failed"] and result["error_code"] == "ALARM_ACTIVE" and "web-5xx" in result["msg"]
    assert target.calls == [10, 20, 0] and result["green_percent"] == 0
    assert [s["event"] for s in result["steps"]] == ["shift", "shift", "alarm", "rollback"]


def test_check_mode_reads_but_does_not_change_and_back_goes_to_blue():
    req, _aws = parse_arguments(dict(HAP, deployment_config="Rollout.Canary10Percent5Minutes"))
    target = FakeTarget()
    target.green = 30
    shown = shift_task.preview([target], req)
    assert not shown["changed"] and target.calls == [] and shown["current_weights"] == {"lb": {"blue": 70, "green": 30}}
    assert shown["planned_steps"] == [{"green_percent": 10, "wait_seconds": 300}, {"green_percent": 100, "wait_seconds": 0}]
    back = shift_task.run_back([target])
    assert back["changed"] and target.calls == [0] and back["current_weights"] == {"lb": {"blue": 100, "green": 0}}
    assert shift_task.run_back([target])["changed"] is False
