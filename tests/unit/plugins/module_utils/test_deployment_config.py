# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/deployment_config.py (the deployment-configuration arithmetic)."""

import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as dc

HALF = dc.HALF_AT_A_TIME
ONE = dc.ONE_AT_A_TIME
ALL = dc.ALL_AT_ONCE


def expand_serial(serial, host_count):
    """The batch sizes Ansible cuts from an int ``serial`` list for ``host_count`` hosts (the last item repeats)."""
    sizes, left, index = [], host_count, 0
    while left > 0:
        step = max(1, min(serial[min(index, len(serial) - 1)] if serial else left, left))
        sizes.append(step)
        left -= step
        index += 1
    return sizes


def count(value):
    return {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": value}}


def percent(value):
    return {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": value}}


def names(size, prefix="h"):
    return ["%s%d" % (prefix, index) for index in range(size)]


def run(config, hosts, fail=(), current_revision=None):
    """Run a whole rollout with dynamic rules; hosts in ``fail`` fail. Returns (rollout, batches)."""
    plan = dc.plan_deployment(config, hosts, current_revision=current_revision)
    rollout = dc.Rollout(plan)
    batches = []
    while True:
        batch = rollout.next_batch()
        if not batch:
            break
        batches.append(batch)
        rollout.record([name for name in batch if name not in fail])
    return rollout, batches


# ----------------------------------------------------------------------------------------------
# Minimum healthy hosts and the worked examples of docs/codedeploy-rules.md §1
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, fleet, minimum", [
    (HALF, 9, 5),
    (HALF, 10, 5),
    (HALF, 1, 1),
    (HALF, 2, 1),
    (ONE, 9, 8),
    (ONE, 1, 0),
    (ONE, 0, 0),
    (None, 4, 3),
    (ALL, 9, 0),
    (ALL, 1, 0),
    (count(6), 9, 6),
    (count(0), 9, 0),
    (count(12), 9, 12),
    (percent(40), 9, 4),
    (percent(95), 10, 10),
    (percent(1), 1000, 10),
    (percent(1), 1001, 11),
    (percent(99), 1000, 990),
    (percent(0), 7, 0),
    (percent(50), 3, 2),
])
def test_minimum_healthy(config, fleet, minimum):
    assert dc.minimum_healthy(config, fleet) == minimum


@pytest.mark.parametrize("config, fleet, minimum, batch_sizes, serial", [
    # 9 hosts HalfAtATime: 4 at a time, needs >= 5
    (HALF, 9, 5, [4, 4, 1], [4]),
    # HOST_COUNT 6 of 9: 3 at a time, needs 6
    (count(6), 9, 6, [3, 3, 3], [3]),
    # FLEET_PERCENT 40 of 9: minimum 4, 5 at a time
    (percent(40), 9, 4, [5, 4], [5]),
    (ONE, 4, 3, [1, 1, 1, 1], [1]),
    (ONE, 1, 0, [1], [1]),
    (ALL, 6, 0, [6], [6]),
    (HALF, 2, 1, [1, 1], [1]),
    (count(2), 7, 2, [5, 2], [5]),
])
def test_static_plan_worked_examples(config, fleet, minimum, batch_sizes, serial):
    plan = dc.plan_deployment(config, names(fleet))
    assert plan.minimum == minimum
    assert plan.batch_sizes == batch_sizes
    assert plan.serial == serial
    assert expand_serial(plan.serial, fleet) == batch_sizes
    assert [name for batch in plan.batches for name in batch] == names(fleet)
    assert plan.required == max(minimum, 1)


@pytest.mark.parametrize("config, fleet, code, words", [
    (percent(95), 10, dc.HEALTH_CONSTRAINTS_INVALID, ["95% of 10 instances rounds up to 10", "FLEET_PERCENT 90 or less"]),
    (HALF, 1, dc.HEALTH_CONSTRAINTS_INVALID, ["50% of 1 instances rounds up to 1", "FLEET_PERCENT 0 or less", ONE]),
    (count(3), 3, dc.HEALTH_CONSTRAINTS_INVALID, ["needs at least 3 healthy instances", "has 3 instances", "HOST_COUNT 2 or less"]),
    (count(5), 3, dc.HEALTH_CONSTRAINTS_INVALID, ["HOST_COUNT 2 or less"]),
    (ONE, 0, dc.NO_INSTANCES, ["no instances"]),
])
def test_start_check_refuses(config, fleet, code, words):
    check = dc.check_start(config, fleet)
    assert not check.ok and check.error_code == code
    for word in words:
        assert word in check.message
    with pytest.raises(dc.HealthConstraintsInvalid) as caught:
        dc.plan_deployment(config, names(fleet))
    assert caught.value.code == code
    assert caught.value.to_dict()["code"] == code


