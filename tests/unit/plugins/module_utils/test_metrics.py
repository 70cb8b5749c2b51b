# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/metrics.py: the figures of a deployment group, from ledger records."""

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import metrics


def at(minute, second=0):
    return "2026-11-22T02:%02d:%02d.000Z" % (minute, second)


def record(deployment_id, status, created, started, completed, creator="user", rollback_id=None, triggered_by=None):
    info = None
    if rollback_id or triggered_by:
        info = {"rollback_deployment_id": rollback_id, "rollback_triggering_deployment_id": triggered_by, "rollback_message": None}
    return {"deployment_id": deployment_id, "application": "web", "deployment_group": "production", "status": status,
            "creator": creator, "create_time": created, "start_time": started, "complete_time": completed, "rollback_info": info}


@pytest.mark.parametrize("values, expected_median, expected_p95", [
    ([], None, None),
    ([7], 7, 7),
    ([3, 1], 2.0, 3),
    ([5, 1, 3], 3, 5),
    (list(range(1, 21)), 10.5, 19),      # ceil(0.95 * 20) = 19th smallest
    (list(range(1, 101)), 50.5, 95),     # ceil(0.95 * 100) = 95th
    (list(range(1, 102)), 51, 96),       # ceil(0.95 * 101) = ceil(95.95) = 96th
    ([10, 10, 10, 1000], 10.0, 1000),    # ceil(3.8) = 4th: one slow deployment in four is the p95
])
def test_median_and_nearest_rank_p95(values, expected_median, expected_p95):
    assert metrics.median(values) == expected_median
    assert metrics.percentile(values, 0.95) == expected_p95


@pytest.mark.parametrize("rec, expected", [
    (record("d-A", "Succeeded", at(0), at(0, 10), at(2, 10)), 120.0),
    (record("d-B", "Failed", at(0), None, at(0, 5)), 5.0),              # never started: from its creation
    (record("d-C", "InProgress", at(0), at(0, 1), None), None),
    (dict(record("d-D", "Succeeded", at(0), at(0), at(0, 1)), complete_time="2026-11-22T02:00:01.250Z"), 1.25),
])
def test_duration_from_ledger_times(rec, expected):
    assert metrics.duration(rec) == expected


@pytest.mark.parametrize("failed, rollback, expected", [
    # automatic in-place rollback: opened after the failed deployment settled
    (record("d-F", "Failed", at(0), at(0), at(3)), record("d-R", "Succeeded", at(3, 1), at(3, 2), at(5)), 120.0),
    # blue/green traffic rollback: opened before its deployment settled, so the clock starts at the rollback's creation
    (record("d-F", "Failed", at(0), at(0), at(6)), record("d-R", "Succeeded", at(4), at(4), at(5)), 60.0),
    # the rollback still runs: no figure yet
    (record("d-F", "Failed", at(0), at(0), at(3)), record("d-R", "InProgress", at(3), at(3), None), None),
    (record("d-F", "Failed", at(0), at(0), at(3)), None, None),
])
def test_time_to_rollback(failed, rollback, expected):
    assert metrics.time_to_rollback(failed, rollback) == expected


HISTORY = [
    # newest first, as list_deployments returns them; d-7 is running, d-R2/d-R5 are linked rollbacks, d-M is a manual one
    record("d-7", "InProgress", at(40), at(40), None),
    record("d-M", "Succeeded", at(35), at(35), at(36), creator="rollback"),
    record("d-6", "Succeeded", at(30), at(30), at(31)),                          # 60 s
    record("d-R5", "Succeeded", at(26), at(26), at(28), creator="rollback", triggered_by="d-5"),
    record("d-5", "Failed", at(20), at(20), at(25), rollback_id="d-R5"),         # 300 s, rolled back in 180 s
    record("d-4", "Stopped", at(15), at(15), at(17)),                            # 120 s
    record("d-3", "Succeeded", at(10), at(10), at(14)),                          # 240 s
    record("d-R2", "Failed", at(8), at(8), at(9), creator="rollback", triggered_by="d-2"),
    record("d-2", "Failed", at(5), at(5), at(7), rollback_id="d-R2"),            # 120 s, rolled back in 120 s (a failed rollback)
    record("d-1", "Succeeded", at(0), at(0), at(1)),                             # 60 s
]


