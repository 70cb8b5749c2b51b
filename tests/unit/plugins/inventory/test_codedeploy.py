# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the rollout.codedeploy.codedeploy inventory plugin, against moto in process (no server, no fleet)."""

import collections

import boto3
import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from moto import mock_aws

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")


class World:
    """An in-process moto account with a VPC, and helpers to launch tagged instances and ASGs."""

    def __init__(self):
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION)
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = {zone: self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.%d.0/24" % n, AvailabilityZone=zone)
                        ["Subnet"]["SubnetId"] for n, zone in enumerate(ZONES)}
        self.image = sorted(i["ImageId"] for i in self.ec2.describe_images(Owners=["amazon"])["Images"])[0]

    def launch(self, count, tags, zone=ZONES[0], state="running", region=REGION):
        ec2 = self.ec2 if region == REGION else boto3.client("ec2", region_name=region)
        kwargs = {"SubnetId": self.subnets[zone]} if region == REGION else {}
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
        ids = [i["InstanceId"] for i in ec2.run_instances(
            ImageId=self.image if region == REGION else sorted(
                i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"])[0],
            MinCount=count, MaxCount=count, InstanceType="t3.micro", TagSpecifications=spec, **kwargs)["Instances"]]
        if state == "stopped":
            ec2.stop_instances(InstanceIds=ids)
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=ids)
        return ids

    def asg(self, name, desired, tags=None):
        self.ec2.create_launch_template(LaunchTemplateName=name + "-lt", LaunchTemplateData={
            "ImageId": self.image, "InstanceType": "t3.micro"})
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name + "-lt", "Version": "$Latest"},
            MinSize=0, MaxSize=desired * 2 + 2, DesiredCapacity=desired, VPCZoneIdentifier=",".join(self.subnets.values()),
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                  for k, v in (tags or {}).items()])
        group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    def standby(self, name, ids):
        self.autoscaling.enter_standby(AutoScalingGroupName=name, InstanceIds=ids, ShouldDecrementDesiredCapacity=True)


@pytest.fixture
def aws(monkeypatch):
    """AWS mocked in process, with credentials that cannot reach a real account."""
    for key in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def world(aws):
    return World()


class Warnings:
    def __init__(self):
        self.messages = []

    def warning(self, message, *args, **kwargs):
        self.messages.append(message)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class Run:
    """One parse of an inventory source: the inventory, the AWS operations called, the warnings."""

    def __init__(self, inventory, calls, warnings):
        self.inventory = inventory
        self.calls = calls
        self.warnings = warnings

    def hosts(self, group):
        return sorted(h.name for h in self.inventory.groups[group].get_hosts())

    def hostvars(self, host):
        return self.inventory.get_host(host).get_vars()

    def group_vars(self, group):
        return self.inventory.groups[group].get_vars()


def parse(tmp_path, config, name="web.codedeploy.yml", cache=False, plugin=None):
    path = tmp_path / name
    document = {"plugin": "rollout.codedeploy.codedeploy", "regions": [REGION]}
    document.update(config)
    document = {k: v for k, v in document.items() if v is not None}  # regions=None: leave the option out
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    plugin = plugin or inventory_loader.get("rollout.codedeploy.codedeploy")
    calls = collections.Counter()
    original = type(plugin).client

    def counting_client(self, service, *args, **kwargs):
        client = original(self, service, *args, **kwargs)
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        return client

    plugin.client = counting_client.__get__(plugin)
    warnings = Warnings()
    plugin.display = warnings
    inventory = InventoryData()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if config.get("cache"):
        plugin.update_cache_if_changed()  # what the inventory manager does after a parse
    return Run(inventory, calls, warnings.messages)


def fail(tmp_path, config):
    with pytest.raises(AnsibleParserError) as caught:
        parse(tmp_path, config)
    message = str(caught.value)
    assert "Traceback" not in message
    return message


ROLE_WEB = {"ec2_tag_filters": [{"key": "Role", "value": "web"}]}


def apps(**groups):
    return {"applications": {"web": {"deployment_groups": groups}}}


