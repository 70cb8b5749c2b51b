"""A controller that lost its deployment stops writing and stops deploying (docs/reliability.md)."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

from test_deploy import _slow_revision, deploy, registered, revision, serving
from test_faults import _deploy_in_background, _playbook, _two_groups, _wait_until_out_of_rotation

pytestmark = [pytest.mark.fleet, pytest.mark.aws]


def test_a_force_stop_mid_host_stops_the_controller_and_the_next_deploy_restores(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 5))
    busy = _wait_until_out_of_rotation(ledger_path)
    deployment_id = ledgers.open_ledger(ledger_path).list_deployments(limit=1)[0]["deployment_id"]

    forced = _playbook(world, "stop.yml", inventory, {"deployment_id": deployment_id, "force": True, "codedeploy_ledger": ledger_path})
    assert forced.returncode == 0, forced.stdout[-3000:]
    out = running.communicate(timeout=240)[0]
    assert running.returncode == 2, out[-3000:]
    assert "was settled elsewhere" in out and "no longer owns it" in out

    record = ledgers.open_ledger(ledger_path).get_deployment(deployment_id)
    assert record["status"] == "Stopped" and record["error"]["code"] == "MANUAL_STOP"
    statuses = {i["instance_id"]: i["status"] for i in record["instances"]}
    assert statuses[busy["instance_id"]] == "Unknown" and "InProgress" not in statuses.values() and "Pending" not in statuses.values()
    # The controller stopped after the step in flight: it neither put the host back nor started the other one.
    events = [e["event"] for e in next(i for i in record["instances"] if i["instance_id"] == busy["instance_id"])["events"]]
    assert "AllowTraffic" not in events
    assert registered(aws, arn) == set(web) - {busy["instance_id"]}

    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"