@pytest.mark.parametrize("config, hosts", [
    # OneAtATime with a single instance: minimum 0, the instance may go
    (ONE, [{"name": "solo"}]),
    # ... even when its last deployment failed
    (ONE, [{"name": "solo", "healthy": False}]),
    # AllAtOnce on a fleet that failed everywhere last time: redeploying must be possible
    (ALL, [{"name": "a", "healthy": False}, {"name": "b", "healthy": False}]),
    # OneAtATime after a failure on one instance: healthy (2) == minimum (2), the failed one goes first
    (ONE, [{"name": "a"}, {"name": "b", "health": "Unhealthy"}, {"name": "c"}]),
    (count(6), [{"name": "h%d" % i, "healthy": i >= 4} for i in range(9)]),
])
def test_start_check_lets_unhealthy_fleets_be_repaired(config, hosts):
    plan = dc.plan_deployment(config, hosts)
    assert plan.start.ok
    first = plan.batches[0]
    assert all(plan.host_classes[name] == dc.UNHEALTHY for name in first) or plan.unhealthy == 0
    if plan.healthy <= plan.minimum:
        assert "go first" in plan.start.message


def test_repair_keeps_the_pace_of_the_config():
    hosts = [{"name": "h%d" % i, "healthy": i not in (2, 5, 7)} for i in range(9)]
    plan = dc.plan_deployment(ONE, hosts)
    assert plan.batch_sizes == [1] * 9
    assert plan.hosts[:3] == ["h2", "h5", "h7"]
    plan = dc.plan_deployment(ALL, [{"name": "h%d" % i, "healthy": i > 2} for i in range(10)])
    assert plan.batch_sizes == [10]
    plan = dc.plan_deployment(HALF, [{"name": "h%d" % i, "healthy": i > 1} for i in range(10)])
    assert plan.batch_sizes == [5, 5]


# ----------------------------------------------------------------------------------------------
# Dynamic rules
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("healthy, minimum, remaining, unhealthy, pace, expected", [
    (9, 5, 9, 0, None, 4),
    (9, 6, 9, 0, None, 3),
    (9, 4, 9, 0, None, 5),
    (8, 5, 5, 0, None, 3),
    (5, 5, 1, 0, None, 0),
    (4, 5, 3, 0, None, 0),
    (9, 5, 1, 0, None, 1),
    (9, 0, 9, 0, None, 9),
    (0, 0, 3, 3, None, 3),
    (2, 2, 3, 1, 1, 1),
    (6, 8, 9, 3, 1, 1),
    (7, 0, 10, 3, 10, 10),
    (8, 5, 10, 2, 5, 5),
    (5, 6, 9, 4, 3, 3),
    (3, 3, 0, 0, None, 0),
])
def test_next_batch_size(healthy, minimum, remaining, unhealthy, pace, expected):
    assert dc.next_batch_size(healthy, minimum, remaining, unhealthy, pace) == expected


@pytest.mark.parametrize("total, succeeded, failed, pending, minimum, status, size, words", [
    # OneAtATime on 9: first failure stops
    (9, 0, 1, 8, 8, dc.FAILED, 0, ["8 instances are healthy", "at least 8", "8 pending instances are skipped"]),
    # OneAtATime on 9: failure on the last instance still succeeds
    (9, 8, 1, 0, 8, dc.SUCCEEDED, 0, ["8 of 9 instances succeeded"]),
    # OneAtATime on 9: failure on the one before last stops
    (9, 7, 1, 1, 8, dc.FAILED, 0, ["HEALTH_CONSTRAINTS"]),
    # a single instance must succeed
    (1, 0, 1, 0, 0, dc.FAILED, 0, ["Only 0 of 1", "at least 1"]),
    (1, 1, 0, 0, 0, dc.SUCCEEDED, 0, []),
    # AllAtOnce succeeds if one succeeds, fails if none does
    (5, 1, 4, 0, 0, dc.SUCCEEDED, 0, []),
    (5, 0, 5, 0, 0, dc.FAILED, 0, ["Only 0 of 5"]),
    # HalfAtATime 9: one failure in the first batch -> 3 at a time
    (9, 3, 1, 5, 5, dc.IN_PROGRESS, 3, []),
    # HalfAtATime 9: the whole second batch failed, one left: taking it would go below 5
    (9, 4, 4, 1, 5, dc.FAILED, 0, ["5 instances are healthy", "at least 5"]),
    # HOST_COUNT 6 of 9: whole final batch failed, 6 succeeded -> success
    (9, 6, 3, 0, 6, dc.SUCCEEDED, 0, []),
    (9, 5, 4, 0, 6, dc.FAILED, 0, ["Only 5 of 9", "at least 6"]),
    # FLEET_PERCENT 40 of 9: all 5 of the first batch failed
    (9, 0, 5, 4, 4, dc.FAILED, 0, ["4 instances are healthy"]),
])
def test_evaluate(total, succeeded, failed, pending, minimum, status, size, words):
    verdict = dc.evaluate(total, succeeded, failed, pending, minimum, config_name="cfg")
    assert verdict.status == status
    assert verdict.proceed == (status == dc.IN_PROGRESS)
    assert verdict.next_batch_size == size
    assert verdict.error_code == (dc.HEALTH_CONSTRAINTS if status == dc.FAILED else None)
    for word in words:
        assert word in verdict.message
    json.dumps(verdict.to_dict())