# ----------------------------------------------------------------------------------------------
# Selection
# ----------------------------------------------------------------------------------------------
def test_groups_select_exactly_what_codedeploy_would(world, tmp_path):
    prod_web = world.launch(3, {"Env": "prod", "Role": "web"})
    prod_api = world.launch(2, {"Env": "prod", "Role": "api"}, zone=ZONES[1])
    world.launch(2, {"Env": "prod", "Role": "db"})
    world.launch(1, {"Env": "Prod", "Role": "web"})
    world.launch(1, {"Env": "prod ", "Role": "web"})
    world.launch(2, {"Env": "prod", "Role": "web"}, state="stopped")
    world.launch(1, {"Env": "prod", "Role": "web"}, state="terminated")
    staging = world.launch(2, {"Env": "staging"})
    canary = world.launch(1, {"Canary": ""})
    spaced = world.launch(1, {"Team": "web platform"})
    world.launch(1, {"Team": "web  platform"})
    members = world.asg("web-asg", 3, {"Role": "web"})
    config = apps(
        production={"ec2_tag_set": [[{"key": "Env", "value": "prod"}],
                                    [{"key": "Role", "value": "web"}, {"key": "Role", "value": "api"}]],
                    "deployment_config": "CodeDeployDefault.HalfAtATime"},
        staging={"ec2_tag_filters": [{"key": "Env", "value": "staging"}, {"key": "Canary", "type": "KEY_ONLY"},
                                     {"key": "Team", "value": "web platform"}]},
        fleet={"autoscaling_groups": ["web-asg"]},
        empty={"ec2_tag_filters": [{"key": "Env", "value": "nowhere"}]},
    )
    config["on_premises_instances"] = [{"name": "rack1-web1", "address": "192.0.2.11", "tags": {"Env": "prod"}},
                                       {"name": "rack1-db1", "address": "192.0.2.12", "tags": {"Env": "staging"}}]
    config["applications"]["web"]["deployment_groups"]["staging"]["on_premises_tag_filters"] = [{"value": "staging"}]
    run = parse(tmp_path, config)
    assert run.hosts("web_production") == sorted(prod_web + prod_api)
    assert run.hosts("web_staging") == sorted(staging + canary + spaced + ["rack1-db1"])
    assert run.hosts("web_fleet") == sorted(members)
    assert run.hosts("web_empty") == []
    assert "rack1-web1" not in run.inventory.hosts
    settings = run.group_vars("web_production")["codedeploy_deployment_group"]
    assert settings["deployment_config"] == "CodeDeployDefault.HalfAtATime"
    assert settings["application"] == "web" and settings["name"] == "production"
    all_settings = run.group_vars("all")["codedeploy_deployment_groups"]
    assert sorted(all_settings) == ["web_empty", "web_fleet", "web_production", "web_staging"]
    assert all_settings["web_production"] == settings
    # One ASG listing and one instance listing per narrowable query, whatever the number of instances.
    assert set(run.calls) == {"DescribeAutoScalingGroups", "DescribeInstances"}
    assert run.calls["DescribeAutoScalingGroups"] == 1


def test_host_vars(world, tmp_path):
    (web,) = world.launch(1, {"Role": "web", "Name": "web-1", "FleetAddress": "10.213.0.7", "tags": "x"}, zone=ZONES[1])
    members = world.asg("web-asg", 1, {"Role": "web"})
    config = apps(production={"ec2_tag_filters": [{"key": "Role", "value": "web"}], "autoscaling_groups": ["web-asg"]})
    config["on_premises_instances"] = [{"name": "rack1", "address": "192.0.2.11", "tags": {"Role": "web"}}]
    config["applications"]["web"]["deployment_groups"]["production"]["on_premises_tag_filters"] = [{"key": "Role", "value": "web"}]
    run = parse(tmp_path, config)
    described = world.ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]
    host = run.inventory.get_host(web).vars
    assert host["codedeploy_instance_id"] == web
    assert host["codedeploy_instance_kind"] == "ec2"
    assert host["codedeploy_region"] == REGION
    assert host["codedeploy_availability_zone"] == ZONES[1]
    assert host["codedeploy_private_ip_address"] == described["PrivateIpAddress"]
    assert host["codedeploy_public_ip_address"] == described.get("PublicIpAddress")
    assert host["ansible_host"] == described["PrivateIpAddress"]
    assert host["codedeploy_tags"] == {"Role": "web", "Name": "web-1", "FleetAddress": "10.213.0.7", "tags": "x"}
    assert host["codedeploy_autoscaling_group"] is None and host["codedeploy_lifecycle_state"] is None
    assert "tags" not in host
    member = run.inventory.get_host(members[0]).vars
    assert member["codedeploy_autoscaling_group"] == "web-asg"
    assert member["codedeploy_lifecycle_state"] == "InService"
    rack = run.inventory.get_host("rack1").vars
    assert rack["ansible_host"] == "192.0.2.11"
    assert rack["codedeploy_instance_kind"] == "on_premises"
    assert rack["codedeploy_availability_zone"] is None
    assert set(rack) == set(host)


