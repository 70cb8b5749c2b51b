"""Blue/green deployments with COPY_AUTO_SCALING_GROUP through rollout.codedeploy.deploy: the deployment copies the group's
Auto Scaling group (CodeDeploy_<group>_<id>), its instances (bound to spare fleet hosts by world.binder.AsgBinder, as the cloud
would give them an address) install the revision and take over the target group; TERMINATE deletes the original group. A
failure on green before the reroute deletes the copy and leaves blue serving. Real fleet hosts behind moto's target group."""
import os

import pytest

from world import paths
from world.binder import AsgBinder

from test_deploy import last_deployment as _last, registered as _registered, revision, serving as _serving

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")
SOURCE = "web-asg"
TAGS = {"Role": "web", "Team": "payments"}


def _inventory(world, tmp_path, action="TERMINATE"):
    """web_seed (in place: v1 on the source group's hosts) and web_production (BLUE_GREEN, COPY_AUTO_SCALING_GROUP of web-asg)."""
    blue_green = {"terminate_blue_instances_on_deployment_success": {"action": action, "termination_wait_time_in_minutes": 0},
                  "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT"},
                  "green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}}
    groups = {
        "seed": {"autoscaling_groups": [SOURCE], "deployment_config": "CodeDeployDefault.AllAtOnce"},
        "production": {"autoscaling_groups": [SOURCE], "deployment_config": "CodeDeployDefault.AllAtOnce",
                       "deployment_style": {"type": "BLUE_GREEN"}, "load_balancer": {"target_groups": ["web-tg"]}, "blue_green": blue_green},
    }
    return world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": groups})


def _deploy(world, inv, rev, ledger_path, group, check=True, options=(), **extra):
    extra_vars = {"deployment_group": group, "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check, options=options)


def _states(aws, ids):
    found = aws.ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}


def _groups(aws):
    return {g["AutoScalingGroupName"]: g for g in aws.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}


def _source(world, aws, tmp_path, action="TERMINATE", size=2):
    """The source group of ``size`` bound fleet hosts serving v1, registered in web-tg; returns (blue, arn, inv, ledger)."""
    arn = aws.target_group("web-tg")
    aws.autoscaling_group(SOURCE, size, tags=TAGS, target_group_arns=[arn])
    blue = world.bind_autoscaling_group(aws, SOURCE)
    inv = _inventory(world, tmp_path, action)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, "web_seed")
    if _registered(aws, arn) != set(blue):  # moto registers an ASG's instances in its target groups; make sure of it
        aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in blue])
    assert _registered(aws, arn) == set(blue)
    return blue, arn, inv, ledger_path


def test_copy_terminate_moves_traffic_to_the_copy_and_deletes_the_original_group(world, aws, fleet_hosts, tmp_path):
    blue, arn, inv, ledger_path = _source(world, aws, tmp_path, "TERMINATE")
    source = _groups(aws)[SOURCE]
    with AsgBinder(world) as binder:
        result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production")
    assert not binder.errors
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded", deployment.get("error")
    name = "CodeDeploy_production_%s" % deployment["deployment_id"]
    groups = _groups(aws)
    assert SOURCE not in groups and set(_states(aws, blue).values()) <= {"shutting-down", "terminated"}
    copy = groups[name]
    assert copy["LaunchTemplate"]["LaunchTemplateId"] == source["LaunchTemplate"]["LaunchTemplateId"]
    assert copy["LaunchTemplate"]["Version"] == source["LaunchTemplate"]["Version"]
    assert copy["VPCZoneIdentifier"] == source["VPCZoneIdentifier"]
    assert {t["Key"]: t["Value"] for t in copy["Tags"]} == TAGS
    assert copy["DesiredCapacity"] == len(blue) and not copy.get("TargetGroupARNs")
    green = {i["InstanceId"] for i in copy["Instances"]}
    assert len(green) == len(blue) and green <= set(binder.bound)
    assert _registered(aws, arn) == green
    for instance in green:
        assert _serving(world, binder.bound[instance]) == "sample-app 2.0.0"
    roles = {i["instance_id"]: i.get("role") for i in deployment["instances"]}
    assert roles == dict([(i, "blue") for i in blue] + [(i, "green") for i in green])
    swap = deployment["swap"]
    assert swap["green_asg"]["name"] == name and swap["green_asg"]["arn"] == copy["AutoScalingGroupARN"]
    assert swap["green_asg"]["source_name"] == SOURCE and swap["green_asg"]["desired"] == len(blue)
    assert swap["blue_asg"]["name"] == SOURCE and swap["blue_asg"]["action"] == "deleted" and swap["state"] == "rerouted"
    assert name in result.stdout and copy["AutoScalingGroupARN"] in result.stdout


