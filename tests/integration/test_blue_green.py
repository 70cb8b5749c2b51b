"""Blue/green deployments (DISCOVER_EXISTING) through rollout.codedeploy.deploy: the green fleet installs the revision and
joins the target group, the blue fleet leaves it, then stays running (KEEP_ALIVE) or is terminated (TERMINATE); a failure on
green before the reroute leaves blue serving. Real fleet hosts behind moto's target group."""
import os

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from world import paths

from test_deploy import last_deployment as _last, registered as _registered, revision, serving as _serving

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")
WEB = {"ec2_tag_filters": [{"key": "Role", "value": "web"}]}
GREEN = {"ec2_tag_filters": [{"key": "Role", "value": "green"}]}


def _inventory(world, tmp_path, action="KEEP_ALIVE"):
    """One codedeploy inventory source: web_seed (in place, puts v1 on the blue hosts), web_production (BLUE_GREEN, the blue
    hosts behind web-tg) and web_green (the green fleet, selected by its own tag)."""
    blue_green = {"terminate_blue_instances_on_deployment_success": {"action": action, "termination_wait_time_in_minutes": 0},
                  "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT"},
                  "green_fleet_provisioning_option": {"action": "DISCOVER_EXISTING"}}
    groups = {
        "seed": dict(WEB, deployment_config="CodeDeployDefault.AllAtOnce"),
        "production": dict(WEB, deployment_config="CodeDeployDefault.AllAtOnce", deployment_style={"type": "BLUE_GREEN"},
                           load_balancer={"target_groups": ["web-tg"]}, blue_green=blue_green),
        "green": dict(GREEN, deployment_config="CodeDeployDefault.AllAtOnce"),
    }
    return world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": groups})


def _revision(tmp_path, name, version, fail=False, fail_after_block=False):
    path = revision(tmp_path, name, version, failing_hosts=[] if fail else None)  # an empty FAIL_VALIDATE fails every host
    if fail_after_block:  # AfterBlockTraffic runs from the revision a host had before: this one, on the next deployment
        with open(os.path.join(path, "FAIL_AFTER_BLOCK"), "w", encoding="utf-8"):
            pass
    return path


def _deploy(world, inv, rev, ledger_path, group, check=True, env=None, **extra):
    extra_vars = {"deployment_group": group, "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check, env=env)


def _states(aws, ids):
    found = aws.ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}


def _fleets(world, aws, tmp_path, action="KEEP_ALIVE", seed=None):
    """2 blue hosts serving v1 (or ``seed``) and registered in web-tg, 2 green hosts with nothing yet; returns
    (blue, green, arn, inv, ledger)."""
    blue = world.launch_bound(aws, 2, {"Role": "web"})
    green = world.launch_bound(aws, 2, {"Role": "green"})
    arn = aws.target_group("web-tg")
    inv = _inventory(world, tmp_path, action)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _deploy(world, inv, seed or _revision(tmp_path, "v1", "1.0.0"), ledger_path, "web_seed")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in blue])
    assert _registered(aws, arn) == set(blue)
    return blue, green, arn, inv, ledger_path


