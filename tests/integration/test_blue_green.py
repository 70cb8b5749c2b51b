"""Blue/green deployments (DISCOVER_EXISTING) through rollout.codedeploy.deploy: the green fleet installs the revision and
joins the target group, the blue fleet leaves it, then stays running (KEEP_ALIVE) or is terminated (TERMINATE); a failure on
green before the reroute leaves blue serving. Real fleet hosts behind moto's target group."""
import os

import pytest

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


def _revision(tmp_path, name, version, fail=False):
    return revision(tmp_path, name, version, failing_hosts=[] if fail else None)  # an empty FAIL_VALIDATE fails every host


def _deploy(world, inv, rev, ledger_path, group, check=True, **extra):
    extra_vars = {"deployment_group": group, "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check)


def _states(aws, ids):
    found = aws.ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}


def _fleets(world, aws, tmp_path, action="KEEP_ALIVE"):
    """2 blue hosts serving v1 and registered in web-tg, 2 green hosts with nothing yet; returns (blue, green, arn, inv, ledger)."""
    blue = world.launch_bound(aws, 2, {"Role": "web"})
    green = world.launch_bound(aws, 2, {"Role": "green"})
    arn = aws.target_group("web-tg")
    inv = _inventory(world, tmp_path, action)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _deploy(world, inv, _revision(tmp_path, "v1", "1.0.0"), ledger_path, "web_seed")
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
    assert "Traffic stays on the blue hosts" in deployment["error"]["message"]
    assert _registered(aws, arn) == set(blue)
    assert set(_states(aws, blue).values()) == {"running"}
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    for instance in deployment["instances"]:
        if instance["role"] == "blue":
            assert instance["status"] == "Skipped" and instance["events"] == []
        else:
            assert instance["status"] == "Failed"
