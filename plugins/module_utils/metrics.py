# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Delivery metrics of a deployment group, computed from ledger records (pure functions, no I/O).

``summarize(records, last)`` takes the group's deployments as ``Ledger.list_deployments`` returns
them (any order, rollback deployments included) and summarizes the ``last`` most recent *settled*
deployments created by a user (``creator`` ``user``, status Succeeded, Failed or Stopped):

* ``success_rate``: Succeeded / settled, a fraction from 0 to 1 (null with no deployment).
* ``duration_median_seconds`` and ``duration_p95_seconds``: duration = ``complete_time`` minus
  ``start_time`` (``create_time`` when the deployment never started), over every settled deployment
  of the window whatever its outcome. The median is the middle value (the mean of the two middle
  values for an even count); the 95th percentile uses the nearest-rank method: the smallest
  duration that at least 95 % of the durations do not exceed, i.e. the ceil(0.95 * n)-th smallest.
* ``rollbacks``: how many deployments of the window were rolled back by a linked rollback deployment
  (``rollback_info.rollback_deployment_id``: automatic rollbacks and blue/green traffic rollbacks).
  A rollback run by hand (the rollback playbook) is a user action, not linked, and not counted.
* time to rollback, per rolled-back deployment: from its failure to the end of its rollback, i.e. the
  rollback deployment's ``complete_time`` minus the earlier of the failed deployment's ``complete_time``
  and the rollback's ``create_time`` (a blue/green traffic rollback starts before its deployment is
  settled). Only rollbacks that finished count; ``time_to_rollback_median_seconds`` and
  ``time_to_rollback_max_seconds`` summarize them.

``metric_data(summary)`` turns a summary into CloudWatch ``PutMetricData`` entries with the
dimensions Application and DeploymentGroup. Standard library only.
"""

from __future__ import absolute_import, division, print_function

import math

from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import parse_time

__metaclass__ = type  # pylint: disable=invalid-name

SETTLED = ("Succeeded", "Failed", "Stopped")
DEFAULT_NAMESPACE = "Rollout/CodeDeploy"
#: summary key -> (CloudWatch metric name, unit, factor applied to the value).
METRICS = (
    ("deployments", "Deployments", "Count", 1),
    ("success_rate", "SuccessRate", "Percent", 100),
    ("duration_median_seconds", "DurationMedian", "Seconds", 1),
    ("duration_p95_seconds", "DurationP95", "Seconds", 1),
    ("rollbacks", "Rollbacks", "Count", 1),
    ("time_to_rollback_median_seconds", "TimeToRollbackMedian", "Seconds", 1),
    ("time_to_rollback_max_seconds", "TimeToRollbackMax", "Seconds", 1),
)


class MetricsError(Exception):
    """Bad input to the metrics (a window size); ``message`` names the field, the value and the fix."""

    def __init__(self, message):
        super(MetricsError, self).__init__(message)
        self.message = message


def seconds_between(start, end):
    """Seconds from ``start`` to ``end`` (ledger ISO 8601 times), or None when one is missing."""
    if not start or not end:
        return None
    return round((parse_time(end) - parse_time(start)).total_seconds(), 3)


def median(values):
    """The middle value (the mean of the two middle ones for an even count); None for no values."""
    ordered = sorted(values)
    count = len(ordered)
    if not count:
        return None
    middle = count // 2
    return ordered[middle] if count % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def percentile(values, share):
    """Nearest-rank percentile: the ceil(share * n)-th smallest value (share in (0, 1]); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, int(math.ceil(share * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def duration(record):
    """A settled deployment's duration in seconds: complete_time minus start_time (or create_time)."""
    return seconds_between(record.get("start_time") or record.get("create_time"), record.get("complete_time"))


def time_to_rollback(failed, rollback):
    """Seconds from the failure of ``failed`` to the end of its ``rollback``; None while the rollback runs."""
    if not rollback or not rollback.get("complete_time"):
        return None
    marks = [t for t in (failed.get("complete_time"), rollback.get("create_time")) if t]
    if not marks:
        return None
    failure = min(marks, key=parse_time)
    return seconds_between(failure, rollback["complete_time"])


def window(records, last):
    """The ``last`` most recent settled deployments created by a user, newest first."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise MetricsError("summary.last must be a whole number of deployments of 1 or more, got %r; "
                           "for example summary: {last: 20}" % (last,))
    chosen = [r for r in records if (r.get("creator") or "user") == "user" and r.get("status") in SETTLED]
    chosen.sort(key=lambda r: parse_time(r["create_time"]), reverse=True)
    return chosen[:last]


def summarize(records, last):
    """The figures of the ``last`` settled user deployments among ``records`` (see the module docstring)."""
    records = list(records or [])
    by_id = {r.get("deployment_id"): r for r in records}
    chosen = window(records, last)
    counts = {status: sum(1 for r in chosen if r["status"] == status) for status in SETTLED}
    durations = [d for d in (duration(r) for r in chosen) if d is not None]
    rolled_back = []
    for record in chosen:
        rollback_id = (record.get("rollback_info") or {}).get("rollback_deployment_id")
        if not rollback_id:
            continue
        rollback = by_id.get(rollback_id)
        rolled_back.append({
            "deployment_id": record["deployment_id"], "status": record["status"], "rollback_deployment_id": rollback_id,
            "rollback_status": (rollback or {}).get("status"), "time_to_rollback_seconds": time_to_rollback(record, rollback)})
    recoveries = [r["time_to_rollback_seconds"] for r in rolled_back if r["time_to_rollback_seconds"] is not None]
    first = chosen[0] if chosen else {}
    return {
        "application": first.get("application"),
        "deployment_group": first.get("deployment_group"),
        "last": last,
        "deployments": len(chosen),
        "succeeded": counts["Succeeded"],
        "failed": counts["Failed"],
        "stopped": counts["Stopped"],
        "success_rate": round(counts["Succeeded"] / float(len(chosen)), 4) if chosen else None,
        "duration_median_seconds": median(durations),
        "duration_p95_seconds": percentile(durations, 0.95),
        "rollbacks": len(rolled_back),
        "time_to_rollback_median_seconds": median(recoveries),
        "time_to_rollback_max_seconds": max(recoveries) if recoveries else None,
        "rolled_back": rolled_back,
        "deployment_ids": [r["deployment_id"] for r in chosen],
        "oldest_create_time": chosen[-1]["create_time"] if chosen else None,
        "newest_create_time": first.get("create_time"),
    }


def metric_data(summary, application, deployment_group, timestamp=None):
    """CloudWatch ``MetricData`` entries of a summary: figures that have a value, with Application and DeploymentGroup."""
    dimensions = [{"Name": "Application", "Value": str(application)}, {"Name": "DeploymentGroup", "Value": str(deployment_group)}]
    data = []
    for key, name, unit, factor in METRICS:
        value = summary.get(key)
        if value is None:
            continue
        entry = {"MetricName": name, "Dimensions": dimensions, "Value": float(value) * factor, "Unit": unit}
        if timestamp is not None:
            entry["Timestamp"] = timestamp
        data.append(entry)
    return data