def test_evaluate_unreachable_minimum_stops_early():
    # HOST_COUNT 6 of 9, 4 unhealthy: repairing; 4 failures leave 5 pending < 6 needed
    verdict = dc.evaluate(9, 0, 4, 5, 6, unhealthy_pending=0)
    assert verdict.status == dc.FAILED and "even if all 5 pending instances succeeded" in verdict.message
    # while unhealthy instances remain and the minimum is reachable, repair goes on one by one
    verdict = dc.evaluate(9, 0, 1, 8, 6, unhealthy_pending=3, pace=3)
    assert verdict.proceed and verdict.next_batch_size == 3


@pytest.mark.parametrize("args", [(5, 1, 1, 1, 0), (3, -1, 2, 2, 0)])
def test_evaluate_rejects_inconsistent_counts(args):
    with pytest.raises(ValueError):
        dc.evaluate(*args)


@pytest.mark.parametrize("config, fleet, fail, status, deployed", [
    (ONE, 5, {"h0"}, dc.FAILED, 1),
    (ONE, 5, {"h3"}, dc.FAILED, 4),
    (ONE, 5, {"h4"}, dc.SUCCEEDED, 5),
    (ONE, 5, set(), dc.SUCCEEDED, 5),
    (ONE, 1, {"h0"}, dc.FAILED, 1),
    (ONE, 1, set(), dc.SUCCEEDED, 1),
    (ONE, 2, {"h1"}, dc.SUCCEEDED, 2),
    (ONE, 2, {"h0"}, dc.FAILED, 1),
    (ALL, 5, {"h0", "h1", "h2", "h3"}, dc.SUCCEEDED, 5),
    (ALL, 5, set(names(5)), dc.FAILED, 5),
    (HALF, 9, {"h8"}, dc.SUCCEEDED, 9),
    (HALF, 9, {"h4", "h5", "h6", "h7"}, dc.FAILED, 8),
    (count(6), 9, {"h6", "h7", "h8"}, dc.SUCCEEDED, 9),
    (count(6), 9, {"h0", "h1", "h2"}, dc.FAILED, 3),
    (percent(40), 9, {"h0"}, dc.SUCCEEDED, 9),
    (percent(40), 9, {"h0", "h1", "h2", "h3", "h4"}, dc.FAILED, 5),
])
def test_rollout_outcomes(config, fleet, fail, status, deployed):
    rollout, batches = run(config, names(fleet), fail)
    assert rollout.verdict.status == status
    assert sum(len(batch) for batch in batches) == deployed
    assert rollout.verdict.pending == fleet - deployed


def test_half_at_a_time_shrinks_batches_after_a_failure():
    rollout, batches = run(HALF, names(9), {"h1"})
    assert [len(batch) for batch in batches] == [4, 3, 2]
    assert rollout.verdict.status == dc.SUCCEEDED


def test_record_guards():
    plan = dc.plan_deployment(HALF, names(9))
    rollout = dc.Rollout(plan)
    batch = rollout.next_batch()
    with pytest.raises(RuntimeError):
        rollout.next_batch()
    with pytest.raises(ValueError):
        rollout.record(["stranger"])
    rollout.record(batch[1:])
    assert rollout.next_batch() == ["h4", "h5", "h6"]


# ----------------------------------------------------------------------------------------------
# Ordering
# ----------------------------------------------------------------------------------------------
def test_order_unhealthy_unknown_old_current_and_stable():
    hosts = [
        {"name": "cur1", "revision": "r2"},
        {"name": "old1", "revision": "r1"},
        {"name": "unk1"},
        {"name": "bad1", "healthy": False, "revision": "r2"},
        {"name": "cur2", "revision": "r2"},
        "unk2",
        {"name": "bad2", "health": "Unhealthy"},
        {"name": "old2", "revision": "r0"},
        {"name": "unk3", "revision": ""},
        {"name": "forced", "state": "unhealthy", "revision": "r2"},
    ]
    ordered = ["bad1", "bad2", "forced", "unk1", "unk2", "unk3", "old1", "old2", "cur1", "cur2"]
    plan = dc.plan_deployment(ONE, hosts, current_revision="r2")
    assert plan.hosts == ordered
    assert plan.host_classes["old1"] == dc.OLD and plan.host_classes["cur2"] == dc.CURRENT


@pytest.mark.parametrize("record, current, klass", [
    ("web-1", None, dc.UNKNOWN),
    ({"name": "a", "revision": "x"}, None, dc.OLD),
    ({"name": "a", "revision": "x"}, "x", dc.CURRENT),
    ({"name": "a", "revision": None}, "x", dc.UNKNOWN),
    ({"name": "a", "healthy": True, "revision": "x"}, "y", dc.OLD),
    ({"name": "a", "state": "Current"}, None, dc.CURRENT),
    ({"inventory_hostname": "a", "healthy": False}, None, dc.UNHEALTHY),
])
def test_classify_host(record, current, klass):
    assert dc.classify_host(record, current) == klass


