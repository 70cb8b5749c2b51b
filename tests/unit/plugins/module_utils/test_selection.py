# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/selection.py: CodeDeploy's tag-filter and tag-set rules,
the deployment-group settings, and the EC2 query plan."""

import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as dc
from ansible_collections.rollout.codedeploy.plugins.module_utils import selection as sel

KO, VO, KV = sel.KEY_ONLY, sel.VALUE_ONLY, sel.KEY_AND_VALUE


def f(key=None, value=None, kind=None):
    spec = {}
    if key is not None:
        spec["key"] = key
    if value is not None:
        spec["value"] = value
    if kind is not None:
        spec["type"] = kind
    return sel.normalize_tag_filter(spec)


# ----------------------------------------------------------------------------------------------
# One filter: exact, case-sensitive, spaces kept
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag_filter, tags, expected", [
    (f("Env", "prod"), {"Env": "prod"}, True),
    (f("Env", "prod"), {"Env": "Prod"}, False),
    (f("Env", "prod"), {"env": "prod"}, False),
    (f("Env", "prod"), {"Env": "prod "}, False),
    (f("Env", "prod"), {"Env": " prod"}, False),
    (f("Env", "prod"), {"Env ": "prod"}, False),
    (f("Env", "prod"), {"Other": "prod"}, False),
    (f("Env", "prod"), {}, False),
    (f("Name", "web server 1"), {"Name": "web server 1"}, True),
    (f("Name", "web server 1"), {"Name": "web  server 1"}, False),
    (f("Name", "web server 1"), {"Name": "Web Server 1"}, False),
    (f("Cost Center", "R&D 42"), {"Cost Center": "R&D 42"}, True),
    (f("Env", ""), {"Env": ""}, True),
    (f("Env", ""), {"Env": "prod"}, False),
    (f("Env", "pro*"), {"Env": "prod"}, False),
    (f("Env", "pro*"), {"Env": "pro*"}, True),
    (f("Env", "p?od"), {"Env": "prod"}, False),
    (f("Env", kind=KO), {"Env": ""}, True),
    (f("Env", kind=KO), {"Env": "anything at all"}, True),
    (f("Env", kind=KO), {"ENV": "prod"}, False),
    (f("Env", kind=KO), {"Environment": "prod"}, False),
    (f("Env"), {"Env": "x"}, True),
    (f(value="prod", kind=VO), {"Anything": "prod"}, True),
    (f(value="prod", kind=VO), {"Env": "staging", "Stage": "prod"}, True),
    (f(value="prod", kind=VO), {"prod": "x"}, False),
    (f(value="prod", kind=VO), {"Env": "PROD"}, False),
    (f(value="two words", kind=VO), {"Env": "two words"}, True),
    (f(value="two words", kind=VO), {"Env": "two  words"}, False),
    (f(value="prod"), {"Env": "prod"}, True),
    (f(value=""), {"Env": ""}, True),
    (f(value=""), {"Env": "x"}, False),
])
def test_filter_matches(tag_filter, tags, expected):
    assert sel.filter_matches(tag_filter, tags) is expected


@pytest.mark.parametrize("spec, normalized", [
    ({"key": "Env", "value": "prod"}, {"key": "Env", "value": "prod", "type": KV}),
    ({"key": "Env"}, {"key": "Env", "value": None, "type": KO}),
    ({"value": "prod"}, {"key": None, "value": "prod", "type": VO}),
    ({"key": "Env", "value": "", "type": KO}, {"key": "Env", "value": None, "type": KO}),
    ({"key": "", "value": "prod", "type": VO}, {"key": None, "value": "prod", "type": VO}),
    ({"key": "Tier", "value": 1}, {"key": "Tier", "value": "1", "type": KV}),
    ({"key": "Env", "value": " prod "}, {"key": "Env", "value": " prod ", "type": KV}),
])
def test_filter_normalization(spec, normalized):
    assert sel.normalize_tag_filter(spec) == normalized


@pytest.mark.parametrize("spec, words", [
    ({}, ["needs a key, a value or both"]),
    ({"key": "Env", "value": "prod", "type": "key_and_value"}, ["type", "KEY_AND_VALUE", "Did you mean KEY_AND_VALUE?"]),
    ({"key": "Env", "value": "prod", "type": "KEY_ONLY"}, ["value", "ignores the value", '"prod"']),
    ({"key": "Env", "value": "prod", "type": "VALUE_ONLY"}, ["key", "ignores the key"]),
    ({"key": "Env", "type": "KEY_AND_VALUE"}, ["needs a value", "KEY_ONLY"]),
    ({"value": "x", "type": "KEY_AND_VALUE"}, ["needs a non-empty key"]),
    ({"type": "VALUE_ONLY"}, ["needs a value"]),
    ({"Key": "Env", "Value": "prod"}, ["unknown key", "Use key"]),
    ({"key": "Env", "value": True}, ["quote it", "true must be a tag value"]),
    ({"key": ["Env"], "value": "prod"}, ["must be a tag key"]),
])
def test_filter_errors(spec, words):
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_tag_filter(spec, "ec2_tag_filters[0]")
    message = str(caught.value)
    assert message.startswith("key ec2_tag_filters[0]")
    for word in words:
        assert word in message


# ----------------------------------------------------------------------------------------------
# Flat filters (OR) and tag sets (AND of ORs)
# ----------------------------------------------------------------------------------------------
PROD_WEB = [[f("Env", "prod")], [f("Role", "web"), f("Role", "api")]]


@pytest.mark.parametrize("tag_set, tags, expected", [
    (PROD_WEB, {"Env": "prod", "Role": "web"}, True),
    (PROD_WEB, {"Env": "prod", "Role": "api"}, True),
    (PROD_WEB, {"Env": "prod", "Role": "db"}, False),
    (PROD_WEB, {"Env": "staging", "Role": "web"}, False),
    (PROD_WEB, {"Env": "prod"}, False),
    (PROD_WEB, {"Role": "web"}, False),
    (PROD_WEB, {"Env": "Prod", "Role": "web"}, False),
    ([[f("Env", "prod")]], {"Env": "prod"}, True),
    ([[f("Env", "prod")], [f("Env", "staging")]], {"Env": "prod"}, False),
    ([[f("Env", kind=KO)], [f(value="web")], [f("Team", "a b")]], {"Env": "", "Role": "web", "Team": "a b"}, True),
    ([[f("Env", kind=KO)], [f(value="web")], [f("Team", "a b")]], {"Env": "", "Role": "web", "Team": "a  b"}, False),
    ([], {"Env": "prod"}, False),
])
def test_tag_set(tag_set, tags, expected):
    assert sel.tag_set_matches(tag_set, tags) is expected


@pytest.mark.parametrize("tag_filters, tags, expected", [
    ([f("Env", "prod"), f("Role", "web")], {"Role": "web"}, True),
    ([f("Env", "prod"), f("Role", "web")], {"Env": "prod"}, True),
    ([f("Env", "prod"), f("Role", "web")], {"Env": "staging", "Role": "db"}, False),
    ([f("Env", kind=KO), f(value="x")], {"Other": "x"}, True),
    ([], {"Env": "prod"}, False),
])
def test_flat_filters(tag_filters, tags, expected):
    assert sel.filters_match(tag_filters, tags) is expected


def test_tags_selected_uses_the_given_form():
    selection = {"ec2_tag_filters": [], "ec2_tag_set": PROD_WEB,
                 "on_premises_tag_filters": [f("Role", "web")], "on_premises_tag_set": []}
    assert sel.tags_selected(selection, {"Env": "prod", "Role": "web"})
    assert not sel.tags_selected(selection, {"Role": "web"})
    assert sel.tags_selected(selection, {"Role": "web"}, "on_premises")


# ----------------------------------------------------------------------------------------------
# Brute-force reference: set algebra over generated instances
# ----------------------------------------------------------------------------------------------
KEYS = ["Env", "env", "ENV", "Role", "Cost Center", " Env", "Env ", "aws:autoscaling:groupName"]
VALUES = ["prod", "Prod", "PROD", "prod ", " prod", "web", "Web", "web server", "web  server", "", "a*b", "a?b", "x\\y"]


def reference_matches(instances, tag_filter):
    """Instance indexes matching one filter, by scanning (key, value) pairs: the definition, nothing clever."""
    result = set()
    for index, tags in enumerate(instances):
        for key, value in tags.items():
            if tag_filter["type"] == KV and key == tag_filter["key"] and value == tag_filter["value"]:
                result.add(index)
            elif tag_filter["type"] == KO and key == tag_filter["key"]:
                result.add(index)
            elif tag_filter["type"] == VO and value == tag_filter["value"]:
                result.add(index)
    return result


def reference_flat(instances, tag_filters):
    selected = set()
    for tag_filter in tag_filters:
        selected |= reference_matches(instances, tag_filter)
    return selected


def reference_tag_set(instances, tag_set):
    if not tag_set:
        return set()
    selected = set(range(len(instances)))
    for group in tag_set:
        selected &= reference_flat(instances, group)
    return selected


def ec2_filter_passes(tags, filters):
    """EC2's DescribeInstances filter semantics for the names the plan uses (AND across names, OR inside)."""
    for name, values in filters.items():
        if name == "tag-key":
            ok = any(key in values for key in tags)
        elif name == "tag-value":
            ok = any(value in values for value in tags.values())
        elif name.startswith("tag:"):
            ok = name[4:] in tags and tags[name[4:]] in values
        else:
            raise AssertionError("unexpected filter name %s" % name)
        if not ok:
            return False
    return True


