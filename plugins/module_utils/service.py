# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy service's decisions for an in-place deployment, as pure functions over plain data.

The action plugins ``deployment`` (prepare, after each batch, finish) and ``deploy_host`` (one host)
call these; they hold no state of their own: what a deployment is lives in the ledger.
"""

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs

HOST_INSTALL_EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]
TERMINAL = ("Succeeded", "Failed", "Stopped")


class ServiceError(Exception):
    """The deployment cannot start; ``code`` is CodeDeploy's error code, ``message`` says what to do."""

    def __init__(self, message, code="INTERNAL_ERROR"):
        super(ServiceError, self).__init__(message)
        self.message = message
        self.code = code


def group_hosts(group_name, groups, hostvars):
    """The deployment group's hosts as [{host, instance_id, zone}] plus its settings (the group var)."""
    names = list(groups.get(group_name) or [])
    if not names:
        known = sorted(g for g in groups if g not in ("all", "ungrouped"))
        raise ServiceError("deployment_group %r has no hosts in this inventory (groups: %s). Check the name (<application>_<group>) "
                           "and that the inventory selects running instances." % (group_name, ", ".join(known) or "none"), "NO_INSTANCES")
    first = hostvars.get(names[0]) or {}
    # The all-group map is unambiguous when a host belongs to several deployment groups.
    settings = (first.get("codedeploy_deployment_groups") or {}).get(group_name) or first.get("codedeploy_deployment_group")
    hosts = []
    for name in names:
        host_vars = hostvars.get(name) or {}
        hosts.append({"host": name, "instance_id": host_vars.get("codedeploy_instance_id") or name,
                      "zone": host_vars.get("codedeploy_availability_zone")})
    if not settings:
        settings = {"application": group_name, "name": group_name}
    return hosts, dict(settings)


def effective_options(settings, overrides):
    """Deployment-level extra vars override the group's settings (CodeDeploy's createDeployment options)."""
    options = {
        "deployment_config": settings.get("deployment_config") or configs.ONE_AT_A_TIME,
        "file_exists_behavior": settings.get("file_exists_behavior") or "DISALLOW",
        "ignore_application_stop_failures": False,
        "update_outdated_instances_only": False,
        "auto_rollback": dict(settings.get("auto_rollback") or {"enabled": False, "events": []}),
        "alarms": dict(settings.get("alarms") or {"enabled": False, "names": [], "ignore_poll_alarm_failure": False}),
    }
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in options:
            raise ServiceError("unknown deployment option %r; the options are: %s" % (key, ", ".join(sorted(options))), "INTERNAL_ERROR")
        options[key] = value
    return options


def load_balancers(settings):
    """(target groups, classic ELBs) when the group controls traffic, else ([], [])."""
    style = settings.get("deployment_style") or {}
    if style.get("traffic_control") is False or style.get("option") == "WITHOUT_TRAFFIC_CONTROL":
        return [], []
    balancers = settings.get("load_balancer") or {}
    return list(balancers.get("target_groups") or []), list(balancers.get("classic_elbs") or [])


def host_steps(with_traffic):
    """The host's lifecycle as steps: lists of host events, and the strings "BlockTraffic" / "AllowTraffic" for the controller."""
    if not with_traffic:
        return [list(HOST_INSTALL_EVENTS)]
    return [["BeforeBlockTraffic"], "BlockTraffic", ["AfterBlockTraffic"] + HOST_INSTALL_EVENTS + ["BeforeAllowTraffic"], "AllowTraffic",
            ["AfterAllowTraffic"]]


def plan(config_name, custom_configs, hosts, history=None, current_revision=None):
    """The batches, in CodeDeploy's order (unhealthy first), for ``serial``; raises ServiceError for HEALTH_CONSTRAINTS_INVALID."""
    records = []
    history = history or {}
    for host in hosts:
        last = history.get(host["instance_id"]) or {}
        healthy = last.get("status") != "Failed"
        records.append({"name": host["host"], "healthy": healthy, "revision": last.get("revision_sha256"), "zone": host.get("zone")})
    try:
        result = configs.plan_deployment(config_name, records, custom_configs=custom_configs, current_revision=current_revision)
    except configs.DeploymentConfigError as exc:
        raise ServiceError(exc.message, getattr(exc, "code", None) or "HEALTH_CONSTRAINTS_INVALID")
    return result


def verdict(total, succeeded, failed, pending, minimum):
    """CodeDeploy's rule after a batch / at the end: continue, or Succeeded / Failed with HEALTH_CONSTRAINTS."""
    return configs.evaluate(total, succeeded, failed, pending, minimum)


def failure_summary(deployment, limit=3):
    """The final message for a failed deployment: the hosts, events, scripts and log tails, never only an error code."""
    lines = []
    for instance in deployment.get("instances") or []:
        if instance.get("status") != "Failed":
            continue
        event = next((e for e in instance.get("events") or [] if e.get("status") == "Failed"), None)
        if event:
            tail = (event.get("log_tail") or "").strip().splitlines()[-3:]
            lines.append("%s failed on %s: %s%s" % (event["event"], instance.get("host") or instance["instance_id"], event.get("message") or
                                                    event.get("error_code"), (" Last output: " + " | ".join(tail)) if tail else ""))
        else:
            lines.append("%s failed: %s" % (instance.get("host") or instance["instance_id"], instance.get("message") or instance.get("error_code")))
        if len(lines) >= limit:
            break
    return lines