@pytest.mark.parametrize("hosts, words", [
    (["a", "b", "a"], ["a is listed twice"]),
    ([{"revision": "x"}], ["has no name"]),
    ([{"name": "a", "state": "sick"}], ["state 'sick'"]),
])
def test_bad_host_records(hosts, words):
    with pytest.raises(ValueError) as caught:
        dc.plan_deployment(ALL, hosts)
    for word in words:
        assert word in str(caught.value)


# ----------------------------------------------------------------------------------------------
# Resolution and validation
# ----------------------------------------------------------------------------------------------
CUSTOM = {
    "TwoAtATime": count(2),
    "ThreeQuarters": percent(75),
    "Zonal": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
              "zonal_config": {"monitor_duration_in_seconds": 60, "minimum_healthy_hosts_per_zone": {"type": "FLEET_PERCENT", "value": 50}}},
}


@pytest.mark.parametrize("given, name, kind, value, predefined", [
    (None, ONE, dc.MOST_CONCURRENCY, 1, True),
    ("", ONE, dc.MOST_CONCURRENCY, 1, True),
    (ONE, ONE, dc.MOST_CONCURRENCY, 1, True),
    (HALF, HALF, dc.FLEET_PERCENT, 50, True),
    (ALL, ALL, dc.HOST_COUNT, 0, True),
    ("TwoAtATime", "TwoAtATime", dc.HOST_COUNT, 2, False),
    ("ThreeQuarters", "ThreeQuarters", dc.FLEET_PERCENT, 75, False),
    ({"name": "Inline", "minimum_healthy_hosts": {"type": "host_count", "value": "3"}}, "Inline", dc.HOST_COUNT, 3, False),
    (count(0), "<inline>", dc.HOST_COUNT, 0, False),
    (percent(99), "<inline>", dc.FLEET_PERCENT, 99, False),
])
def test_resolve_config(given, name, kind, value, predefined):
    config = dc.resolve_config(given, CUSTOM)
    assert (config.name, config.type, config.value, config.predefined) == (name, kind, value, predefined)
    assert dc.resolve_config(config) is config
    json.dumps(config.to_dict())


def test_resolve_zonal_defaults():
    config = dc.resolve_config("Zonal", CUSTOM)
    assert config.zonal
    assert config.zonal_config.first_zone_monitor_duration_in_seconds == 60
    assert config.zonal_config.monitor_duration_in_seconds == 60
    assert config.zonal_config.minimum_healthy_hosts_per_zone == dc.MinimumHealthyHosts(dc.FLEET_PERCENT, 50)
    bare = dc.resolve_config({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 0}, "zonal_config": {"monitor_duration_in_seconds": 5}})
    assert bare.zonal_config.minimum_healthy_hosts_per_zone == dc.MinimumHealthyHosts(dc.FLEET_PERCENT, 0)
    empty = dc.resolve_config({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 0}, "zonal_config": {}})
    assert empty.zonal_config == dc.ZonalConfig(0, 0, dc.MinimumHealthyHosts(dc.FLEET_PERCENT, 0))
    assert dc.resolve_config({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 0}, "zonal_config": None}).zonal_config is None