def test_host_in_several_groups_has_one_set_of_host_vars(world, tmp_path):
    (both,) = world.launch(1, {"Env": "prod", "Role": "web"})
    run = parse(tmp_path, apps(a={"ec2_tag_filters": [{"key": "Env", "value": "prod"}], "deployment_config": "CodeDeployDefault.AllAtOnce"},
                               b={"ec2_tag_filters": [{"key": "Role", "value": "web"}]}))
    assert run.hosts("web_a") == run.hosts("web_b") == [both]
    assert not any(k.startswith("codedeploy_deployment_group") for k in run.inventory.get_host(both).vars)
    groups = run.group_vars("all")["codedeploy_deployment_groups"]
    assert groups["web_a"]["deployment_config"] == "CodeDeployDefault.AllAtOnce"
    assert groups["web_b"]["deployment_config"] == "CodeDeployDefault.OneAtATime"
    assert run.calls["DescribeInstances"] == 2  # tag:Env and tag:Role: one query each


def test_autoscaling_lifecycle_states(world, tmp_path):
    members = world.asg("web-asg", 4)
    world.standby("web-asg", members[:1])
    config = apps(fleet={"autoscaling_groups": ["web-asg", "gone-asg"]})
    run = parse(tmp_path, config)
    assert run.hosts("web_fleet") == sorted(members[1:])
    assert any("gone-asg" in w and "web/fleet" in w for w in run.warnings)
    config["autoscaling_lifecycle_states"] = ["InService", "Standby"]
    run = parse(tmp_path, config)
    assert run.hosts("web_fleet") == sorted(members)
    assert run.inventory.get_host(members[0]).vars["codedeploy_lifecycle_state"] == "Standby"


def test_tag_selected_asg_members_ignore_the_lifecycle_filter(world, tmp_path):
    members = world.asg("web-asg", 2, {"Role": "web"})
    world.standby("web-asg", members[:1])
    run = parse(tmp_path, apps(byasg={"autoscaling_groups": ["web-asg"]},
                               bytag={"ec2_tag_filters": [{"key": "Role", "value": "web"}]}))
    assert run.hosts("web_byasg") == [members[1]]
    assert run.hosts("web_bytag") == sorted(members)
    assert run.inventory.get_host(members[0]).vars["codedeploy_autoscaling_group"] == "web-asg"
    # ASG members already fetched by the tag query are not described again.
    assert run.calls["DescribeInstances"] == 1


def test_pagination(world, tmp_path, monkeypatch):
    from ansible_collections.rollout.codedeploy.plugins.inventory import codedeploy

    ids = []
    for _reservation in range(12):
        ids += world.launch(1, {"Role": "web"})
    members = world.asg("web-asg", 5)
    monkeypatch.setattr(codedeploy, "EC2_PAGE_SIZE", 5)
    monkeypatch.setattr(codedeploy, "INSTANCE_IDS_PER_CALL", 2)
    run = parse(tmp_path, apps(a={"ec2_tag_filters": [{"key": "Role", "value": "web"}], "autoscaling_groups": ["web-asg"]}))
    assert run.hosts("web_a") == sorted(ids + members)
    # 12 reservations in pages of 5, then the 5 ASG members: more than one call of ids holds, so by ASG name.
    assert run.calls["DescribeInstances"] == 3 + 1
    monkeypatch.setattr(codedeploy, "INSTANCE_IDS_PER_CALL", 3)
    run = parse(tmp_path, apps(a={"autoscaling_groups": ["web-asg"]}))
    assert run.hosts("web_a") == sorted(members)
    assert run.calls["DescribeInstances"] == 1