tag_dicts = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=4)
filter_specs = st.one_of(
    st.builds(lambda k, v: {"key": k, "value": v, "type": KV}, st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.builds(lambda k: {"key": k, "type": KO}, st.sampled_from(KEYS)),
    st.builds(lambda v: {"value": v, "type": VO}, st.sampled_from(VALUES)),
    st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(KEYS), st.sampled_from(VALUES)),
)
filter_lists = st.lists(filter_specs, min_size=1, max_size=4)
tag_sets = st.lists(filter_lists, min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances=st.lists(tag_dicts, min_size=1, max_size=40), tag_set=tag_sets)
def test_tag_set_against_brute_force(instances, tag_set):
    normalized = sel.normalize_tag_set(tag_set)
    selected = {i for i, tags in enumerate(instances) if sel.tag_set_matches(normalized, tags)}
    assert selected == reference_tag_set(instances, normalized)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances=st.lists(tag_dicts, min_size=1, max_size=40), tag_filters=filter_lists)
def test_flat_filters_against_brute_force(instances, tag_filters):
    normalized = sel.normalize_tag_filters(tag_filters)
    selected = {i for i, tags in enumerate(instances) if sel.filters_match(normalized, tags)}
    assert selected == reference_flat(instances, normalized)


def test_seeded_fleet_against_brute_force():
    """A fixed, larger fleet (1,000 instances) and 200 random tag sets: the same answer as the reference."""
    rng = random.Random(4)
    instances = [dict((rng.choice(KEYS), rng.choice(VALUES)) for _tag in range(rng.randint(0, 5))) for _host in range(1000)]
    for _round in range(200):
        spec = [[{"key": rng.choice(KEYS), "value": rng.choice(VALUES), "type": rng.choice([KV, KV, KO, VO])}
                 for _filter in range(rng.randint(1, 3))] for _group in range(rng.randint(1, 3))]
        for group in spec:
            for item in group:
                if item["type"] == KO:
                    del item["value"]
                elif item["type"] == VO:
                    del item["key"]
        normalized = sel.normalize_tag_set(spec)
        selected = {i for i, tags in enumerate(instances) if sel.tag_set_matches(normalized, tags)}
        assert selected == reference_tag_set(instances, normalized)