@pytest.mark.parametrize("given, code, words", [
    (count(-1), dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["minimum_healthy_hosts.value is -1", "HOST_COUNT must be 0 or more", ">= 0"]),
    (percent(100), dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["minimum_healthy_hosts.value is 100", "between 0 and 99", "0..99"]),
    (percent(-5), dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["value is -5", "between 0 and 99"]),
    ({"minimum_healthy_hosts": {"type": "PERCENT", "value": 5}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE,
     ["minimum_healthy_hosts.type is 'PERCENT'", "HOST_COUNT", "FLEET_PERCENT"]),
    ({"minimum_healthy_hosts": {"type": "MOST_CONCURRENCY", "value": 1}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE,
     ["reserved for CodeDeployDefault.OneAtATime"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": "two"}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE,
     ["minimum_healthy_hosts.value is 'two'", "whole number"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": True}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["not a whole number"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT"}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["minimum_healthy_hosts.value is missing"]),
    ({"minimum_healthy_hosts": 3}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["must be a mapping"]),
    ({}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["has no minimum_healthy_hosts", "Add minimum_healthy_hosts"]),
    ({"minimumHealthyHosts": {"type": "HOST_COUNT", "value": 1}}, dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE,
     ["unknown key minimumHealthyHosts", "snake_case key minimum_healthy_hosts"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}, "zonal_config": {"monitor_duration_in_seconds": -1}},
     dc.INVALID_ZONAL_CONFIGURATION, ["zonal_config.monitor_duration_in_seconds is -1"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}, "zonal_config": {"bake": 5}},
     dc.INVALID_ZONAL_CONFIGURATION, ["unknown key zonal_config.bake", "monitor_duration_in_seconds"]),
    ({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
      "zonal_config": {"minimum_healthy_hosts_per_zone": {"type": "FLEET_PERCENT", "value": 100}}},
     dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE, ["zonal_config.minimum_healthy_hosts_per_zone.value is 100", "0..99"]),
    ({"compute_platform": "Lambda", "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}}, dc.INVALID_COMPUTE_PLATFORM,
     ["compute_platform is 'Lambda'", "Server"]),
    ({"traffic_routing_config": {"type": "TimeBasedCanary"}}, dc.INVALID_TRAFFIC_ROUTING_CONFIGURATION,
     ["traffic_routing_config.type is TimeBasedCanary but time_based_canary is missing"]),
    ("CodeDeployDefault.Fastest", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST,
     ["Unknown predefined deployment config CodeDeployDefault.Fastest", ALL, HALF, ONE]),
    ("CodeDeployDefault.HalfAtAtime", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST, ["Did you mean CodeDeployDefault.HalfAtATime?"]),
    ("AllAtOnce", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST, ["Did you mean CodeDeployDefault.AllAtOnce?"]),
    ("FourAtATime", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST,
     ["Unknown deployment config FourAtATime", "defined: ThreeQuarters, TwoAtATime, Zonal", "deployment_configs"]),
    ("CodeDeployDefault.LambdaCanary10Percent5Minutes", dc.INVALID_COMPUTE_PLATFORM, ["is a Lambda deployment configuration", "EC2/on-premises"]),
    ("CodeDeployDefault.LambdaAllAtOnce", dc.INVALID_COMPUTE_PLATFORM, ["Lambda"]),
    ("CodeDeployDefault.ECSCanary10Percent15Minutes", dc.INVALID_COMPUTE_PLATFORM, ["is an ECS deployment configuration"]),
    ("CodeDeployDefault.ECSAllAtOnce", dc.INVALID_COMPUTE_PLATFORM, ["ECS"]),
    (42, dc.INVALID_DEPLOYMENT_CONFIG_NAME, ["config name or a mapping"]),
])
def test_validation_errors(given, code, words):
    with pytest.raises(dc.DeploymentConfigError) as caught:
        dc.resolve_config(given, CUSTOM)
    assert caught.value.code == code
    for word in words:
        assert word in caught.value.message


def test_custom_names_may_not_take_predefined_names():
    with pytest.raises(dc.DeploymentConfigError) as caught:
        dc.resolve_config(ALL, {ALL: count(1)})
    assert "Rename the custom config" in caught.value.message
    with pytest.raises(dc.DeploymentConfigError):
        dc.resolve_config("CodeDeployDefault.Mine", {"CodeDeployDefault.Mine": count(1)})


def test_unknown_name_without_custom_configs_says_none_defined():
    with pytest.raises(dc.DeploymentConfigError) as caught:
        dc.resolve_config("TwoAtATime")
    assert "defined: none" in caught.value.message


# ----------------------------------------------------------------------------------------------
# Zonal plans
# ----------------------------------------------------------------------------------------------
def zonal(minimum, per_zone=None, monitor=None, first=None):
    spec = {"minimum_healthy_hosts": minimum["minimum_healthy_hosts"], "zonal_config": {}}
    if per_zone is not None:
        spec["zonal_config"]["minimum_healthy_hosts_per_zone"] = per_zone
    if monitor is not None:
        spec["zonal_config"]["monitor_duration_in_seconds"] = monitor
    if first is not None:
        spec["zonal_config"]["first_zone_monitor_duration_in_seconds"] = first
    return spec


def zoned_hosts(spec):
    """spec: {zone: size}; names are <zone-letter><index> given in a shuffled zone order."""
    hosts = []
    for zone in sorted(spec, reverse=True):
        for index in range(spec[zone]):
            hosts.append({"name": "%s%d" % (zone[-1] if zone else "x", index), "zone": zone})
    return hosts


@pytest.mark.parametrize("config, zones, zone_order, zone_minimums, batch_sizes, bakes", [
    # zones in sorted AZ order, bake after each zone but the last, first zone uses its own duration
    (zonal(count(0), monitor=60, first=600), {"us-east-1c": 2, "us-east-1a": 3, "us-east-1b": 1},
     ["us-east-1a", "us-east-1b", "us-east-1c"], [0, 0, 0], [3, 1, 2], [600, 60, 0]),
    # first zone defaults to the monitor duration
    (zonal(count(0), monitor=30), {"eu-west-1a": 2, "eu-west-1b": 2}, ["eu-west-1a", "eu-west-1b"], [0, 0], [2, 2], [30, 0]),
    # per-zone FLEET_PERCENT rounds up within the zone: 50% of 3 -> 2 (1 at a time), 50% of 4 -> 2 (2 at a time)
    (zonal(count(0), per_zone={"type": "FLEET_PERCENT", "value": 50}), {"a-1a": 3, "a-1b": 4},
     ["a-1a", "a-1b"], [2, 2], [1, 1, 1, 2, 2], [0, 0, 0, 0, 0]),
    # the fleet minimum still bounds batches inside a zone: HOST_COUNT 8 of 10 -> 2 at a time
    (zonal(count(8), per_zone={"type": "HOST_COUNT", "value": 1}), {"z-1a": 5, "z-1b": 5},
     ["z-1a", "z-1b"], [1, 1], [2, 2, 1, 2, 2, 1], [0, 0, 0, 0, 0, 0]),
    # hosts without a zone come last
    (zonal(count(0), monitor=10), {"z-1b": 1, "": 2, "z-1a": 1}, ["z-1a", "z-1b", None], [0, 0, 0], [1, 1, 2], [10, 10, 0]),
])
def test_zonal_plan(config, zones, zone_order, zone_minimums, batch_sizes, bakes):
    plan = dc.plan_deployment(config, zoned_hosts(zones))
    assert [zone.zone for zone in plan.zones] == zone_order
    assert [zone.minimum for zone in plan.zones] == zone_minimums
    assert plan.batch_sizes == batch_sizes
    assert plan.bake_after == bakes
    assert [zone.bake_seconds for zone in plan.zones] == [bake for bake in bakes if bake] + [0] * (len(zone_order) - len([b for b in bakes if b]))
    for zone in plan.zones:
        assert [name for batch in zone.batches for name in batch] == zone.hosts
        for batch in zone.batches:
            assert all(plan.host_classes[name] is not None for name in batch)
    assert expand_serial(plan.serial, plan.fleet_size) == plan.batch_sizes
    json.dumps(plan.to_dict())


def test_zonal_unhealthy_first_inside_each_zone():
    hosts = [
        {"name": "a1", "zone": "z-1a"}, {"name": "b1", "zone": "z-1b"},
        {"name": "a2", "zone": "z-1a", "healthy": False}, {"name": "b2", "zone": "z-1b", "healthy": False},
    ]
    plan = dc.plan_deployment(zonal(count(0)), hosts)
    assert plan.hosts == ["a2", "a1", "b2", "b1"]


def test_zonal_zones_holding_unhealthy_instances_go_first():
    # OneAtATime-like fleet minimum: with c-zone's broken instance the fleet sits at its minimum,
    # so the broken zone must be repaired before a healthy zone can be touched.
    hosts = [{"name": "a%d" % i, "zone": "z-1a"} for i in range(2)] + [{"name": "b0", "zone": "z-1b"}]
    hosts += [{"name": "c0", "zone": "z-1c"}, {"name": "c1", "zone": "z-1c", "healthy": False}]
    config = zonal(count(4), monitor=20, first=40)
    plan = dc.plan_deployment(config, hosts)
    assert [zone.zone for zone in plan.zones] == ["z-1c", "z-1a", "z-1b"]
    assert plan.hosts == ["c1", "c0", "a0", "a1", "b0"]
    assert plan.batch_sizes == [1, 1, 1, 1, 1]
    assert plan.bake_after == [0, 40, 0, 20, 0]


@pytest.mark.parametrize("per_zone, zones, words", [
    ({"type": "HOST_COUNT", "value": 1}, {"z-1a": 3, "z-1b": 1}, ["Availability Zone z-1b has 1 instance", "needs 1", "below 1"]),
    ({"type": "FLEET_PERCENT", "value": 50}, {"z-1a": 1, "z-1b": 4}, ["Availability Zone z-1a has 1 instance", "FLEET_PERCENT 50"]),
])
def test_zonal_start_check(per_zone, zones, words):
    with pytest.raises(dc.HealthConstraintsInvalid) as caught:
        dc.plan_deployment(zonal(count(0), per_zone=per_zone), zoned_hosts(zones))
    assert caught.value.code == dc.HEALTH_CONSTRAINTS_INVALID
    for word in words:
        assert word in caught.value.message


def test_zonal_rollout_stops_inside_a_zone_and_reports_bake():
    config = zonal(count(0), per_zone={"type": "HOST_COUNT", "value": 2}, monitor=45, first=90)
    plan = dc.plan_deployment(config, zoned_hosts({"z-1a": 3, "z-1b": 3}))
    rollout = dc.Rollout(plan)
    verdicts = []
    while True:
        batch = rollout.next_batch()
        if not batch:
            break
        verdicts.append(rollout.record([name for name in batch if name != "b0"]))
    assert [v.bake_seconds for v in verdicts] == [0, 0, 90, 0]
    assert verdicts[-1].status == dc.FAILED
    assert "Availability Zone z-1b" in verdicts[-1].message
    assert verdicts[-1].pending == 2


# ----------------------------------------------------------------------------------------------
# serial helpers
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes, serial", [
    ([4, 4, 1], [4]), ([1, 1, 1], [1]), ([2, 3, 3, 1], [2, 3]), ([5, 4], [5]), ([3, 5], [3, 5]), ([7], [7]), ([], []),
    ([1, 2, 4, 4], [1, 2, 4]),
])
def test_compact_serial(sizes, serial):
    assert dc.compact_serial(sizes) == serial
    assert expand_serial(serial, sum(sizes)) == sizes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12))