def test_keep_alive_reroutes_to_green_and_leaves_blue_running(world, aws, fleet_hosts, tmp_path):
    blue, green, arn, inv, ledger_path = _fleets(world, aws, tmp_path, "KEEP_ALIVE")
    result = _deploy(world, inv, _revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", green_hosts="web_green")
    assert "KEEP_ALIVE" in result.stdout
    assert _registered(aws, arn) == set(green)
    for host in green.values():
        assert _serving(world, host) == "sample-app 2.0.0"
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    assert set(_states(aws, blue).values()) == {"running"}
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded", deployment.get("error")
    roles = {i["instance_id"]: i.get("role") for i in deployment["instances"]}
    assert roles == dict([(i, "blue") for i in blue] + [(i, "green") for i in green])
    for instance in deployment["instances"]:
        events = [e["event"] for e in instance["events"]]
        if instance["role"] == "blue":
            assert events == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"] and instance["blue_fleet"] == "kept alive"
        else:
            assert events[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"] and "BlockTraffic" not in events
    assert deployment["options"]["blue_green"]["terminate_blue_instances_on_deployment_success"]["action"] == "KEEP_ALIVE"


def test_terminate_terminates_the_blue_instances_after_the_wait(world, aws, fleet_hosts, tmp_path):
    blue, green, arn, inv, ledger_path = _fleets(world, aws, tmp_path, "TERMINATE")
    result = _deploy(world, inv, _revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", green_hosts=["web_green"])
    assert "were terminated after 0 min" in result.stdout
    assert _registered(aws, arn) == set(green)
    assert set(_states(aws, blue).values()) <= {"shutting-down", "terminated"}
    assert set(_states(aws, green).values()) == {"running"}
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded"
    assert {i["blue_fleet"] for i in deployment["instances"] if i["role"] == "blue"} == {"terminated"}


def test_a_failure_on_green_before_the_reroute_leaves_blue_serving(world, aws, fleet_hosts, tmp_path):
    blue, green, arn, inv, ledger_path = _fleets(world, aws, tmp_path, "TERMINATE")
    result = _deploy(world, inv, _revision(tmp_path, "v2", "2.0.0", fail=True), ledger_path, "web_production", check=False,
                     green_hosts="web_green")
    assert result.returncode != 0
    deployment = _last(ledger_path)
    assert deployment["status"] == "Failed" and deployment["error"]["code"] == "HEALTH_CONSTRAINTS", deployment["error"]
    assert "Traffic stays on the blue hosts, which were not touched" in result.stdout
    assert deployment["rollback_info"] is None  # no green host reached the load balancer: nothing to roll back
    assert _registered(aws, arn) == set(blue)
    assert set(_states(aws, blue).values()) == {"running"}
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    for instance in deployment["instances"]:
        if instance["role"] == "blue":
            assert instance["status"] == "Skipped" and instance["events"] == []
        else:
            assert instance["status"] == "Failed"


def test_a_failure_after_the_reroute_rolls_the_traffic_back_to_blue_in_a_linked_deployment(world, aws, fleet_hosts, tmp_path):
    first, second, arn, inv, ledger_path = _fleets(world, aws, tmp_path, "KEEP_ALIVE")
    # v2 goes to the second fleet, whose AfterBlockTraffic (run from v2 on the next deployment) fails after it left web-tg.
    v2 = _deploy(world, inv, _revision(tmp_path, "v2", "2.0.0", fail_after_block=True), ledger_path, "web_production",
                 green_hosts="web_green")
    assert "KEEP_ALIVE" in v2.stdout and _registered(aws, arn) == set(second)
    good = _last(ledger_path)
    # The swap done, the tags move as docs/blue-green.md says: the second fleet is now the group (blue), the first one green.
    aws.ec2.create_tags(Resources=list(second), Tags=[{"Key": "Role", "Value": "web"}])
    aws.ec2.create_tags(Resources=list(first), Tags=[{"Key": "Role", "Value": "green"}])
    result = _deploy(world, inv, _revision(tmp_path, "v3", "3.0.0"), ledger_path, "web_production", check=False,
                     green_hosts="web_green", auto_rollback=True, file_exists_behavior="OVERWRITE",  # v1 came from web_seed
                     env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert result.returncode != 0
    assert "Rolled the traffic back" in result.stdout, result.stdout[-3000:]
    # Blue (the second fleet) serves v2 again, v3's hosts are out, nothing was terminated.
    assert _registered(aws, arn) == set(second)
    for host in second.values():
        assert _serving(world, host) == "sample-app 2.0.0"
    for host in first.values():
        assert _serving(world, host) == "sample-app 3.0.0"
    assert set(_states(aws, list(first) + list(second)).values()) == {"running"}
    rollback = _last(ledger_path)
    failed = ledgers.open_ledger(ledger_path).get_deployment(rollback["rollback_info"]["rollback_triggering_deployment_id"])
    assert failed["status"] == "Failed" and failed["error"]["code"] == "HOOK_EXECUTION_FAILURE", failed["error"]
    assert "AfterBlockTraffic" in failed["error"]["message"]
    assert failed["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert failed["swap"] == {"state": "rolled_back", "rollback_deployment_id": rollback["deployment_id"]}
    assert rollback["creator"] == "rollback" and rollback["status"] == "Succeeded", rollback.get("error")
    # The AWX artifacts name the rollback (set_stats, shown here as custom stats).
    stats = result.stdout[result.stdout.index("CUSTOM STATS"):]
    assert '"codedeploy_rollback_deployment_id": "%s"' % rollback["deployment_id"] in stats, stats
    assert '"codedeploy_rollback_status": "Succeeded"' in stats and '"codedeploy_status": "Failed"' in stats
    assert rollback["revision"]["sha256"] == good["revision"]["sha256"]  # what blue runs: the last good deployment's revision
    moved = [(i["role"], i["status"], [(e["event"], e["status"]) for e in i["events"]]) for i in rollback["instances"]]
    assert moved == [("blue", "Succeeded", [("AllowTraffic", "Succeeded")])] * 2 + [("green", "Succeeded", [("BlockTraffic", "Succeeded")])] * 2
    assert [i["instance_id"] for i in rollback["instances"][:2]] == [i["instance_id"] for i in failed["instances"] if i["role"] == "blue"]
    assert {i["instance_id"] for i in rollback["instances"][2:]} == set(first)