@pytest.mark.parametrize("last, expected", [
    (1, {"deployments": 1, "deployment_ids": ["d-6"], "succeeded": 1, "failed": 0, "stopped": 0, "success_rate": 1.0,
         "duration_median_seconds": 60.0, "duration_p95_seconds": 60.0, "rollbacks": 0,
         "time_to_rollback_median_seconds": None, "time_to_rollback_max_seconds": None}),
    (3, {"deployments": 3, "deployment_ids": ["d-6", "d-5", "d-4"], "succeeded": 1, "failed": 1, "stopped": 1, "success_rate": 0.3333,
         "duration_median_seconds": 120.0, "duration_p95_seconds": 300.0, "rollbacks": 1,
         "time_to_rollback_median_seconds": 180.0, "time_to_rollback_max_seconds": 180.0}),
    (50, {"deployments": 6, "deployment_ids": ["d-6", "d-5", "d-4", "d-3", "d-2", "d-1"], "succeeded": 3, "failed": 2, "stopped": 1,
          "success_rate": 0.5, "duration_median_seconds": 120.0, "duration_p95_seconds": 300.0, "rollbacks": 2,
          "time_to_rollback_median_seconds": 150.0, "time_to_rollback_max_seconds": 180.0}),
])
def test_summary_of_the_last_settled_user_deployments(last, expected):
    summary = metrics.summarize(HISTORY, last)
    assert {key: summary[key] for key in expected} == expected
    assert summary["application"] == "web" and summary["deployment_group"] == "production" and summary["last"] == last


def test_summary_names_each_rollback_and_ignores_the_order_of_records():
    summary = metrics.summarize(list(reversed(HISTORY)), 50)
    assert summary["deployment_ids"][0] == "d-6" and summary["oldest_create_time"] == at(0) and summary["newest_create_time"] == at(30)
    assert summary["rolled_back"] == [
        {"deployment_id": "d-5", "status": "Failed", "rollback_deployment_id": "d-R5", "rollback_status": "Succeeded",
         "time_to_rollback_seconds": 180.0},
        {"deployment_id": "d-2", "status": "Failed", "rollback_deployment_id": "d-R2", "rollback_status": "Failed",
         "time_to_rollback_seconds": 120.0}]


def test_a_rollback_outside_the_records_is_counted_without_a_time():
    summary = metrics.summarize([r for r in HISTORY if r["deployment_id"] != "d-R5"], 3)
    assert summary["rollbacks"] == 1 and summary["rolled_back"][0]["rollback_status"] is None
    assert summary["time_to_rollback_median_seconds"] is None


def test_an_empty_group_has_no_figures():
    summary = metrics.summarize([], 10)
    assert summary["deployments"] == 0 and summary["success_rate"] is None and summary["duration_p95_seconds"] is None
    assert metrics.metric_data(summary, "web", "production") == [
        {"MetricName": "Deployments", "Dimensions": [{"Name": "Application", "Value": "web"},
                                                     {"Name": "DeploymentGroup", "Value": "production"}],
         "Value": 0.0, "Unit": "Count"},
        {"MetricName": "Rollbacks", "Dimensions": [{"Name": "Application", "Value": "web"},
                                                   {"Name": "DeploymentGroup", "Value": "production"}],
         "Value": 0.0, "Unit": "Count"}]


@pytest.mark.parametrize("last", [0, -3, "5", 2.5, True, None])
def test_a_bad_window_is_refused_naming_the_field(last):
    with pytest.raises(metrics.MetricsError, match=r"summary\.last must be .* got %s" % repr(last).replace(".", r"\.")):
        metrics.summarize(HISTORY, last)


def test_metric_data_units_and_dimensions():
    data = metrics.metric_data(metrics.summarize(HISTORY, 3), "web", "production", timestamp="2026-11-22T03:00:00Z")
    by_name = {d["MetricName"]: d for d in data}
    assert sorted(by_name) == sorted(["Deployments", "SuccessRate", "DurationMedian", "DurationP95", "Rollbacks",
                                      "TimeToRollbackMedian", "TimeToRollbackMax"])
    assert by_name["SuccessRate"]["Unit"] == "Percent" and by_name["SuccessRate"]["Value"] == pytest.approx(33.33)
    assert by_name["DurationP95"] == {"MetricName": "DurationP95", "Unit": "Seconds", "Value": 300.0, "Timestamp": "2026-11-22T03:00:00Z",
                                      "Dimensions": [{"Name": "Application", "Value": "web"}, {"Name": "DeploymentGroup", "Value": "production"}]}