def test_no_call_per_instance(world, tmp_path):
    config = apps(a={"ec2_tag_set": [[{"key": "Env", "value": "prod"}], [{"key": "Role", "value": "web"}]],
                     "autoscaling_groups": ["asg"]}, b={"ec2_tag_filters": [{"key": "Env", "value": "dev"}]})
    world.asg("asg", 2)
    world.launch(3, {"Env": "prod", "Role": "web"})
    small = parse(tmp_path, config)
    world.launch(40, {"Env": "prod", "Role": "web"})
    world.launch(40, {"Env": "dev"})
    world.autoscaling.set_desired_capacity(AutoScalingGroupName="asg", DesiredCapacity=6)
    large = parse(tmp_path, config)
    assert len(large.hosts("web_a")) == 49 and len(large.hosts("web_b")) == 40
    assert large.calls == small.calls


def test_only_aws_calls_that_are_needed(aws, tmp_path):
    run = parse(tmp_path, {"on_premises_instances": [{"name": "r1", "tags": {"Role": "web"}}],
                           **apps(a={"on_premises_tag_filters": [{"key": "Role", "value": "web"}]})})
    assert run.hosts("web_a") == ["r1"]
    assert run.inventory.get_host("r1").vars["ansible_host"] == "r1"
    assert not run.calls


def test_regions(world, tmp_path):
    (east,) = world.launch(1, {"Role": "web"})
    (west,) = world.launch(1, {"Role": "web"}, region="us-west-2")
    config = apps(east={"ec2_tag_filters": [{"key": "Role", "value": "web"}]},
                  west={"ec2_tag_filters": [{"key": "Role", "value": "web"}], "region": "us-west-2",
                        "on_premises_tag_filters": [{"key": "Role", "value": "web"}]})
    config["regions"] = [REGION, "us-west-2"]
    config["on_premises_instances"] = [{"name": "r-east", "tags": {"Role": "web"}},
                                       {"name": "r-west", "tags": {"Role": "web"}, "region": "us-west-2"}]
    run = parse(tmp_path, config)
    assert run.hosts("web_east") == [east]
    assert run.hosts("web_west") == sorted([west, "r-west"])
    assert run.inventory.get_host(west).vars["codedeploy_region"] == "us-west-2"
    assert run.group_vars("web_west")["codedeploy_deployment_group"]["region"] == "us-west-2"


# ----------------------------------------------------------------------------------------------
# Host names, ansible_host, constructed features
# ----------------------------------------------------------------------------------------------
def test_hostnames_and_ansible_host_source(world, tmp_path):
    (named,) = world.launch(1, {"Role": "web", "Name": "Web-1", "FleetAddress": "10.213.0.9"})
    (unnamed,) = world.launch(1, {"Role": "web"})
    (twin,) = world.launch(1, {"Role": "web", "Name": "Web-1"})
    config = apps(a={"ec2_tag_filters": [{"key": "Role", "value": "web"}]})
    config.update({"hostnames": ["tag:Name | lower", "instance-id"],
                   "ansible_host_source": ["tag:FleetAddress", "public_ip_address", "private_dns_name"]})
    run = parse(tmp_path, config)
    first, second = sorted([named, twin])
    assert run.hosts("web_a") == sorted(["web-1", "web-1_" + second, unnamed])
    assert run.inventory.get_host("web-1").vars["codedeploy_instance_id"] == first
    assert any("would both be named web-1" in w for w in run.warnings)
    described = world.ec2.describe_instances(InstanceIds=[unnamed])["Reservations"][0]["Instances"][0]
    expected = described.get("PublicIpAddress") or described["PrivateDnsName"]
    assert expected and run.inventory.get_host(unnamed).vars["ansible_host"] == expected
    assert run.inventory.get_host("web-1" if first == named else "web-1_" + second).vars["ansible_host"] == "10.213.0.9"

    config.update({"hostnames": [{"name": "instance-id", "prefix": "tag:Role", "separator": "-"}],
                   "ansible_host_source": ["tag:FleetAddress"]})
    run = parse(tmp_path, config)
    assert run.hosts("web_a") == sorted("web-" + i for i in (named, unnamed, twin))
    assert "ansible_host" not in run.inventory.get_host("web-" + unnamed).vars
    assert any("no value for ansible_host_source" in w for w in run.warnings)


