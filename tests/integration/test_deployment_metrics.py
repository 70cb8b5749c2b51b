# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deployment_info's summary and its CloudWatch metrics (moto), and the AWX actor of a real deploy run."""
import datetime
import os

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import metrics

from test_deploy import deploy, fleet, inventory, revision
# The fixtures of test_deployment_info are used by name.
from test_deployment_info import REVISION, history, local, location, run_info, writer  # noqa: F401  # pylint: disable=unused-import

pytestmark = [pytest.mark.aws]

DIMENSIONS = [{"Name": "Application", "Value": "web"}, {"Name": "DeploymentGroup", "Value": "production"}]


def group_history(ledger):
    """web/production: a success, then a failure with its linked rollback (test_deployment_info.history)."""
    good = ledger.create_deployment("web", "production", "dg-1", REVISION, None, [{"instance_id": "i-1"}])
    ledger.update_status(good["deployment_id"], "InProgress")
    ledger.update_status(good["deployment_id"], "Succeeded")
    return history(ledger)


def published(world, namespace):
    """{metric name: the value CloudWatch (moto) holds for web/production in ``namespace``}."""
    cloudwatch = world.moto.client("cloudwatch")
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=namespace)["Metrics"] if m["Dimensions"] == DIMENSIONS}
    now = datetime.datetime.now(datetime.timezone.utc)
    values = {}
    for name in names:
        points = cloudwatch.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=DIMENSIONS, Period=60,
                                                  StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(minutes=5),
                                                  Statistics=["Maximum", "SampleCount"])["Datapoints"]
        assert sum(p["SampleCount"] for p in points) == 1, (name, points)
        values[name] = points[0]["Maximum"]
    return values


def test_summary_of_a_group_published_as_cloudwatch_metrics(world, tmp_path, local, location):  # noqa: F811
    group_history(writer(world, location))
    args = {"application": "web", "deployment_group": "production", "summary": {"last": 5}, "ledger": location, "limit": 1,
            "publish_metrics": True, "namespace": "Rollout/Test"}
    result, _proc = run_info(world, tmp_path, local, args)
    summary = result["summary"]
    assert result["changed"] is True and len(result["deployments"]) == 1  # limit applies to the listing, not to the summary
    assert (summary["deployments"], summary["succeeded"], summary["failed"], summary["rollbacks"]) == (2, 1, 1, 1)
    assert summary["success_rate"] == 0.5 and summary["rolled_back"][0]["rollback_status"] == "Succeeded"
    # The module's figures are the pure function's over what the ledger holds.
    with writer(world, location) as book:
        assert summary == metrics.summarize(book.list_deployments("web", "production", limit=0), 5)
    assert summary["time_to_rollback_max_seconds"] >= 0 and summary["duration_p95_seconds"] >= summary["duration_median_seconds"]
    expected = {m["MetricName"]: m["Value"] for m in metrics.metric_data(summary, "web", "production")}
    assert {m["MetricName"]: m["Value"] for m in result["metrics"]} == expected and result["namespace"] == "Rollout/Test"
    assert published(world, "Rollout/Test") == pytest.approx(expected)
    assert set(expected) >= {"SuccessRate", "DurationMedian", "DurationP95", "Rollbacks", "TimeToRollbackMedian", "Deployments"}


def test_check_mode_publishes_nothing_and_bad_options_are_refused(world, tmp_path, local):  # noqa: F811
    ledger_path = str(tmp_path / "ledger.sqlite3")
    group_history(ledgers.open_ledger(ledger_path))
    args = {"application": "web", "deployment_group": "production", "summary": {"last": 3}, "ledger": ledger_path, "publish_metrics": True}
    result, _proc = run_info(world, tmp_path, local, args, options=["--check"], name="check")
    assert result["changed"] is True and {m["MetricName"] for m in result["metrics"]} >= {"SuccessRate", "Rollbacks"}
    assert result["namespace"] == metrics.DEFAULT_NAMESPACE
    assert world.moto.client("cloudwatch").list_metrics(Namespace=metrics.DEFAULT_NAMESPACE)["Metrics"] == []
    refused, _proc = run_info(world, tmp_path, local, dict(args, summary={"last": 0}), name="zero")
    assert refused["failed"] and "summary.last must be a whole number" in refused["msg"] and "got 0" in refused["msg"]
    refused, _proc = run_info(world, tmp_path, local, {"application": "web", "ledger": ledger_path, "publish_metrics": True}, name="nosum")
    assert refused["failed"] and "publish_metrics needs summary" in refused["msg"]
    refused, _proc = run_info(world, tmp_path, local, {"application": "web", "ledger": ledger_path, "summary": {"last": 2}}, name="nogroup")
    assert refused["failed"] and "deployment_group" in refused["msg"]


@pytest.mark.fleet
def test_the_awx_job_and_its_launcher_are_the_deployments_actor(world, aws, fleet_hosts, tmp_path, local):  # noqa: F811
    fleet(world, aws, 1, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    inv = inventory(world, tmp_path, load_balancer=False)
    # The job variables AWX passes as extra vars (Tower's older names in the second run).
    deploy(world, inv, revision(tmp_path, "v1"), ledger_path, awx_job_id=4711, awx_user_name="alice", awx_job_launch_type="manual")
    deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, tower_job_id=4712, tower_user_name="bob")
    result, _proc = run_info(world, tmp_path, local, {"application": "web", "deployment_group": "production", "ledger": ledger_path,
                                                      "summary": {"last": 5}})
    second, first = result["deployments"]
    assert first["owner"].endswith(", AWX job 4711 launched by alice") and first["owner"].startswith("ansible-playbook pid ")
    assert (first["actor"]["awx_job_id"], first["actor"]["awx_user"], first["actor"]["program"]) == ("4711", "alice", "ansible-playbook")
    assert (second["actor"]["awx_job_id"], second["actor"]["awx_user"]) == ("4712", "bob")
    assert first["actor"]["pid"] != second["actor"]["pid"] and first["actor"]["host"] == os.uname()[1]
    assert result["summary"]["success_rate"] == 1.0 and result["summary"]["deployments"] == 2
