# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/alarms.py: CodeDeploy's alarm gate rules (with a scripted CloudWatch)."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.rollout.codedeploy.plugins.module_utils import alarms as al


class FakeCloudWatch:
    """describe_alarms over a fixed set of alarms, ``page_size`` alarms per page; ``failure`` is raised when set."""

    def __init__(self, metric=None, composite=None, page_size=None, failure=None):
        self.metric = dict(metric or {})        # name -> state or (state, reason)
        self.composite = dict(composite or {})
        self.page_size = page_size
        self.failure = failure
        self.calls = []

    @staticmethod
    def _alarm(name, value):
        state, reason = value if isinstance(value, tuple) else (value, "reason of %s" % name)
        return {"AlarmName": name, "StateValue": state, "StateReason": reason}

    def describe_alarms(self, AlarmNames, AlarmTypes=None, NextToken=None):
        self.calls.append((tuple(AlarmNames), tuple(AlarmTypes or ()), NextToken))
        if self.failure is not None:
            raise self.failure
        found = [("MetricAlarms", self._alarm(n, self.metric[n])) for n in AlarmNames if n in self.metric]
        found += [("CompositeAlarms", self._alarm(n, self.composite[n])) for n in AlarmNames if n in self.composite]
        start = int(NextToken or 0)
        size = self.page_size or len(found) or 1
        page = found[start:start + size]
        answer = {"MetricAlarms": [a for k, a in page if k == "MetricAlarms"],
                  "CompositeAlarms": [a for k, a in page if k == "CompositeAlarms"]}
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        return answer


DENIED = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform cloudwatch:DescribeAlarms"}},
                     "DescribeAlarms")


@pytest.mark.parametrize("metric, composite, names, ignore, expected", [
    # (ok, alarming, missing, error?, error_code)
    ({"a": "OK"}, {}, ["a"], False, (True, [], [], False, None)),
    ({"a": "INSUFFICIENT_DATA"}, {}, ["a"], False, (True, [], [], False, None)),
    ({"a": "OK", "b": "ALARM"}, {}, ["a", "b"], False, (False, ["b"], [], False, "ALARM_ACTIVE")),
    ({"a": "ALARM", "b": "ALARM"}, {}, ["a", "b"], True, (False, ["a", "b"], [], False, "ALARM_ACTIVE")),
    ({"a": "OK"}, {"c": "ALARM"}, ["a", "c"], False, (False, ["c"], [], False, "ALARM_ACTIVE")),
    ({"a": "OK"}, {}, ["a", "gone"], False, (False, [], ["gone"], True, "ALARM_ACTIVE")),
    ({"a": "OK"}, {}, ["a", "gone"], True, (True, [], ["gone"], True, None)),
    ({"a": "ALARM"}, {}, ["a", "gone"], True, (False, ["a"], ["gone"], False, "ALARM_ACTIVE")),  # ALARM wins over ignore
    ({}, {}, [], False, (True, [], [], False, None)),
])
def test_check_alarms_rules(metric, composite, names, ignore, expected):
    result = al.check_alarms(FakeCloudWatch(metric, composite), names, ignore_poll_alarm_failure=ignore)
    assert (result.ok, result.alarming, result.missing, result.error is not None, result.error_code) == expected
    assert result.message


def test_an_alarm_in_alarm_is_named_with_its_reason():
    cloudwatch = FakeCloudWatch({"web-5xx": ("ALARM", "Threshold Crossed: 1 datapoint [7.0] was greater than 5.0")})
    result = al.check_alarms(cloudwatch, ["web-5xx"])
    assert "Alarm in ALARM: web-5xx (Threshold Crossed: 1 datapoint [7.0] was greater than 5.0)" in result.message
    assert "ALARM_ACTIVE" in result.message


def test_both_alarm_kinds_are_asked_for_in_one_call():
    cloudwatch = FakeCloudWatch({"a": "OK"}, {"c": "OK"})
    assert al.check_alarms(cloudwatch, ["a", "c"]).ok
    assert cloudwatch.calls == [(("a", "c"), ("MetricAlarm", "CompositeAlarm"), None)]


def test_no_alarms_means_no_call():
    cloudwatch = FakeCloudWatch()
    assert al.check_alarms(cloudwatch, []).ok
    assert al.check_alarms(cloudwatch, None).ok
    assert cloudwatch.calls == []


@pytest.mark.parametrize("failure, needle", [
    (DENIED, "AccessDenied: not authorized"),
    (EndpointConnectionError(endpoint_url="http://10.213.0.1:1"), "cannot connect (Could not connect to the endpoint URL"),
    (ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeAlarms"), "Throttling"),
])
def test_a_failed_poll_stops_unless_ignored(failure, needle):
    stop = al.check_alarms(FakeCloudWatch(failure=failure), ["a", "b"])
    assert (stop.ok, stop.error_code) == (False, "ALARM_ACTIVE")
    assert needle in stop.error and "a, b" in stop.error
    assert "could not be polled" in stop.message and "ignore_poll_alarm_failure" in stop.message
    go_on = al.check_alarms(FakeCloudWatch(failure=failure), ["a", "b"], ignore_poll_alarm_failure=True)
    assert (go_on.ok, go_on.error_code, go_on.error) == (True, None, stop.error)
    assert "goes on" in go_on.message


def test_a_missing_alarm_is_a_poll_failure_with_its_name():
    result = al.check_alarms(FakeCloudWatch({"a": "OK"}), ["a", "typo-alarm"])
    assert "CloudWatch does not know the alarm typo-alarm" in result.error
    assert result.missing == ["typo-alarm"]


def test_pages_and_chunks_of_a_hundred_names():
    names = ["alarm-%03d" % i for i in range(150)]
    cloudwatch = FakeCloudWatch(dict((n, "OK") for n in names), page_size=40)
    cloudwatch.metric["alarm-149"] = "ALARM"
    result = al.check_alarms(cloudwatch, names)
    assert result.alarming == ["alarm-149"]
    assert [len(c[0]) for c in cloudwatch.calls] == [100, 100, 100, 50, 50]
    assert [c[2] for c in cloudwatch.calls] == [None, "40", "80", None, "40"]


@pytest.mark.parametrize("given, expected", [
    (["a", "b", "a"], ["a", "b"]),
    ([{"name": "a"}, {"Name": "b"}, " c "], ["a", "b", "c"]),
    (["", None, {"name": ""}], []),
    (None, []),
])
def test_alarm_names(given, expected):
    assert al.alarm_names(given) == expected


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Sequenced(FakeCloudWatch):
    """An alarm whose state follows a script, one step per call."""

    def __init__(self, states):
        super().__init__({"a": states[0]})
        self.states = list(states)

    def describe_alarms(self, AlarmNames, AlarmTypes=None, NextToken=None):
        self.metric["a"] = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return super().describe_alarms(AlarmNames, AlarmTypes, NextToken)


@pytest.mark.parametrize("states, seconds, checks, ok", [
    (["OK"], 0, 1, True),
    (["OK"], 30, 4, True),              # t = 0, 10, 20, 30
    (["OK"], 25, 4, True),              # t = 0, 10, 20, 25
    (["OK", "OK", "ALARM", "OK"], 60, 3, False),
    (["ALARM"], 60, 1, False),
])
def test_watch_alarms_during_a_bake(states, seconds, checks, ok):
    clock = Clock()
    cloudwatch = Sequenced(states)
    result = al.watch_alarms(cloudwatch, ["a"], seconds, interval=10, sleep=clock.sleep, clock=clock)
    assert result.ok is ok
    assert len(cloudwatch.calls) == checks
    assert clock.now <= seconds