def test_a_failure_on_the_copy_before_the_reroute_deletes_it_and_leaves_blue_serving(world, aws, fleet_hosts, tmp_path):
    blue, arn, inv, ledger_path = _source(world, aws, tmp_path, "TERMINATE")
    with AsgBinder(world) as binder:
        result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0", failing_hosts=[]), ledger_path, "web_production", check=False)
    assert result.returncode != 0
    deployment = _last(ledger_path)
    assert deployment["status"] == "Failed" and deployment["error"]["code"] == "HEALTH_CONSTRAINTS", deployment["error"]
    assert list(_groups(aws)) == [SOURCE]
    assert set(_states(aws, binder.bound).values()) <= {"shutting-down", "terminated"} and len(binder.bound) == len(blue)
    assert set(_states(aws, blue).values()) == {"running"}
    assert _registered(aws, arn) == set(blue)
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    swap = deployment["swap"]
    assert swap["green_asg"]["state"] == "deleted" and swap["state"] == "rolled_back"
    assert "was deleted with its instances" in deployment["error"]["message"] or "was deleted with its instances" in result.stdout


def test_check_mode_creates_nothing_and_says_what_it_would_create(world, aws, fleet_hosts, tmp_path):
    blue, _arn, inv, ledger_path = _source(world, aws, tmp_path, "KEEP_ALIVE", size=2)
    result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", options=["--check"])
    assert "would be created first: Auto Scaling group CodeDeploy_production_d-" in result.stdout
    assert "with 2 instance(s)" in result.stdout and "not its load balancers" in result.stdout
    assert list(_groups(aws)) == [SOURCE] and set(_states(aws, blue).values()) == {"running"}


def test_green_hosts_with_a_copying_group_is_refused(world, aws, fleet_hosts, tmp_path):
    _blue, _arn, inv, ledger_path = _source(world, aws, tmp_path, "KEEP_ALIVE")
    result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", check=False, green_hosts="web_seed")
    assert result.returncode != 0 and "green_hosts='web_seed' is not accepted" in result.stdout and "COPY_AUTO_SCALING_GROUP" in result.stdout
    assert list(_groups(aws)) == [SOURCE]


def test_instances_that_never_get_an_address_fail_the_deployment_and_the_copy_is_deleted(world, aws, fleet_hosts, tmp_path):
    blue, arn, inv, ledger_path = _source(world, aws, tmp_path, "TERMINATE")
    # No binder: the copy's instances are InService but never get the address ansible_host_source reads.
    result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", check=False,
                     codedeploy_green_fleet_timeout=3)
    assert result.returncode != 0
    deployment = _last(ledger_path)
    assert deployment["status"] == "Failed" and deployment["error"]["code"] == "TIMEOUT", deployment["error"]
    assert "were not all InService with an address" in deployment["error"]["message"]
    assert deployment["swap"]["green_asg"]["state"] == "deleted"
    assert list(_groups(aws)) == [SOURCE]
    assert _registered(aws, arn) == set(blue) and set(_states(aws, blue).values()) == {"running"}
    assert {i["status"] for i in deployment["instances"]} == {"Skipped"}