def test_compact_serial_round_trip(sizes):
    assert expand_serial(dc.compact_serial(sizes), sum(sizes)) == sizes


# ----------------------------------------------------------------------------------------------
# Brute-force cross-check against an independent reading of the rules
# ----------------------------------------------------------------------------------------------
def reference_rollout(minimum, hosts, fail, zone_minimums=None):
    """Independent, deliberately naive simulator. hosts: list of (name, unhealthy, zone) in deployment order.

    Recounts everything from scratch at each step. Returns (batches, status).
    """
    fleet = len(hosts)
    state = dict((name, "pending") for name, _bad, _zone in hosts)
    unhealthy = set(name for name, bad, _zone in hosts if bad)
    batches = []
    while True:
        pending = [host for host in hosts if state[host[0]] == "pending"]
        succeeded = sum(1 for value in state.values() if value == "ok")
        if not pending:
            return batches, dc.SUCCEEDED if succeeded >= max(minimum, 1) else dc.FAILED
        if succeeded + len(pending) < max(minimum, 1):
            return batches, dc.FAILED
        zone = pending[0][2]
        scope = [host for host in pending if host[2] == zone] if zone_minimums is not None else pending
        picked = []
        for name, bad, _zone in scope:
            trial = picked + [name]
            healthy_offline = sum(1 for item in trial if item not in unhealthy)
            healthy_now = succeeded + sum(1 for host in pending if host[0] not in unhealthy)
            # healthy instances may go offline only while that keeps the minimum; unhealthy ones are free
            ok = healthy_offline <= max(healthy_now - minimum, 0) and len(trial) <= fleet - minimum
            if ok and zone_minimums is not None:
                members = [host for host in hosts if host[2] == zone]
                zone_healthy = sum(1 for host in members if state[host[0]] == "ok" or (state[host[0]] == "pending" and host[0] not in unhealthy))
                zone_min = zone_minimums[zone]
                ok = healthy_offline <= max(zone_healthy - zone_min, 0) and len(trial) <= len(members) - zone_min
            if not ok:
                break
            picked = trial
        if not picked:
            return batches, dc.FAILED
        batches.append(picked)
        for name in picked:
            state[name] = "bad" if name in fail else "ok"


