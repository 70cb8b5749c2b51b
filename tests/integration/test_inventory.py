"""The rollout.codedeploy.codedeploy inventory plugin against the moto server and the SSH fleet.

The expected hosts are computed here from moto's own answers with a plain re-statement of
CodeDeploy's rules (docs/codedeploy-rules.md §2), independent of the plugin's code.
"""
import json
import random

import pytest
import yaml

from world.aws import ADDRESS_TAG, REGION, ZONES

pytestmark = [pytest.mark.aws]

KEYS = ["Env", "Role", "Team", "Cost Center", "env"]
VALUES = {
    "Env": ["prod", "Prod", "staging", "prod "],
    "Role": ["web", "api", "db", "Web"],
    "Team": ["web platform", "web  platform", "payments"],
    "Cost Center": ["R&D 42", "r&d 42"],
    "env": ["prod"],
}


# ----------------------------------------------------------------------------------------------
# A plain reference of CodeDeploy's selection rules
# ----------------------------------------------------------------------------------------------
def matches(tag_filter, tags):
    kind = tag_filter.get("type") or ("KEY_AND_VALUE" if "key" in tag_filter and "value" in tag_filter
                                      else "KEY_ONLY" if "key" in tag_filter else "VALUE_ONLY")
    if kind == "KEY_ONLY":
        return tag_filter["key"] in tags
    if kind == "VALUE_ONLY":
        return tag_filter["value"] in tags.values()
    return tags.get(tag_filter["key"]) == tag_filter["value"]


def expected_hosts(group, instances, members, on_premises, states=("InService",)):
    """Instance ids (running only) and on-premises names that ``group`` (as written in the file) selects."""
    selected = set()
    for instance_id, (state, tags) in instances.items():
        if state != "running":
            continue
        by_tags = False
        if group.get("ec2_tag_filters"):
            by_tags = any(matches(f, tags) for f in group["ec2_tag_filters"])
        elif group.get("ec2_tag_set"):
            by_tags = all(any(matches(f, tags) for f in g) for g in group["ec2_tag_set"])
        member = members.get(instance_id)
        by_asg = member is not None and member[0] in group.get("autoscaling_groups", []) and member[1] in states
        if by_tags or by_asg:
            selected.add(instance_id)
    for instance in on_premises:
        if group.get("on_premises_tag_filters") and any(matches(f, instance["tags"]) for f in group["on_premises_tag_filters"]):
            selected.add(instance["name"])
        if group.get("on_premises_tag_set") and all(any(matches(f, instance["tags"]) for f in g)
                                                    for g in group["on_premises_tag_set"]):
            selected.add(instance["name"])
    return selected


def described(aws):
    """Every instance moto knows (``{id: (state, tags)}``) and every ASG member (``{id: (asg, lifecycle)}``)."""
    instances = {}
    for page in aws.ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                instances[instance["InstanceId"]] = (instance["State"]["Name"],
                                                     {t["Key"]: t["Value"] for t in instance.get("Tags", [])})
    members = {}
    for page in aws.autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            for member in group["Instances"]:
                members[member["InstanceId"]] = (group["AutoScalingGroupName"], member["LifecycleState"])
    return instances, members


def write_inventory(path, world, applications, **options):
    document = {"plugin": "rollout.codedeploy.codedeploy", "regions": [REGION], "endpoint_url": world.moto.endpoint,
                "applications": applications}
    document.update(options)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def inventory_list(world, path, *extra, env=None):
    proc = world.ansible(["ansible-inventory", "-i", path, "--list"] + list(extra), env=env)
    return json.loads(proc.stdout), proc


def group_hosts(data, group):
    return set(data.get(group, {}).get("hosts", []))


