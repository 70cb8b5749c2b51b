"""Traffic routing configs (rule 7 of deployment_config.py): validation, predefined Rollout.* names, traffic_steps."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as dc
from ansible_collections.rollout.codedeploy.plugins.module_utils.selection import SelectionError, normalize_applications

CANARY = {"type": "TimeBasedCanary", "time_based_canary": {"canary_percentage": 10, "canary_interval": 5}}
LINEAR = {"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 10, "linear_interval": 1}}
CUSTOM = {
    "Canary25": {"traffic_routing_config": {"type": "TimeBasedCanary",
                                            "time_based_canary": {"canary_percentage": 25, "canary_interval": 2}}},
    "Linear30": {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 50},
                 "traffic_routing_config": {"type": "TimeBasedLinear",
                                            "time_based_linear": {"linear_percentage": "30", "linear_interval": "3"}}},
    "Swap": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}, "traffic_routing_config": {"type": "AllAtOnce"}},
}


@pytest.mark.parametrize("config, steps", [
    (CANARY, [(10, 300), (100, 0)]),
    (LINEAR, [(10, 60), (20, 60), (30, 60), (40, 60), (50, 60), (60, 60), (70, 60), (80, 60), (90, 60), (100, 0)]),
    ({"type": "AllAtOnce"}, [(100, 0)]),
    ({"type": "timebasedlinear", "time_based_linear": {"linear_percentage": 30, "linear_interval": 2}},
     [(30, 120), (60, 120), (90, 120), (100, 0)]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 50, "linear_interval": 1}}, [(50, 60), (100, 0)]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 99, "linear_interval": 2880}},
     [(99, 172800), (100, 0)]),
    ({"type": "TimeBasedCanary", "time_based_canary": {"canary_percentage": 1, "canary_interval": 1}}, [(1, 60), (100, 0)]),
    ("Rollout.Canary10Percent5Minutes", [(10, 300), (100, 0)]),
    ("Rollout.Canary10Percent30Minutes", [(10, 1800), (100, 0)]),
    ("Rollout.Linear10PercentEvery1Minute", [(p, 60) for p in range(10, 100, 10)] + [(100, 0)]),
    ("Rollout.Linear10PercentEvery10Minutes", [(p, 600) for p in range(10, 100, 10)] + [(100, 0)]),
    ("CodeDeployDefault.AllAtOnce", [(100, 0)]),
    ("CodeDeployDefault.OneAtATime", [(100, 0)]),
    (None, [(100, 0)]),
    ("Canary25", [(25, 120), (100, 0)]),
    ("Linear30", [(30, 180), (60, 180), (90, 180), (100, 0)]),
    ("Swap", [(100, 0)]),
])
def test_traffic_steps(config, steps):
    assert dc.traffic_steps(config, CUSTOM) == steps


def test_steps_from_objects():
    routing = dc.TrafficRoutingConfig(dc.TIME_BASED_CANARY, 20, 3)
    assert dc.traffic_steps(routing) == [(20, 180), (100, 0)]
    config = dc.resolve_config("Canary25", CUSTOM)
    assert dc.traffic_steps(config) == [(25, 120), (100, 0)]


def test_custom_configs_resolve():
    canary = dc.resolve_config("Canary25", CUSTOM)
    assert canary.traffic_routing == dc.TrafficRoutingConfig("TimeBasedCanary", 25, 2)
    assert (canary.type, canary.value, canary.predefined) == (dc.MOST_CONCURRENCY, 1, False)
    linear = dc.resolve_config("Linear30", CUSTOM)
    assert (linear.type, linear.value, linear.traffic_routing.percentage, linear.traffic_routing.interval) == ("FLEET_PERCENT", 50, 30, 3)
    assert linear.to_dict()["traffic_routing_config"] == {"type": "TimeBasedLinear",
                                                          "time_based_linear": {"linear_percentage": 30, "linear_interval": 3}}
    assert dc.resolve_config("Swap", CUSTOM).traffic_routing.to_dict() == {"type": "AllAtOnce"}
    assert dc.resolve_config("CodeDeployDefault.HalfAtATime").to_dict()["traffic_routing_config"] is None
    assert "traffic canary: 25% for 2 minutes, then the rest" in canary.describe()


def test_predefined_traffic_configs():
    assert len(dc.TRAFFIC_CONFIG_NAMES) == 8
    for name in dc.TRAFFIC_CONFIG_NAMES:
        config = dc.resolve_config(name)
        assert config.name == name and config.predefined and config.traffic_routing is not None
        assert name.startswith("Rollout.") and not name.startswith("CodeDeployDefault.")
        assert dc.traffic_steps(name)[-1] == (100, 0)


def _error(given, custom=None):
    with pytest.raises(dc.DeploymentConfigError) as caught:
        dc.resolve_config(given, custom)
    return caught.value


def _routed(routing):
    return {"name": "Mine", "traffic_routing_config": routing}


@pytest.mark.parametrize("routing, field, value, words", [
    ({"type": "TimeBasedCanary", "time_based_canary": {"canary_percentage": 0, "canary_interval": 5}},
     "traffic_routing_config.time_based_canary.canary_percentage", 0, ["canary_percentage is 0", "between 1 and 99", "1..99"]),
    ({"type": "TimeBasedCanary", "time_based_canary": {"canary_percentage": 100, "canary_interval": 5}},
     "traffic_routing_config.time_based_canary.canary_percentage", 100, ["is 100", "between 1 and 99"]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 10, "linear_interval": 0}},
     "traffic_routing_config.time_based_linear.linear_interval", 0, ["linear_interval is 0", "1 and 2880 minutes"]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 10, "linear_interval": 2881}},
     "traffic_routing_config.time_based_linear.linear_interval", 2881, ["is 2881", "1..2880"]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": "ten", "linear_interval": 1}},
     "traffic_routing_config.time_based_linear.linear_percentage", "ten", ["'ten', not a whole number"]),
    ({"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 10}},
     "traffic_routing_config.time_based_linear.linear_interval", None, ["linear_interval is missing", "1 to 2880"]),
    ({"type": "TimeBasedCanary"}, "traffic_routing_config.time_based_canary", None,
     ["time_based_canary is missing", "Add time_based_canary: {canary_percentage: 10, canary_interval: 5}"]),
    ({"type": "TimeBasedCanary", "time_based_canary": [10, 5]}, "traffic_routing_config.time_based_canary", [10, 5],
     ["must be a mapping"]),
    ({"type": "TimeBasedCanary", "time_based_linear": {"linear_percentage": 10, "linear_interval": 1}},
     "traffic_routing_config.time_based_linear", {"linear_percentage": 10, "linear_interval": 1},
     ["has time_based_linear, but its type is TimeBasedCanary", "Set type to TimeBasedLinear"]),
    ({"type": "AllAtOnce", "time_based_canary": {"canary_percentage": 10, "canary_interval": 5}},
     "traffic_routing_config.time_based_canary", {"canary_percentage": 10, "canary_interval": 5}, ["remove it"]),
    ({"type": "Gradual"}, "traffic_routing_config.type", "Gradual", ["'Gradual', which is not a traffic routing type",
                                                                     "TimeBasedCanary", "TimeBasedLinear"]),
    ({"time_based_canary": {"canary_percentage": 10, "canary_interval": 5}}, "traffic_routing_config.type", None,
     ["type is missing"]),
    ({"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5}},
     "traffic_routing_config.timeBasedCanary", {"canaryPercentage": 10, "canaryInterval": 5},
     ["unknown key traffic_routing_config.timeBasedCanary", "snake_case key time_based_canary"]),
    ({"type": "TimeBasedCanary", "time_based_canary": {"canary_percent": 10, "canary_interval": 5}},
     "traffic_routing_config.time_based_canary.canary_percent", 10,
     ["unknown key traffic_routing_config.time_based_canary.canary_percent", "canary_percentage, canary_interval"]),
    ("canary", "traffic_routing_config", "canary", ["must be a mapping like {type: TimeBasedCanary"]),
])
def test_traffic_routing_errors(routing, field, value, words):
    error = _error(_routed(routing))
    assert error.code == dc.INVALID_TRAFFIC_ROUTING_CONFIGURATION
    assert (error.field, error.value) == (field, value)
    assert error.message.startswith("deployment config Mine: ")
    for word in words:
        assert word in error.message


@pytest.mark.parametrize("given, code, words", [
    ("Rollout.Canary10Percent7Minutes", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST,
     ["Unknown predefined traffic-shifting config Rollout.Canary10Percent7Minutes", "Did you mean Rollout.Canary10Percent5Minutes?",
      "traffic_routing_config"]),
    ("Canary10Percent5Minutes", dc.DEPLOYMENT_CONFIG_DOES_NOT_EXIST, ["Did you mean Rollout.Canary10Percent5Minutes?"]),
    ("CodeDeployDefault.LambdaCanary10Percent5Minutes", dc.INVALID_COMPUTE_PLATFORM,
     ["is a Lambda deployment configuration", "use Rollout.Canary10Percent5Minutes"]),
    ("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", dc.INVALID_COMPUTE_PLATFORM,
     ["is an ECS deployment configuration", "use Rollout.Linear10PercentEvery1Minute"]),
    ("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", dc.INVALID_COMPUTE_PLATFORM, ["Rollout.Linear10PercentEvery3Minutes"]),
    ("CodeDeployDefault.ECSAllAtOnce", dc.INVALID_COMPUTE_PLATFORM, ["move all traffic at once, use CodeDeployDefault.AllAtOnce"]),
])
def test_names(given, code, words):
    error = _error(given, CUSTOM)
    assert error.code == code
    for word in words:
        assert word in error.message


def test_rollout_names_are_reserved():
    error = _error("Rollout.Canary10Percent5Minutes", {"Rollout.Canary10Percent5Minutes": {"traffic_routing_config": CANARY}})
    assert error.code == dc.INVALID_DEPLOYMENT_CONFIG_NAME and "Rename the custom config" in error.message
    error = _error("Rollout.Mine", {"Rollout.Mine": {"traffic_routing_config": CANARY}})
    assert "reserved" in error.message


def test_without_any_rule_still_refused():
    error = _error({"name": "Bare", "traffic_routing_config": None})
    assert error.code == dc.INVALID_MINIMUM_HEALTHY_HOST_VALUE and "has no minimum_healthy_hosts" in error.message


LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"


def _group(config, style="BLUE_GREEN"):
    spec = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": config, "region": "us-east-1"}
    if style:
        spec["deployment_style"] = {"type": style, "traffic_control": True}
        # Weighted steps need a load balancer that carries a weight: a target group pair.
        spec["load_balancer"] = {"target_group_pair_info": {
            "target_groups": ["web-blue", "web-green"],
            "prod_traffic_route": {"listener_arns": [LISTENER]}}}
    return normalize_applications({"web": {"deployment_groups": {"prod": spec}}}, CUSTOM)[0]


def test_inventory_keeps_the_definition_and_it_resolves_again():
    group = _group("Canary25")
    definition = group["deployment_configs"]["Canary25"]
    assert definition == {"traffic_routing_config": CUSTOM["Canary25"]["traffic_routing_config"]}
    assert dc.traffic_steps("Canary25", group["deployment_configs"]) == [(25, 120), (100, 0)]
    group = _group("Linear30")
    assert dc.resolve_config("Linear30", group["deployment_configs"]) == dc.resolve_config("Linear30", CUSTOM)
    assert _group("Rollout.Linear10PercentEvery2Minutes")["deployment_configs"] == {}


def test_in_place_groups_refuse_traffic_configs():
    with pytest.raises(SelectionError) as caught:
        _group("Rollout.Canary10Percent5Minutes", style=None)
    assert caught.value.key == "deployment_config"
    assert "only a BLUE_GREEN deployment does" in caught.value.problem and "this group deploys IN_PLACE" in caught.value.problem
    with pytest.raises(SelectionError):
        _group("Swap", style="IN_PLACE")


def test_bad_custom_config_is_named_by_the_inventory():
    with pytest.raises(SelectionError) as caught:
        normalize_applications({"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [{"key": "Role", "value": "web"}],
                                                                       "region": "us-east-1"}}}},
                               {"Bad": {"traffic_routing_config": {"type": "TimeBasedLinear"}}})
    assert "deployment_configs.Bad" in str(caught.value)