def test_constructed(world, tmp_path):
    (a,) = world.launch(1, {"Role": "web", "Env": "prod"}, zone=ZONES[0])
    (b,) = world.launch(1, {"Role": "web", "Env": "dev"}, zone=ZONES[1])
    config = apps(a={"ec2_tag_filters": [{"key": "Role", "value": "web"}]})
    config.update({
        "compose": {"ansible_host": "codedeploy_instance_id", "env": "codedeploy_tags.Env"},
        "groups": {"production": "codedeploy_tags.Env == 'prod'"},
        "keyed_groups": [{"key": "codedeploy_availability_zone", "prefix": "az"}],
    })
    run = parse(tmp_path, config)
    assert run.hosts("production") == [a]
    assert run.hosts("az_us_east_1a") == [a] and run.hosts("az_us_east_1b") == [b]
    assert run.inventory.get_host(b).vars["ansible_host"] == b
    assert run.inventory.get_host(b).vars["env"] == "dev"


def test_cache(world, tmp_path):
    """The AWS answers are cached (jsonfile here) and reused only for the same selections; a refresh asks AWS."""
    world.launch(2, {"Role": "web"})
    (db,) = world.launch(1, {"Role": "db"})
    config = apps(a={"ec2_tag_filters": [{"key": "Role", "value": "web"}]})
    config.update({"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")})
    first = parse(tmp_path, config, cache=True)
    assert first.calls["DescribeInstances"] == 1
    world.launch(1, {"Role": "web"})
    second = parse(tmp_path, config, cache=True)
    assert not second.calls and len(second.hosts("web_a")) == 2
    refreshed = parse(tmp_path, config, cache=False)
    assert refreshed.calls["DescribeInstances"] == 1 and len(refreshed.hosts("web_a")) == 3
    config["applications"]["web"]["deployment_groups"]["a"]["ec2_tag_filters"] = [{"key": "Role", "value": "db"}]
    changed = parse(tmp_path, config, cache=True)
    assert changed.calls["DescribeInstances"] == 1 and changed.hosts("web_a") == [db]
    config["cache"] = False
    uncached = parse(tmp_path, config, cache=True)
    assert uncached.calls["DescribeInstances"] == 1


# ----------------------------------------------------------------------------------------------
# Errors: file, application, group, key, value and fix; never a traceback
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, words", [
    (apps(p={"ec2_tag_filters": [{"key": "a", "value": "b"}], "ec2_tag_set": [[{"key": "a", "value": "b"}]]}),
     ['application "web", deployment group "p", key ec2_tag_set', "both given"]),
    (apps(p={"ec2_tag_set": [[{"key": "a", "value": "b"}]] * 4}), ["key ec2_tag_set", "at most 3"]),
    (apps(p={"autoscaling_groups": ["a%d" % i for i in range(11)]}), ["key autoscaling_groups", "at most 10"]),
    (apps(p={"deployment_config": "CodeDeployDefault.HalfAtTime"}), ["key deployment_config", "Did you mean CodeDeployDefault.HalfAtATime?"]),
    (apps(p={"deploymentConfigName": "x"}), ["key deploymentConfigName", "unknown key", "Use deployment_config"]),
    (apps(p={"ec2_tag_filters": [{"key": "Env", "value": "prod", "type": "KEY"}]}),
     ["key ec2_tag_filters[0].type: \"KEY\" is not a tag filter type", "KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"]),
    ({"applications": {"web": {"groups": {}}}}, ['key applications.web.groups', "Allowed keys: deployment_groups"]),
    ({**apps(p=ROLE_WEB), "deployment_configs": {"Bad": {"minimum_healthy_hosts": {"type": "HOST_COUNT"}}}},
     ["key deployment_configs.Bad"]),
    ({**apps(p=ROLE_WEB), "ansible_host_source": ["fleet_address"]}, ["key ansible_host_source", "tag:<Key>"]),
    ({**apps(p=ROLE_WEB), "autoscaling_lifecycle_states": ["in service"]}, ["autoscaling_lifecycle_states[0]", "InService"]),
    ({**apps(p=ROLE_WEB), "on_premises_instances": [{"name": "a", "tags": {"Role": ["web"]}}]}, ["on_premises_instances[0].tags.Role"]),
])
def test_errors(aws, tmp_path, config, words):
    message = fail(tmp_path, config)
    assert message.startswith(str(tmp_path / "web.codedeploy.yml") + ": ")
    for word in words:
        assert word in message, message