selections = st.one_of(
    st.builds(lambda fl: {"ec2_tag_filters": sel.normalize_tag_filters(fl), "ec2_tag_set": []}, filter_lists),
    st.builds(lambda ts: {"ec2_tag_filters": [], "ec2_tag_set": sel.normalize_tag_set(ts)}, tag_sets),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances=st.lists(tag_dicts, min_size=1, max_size=40), chosen=st.lists(selections, min_size=1, max_size=4))
def test_query_plan_fetches_a_superset(instances, chosen):
    """Whatever the selections, the EC2 queries of the plan return every instance one of them selects."""
    plan = sel.ec2_query_plan(chosen)
    fetched = {i for i, tags in enumerate(instances) if any(ec2_filter_passes(tags, q) for q in plan)}
    wanted = {i for i, tags in enumerate(instances) if any(sel.tags_selected(s, tags) for s in chosen)}
    assert wanted <= fetched
    for query in plan:
        assert sum(len(v) for v in query.values()) <= 199
        for values in query.values():
            for value in values:
                assert value and not any(c in value for c in "*?\\")


# ----------------------------------------------------------------------------------------------
# The query plan: as narrow as the selections allow
# ----------------------------------------------------------------------------------------------
def flat(*filters):
    return {"ec2_tag_filters": list(filters), "ec2_tag_set": []}