def configs_for(fleet, rng):
    choices = [ONE, HALF, ALL, count(rng.randint(0, fleet + 1)), percent(rng.randint(0, 99))]
    return rng.choice(choices)


def check_one(config, hosts, fail):
    """Run Rollout and the reference on the same case and check the invariants."""
    try:
        plan = dc.plan_deployment(config, hosts)
    except dc.HealthConstraintsInvalid as error:
        resolved = dc.resolve_config(config)
        fleet = len(hosts)
        zone_bad = False
        if resolved.zonal and fleet:
            sizes = {}
            for host in hosts:
                sizes[host.get("zone") or None] = sizes.get(host.get("zone") or None, 0) + 1
            zone_bad = any(dc.zone_minimum(resolved, size) >= size for size in sizes.values())
        assert fleet == 0 or dc.minimum_healthy(resolved, fleet) >= fleet or zone_bad, error.message
        return
    minimum = plan.minimum
    assert minimum < plan.fleet_size
    entries = plan.entries
    unhealthy = set(name for name, klass, _zone in entries if klass == dc.UNHEALTHY)
    zone_of = dict((name, zone) for name, _klass, zone in entries)
    zone_minimums = None
    if plan.config.zonal:
        zone_minimums = dict((zone.zone, zone.minimum) for zone in plan.zones)
    rollout = dc.Rollout(plan)
    batches = []
    succeeded = 0
    pending = set(plan.hosts)
    while True:
        healthy = succeeded + sum(1 for name in pending if name not in unhealthy)
        batch = rollout.next_batch()
        if not batch:
            break
        # never more than healthy - minimum healthy instances in flight; never more than the pace
        healthy_offline = sum(1 for name in batch if name not in unhealthy)
        assert healthy_offline <= max(healthy - minimum, 0)
        assert len(batch) <= max(healthy - minimum, 1) or healthy_offline < len(batch)
        assert len(batch) <= plan.pace
        assert zone_minimums is None or len(set(zone_of[name] for name in batch)) == 1
        assert all(name in pending for name in batch)
        batches.append(batch)
        outcome = [name for name in batch if name not in fail]
        verdict = rollout.record(outcome)
        succeeded += len(outcome)
        pending.difference_update(batch)
        assert verdict.succeeded == succeeded and verdict.pending == len(pending)
    verdict = rollout.verdict
    # success iff succeeded >= max(minimum, 1), with nothing left; a stop always means failure
    if verdict.status == dc.SUCCEEDED:
        assert not pending and succeeded >= max(minimum, 1)
    else:
        assert verdict.status == dc.FAILED and verdict.error_code == dc.HEALTH_CONSTRAINTS
        assert pending or succeeded < max(minimum, 1)
        assert succeeded < max(minimum, 1) or pending
        if pending:
            # stopped early: no instance could be taken offline, or the minimum was out of reach
            healthy = succeeded + sum(1 for name in pending if name not in unhealthy)
            front = [name for name in plan.hosts if name in pending][0]
            zone_blocked = False
            if zone_minimums is not None:
                zone = zone_of[front]
                members = [name for name in plan.hosts if zone_of[name] == zone]
                zone_healthy = sum(1 for name in members if (name in pending and name not in unhealthy)
                                   or (name not in pending and name not in fail))
                zone_blocked = zone_healthy <= zone_minimums[zone] and front not in unhealthy
            assert ((healthy <= minimum and front not in unhealthy) or zone_blocked
                    or succeeded + len(pending) < max(minimum, 1))
    reference = [(name, klass == dc.UNHEALTHY, zone) for name, klass, zone in entries]
    expected_batches, expected_status = reference_rollout(minimum, reference, fail, zone_minimums)
    assert batches == expected_batches
    assert verdict.status == expected_status
    # with no failure the dynamic rollout cuts exactly the static plan
    if not fail:
        assert batches == plan.batches


