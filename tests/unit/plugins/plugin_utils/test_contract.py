"""The input contract: every refusal names the input, the value and what is accepted."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan, PlanError

SETTINGS = {"application": "web", "name": "production", "deployment_configs": {"TwoAtATime": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}}}
GROUPS = {"all": ["a", "b"], "ungrouped": [], "web_production": ["a"], "api_production": ["b"], "static": ["a"]}
PLUGIN_GROUPS = {"web_production": SETTINGS, "api_production": {}}


def start(**args):
    base = {"deployment_group": "web_production", "revision": "/srv/rev"}
    base.update(args)
    return contract.start_request(base, SETTINGS, GROUPS, PLUGIN_GROUPS)


@pytest.mark.parametrize("group, words", [
    ("all", ["deployment_group='all'", "an inventory group, but not a deployment group", "api_production, web_production"]),
    ("ungrouped", ["deployment_group='ungrouped'", "not a deployment group"]),
    ("static", ["deployment_group='static'", "not a deployment group"]),
    ("web_prod", ["deployment_group='web_prod'", "not a group of this inventory", "web_production"]),
    ("", ["no deployment_group given", "web_production"]),
    (None, ["no deployment_group given"]),
])
def test_only_groups_of_the_inventory_plugin_are_deployment_groups(group, words):
    with pytest.raises(contract.InputError) as caught:
        contract.deployment_group(group, GROUPS, PLUGIN_GROUPS)
    for word in words:
        assert word in caught.value.message


def test_no_plugin_groups_says_how_to_get_them():
    with pytest.raises(contract.InputError) as caught:
        contract.deployment_group("web", {"web": ["a"]}, {})
    assert "rollout.codedeploy.codedeploy" in caught.value.message


@pytest.mark.parametrize("args, words", [
    ({"file_exists_behavior": "BOGUS"}, ["file_exists_behavior='BOGUS'", "DISALLOW, OVERWRITE, RETAIN"]),
    ({"auto_rollback": "maybe"}, ["auto_rollback='maybe'", "true, false, or a mapping"]),
    ({"auto_rollback": {"enabled": True, "events": ["ON_FIRE"]}}, ["auto_rollback.events='ON_FIRE'", "DEPLOYMENT_FAILURE"]),
    ({"auto_rollback": {"enable": True}}, ["auto_rollback has the unknown key(s) enable"]),
    ({"alarms": "foo"}, ["alarms='foo'", "a mapping {enabled"]),
    ({"alarms": {"names": "a,b", "enabled": "sometimes"}}, ["alarms.enabled='sometimes'", "a boolean"]),
    ({"lease_seconds": "abc"}, ["lease_seconds='abc'", "a whole number from 1 to 86400"]),
    ({"lease_seconds": 0}, ["lease_seconds=0"]),
    ({"deployment_config": "CodeDeployDefault.TwiceAtATime"},
     ["deployment_config='CodeDeployDefault.TwiceAtATime'", "CodeDeployDefault.OneAtATime"]),
    ({"deployment_config": "ThreeAtATime"}, ["ThreeAtATime", "TwoAtATime"]),
    ({"ignore_application_stop_failures": "perhaps"}, ["ignore_application_stop_failures='perhaps'", "a boolean"]),
    ({"deployment_root": "relative/root"}, ["deployment_root='relative/root'", "an absolute path"]),
    ({"deployment_root": "/opt/../etc"}, ["deployment_root='/opt/../etc'"]),
    ({"max_revisions": -1}, ["max_revisions=-1"]),
    ({"revision": ["a", "b"]}, ["revision=['a', 'b']", "s3://bucket/key"]),
    ({"revision": {"s3": {}, "url": "x"}}, ["exactly one of s3, url"]),
    ({"revision": None}, ["no revision given"]),
    ({"reuse_deployment": "d-123"}, ["reuse_deployment='d-123'", "d-XXXXXXXXX"]),
    ({"creator": "rollback"}, ["a rollback needs the deployment to roll back to"]),
    ({"connect_timeout": "soon"}, ["connect_timeout='soon'"]),
])
def test_bad_inputs_are_refused_with_the_input_value_and_what_is_accepted(args, words):
    with pytest.raises(contract.InputError) as caught:
        start(**args)
    for word in words:
        assert word in caught.value.message, caught.value.message
    assert "Error" not in caught.value.message and "Traceback" not in caught.value.message


@pytest.mark.parametrize("value, expected", [
    ("yes", {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}),
    (False, {"enabled": False, "events": []}),
    ({"enabled": True, "events": "DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM"},
     {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}),
])
def test_auto_rollback_short_forms(value, expected):
    assert start(auto_rollback=value)["auto_rollback"] == expected


def test_alarm_names_as_a_list_enable_monitoring():
    assert start(alarms=["web-5xx"])["alarms"] == {"enabled": True, "names": ["web-5xx"], "ignore_poll_alarm_failure": False}


def test_typed_values_come_back_typed():
    checked = start(lease_seconds="600", ignore_application_stop_failures="true", deployment_config="TwoAtATime",
                    file_exists_behavior="overwrite", deployment_root="/srv/cd/", max_revisions="3")
    assert checked["lease_seconds"] == 600 and checked["ignore_application_stop_failures"] is True
    assert checked["file_exists_behavior"] == "OVERWRITE" and checked["deployment_root"] == "/srv/cd" and checked["max_revisions"] == 3


def test_stop_request_needs_a_deployment_id():
    with pytest.raises(contract.InputError) as caught:
        contract.stop_request({"deployment_id": "12"})
    assert "deployment_id='12'" in caught.value.message
    assert contract.stop_request({"deployment_id": "d-ABCDEFGH1", "rollback": "yes"})["rollback"] is True


def test_a_plan_refuses_unknown_fields_and_foreign_mappings():
    with pytest.raises(PlanError):
        Plan(colour="blue")
    with pytest.raises(PlanError) as caught:
        Plan.from_dict({"hosts": ["a"]})
    assert "codedeploy_deployment.plan" in caught.value.message
    plan = Plan(deployment_id="d-ABCDEFGH1", hosts=["a", "b"], batches=[["a"], ["b"]], bake_after=[0, 30])
    assert plan.bake_seconds(["b"]) == 30 and plan.bake_seconds(["a"]) == 0
    with pytest.raises(PlanError):
        plan.colour = "blue"