def tagset(*groups):
    return {"ec2_tag_filters": [], "ec2_tag_set": [list(g) for g in groups]}


@pytest.mark.parametrize("chosen, plan", [
    ([], []),
    ([{"ec2_tag_filters": [], "ec2_tag_set": [], "autoscaling_groups": ["a"]}], []),
    ([flat(f("Role", "web"))], [{"tag:Role": ["web"]}]),
    ([flat(f("Role", "web"), f("Role", "api"))], [{"tag:Role": ["api", "web"]}]),
    ([tagset([f("Env", "prod")], [f("Role", "web"), f("Role", "api")])], [{"tag:Env": ["prod"], "tag:Role": ["api", "web"]}]),
    ([flat(f("Role", "web"), f("Env", "prod"))], [{"tag-value": ["prod", "web"]}]),
    ([flat(f("Role", kind=KO), f("Env", "prod"))], [{"tag-key": ["Env", "Role"]}]),
    ([flat(f("Role", kind=KO), f(value="prod"))], [{}]),
    ([flat(f("Env", "pro*"))], [{"tag-key": ["Env"]}]),
    ([flat(f("Env", ""))], [{"tag-key": ["Env"]}]),
    ([tagset([f("Env", "prod")], [f("Env", "staging")])], []),
    ([tagset([f("Env", "prod"), f("Env", "dev")], [f("Env", "dev"), f("Env", "qa")])], [{"tag:Env": ["dev"]}]),
    ([tagset([f("Role", kind=KO), f(value="x")], [f("Env", "prod")])], [{"tag:Env": ["prod"]}]),
    # Two groups on the same key: one query for both.
    ([flat(f("Env", "prod")), flat(f("Env", "staging"))], [{"tag:Env": ["prod", "staging"]}]),
    ([tagset([f("Env", "prod")], [f("Role", "web")]), flat(f("Env", "staging"))], [{"tag:Env": ["prod", "staging"]}]),
    # A query implied by another is dropped.
    ([tagset([f("Env", "prod")], [f("Role", "web")]), tagset([f("Env", "prod")])], [{"tag:Env": ["prod"]}]),
    # Nothing in common: two queries.
    ([flat(f("Env", "prod")), flat(f("Team", "a"))], [{"tag:Env": ["prod"]}, {"tag:Team": ["a"]}]),
    # One selection that cannot be narrowed makes it a single listing.
    ([flat(f("Env", "prod")), flat(f("Role", kind=KO), f(value="x"))], [{}]),
])
def test_query_plan(chosen, plan):
    assert sel.ec2_query_plan(chosen) == plan


def test_query_plan_splits_long_value_lists():
    many = flat(*[f("Name", "host-%03d" % i) for i in range(450)])
    plan = sel.ec2_query_plan([many])
    assert len(plan) == 3
    assert sorted(v for q in plan for v in q["tag:Name"]) == sorted("host-%03d" % i for i in range(450))
    assert all(len(q["tag:Name"]) <= 199 for q in plan)


# ----------------------------------------------------------------------------------------------
# Deployment-group settings
# ----------------------------------------------------------------------------------------------
ROLE_WEB = [{"key": "Role", "value": "web"}]


def group(spec=None, custom=None, regions=("us-east-1",), app="web", name="production"):
    """One group; a spec that selects nothing gets ec2_tag_filters Role=web (a group must select something)."""
    spec = spec or {}
    if isinstance(spec, dict) and not any(key in spec for key in sel.SELECTION_KEYS):
        spec = dict(spec, ec2_tag_filters=ROLE_WEB)
    return sel.normalize_deployment_group(app, name, spec, custom, list(regions), regions[0] if regions else None)