def random_case(rng):
    fleet = rng.randint(0, 14)
    zoned = rng.random() < 0.3
    config = configs_for(fleet, rng)
    if zoned and isinstance(config, dict):
        config = dict(config)
        per_zone = rng.choice([None, {"type": "HOST_COUNT", "value": rng.randint(0, 2)}, {"type": "FLEET_PERCENT", "value": rng.randint(0, 80)}])
        config["zonal_config"] = {"monitor_duration_in_seconds": rng.randint(0, 3)}
        if per_zone:
            config["zonal_config"]["minimum_healthy_hosts_per_zone"] = per_zone
    hosts = []
    for index in range(fleet):
        record = {"name": "h%d" % index, "healthy": rng.random() > 0.25,
                  "revision": rng.choice([None, "r1", "r2"])}
        if zoned:
            record["zone"] = rng.choice(["z-1a", "z-1b", "z-1c", None])
        hosts.append(record)
    failure_rate = rng.choice([0.0, 0.1, 0.3, 0.6, 1.0])
    fail = set(host["name"] for host in hosts if rng.random() < failure_rate)
    return config, hosts, fail


def test_brute_force_seeded():
    rng = random.Random(20240611)
    for _case in range(3000):
        config, hosts, fail = random_case(rng)
        check_one(config, hosts, fail)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 32 - 1))
def test_brute_force_hypothesis(seed):
    config, hosts, fail = random_case(random.Random(seed))
    check_one(config, hosts, fail)


@settings(max_examples=200, deadline=None)
@given(fleet=st.integers(min_value=1, max_value=30), kind=st.sampled_from(["HOST_COUNT", "FLEET_PERCENT"]),
       value=st.integers(min_value=0, max_value=99), data=st.data())
def test_all_healthy_first_batch_is_healthy_minus_minimum(fleet, kind, value, data):
    config = {"minimum_healthy_hosts": {"type": kind, "value": value}}
    minimum = dc.minimum_healthy(config, fleet)
    check = dc.check_start(config, fleet)
    assert check.ok == (minimum < fleet)
    if not check.ok:
        return
    plan = dc.plan_deployment(config, names(fleet))
    assert plan.batch_sizes[0] == fleet - minimum
    assert all(size == fleet - minimum for size in plan.batch_sizes[:-1])
    fail = set(data.draw(st.sets(st.sampled_from(names(fleet)))))
    check_one(config, names(fleet), fail)


# ----------------------------------------------------------------------------------------------
# A fleet of CodeDeploy's per-deployment maximum (timing lives in benchmarks/, not here)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [ONE, HALF, ALL, percent(10),
                                    zonal(count(0), per_zone={"type": "FLEET_PERCENT", "value": 90}, monitor=5)])
def test_planning_1000_hosts_covers_each_host_once_unhealthy_first(config):
    hosts = [{"name": "i-%05d" % index, "healthy": index % 13 != 0, "revision": "r%d" % (index % 3),
              "zone": "us-east-1%s" % "abcdef"[index % 6]} for index in range(1000)]
    plan = dc.plan_deployment(config, hosts, current_revision="r1")
    planned = [name for batch in plan.batches for name in batch]
    assert sorted(planned) == sorted(h["name"] for h in hosts)
    assert sum(plan.batch_sizes) == 1000
    unhealthy = {h["name"] for h in hosts if not h["healthy"]}
    if not (isinstance(config, dict) and "zonal_config" in config):
        assert set(planned[:len(unhealthy)]) == unhealthy
