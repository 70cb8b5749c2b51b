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
        records = []
        for host in hosts:
            last = (history or {}).get(host["instance_id"]) or {}
            records.append({"name": host["host"], "healthy": last.get("status") != "Failed", "revision": last.get("revision_sha256"),
                            "zone": host.get("zone")})
        try:
            return configs.plan_deployment(config_name, records, custom_configs=custom_configs, current_revision=current_revision)
        except configs.DeploymentConfigError as exc:
            raise StrategyError(exc.message, getattr(exc, "code", None) or "HEALTH_CONSTRAINTS_INVALID")


STRATEGIES = {"IN_PLACE": InPlace}


def for_group(settings):
    """The strategy of a deployment group's deployment style."""
    style = (settings.get("deployment_style") or {}).get("type") or "IN_PLACE"
    if style not in STRATEGIES:
        raise StrategyError("the deployment group's deployment_style.type is %s, which this version does not deploy yet; the "
                            "supported styles are %s" % (style, ", ".join(sorted(STRATEGIES))), "INVALID_DEPLOYMENT_STYLE")
    return STRATEGIES[style]()