def test_defaults():
    result = group({"ec2_tag_filters": [{"key": "Role", "value": "web"}]})
    assert result == {
        "application": "web",
        "name": "production",
        "inventory_group": "web_production",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "rollout.codedeploy:web:production")),
        "region": "us-east-1",
        "deployment_config": "CodeDeployDefault.OneAtATime",
        "deployment_configs": {},
        "deployment_style": {"type": "IN_PLACE", "deployment_option": "WITHOUT_TRAFFIC_CONTROL", "traffic_control": False},
        "load_balancer": {"target_groups": [], "classic_elbs": [], "haproxy_backends": []},
        "alarms": {"enabled": False, "names": [], "ignore_poll_alarm_failure": False},
        "auto_rollback": {"enabled": False, "events": []},
        "triggers": [],
        "blue_green": {
            "terminate_blue_instances_on_deployment_success": {"action": "TERMINATE", "termination_wait_time_in_minutes": 60},
            "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT", "wait_time_in_minutes": 0},
            "green_fleet_provisioning_option": {"action": "DISCOVER_EXISTING"},
        },
        "file_exists_behavior": "DISALLOW",
        "outdated_instances_strategy": "UPDATE",
        "selection": {
            "ec2_tag_filters": [{"key": "Role", "value": "web", "type": KV}],
            "ec2_tag_set": [],
            "autoscaling_groups": [],
            "on_premises_tag_filters": [],
            "on_premises_tag_set": [],
        },
    }


