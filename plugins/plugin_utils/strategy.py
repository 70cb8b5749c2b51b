# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment strategies: how a planned deployment reaches its hosts. The deployment service
(plugin_utils/service.py) opens, gates and settles every deployment the same way and asks the
group's strategy only the questions that differ between in-place, blue/green, Lambda and ECS.

Controller-only. docs/design.md describes the interface."""

from __future__ import annotations

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs
from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import HOST_INSTALL_EVENTS


class StrategyError(Exception):
    def __init__(self, message, code="INVALID_INPUT"):
        super(StrategyError, self).__init__(message)
        self.message = message
        self.code = code


class Strategy(object):
    """What a deployment strategy answers. Subclasses set ``name`` and implement every method."""

    name = None

    def load_balancers(self, settings):
        """The load balancers the deployment's traffic control uses: ``{target_groups, classic_elbs, haproxy_backends}``."""
        raise NotImplementedError

    def host_steps(self, with_traffic):
        """A host's lifecycle: lists of host-side events, and the names of controller-side traffic steps."""
        raise NotImplementedError

    def plan_batches(self, config_name, custom_configs, hosts, history, current_revision):
        """The batches, as deployment_config.plan_deployment returns them."""
        raise NotImplementedError

    def steps_by_role(self, with_traffic):
        """Each role's lifecycle when hosts play different parts ({} when every host runs ``host_steps``)."""
        del with_traffic
        return {}


class InPlace(Strategy):
    """CodeDeploy's in-place deployment: each host in turn leaves its load balancers, installs the
    revision and comes back, in batches bounded by the minimum healthy hosts."""

    name = "in_place"

    def load_balancers(self, settings):
        style = settings.get("deployment_style") or {}
        balancers = settings.get("load_balancer") or {}
        if style.get("traffic_control") is False or style.get("option") == "WITHOUT_TRAFFIC_CONTROL":
            balancers = {}
        return {key: list(balancers.get(key) or []) for key in ("target_groups", "classic_elbs", "haproxy_backends")}

    def host_steps(self, with_traffic):
        if not with_traffic:
            return [list(HOST_INSTALL_EVENTS)]
        return [["BeforeBlockTraffic"], "BlockTraffic", ["AfterBlockTraffic"] + list(HOST_INSTALL_EVENTS) + ["BeforeAllowTraffic"],
                "AllowTraffic", ["AfterAllowTraffic"]]

    def plan_batches(self, config_name, custom_configs, hosts, history, current_revision):
        return _config_batches(config_name, custom_configs, hosts, history, current_revision)


def _config_batches(config_name, custom_configs, hosts, history, current_revision):
    """The deployment configuration's batches over ``hosts`` (deployment_config.plan_deployment)."""
    records = []
    for host in hosts:
        last = (history or {}).get(host["instance_id"]) or {}
        records.append({"name": host["host"], "healthy": last.get("status") != "Failed", "revision": last.get("revision_sha256"),
                        "zone": host.get("zone")})
    try:
        return configs.plan_deployment(config_name, records, custom_configs=custom_configs, current_revision=current_revision)
    except configs.DeploymentConfigError as exc:
        raise StrategyError(exc.message, getattr(exc, "code", None) or "HEALTH_CONSTRAINTS_INVALID")


GREEN = "green"
BLUE = "blue"
#: A green host installs the revision and joins the load balancers; a blue host only leaves them.
GREEN_STEPS = [list(HOST_INSTALL_EVENTS) + ["BeforeAllowTraffic"], "AllowTraffic", ["AfterAllowTraffic"]]
BLUE_STEPS = [["BeforeBlockTraffic"], "BlockTraffic", ["AfterBlockTraffic"]]


class BlueGreenBatches(object):
    """The batches of a blue/green deployment: the config's batches over the green fleet, then one batch of every blue host.
    ``fleet_size`` and ``minimum`` are the green fleet's: the minimum healthy hosts apply to green."""

    def __init__(self, green, blue_names):
        self.minimum = green.minimum
        self.fleet_size = green.fleet_size
        self.green_hosts = list(green.hosts)
        self.blue_hosts = list(blue_names)
        self.hosts = self.green_hosts + self.blue_hosts
        self.batches = [list(batch) for batch in green.batches] + ([list(blue_names)] if blue_names else [])
        self.bake_after = list(green.bake_after) + ([0] if blue_names else [])
        self.serial = configs.compact_serial([len(batch) for batch in self.batches])
        self.green_serial = configs.compact_serial([len(batch) for batch in green.batches])


class BlueGreen(Strategy):
    """CodeDeploy's blue/green deployment on EC2 with an existing green fleet (DISCOVER_EXISTING) or a copy of the group's Auto
    Scaling group made before the deployment opens (COPY_AUTO_SCALING_GROUP, plugin_utils/green_copy.py): the green hosts install
    the revision and join the load balancers in batches of the deployment configuration; then every blue (original) host
    leaves them at once. With STOP_DEPLOYMENT the green hosts first only install (batches of the config), the deployment waits in
    status Ready for a continue, then the same green batches reroute and the blue batch follows. Hosts carry ``role`` green or blue."""

    name = "blue_green"

    def load_balancers(self, settings):
        balancers = settings.get("load_balancer") or {}
        found = {key: list(balancers.get(key) or []) for key in ("target_groups", "classic_elbs", "haproxy_backends")}
        # A target group pair: green hosts join one group, blue hosts leave the other (plugin_utils/reroute.py says which).
        found["target_groups"] += list((balancers.get("target_group_pair_info") or {}).get("target_groups") or [])
        return found

    def host_steps(self, with_traffic):
        del with_traffic  # a blue/green deployment always controls traffic (the inventory plugin enforces a load balancer)
        return [list(step) if isinstance(step, list) else step for step in GREEN_STEPS]

    def steps_by_role(self, with_traffic):
        return {GREEN: self.host_steps(with_traffic), BLUE: [list(step) if isinstance(step, list) else step for step in BLUE_STEPS]}

    def plan_batches(self, config_name, custom_configs, hosts, history, current_revision):
        green = [h for h in hosts if h.get("role") == GREEN]
        blue = [h["host"] for h in hosts if h.get("role") != GREEN]
        if not green:
            raise StrategyError("a blue/green deployment needs green hosts: green_hosts names no host", "NO_INSTANCES")
        return BlueGreenBatches(_config_batches(config_name, custom_configs, green, history, current_revision), blue)


#: What this version of the blue/green strategy does not do yet: setting path -> (refused value, what to do instead).
BLUE_GREEN_NOT_YET = ()

STRATEGIES = {"IN_PLACE": InPlace, "BLUE_GREEN": BlueGreen}


def for_group(settings):
    """The strategy of a deployment group's deployment style."""
    style = (settings.get("deployment_style") or {}).get("type") or "IN_PLACE"
    if style not in STRATEGIES:
        raise StrategyError("the deployment group's deployment_style.type is %s, which this version does not deploy yet; the "
                            "supported styles are %s" % (style, ", ".join(sorted(STRATEGIES))), "INVALID_DEPLOYMENT_STYLE")
    if style == "BLUE_GREEN":
        blue_green = settings.get("blue_green") or {}
        for (section, key), value, instead in BLUE_GREEN_NOT_YET:
            if ((blue_green.get(section) or {}).get(key)) == value:
                raise StrategyError("blue_green.%s.%s=%s is not supported yet by rollout.codedeploy's blue/green deployments; %s. "
                                    "Nothing was touched." % (section, key, value, instead), "UNSUPPORTED_BLUE_GREEN_OPTION")
    return STRATEGIES[style]()