def unwrap(value):
    """ansible-inventory marks strings from inventory plugins as unsafe: {"__ansible_unsafe": "x"}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------------
# A few hundred instances, three ASGs, stopped and terminated ones
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def estate(aws):
    """About 300 instances: 3 ASGs (some members in Standby) and standalone ones in many reservations."""
    rng = random.Random(4)
    aws.autoscaling_group("web-asg", 40, tags={"Env": "prod", "Role": "web"})
    aws.autoscaling_group("api-asg", 30, tags={"Env": "prod", "Role": "api"})
    aws.autoscaling_group("batch-asg", 20, tags={"Env": "staging", "Role": "batch"})
    web = aws.asg_instances("web-asg")
    aws.autoscaling.enter_standby(AutoScalingGroupName="web-asg", InstanceIds=web[:3], ShouldDecrementDesiredCapacity=True)
    launched = 0
    while launched < 210:
        count = rng.randint(1, 4)
        tags = {key: rng.choice(VALUES[key]) for key in rng.sample(KEYS, rng.randint(0, 3))}
        state = rng.choice(["running"] * 8 + ["stopped", "terminated"])
        aws.launch(count, tags, zone=rng.choice(ZONES), state=state)
        launched += count
    on_premises = [
        {"name": "rack1-web1", "address": "192.0.2.11", "tags": {"Env": "prod", "Role": "web"}},
        {"name": "rack1-web2", "address": "192.0.2.12", "tags": {"Env": "Prod", "Role": "web"}},
        {"name": "rack1-db1", "address": "192.0.2.13", "tags": {"Env": "prod", "Role": "db"}},
        {"name": "rack2-api1", "address": "192.0.2.14", "tags": {"Env": "staging", "Role": "api", "Team": "web platform"}},
    ]
    return on_premises


GROUPS = {
    "by-tags": {"ec2_tag_filters": [{"key": "Role", "value": "web"}, {"key": "Team", "value": "web platform"},
                                    {"key": "Cost Center", "type": "KEY_ONLY"}]},
    "by-value": {"ec2_tag_filters": [{"value": "prod", "type": "VALUE_ONLY"}]},
    "tag-set": {"ec2_tag_set": [[{"key": "Env", "value": "prod"}],
                                [{"key": "Role", "value": "web"}, {"key": "Role", "value": "api"}],
                                [{"key": "Team", "type": "KEY_ONLY"}, {"value": "R&D 42"}]]},
    "two-asgs": {"autoscaling_groups": ["web-asg", "batch-asg"], "deployment_config": "CodeDeployDefault.HalfAtATime"},
    "mixed": {"ec2_tag_set": [[{"key": "Env", "value": "staging"}]], "autoscaling_groups": ["api-asg"],
              "on_premises_tag_set": [[{"key": "Env", "value": "prod"}], [{"key": "Role", "value": "web"}]]},
    "on-prem": {"on_premises_tag_filters": [{"key": "Team", "value": "web platform"}, {"key": "Role", "value": "db"}]},
    "case": {"ec2_tag_filters": [{"key": "env", "value": "prod"}], "on_premises_tag_filters": [{"key": "Env", "value": "Prod"}]},
}


def test_groups_select_exactly_the_expected_hosts(world, aws, estate, tmp_path):
    path = write_inventory(tmp_path / "estate.codedeploy.yml", world, {"shop": {"deployment_groups": GROUPS}},
                           on_premises_instances=estate)
    data, proc = inventory_list(world, path)
    assert "Traceback" not in proc.stderr
    instances, members = described(aws)
    assert len(instances) >= 300
    assert {state for state, _tags in instances.values()} >= {"running", "stopped", "terminated"}
    assert sum(1 for _asg, state in members.values() if state == "Standby") == 3
    for name, group in GROUPS.items():
        inventory_group = "shop_" + name.replace("-", "_")
        expected = expected_hosts(group, instances, members, estate)
        assert group_hosts(data, inventory_group) == expected, name
        assert expected, name
    case = group_hosts(data, "shop_case")
    assert "rack1-web2" in case and "rack1-web1" not in case
    assert all(instances[i][1].get("env") == "prod" for i in case if i.startswith("i-"))
    assert not any(instances[i][1].get("Env") == "prod" and "env" not in instances[i][1] for i in case if i.startswith("i-"))
    assert len(group_hosts(data, "shop_two_asgs")) == 40 - 3 + 20

    hostvars = data["_meta"]["hostvars"]
    standby = [i for i, (_asg, state) in members.items() if state == "Standby"]
    in_service = next(i for i, (asg, state) in members.items() if asg == "web-asg" and state == "InService")
    assert unwrap(hostvars[in_service]["codedeploy_lifecycle_state"]) == "InService"
    assert unwrap(hostvars[in_service]["codedeploy_autoscaling_group"]) == "web-asg"
    for instance_id in standby:
        # Standby members are out of two-asgs, but tag selection still finds them (a tag with the value prod).
        assert instance_id in group_hosts(data, "shop_by_value")
        assert instance_id not in group_hosts(data, "shop_two_asgs")
        assert unwrap(hostvars[instance_id]["codedeploy_lifecycle_state"]) == "Standby"
    assert unwrap(hostvars["rack1-web1"]["ansible_host"]) == "192.0.2.11"

    # With the lifecycle option, Standby members join their ASG's group.
    path = write_inventory(tmp_path / "standby.codedeploy.yml", world, {"shop": {"deployment_groups": {"two-asgs": GROUPS["two-asgs"]}}},
                           autoscaling_lifecycle_states=["InService", "Standby"])
    data, _proc = inventory_list(world, path)
    assert group_hosts(data, "shop_two_asgs") == expected_hosts(GROUPS["two-asgs"], instances, members, [], ("InService", "Standby"))
    assert set(standby) <= group_hosts(data, "shop_two_asgs")


def test_graph_and_group_vars(world, aws, estate, tmp_path):
    path = write_inventory(tmp_path / "estate.codedeploy.yml", world, {"shop": {"deployment_groups": GROUPS}},
                           on_premises_instances=estate,
                           deployment_configs={"TwoAtATime": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}})
    graph = world.ansible(["ansible-inventory", "-i", path, "--graph"]).stdout
    for name in GROUPS:
        assert "@shop_%s:" % name.replace("-", "_") in graph
    assert "rack1-db1" in graph
    data, _proc = inventory_list(world, path, "--export")
    settings = unwrap(data["shop_two_asgs"]["vars"]["codedeploy_deployment_group"])
    assert settings["deployment_config"] == "CodeDeployDefault.HalfAtATime"
    assert settings["selection"]["autoscaling_groups"] == ["web-asg", "batch-asg"]
    assert settings["region"] == REGION and settings["application"] == "shop" and settings["name"] == "two-asgs"
    assert set(unwrap(data["all"]["vars"]["codedeploy_deployment_groups"])) == {"shop_" + n.replace("-", "_") for n in GROUPS}


def test_awx_style_source(world, aws, estate, tmp_path):
    """AWX runs ansible-inventory on a project file with the credential in the environment and fails on an unparsed source."""
    project = tmp_path / "project" / "inventories"
    project.mkdir(parents=True)
    path = write_inventory(project / "shop.codedeploy.yaml", world,
                           {"shop": {"deployment_groups": {"tag-set": GROUPS["tag-set"]}}})
    env = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}
    data, _proc = inventory_list(world, path, "--export", env=env)
    assert data["shop_tag_set"]["hosts"]
    bad = write_inventory(project / "broken.codedeploy.yml", world,
                          {"shop": {"deployment_groups": {"x": {"ec2_tag_set": [[{"key": "a", "value": "b"}]] * 4}}}})
    proc = world.ansible(["ansible-inventory", "-i", bad, "--list"], env=env, check=False)
    assert proc.returncode != 0
    assert 'application "shop", deployment group "x", key ec2_tag_set: 4 tag groups given; CodeDeploy allows at most 3' \
        in proc.stderr.replace("\n", " ")
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------------------------
# Fleet hosts bound to instances are reachable through the plugin's inventory
# ----------------------------------------------------------------------------------------------
@pytest.mark.fleet
def test_selected_fleet_hosts_answer_ping(world, aws, fleet_hosts, tmp_path):
    standalone = world.launch_bound(aws, 3, {"Role": "web", "Env": "test"}, zone="us-east-1b")
    world.launch_bound(aws, 1, {"Role": "db", "Env": "test"})
    aws.launch(2, {"Role": "web", "Env": "test"}, state="stopped")
    aws.autoscaling_group("ping-asg", 2, tags={"Role": "worker"})
    members = world.bind_autoscaling_group(aws, "ping-asg")
    (spare,) = world.free_hosts(aws, 1)
    path = write_inventory(
        tmp_path / "fleet.codedeploy.yml", world,
        {"web": {"deployment_groups": {"production": {
            "ec2_tag_set": [[{"key": "Env", "value": "test"}], [{"key": "Role", "value": "web"}]],
            "autoscaling_groups": ["ping-asg"],
            "on_premises_tag_filters": [{"key": "Role", "value": "web"}]}}}},
        on_premises_instances=[{"name": "rack-web", "address": spare.address, "tags": {"Role": "web"}}],
        hostnames=["tag:Name", "instance-id"],
        ansible_host_source=["tag:%s" % ADDRESS_TAG])
    data, _proc = inventory_list(world, path)
    expected = {h.name for h in standalone.values()} | {h.name for h in members.values()} | {"rack-web"}
    assert group_hosts(data, "web_production") == expected
    proc = world.ansible(["ansible", "web_production", "-i", path, "-m", "ansible.builtin.ping", "-o"])
    answered = {line.split(" | ")[0] for line in proc.stdout.splitlines() if " | SUCCESS" in line}
    assert answered == expected
    addresses = {h.name: h.address for h in list(standalone.values()) + list(members.values())}
    addresses["rack-web"] = spare.address
    for name, address in addresses.items():
        assert unwrap(data["_meta"]["hostvars"][name]["ansible_host"]) == address