def test_aws_errors_are_parser_errors(world, tmp_path, monkeypatch):
    import botocore.exceptions

    def broken(*args, **kwargs):
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    from ansible_collections.rollout.codedeploy.plugins.inventory import codedeploy
    monkeypatch.setattr(codedeploy.InventoryModule, "_describe_autoscaling",
                        lambda self, region, names: self._fail("DescribeAutoScalingGroups failed in %s" % region))
    message = fail(tmp_path, apps(p={"autoscaling_groups": ["a"]}))
    assert "DescribeAutoScalingGroups failed in us-east-1" in message
    monkeypatch.undo()
    plugin = inventory_loader.get("rollout.codedeploy.codedeploy")
    original = type(plugin).client

    def client(self, service, *args, **kwargs):
        real = original(self, service, *args, **kwargs)
        real.meta.events.register("before-call", broken)
        return real

    plugin.client = client.__get__(plugin)
    path = tmp_path / "x.codedeploy.yml"
    path.write_text(yaml.safe_dump({"plugin": "rollout.codedeploy.codedeploy", "regions": [REGION],
                                    **apps(p={"ec2_tag_filters": [{"key": "a", "value": "b"}]})}))
    with pytest.raises(AnsibleParserError) as caught:
        plugin.parse(InventoryData(), DataLoader(), str(path), cache=False)
    assert "DescribeInstances failed in us-east-1" in str(caught.value)
    assert "endpoint_url" in str(caught.value)


@pytest.mark.parametrize("name, accepted", [
    ("web.codedeploy.yml", True),
    ("web.codedeploy.yaml", True),
    ("codedeploy.yml", True),
    ("webcodedeploy.yml", False),
    ("web.aws_ec2.yml", False),
    ("web.yml", False),
])
def test_verify_file(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: rollout.codedeploy.codedeploy\n")
    assert inventory_loader.get("rollout.codedeploy.codedeploy").verify_file(str(path)) is accepted


@pytest.mark.parametrize("key, fix", [
    ("on_premise_instances", "Use on_premises_instances."),
    ("deployment_config", "Did you mean deployment_configs?"),
    ("colour", "See ansible-doc -t inventory rollout.codedeploy.codedeploy."),
])
def test_unknown_options_are_refused(aws, tmp_path, key, fix):
    message = fail(tmp_path, {key: [], **apps(p=ROLE_WEB)})
    assert "key %s: unknown option of the inventory source. %s" % (key, fix) in message


def test_region_from_the_environment(world, tmp_path, monkeypatch):
    (east,) = world.launch(1, {"Role": "web"})
    monkeypatch.setenv("AWS_REGION", REGION)
    run = parse(tmp_path, {"regions": None, **apps(a={"ec2_tag_filters": [{"key": "Role", "value": "web"}]})})
    assert run.hosts("web_a") == [east]
    assert run.group_vars("web_a")["codedeploy_deployment_group"]["region"] == REGION


@pytest.mark.parametrize("preference, tags, name", [
    ("tag:Name", {"Name": "web-1"}, "web-1"),
    ("tag:Name=web-1", {"Name": "web-1"}, "Name_web-1"),
    ("tag:Name=web-2", {"Name": "web-1"}, None),
    ("tag:Missing,Name", {"Name": "web-1"}, "web-1"),
    ("tag:Name", {}, None),
])
def test_tag_host_names(preference, tags, name):
    from ansible_collections.rollout.codedeploy.plugins.inventory import codedeploy

    assert codedeploy.InventoryModule._tag_hostname(preference[4:], tags) == name