def test_full_group():
    custom = {"TwoAtATime": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}},
              "Unused": {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 10}}}
    result = group({
        "ec2_tag_set": [[{"key": "Env", "value": "prod"}], [{"key": "Role", "value": "web"}, {"key": "Role", "value": "api"}]],
        "autoscaling_groups": ["web-asg"],
        "on_premises_tag_filters": [{"key": "Role", "value": "web"}],
        "deployment_config": "TwoAtATime",
        "deployment_style": {"type": "IN_PLACE", "traffic_control": True},
        "load_balancer": {"target_groups": ["web-tg", {"name": "web-tg-2"}], "classic_elbs": ["old-elb"],
                          "haproxy_backends": [{"backend": "web", "runtime_api": "10.0.0.5:9999", "drain_timeout": 30}]},
        "alarms": {"names": ["web-5xx"]},
        "auto_rollback": {"enabled": True},
        "triggers": [{"name": "ops", "target": "arn:aws:sns:us-east-1:123456789012:ops", "events": ["DeploymentFailure"]}],
        "file_exists_behavior": "OVERWRITE",
        "outdated_instances_strategy": "IGNORE",
        "deployment_group_id": "0F4D5C55-6E0A-4A4B-9C6B-8B8F1C5E2D7A",
    }, custom)
    assert result["deployment_config"] == "TwoAtATime"
    assert result["deployment_configs"] == {"TwoAtATime": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}}
    assert result["deployment_style"] == {"type": "IN_PLACE", "deployment_option": "WITH_TRAFFIC_CONTROL", "traffic_control": True}
    assert result["load_balancer"] == {"target_groups": ["web-tg", "web-tg-2"], "classic_elbs": ["old-elb"], "haproxy_backends": [
        {"backend": "web", "runtime_api": {"kind": "tcp", "address": "10.0.0.5", "port": 9999, "host": None, "socket": None},
         "servers": {}, "drain_timeout": 30, "up_timeout": 300}]}
    assert result["alarms"] == {"enabled": True, "names": ["web-5xx"], "ignore_poll_alarm_failure": False}
    assert result["auto_rollback"] == {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    assert result["triggers"][0]["events"] == ["DeploymentFailure"]
    assert result["id"] == "0f4d5c55-6e0a-4a4b-9c6b-8b8f1c5e2d7a"
    assert result["selection"]["autoscaling_groups"] == ["web-asg"]
    assert len(result["selection"]["ec2_tag_set"]) == 2
    # The group var carries what resolve_config needs to rebuild the same config.
    assert dc.resolve_config(result["deployment_config"], result["deployment_configs"]) == dc.resolve_config("TwoAtATime", custom)


def test_zonal_custom_config_round_trips():
    custom = {"Zonal": {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 50},
                        "zonal_config": {"monitor_duration_in_seconds": 30,
                                         "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 1}}}}
    result = group({"deployment_config": "Zonal"}, custom)
    assert dc.resolve_config("Zonal", result["deployment_configs"]) == dc.resolve_config("Zonal", custom)


def test_load_balancer_turns_traffic_control_on_and_blue_green():
    assert group({"load_balancer": {"target_groups": ["tg"]}})["deployment_style"]["traffic_control"] is True
    assert group({"load_balancer": {"target_groups": ["tg"]}, "deployment_style": {"traffic_control": False}}
                 )["deployment_style"]["deployment_option"] == "WITHOUT_TRAFFIC_CONTROL"
    result = group({"autoscaling_groups": ["a"], "deployment_style": "BLUE_GREEN", "load_balancer": {"target_groups": ["tg"]},
                    "blue_green": {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"},
                                   "terminate_blue_instances_on_deployment_success": {"action": "KEEP_ALIVE"},
                                   "deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 30}}})
    assert result["deployment_style"] == {"type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL", "traffic_control": True}
    assert result["blue_green"]["terminate_blue_instances_on_deployment_success"] == {
        "action": "KEEP_ALIVE", "termination_wait_time_in_minutes": 60}
    assert result["blue_green"]["deployment_ready_option"] == {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 30}


@pytest.mark.parametrize("name, expected", [
    (("web", "production"), "web_production"),
    (("web-app", "prod.eu"), "web_app_prod_eu"),
    (("Web", "Blue Green"), "Web_Blue_Green"),
    (("1app", "g"), "_1app_g"),
    (("app", "grüppe"), "app_gr_ppe"),
])
def test_inventory_group_name(name, expected):
    assert sel.inventory_group_name(*name) == expected


def rows(count, key="Role"):
    return [{"key": key, "value": "v%d" % i} for i in range(count)]


TP = "arn:aws:sns:us-east-1:123456789012:ops"


@pytest.mark.parametrize("spec, key, words", [
    ({"ec2_tag_filters": rows(1), "ec2_tag_set": [rows(1)]}, "ec2_tag_set", ["both given", "Keep ec2_tag_set"]),
    ({"on_premises_tag_filters": rows(1), "on_premises_tag_set": [rows(1)]}, "on_premises_tag_set", ["both given"]),
    ({"ec2_tag_set": [rows(1)] * 4}, "ec2_tag_set", ["4 tag groups", "at most 3"]),
    ({"on_premises_tag_set": [rows(1)] * 4}, "on_premises_tag_set", ["4 tag groups", "at most 3"]),
    ({"ec2_tag_set": [rows(1), []]}, "ec2_tag_set[1]", ["tag group 2 is empty"]),
    ({"ec2_tag_set": [{"key": "Env", "value": "prod"}]}, "ec2_tag_set[0]", ["LIST of filters", "ec2_tag_filters"]),
    ({"ec2_tag_set": [[{"key": "Env", "value": "prod", "type": "KEY"}]]}, "ec2_tag_set[0][0].type",
     ['"KEY"', "KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"]),
    ({"autoscaling_groups": ["a%d" % i for i in range(11)]}, "autoscaling_groups", ["11 Auto Scaling groups", "at most 10"]),
    ({"autoscaling_groups": ["a", "a"]}, "autoscaling_groups[1]", ["listed twice"]),
    ({"autoscaling_groups": "web-asg"}, "autoscaling_groups", ["must be a list", '"web-asg"']),
    ({"ec2TagFilters": rows(1)}, "ec2TagFilters", ["unknown key", "Use ec2_tag_filters"]),
    ({"ec2_tag_filter": rows(1)}, "ec2_tag_filter", ["unknown key", "Did you mean ec2_tag_filters?"]),
    ({"deployment_config": "CodeDeployDefault.HalfAtTime"}, "deployment_config",
     ["Unknown predefined deployment config", "Did you mean CodeDeployDefault.HalfAtATime?"]),
    ({"deployment_config": "ThreeAtATime"}, "deployment_config", ["Unknown deployment config ThreeAtATime",
                                                                  "deployment_configs"]),
    ({"deployment_config": "CodeDeployDefault.LambdaAllAtOnce"}, "deployment_config", ["Lambda"]),
    ({"deployment_config": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}}}, "deployment_config",
     ["top-level deployment_configs"]),
    ({"deployment_style": {"type": "ROLLING"}}, "deployment_style.type", ['"ROLLING"', "IN_PLACE, BLUE_GREEN"]),
    ({"deployment_style": {"traffic_control": True}}, "deployment_style.traffic_control", ["needs a load balancer"]),
    ({"deployment_style": {"type": "BLUE_GREEN"}}, "deployment_style.traffic_control", ["needs a load balancer"]),
    ({"deployment_style": {"type": "BLUE_GREEN", "traffic_control": False}, "load_balancer": {"target_groups": ["t"]}},
     "deployment_style.traffic_control", ["WITH_TRAFFIC_CONTROL"]),
    ({"deployment_style": {"traffic_control": True, "deployment_option": "WITHOUT_TRAFFIC_CONTROL"},
      "load_balancer": {"target_groups": ["t"]}}, "deployment_style", ["disagree"]),
    ({"deployment_style": {"type": "BLUE_GREEN"}, "load_balancer": {"target_groups": ["t"]},
      "on_premises_tag_filters": rows(1)}, "deployment_style.type", ["on-premises"]),
    ({"deployment_style": {"type": "BLUE_GREEN"}, "load_balancer": {"target_groups": ["t"]}, "autoscaling_groups": ["a", "b"],
      "blue_green": {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}}},
     "blue_green.green_fleet_provisioning_option.action", ["exactly one", "names 2"]),
    ({"blue_green": {"terminate_blue_instances_on_deployment_success": {"termination_wait_time_in_minutes": 2881}}},
     "blue_green.terminate_blue_instances_on_deployment_success.termination_wait_time_in_minutes", ["0 to 2880", "2881"]),
    ({"blue_green": {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT"}}},
     "blue_green.deployment_ready_option.wait_time_in_minutes", ["stop at once"]),
    ({"blue_green": {"terminateBlueInstancesOnDeploymentSuccess": {}}}, "blue_green.terminateBlueInstancesOnDeploymentSuccess",
     ["Use terminate_blue_instances_on_deployment_success"]),
    ({"load_balancer": {"target_groups": ["t%d" % i for i in range(11)]}}, "load_balancer.target_groups", ["at most 10"]),
    ({"load_balancer": {"classic_elbs": ["e%d" % i for i in range(11)]}}, "load_balancer.classic_elbs", ["at most 10"]),
    ({"load_balancer": {"targetGroupInfoList": [{"name": "t"}]}}, "load_balancer.targetGroupInfoList", ["Use target_groups"]),
    ({"load_balancer": {"target_group_pairs": []}}, "load_balancer.target_group_pairs", ["target_group_pair_info"]),
    ({"alarms": {"names": ["a%d" % i for i in range(11)]}}, "alarms.names", ["11 alarms", "at most 10"]),
    ({"alarms": {"enabled": True}}, "alarms.names", ["no alarm is named"]),
    ({"alarms": {"enabled": "yes", "names": ["a"]}}, "alarms.enabled", ["true or false"]),
    ({"auto_rollback": {"enabled": True, "events": []}}, "auto_rollback.events", ["at least one"]),
    ({"auto_rollback": {"events": ["DEPLOYMENT_FAILED"]}}, "auto_rollback.events[0]", ["Did you mean DEPLOYMENT_FAILURE?"]),
    ({"triggers": [{"name": "t%d" % i, "target": TP, "events": ["DeploymentStart"]} for i in range(11)]}, "triggers",
     ["11 triggers", "at most 10"]),
    ({"triggers": [{"name": "t", "target": "arn:aws:sqs:us-east-1:123456789012:q", "events": ["DeploymentStart"]}]},
     "triggers[0].target", ["SNS topic ARN"]),
    ({"triggers": [{"name": "t", "target": TP, "events": ["DeploymentStarted"]}]}, "triggers[0].events[0]",
     ["Did you mean DeploymentStart?"]),
    ({"triggers": [{"name": "t", "target": TP, "events": []}]}, "triggers[0].events", ["at least one event"]),
    ({"triggers": [{"name": "t", "target": TP, "events": ["DeploymentStart"]}] * 2}, "triggers[1].name", ["unique"]),
    ({"file_exists_behavior": "overwrite"}, "file_exists_behavior", ["Did you mean OVERWRITE?"]),
    ({"outdated_instances_strategy": "SKIP"}, "outdated_instances_strategy", ["UPDATE, IGNORE"]),
    ({"deployment_group_id": "not-a-uuid"}, "deployment_group_id", ["not a UUID", '"not-a-uuid"']),
    ({"region": "us-west-2"}, "region", ["not one of the inventory's regions (us-east-1)"]),
    ({"inventory_group": "web-prod"}, "inventory_group", ["not a valid Ansible group name"]),
])
def test_group_errors(spec, key, words):
    with pytest.raises(sel.SelectionError) as caught:
        group(spec)
    error = caught.value
    assert (error.application, error.group, error.key) == ("web", "production", key)
    message = str(error)
    assert message.startswith('application "web", deployment group "production", key %s: ' % key)
    for word in words:
        assert word in message, message


def test_custom_config_errors_name_the_config():
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_applications({"web": {"deployment_groups": {"p": {"ec2_tag_filters": ROLE_WEB}}}},
                                   {"Broken": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": -1}}}, ["us-east-1"], "us-east-1")
    assert caught.value.key == "deployment_configs.Broken"


def test_applications_errors():
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_applications({"web": {"deploymentGroups": {}}}, None, [], "us-east-1")
    assert "Use deployment_groups" in str(caught.value)
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_applications({"web-a": {"deployment_groups": {"prod": {"ec2_tag_filters": ROLE_WEB}}},
                                    "web": {"deployment_groups": {"a-prod": {"ec2_tag_filters": ROLE_WEB}}}},
                                   None, [], "us-east-1")
    assert caught.value.group == "a-prod" and "web_a_prod" in str(caught.value) and "inventory_group" in str(caught.value)
    with pytest.raises(sel.SelectionError) as caught:
        uid = "0f4d5c55-6e0a-4a4b-9c6b-8b8f1c5e2d7a"
        same = {"a": {"deployment_group_id": uid, "ec2_tag_filters": ROLE_WEB},
                "b": {"deployment_group_id": uid, "ec2_tag_filters": ROLE_WEB}}
        sel.normalize_applications({"web": {"deployment_groups": same}}, None, [], "us-east-1")
    assert caught.value.group == "b" and "same id" in str(caught.value)
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_applications({"web": {"deployment_groups": {"a": {"ec2_tag_filters": ROLE_WEB}}}}, None, [], None)
    assert caught.value.key == "region"


def test_groups_keep_file_order_and_distinct_ids():
    applications = {"web": {"deployment_groups": {"b": {"ec2_tag_filters": ROLE_WEB}, "a": {"autoscaling_groups": ["web-asg"]}}},
                    "api": {"deployment_groups": {"x": {"on_premises_tag_filters": ROLE_WEB}}}}
    groups = sel.normalize_applications(applications,
                                        None, ["eu-west-1", "us-east-1"], "eu-west-1")
    assert [g["inventory_group"] for g in groups] == ["web_b", "web_a", "api_x"]
    assert len({g["id"] for g in groups}) == 3
    assert {g["region"] for g in groups} == {"eu-west-1"}


def test_on_premises_instances():
    result = sel.normalize_on_premises_instances([
        {"name": "rack1", "address": "192.0.2.1", "tags": {"Role": "web", "Tier": 1}},
        {"name": "rack2", "tags": [{"Key": "Role", "Value": "db"}], "region": "eu-west-1"},
    ], "us-east-1")
    assert result == [
        {"name": "rack1", "address": "192.0.2.1", "tags": {"Role": "web", "Tier": "1"}, "region": "us-east-1"},
        {"name": "rack2", "address": "rack2", "tags": {"Role": "db"}, "region": "eu-west-1"},
    ]
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_on_premises_instances([{"name": "a"}, {"name": "a"}])
    assert caught.value.key == "on_premises_instances[1].name"
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_on_premises_instances([{"name": "a", "adress": "x"}])
    assert "Did you mean address?" in str(caught.value)


def test_lifecycle_states():
    assert sel.normalize_lifecycle_states(["InService", "Pending:Wait", "InService"]) == ["InService", "Pending:Wait"]
    with pytest.raises(sel.SelectionError) as caught:
        sel.normalize_lifecycle_states(["inservice"])
    assert "Did you mean InService?" in str(caught.value)
    with pytest.raises(sel.SelectionError):
        sel.normalize_lifecycle_states([])
