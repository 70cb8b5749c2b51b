# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alarm gates (plugins/module_utils/alarms.py) against the moto server's CloudWatch.

moto does not evaluate metrics, so the alarms are driven with set_alarm_state, as the design says.
"""
import boto3
import pytest
from botocore.config import Config

from ansible_collections.rollout.codedeploy.plugins.module_utils import alarms as al

pytestmark = [pytest.mark.aws]


def alarm(cloudwatch, name, state="OK"):
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5,
                                ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test: %s" % state)
    return name


@pytest.fixture
def cloudwatch(aws, world):
    assert aws  # a fresh moto
    return world.moto.client("cloudwatch")


def test_an_alarm_in_alarm_stops_and_ok_goes_on(cloudwatch):
    alarm(cloudwatch, "web-5xx")
    alarm(cloudwatch, "web-latency", "INSUFFICIENT_DATA")
    names = ["web-5xx", "web-latency"]
    assert al.check_alarms(cloudwatch, names).ok

    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="Threshold Crossed: 9 > 5")
    stop = al.check_alarms(cloudwatch, names)
    assert (stop.ok, stop.alarming, stop.error_code) == (False, ["web-5xx"], "ALARM_ACTIVE")
    assert "web-5xx (Threshold Crossed: 9 > 5)" in stop.message
    assert al.check_alarms(cloudwatch, names, ignore_poll_alarm_failure=True).ok is False

    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="OK", StateReason="recovered")
    assert al.check_alarms(cloudwatch, names).ok


def test_a_missing_alarm_stops_unless_poll_failures_are_ignored(cloudwatch):
    alarm(cloudwatch, "web-5xx")
    stop = al.check_alarms(cloudwatch, ["web-5xx", "web-5xx-typo"])
    assert (stop.ok, stop.missing, stop.error_code) == (False, ["web-5xx-typo"], "ALARM_ACTIVE")
    go_on = al.check_alarms(cloudwatch, ["web-5xx", "web-5xx-typo"], ignore_poll_alarm_failure=True)
    assert (go_on.ok, go_on.missing, go_on.error_code) == (True, ["web-5xx-typo"], None)
    assert "web-5xx-typo" in go_on.error


def test_an_unreachable_cloudwatch_is_a_poll_failure(aws):
    assert aws
    unreachable = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                               aws_access_key_id="testing", aws_secret_access_key="testing",
                               config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=2))
    stop = al.check_alarms(unreachable, ["web-5xx"])
    assert (stop.ok, stop.error_code) == (False, "ALARM_ACTIVE")
    assert "Could not read the state of the alarms web-5xx" in stop.error
    assert al.check_alarms(unreachable, ["web-5xx"], ignore_poll_alarm_failure=True).ok


def test_an_alarm_firing_during_a_bake_stops_it(cloudwatch):
    alarm(cloudwatch, "web-5xx")
    clock = {"now": 0.0, "checks": 0}

    def sleep(seconds):   # the bake's pause: time moves on and, on the second pause, the alarm fires
        clock["now"] += seconds
        clock["checks"] += 1
        if clock["checks"] == 2:
            cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="fired during the bake")

    result = al.watch_alarms(cloudwatch, ["web-5xx"], 600, interval=60, sleep=sleep, clock=lambda: clock["now"])
    assert (result.ok, result.alarming) == (False, ["web-5xx"])
    assert clock["now"] == 120.0
