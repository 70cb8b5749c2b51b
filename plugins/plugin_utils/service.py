# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment service: the controller's side of every deployment, whatever its strategy.

- ``open``: resolve the revision, plan the batches, open the deployment in the ledger (the group's
  lock), check the load balancers and alarms, publish DeploymentStart; return the ``Plan``.
- ``after_batch``: stop requests, alarms and bake times between batches; renew the lease.
- ``settle``: CodeDeploy's success rule, the final status and message, notifications, and the
  rollback target when automatic rollback applies.
- ``request_stop``: ask a running deployment (of another process) to stop.

It takes a ledger and an AWS access object (``.client(name)``, ``.account_id()``, ``.region``), so
unit tests drive it with fakes. Any error after the deployment was opened settles it as Failed
(releasing the group's lock) before it propagates. Controller-only; see docs/design.md."""

from __future__ import annotations

import re
import socket
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as appspec_rules
from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs
from ansible_collections.rollout.codedeploy.plugins.module_utils import revision_source
from ansible_collections.rollout.codedeploy.plugins.module_utils.alarms import check_alarms, watch_alarms
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import public_settings
from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import DEFAULT_LEASE_SECONDS, TERMINAL_STATUSES
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError, stop_hint_owner, utc_now
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import green_copy, heartbeat, reroute
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import strategy as strategies
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan, empty

#: Seconds between two looks at the ledger while a deployment waits in status Ready.
READY_POLL = 2
#: The swap record's state while a TERMINATE deployment waits to terminate its blue fleet (a continue ends the wait).
TERMINATION_WAIT = "termination_wait"
#: The error code of a deployment whose ready wait ran out (STOP_DEPLOYMENT): CodeDeploy stops it.
READY_TIMEOUT_CODE = "TIMEOUT"

OPTION_NAMES = ("deployment_config", "file_exists_behavior", "ignore_application_stop_failures", "update_outdated_instances_only",
                "auto_rollback", "alarms")


class ServiceError(Exception):
    """The deployment cannot go on; ``code`` is CodeDeploy's error code, ``message`` says what to do.
    ``settled`` is True when the deployment's final status was already recorded."""

    def __init__(self, message, code="INTERNAL_ERROR", settled=False):
        super(ServiceError, self).__init__(message)
        self.message = message
        self.code = code
        self.settled = settled


#: What an operator does about instances whose outcome the ledger does not have.
UNRECORDED_HINT = ("they count as not succeeded; each host keeps its own record of its last successful revision, "
                   "and the next deployment deploys them again")


# ------------------------------------------------------------------------------ the group, as the inventory says
def group_hosts(group_name, groups, hostvars, all_settings):
    """The deployment group's hosts as [{host, instance_id, zone}] and its settings."""
    names = list(groups.get(group_name) or [])
    if not names:
        raise ServiceError("deployment group %s has no instances in this inventory: its tags, tag sets, Auto Scaling groups or "
                           "on-premises tags select no running instance. Check them in the inventory source." % group_name,
                           "NO_INSTANCES")
    settings = dict((all_settings or {}).get(group_name) or (hostvars.get(names[0]) or {}).get("codedeploy_deployment_group") or {})
    hosts = []
    for name in names:
        host_vars = hostvars.get(name) or {}
        hosts.append({"host": name, "instance_id": host_vars.get("codedeploy_instance_id") or name,
                      "zone": host_vars.get("codedeploy_availability_zone")})
    return hosts, settings


def group_names(settings, inventory_group):
    """(application, deployment group name, group id) from the group's settings; the inventory group name stands in for
    any the settings lack."""
    return (settings.get("application") or inventory_group, settings.get("name") or inventory_group,
            settings.get("id") or inventory_group)


def effective_options(settings, request):
    """The group's settings with the deployment's overrides (CodeDeploy's createDeployment options)."""
    options = {
        "deployment_config": settings.get("deployment_config") or configs.ONE_AT_A_TIME,
        "file_exists_behavior": settings.get("file_exists_behavior") or "DISALLOW",
        "ignore_application_stop_failures": False,
        "update_outdated_instances_only": False,
        "auto_rollback": dict(settings.get("auto_rollback") or {"enabled": False, "events": []}),
        "alarms": dict(settings.get("alarms") or {"enabled": False, "names": [], "ignore_poll_alarm_failure": False}),
    }
    for key in OPTION_NAMES:
        if request.get(key) is not None:
            options[key] = request[key]
    if (settings.get("deployment_style") or {}).get("type") == "BLUE_GREEN":
        # Recorded with the deployment: what happens to the blue fleet after the reroute.
        options["blue_green"] = dict(settings.get("blue_green") or {})
    if request.get("creator") == "rollback":
        # A rollback is the remedy for what tripped the alarm: the same alarm does not stop it.
        options["alarms"] = dict(options["alarms"], enabled=False)
    return options


def failure_summary(deployment, limit=3):
    """The failed hosts, events, scripts and log tails, for the final message."""
    lines = []
    for instance in deployment.get("instances") or []:
        if instance.get("status") != "Failed":
            continue
        event = next((e for e in instance.get("events") or [] if e.get("status") == "Failed"), None)
        where = instance.get("host") or instance["instance_id"]
        if event:
            tail = (event.get("log_tail") or "").strip().splitlines()[-3:]
            lines.append("%s failed on %s: %s%s" % (event["event"], where, event.get("message") or event.get("error_code"),
                                                    (" Last output: " + " | ".join(tail)) if tail else ""))
        else:
            lines.append("%s failed: %s" % (where, instance.get("message") or instance.get("error_code")))
        if len(lines) >= limit:
            break
    return lines


def fetch_revision(revision, aws, cache=revision_source.DEFAULT_CACHE):
    """The revision fetched once into the controller's cache, and its validated appspec: (fetched, appspec, warnings)."""
    needs_s3 = (isinstance(revision, dict) and "s3" in revision) or str(revision or "").startswith("s3://")
    try:
        fetched = revision_source.fetch(revision, s3_client=aws.client("s3") if needs_s3 else None, cache=cache)
    except revision_source.RevisionError as exc:
        raise ServiceError(exc.message, getattr(exc, "code", None) or "INVALID_REVISION")
    try:
        # fetch read the AppSpec while checking the archive: no second pass over the bundle.
        spec, warnings = appspec_rules.parse_appspec(fetched["appspec_text"], source="%s:%s" % (fetched["location"], fetched["appspec_member"]))
    except appspec_rules.AppSpecError as exc:
        raise ServiceError("revision %s has an invalid appspec: %s" % (fetched["location"], exc.message), "INVALID_REVISION")
    return fetched, spec, list(warnings or [])


class Opening(object):
    """What ``open`` returns: the plan, a message for people, appspec warnings and orphaned deployments."""

    def __init__(self, plan, message, warnings=(), orphaned=(), preview=None):
        self.plan = plan
        self.message = message
        self.warnings = list(warnings)
        self.orphaned = list(orphaned)
        self.preview = preview


class DeploymentService(object):
    """One deployment's controller logic. ``ledger`` may be None only for a check-mode ``open`` before the first deployment."""

    def __init__(self, ledger, aws, fetch=fetch_revision, sleep=time.sleep, owner=None, bundle_cache=None, heartbeat=None, runtimes=None,
                 clock=time.monotonic):
        self.ledger = ledger
        self._clock = clock
        # runtime_api setting -> HAProxy runtime (plugin_utils/haproxy_runtime.py factory); None without HAProxy access.
        self.runtimes = runtimes
        self.heartbeat = heartbeat  # called with the plan once the deployment runs: keeps its lease alive (plugin_utils/heartbeat.py)
        self.aws = aws
        self._fetch = fetch
        self._sleep = sleep
        self.owner = owner
        self.bundle_cache = bundle_cache or revision_source.DEFAULT_CACHE

    # ------------------------------------------------------------------ open
    def open(self, request, hosts, settings, check_mode=False):
        """Plan and open a deployment for the checked ``request`` (contract.start_request) to ``hosts`` of the group."""
        try:
            strategy = strategies.for_group(settings)
        except strategies.StrategyError as exc:
            raise ServiceError(exc.message, exc.code)
        if strategy.name == strategies.BlueGreen.name:
            hosts = blue_green_hosts(hosts, request.get("green_fleet"), request["deployment_group"])
        options = effective_options(settings, request)
        revision, spec, warnings = self._revision(request, settings)
        if request.get("only_hosts"):
            hosts = [h for h in hosts if h["host"] in request["only_hosts"]]
        application, group_name, _group_id = group_names(settings, request["deployment_group"])
        history = self.ledger.instance_history(application, group_name, [h["instance_id"] for h in hosts]) if self.ledger else {}
        last = self.ledger.last_successful(application, group_name) if self.ledger else None
        if options["update_outdated_instances_only"]:
            hosts = [h for h in hosts if not _runs(history.get(h["instance_id"]), revision["sha256"])]
            if not hosts:
                note = "Nothing to deploy: every instance of %s already runs %s (update_outdated_instances_only)" % (
                    request["deployment_group"], revision["location"])
                return Opening(empty(note), note, warnings)
        try:
            planned = strategy.plan_batches(options["deployment_config"], settings.get("deployment_configs"), hosts, history,
                                            ((last or {}).get("revision") or {}).get("sha256"))
        except strategies.StrategyError as exc:
            raise ServiceError(exc.message, exc.code)
        plan = self._plan(request, settings, strategy, options, revision, spec, hosts, planned)
        if check_mode:
            fleet = len(plan.hosts_in_role("green")) if plan.roles else len(hosts)  # blue/green: the minimum is the green fleet's
            return Opening(plan, preview_message(plan, request["deployment_group"], fleet), warnings, preview=True)
        summary = self._create(plan, request)
        plan.deployment_id = summary["deployment_id"]
        try:
            self._start(plan)
        except Exception as exc:
            self.abandon(plan, exc)
            raise
        if self.heartbeat is not None:
            self.heartbeat(plan)
        message = "Deployment %s: %s to %d hosts of %s, %s (batches %s)" % (
            plan.deployment_id, plan.location, len(plan.hosts), request["deployment_group"], options["deployment_config"], plan.serial)
        orphaned = summary.get("orphaned") or []
        if orphaned:
            message += ". Marked Failed (TIMEOUT) the deployment(s) %s whose controller stopped without finishing" % ", ".join(orphaned)
        return Opening(plan, message, warnings, orphaned)

    def _revision(self, request, settings):
        """The revision record, its appspec and warnings: fetched, or (rollback) the one an earlier deployment left on the hosts."""
        if not request.get("reuse_deployment"):
            fetched, spec, warnings = self._fetch(request["revision"], self.aws, self.bundle_cache)
            return fetched, spec, warnings
        if self.ledger is None:
            raise ServiceError("there is no ledger yet, so there is no deployment %s to roll back to" % request["reuse_deployment"],
                               "DEPLOYMENT_DOES_NOT_EXIST")
        earlier = self.ledger.get_deployment(request["reuse_deployment"], include_instances=False)
        self._check_same_group(earlier, request, settings)
        revision = dict(earlier.get("revision") or {})
        revision["bundle"], revision["fallback"] = self._fallback_bundle(revision)
        return revision, revision.get("appspec") or {}, []

    def _fallback_bundle(self, revision):
        """For hosts that no longer keep the earlier archive: (the bundle, where it came from) or (None, why there is none)."""
        cached = revision_source.cached_bundle(revision.get("sha256"), self.bundle_cache)
        if cached:
            return cached, "the controller's bundle cache"
        again = revision_source.as_revision(revision.get("source"))
        if again is None:
            return None, "the revision's source %s cannot be fetched again (a URL is recorded without its credentials)" % (
                revision.get("location"))
        try:
            fetched, _spec, _warnings = self._fetch(again, self.aws, self.bundle_cache)
        except ServiceError as exc:
            return None, "the revision's source %s cannot be fetched: %s" % (revision.get("location"), exc.message)
        if fetched.get("sha256") != revision.get("sha256"):
            return None, "the revision's source %s now holds other content (sha256 %s, recorded %s)" % (
                revision.get("location"), fetched.get("sha256"), revision.get("sha256"))
        return fetched["bundle"], "its source %s, fetched again" % revision.get("location")

    @staticmethod
    def _check_same_group(earlier, request, settings):
        """A rollback may only reuse a deployment of the same application and deployment group."""
        application, group, _group_id = group_names(settings, request["deployment_group"])
        if (earlier.get("application"), earlier.get("deployment_group")) != (application, group):
            raise ServiceError(
                "deployment %s belongs to %s/%s, not to %s/%s (inventory group %s): a rollback can only go back to a deployment of "
                "the same deployment group. Nothing was touched. List this group's deployments with rollout.codedeploy.deployment_info "
                "(application=%s deployment_group=%s)." % (
                    earlier["deployment_id"], earlier.get("application"), earlier.get("deployment_group"), application, group,
                    request["deployment_group"], application, group), "DEPLOYMENT_GROUP_MISMATCH")
        if earlier.get("status") != "Succeeded":
            raise ServiceError("deployment %s is %s; a rollback goes back to a deployment that Succeeded. Nothing was touched." % (
                earlier["deployment_id"], earlier.get("status")), "INVALID_ROLLBACK_TARGET")

    def _plan(self, request, settings, strategy, options, revision, spec, hosts, planned):
        by_host = {h["host"]: h for h in hosts}
        balancers = strategy.load_balancers(settings)
        group = request["deployment_group"]
        application, group_name, group_id = group_names(settings, group)
        fields = dict(
            strategy=strategy.name, application=application, deployment_group=group_name, deployment_group_id=group_id,
            inventory_group=group,
            hosts=list(planned.hosts), serial=list(planned.serial) or [1], batches=[list(b) for b in planned.batches],
            bake_after=list(planned.bake_after), instances={name: by_host[name]["instance_id"] for name in planned.hosts},
            zones={name: by_host[name].get("zone") for name in planned.hosts}, minimum=planned.minimum,
            max_unhealthy=planned.fleet_size - planned.minimum,
            roles={name: by_host[name]["role"] for name in planned.hosts if by_host[name].get("role")},
            steps_by_role=strategy.steps_by_role(any(balancers.values())), blue_green=options.get("blue_green"),
            bundle=revision.get("bundle"), sha256=revision.get("sha256"), location=revision.get("location"), appspec=spec,
            bundle_type=revision.get("bundle_type"), source=revision.get("source"),
            revision_env=revision.get("env") or {}, reuse_deployment=request.get("reuse_deployment"), fallback=revision.get("fallback"),
            options=options,
            steps=strategy.host_steps(any(balancers.values())), target_groups=balancers["target_groups"],
            classic_elbs=balancers["classic_elbs"], haproxy_backends=balancers["haproxy_backends"],
            triggers=settings.get("triggers") or [], aws=public_settings(request.get("aws")), ledger=request.get("ledger"),
            lease_seconds=request.get("lease_seconds") or DEFAULT_LEASE_SECONDS, owner=self.owner,
            deployment_root=request.get("deployment_root"), max_revisions=request.get("max_revisions"), green_asg=request.get("green_asg"))
        fields.update(_ready_fields(options, request, planned))
        try:
            fields["reroute"] = reroute.plan_field(settings, options, request, strategy.name)
        except reroute.RerouteError as exc:
            raise ServiceError(exc.message, exc.code)
        return Plan(**fields)

    def _create(self, plan, request):
        """Open the deployment in the ledger: the group's lock is taken here (ActiveDeploymentError when it is held)."""
        revision = {"location": plan.location, "sha256": plan.sha256, "bundle_type": plan.bundle_type, "source": plan.source,
                    "env": plan.revision_env, "appspec": plan.appspec}
        instances = [dict({"instance_id": plan.instances[name], "host": name, "zone": plan.zones.get(name)},
                          **({"role": plan.roles[name]} if name in plan.roles else {})) for name in plan.hosts]
        return self.ledger.create_deployment(
            plan.application, plan.deployment_group, plan.deployment_group_id, revision, plan.options["deployment_config"], instances,
            creator=request.get("creator") or "user", options=plan.options, description=request.get("description"),
            rollback_of=request.get("rollback_of"), lease_seconds=plan.lease_seconds, owner=self.owner,
            deployment_id=request.get("deployment_id"))  # a copied green fleet is named after the id it chose (green_copy.py)

    def _start(self, plan):
        """After the ledger opened the deployment: load balancers resolved, alarms checked, DeploymentStart published."""
        if plan.controls_traffic:
            from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
            try:
                self.balancers(plan).resolve(plan.hosts)
            except TrafficError as exc:
                self.ledger.update_status(plan.deployment_id, "Failed", exc.code, exc.message)
                raise ServiceError("%s failed before any host was touched: %s" % (plan.deployment_id, exc.message), exc.code, settled=True)
        if plan.triggers:
            plan.account_id = self.aws.account_id()
        if plan.alarm_names():
            check = check_alarms(self.aws.client("cloudwatch"), plan.alarm_names(), plan.ignore_poll_alarm_failure())
            if not check.ok:
                self.ledger.update_status(plan.deployment_id, "Stopped", "ALARM_ACTIVE", check.message)
                raise ServiceError("%s stopped before it started: %s" % (plan.deployment_id, check.message), "ALARM_ACTIVE", settled=True)
        if plan.reroute:
            try:
                reroute.prepare(self, plan)
            except reroute.RerouteError as exc:
                self.ledger.update_status(plan.deployment_id, "Failed", exc.code, exc.message)
                raise ServiceError("%s failed before any host was touched: %s" % (plan.deployment_id, exc.message), exc.code, settled=True)
        self.ledger.update_status(plan.deployment_id, "InProgress")
        self.notify(plan, self.ledger.get_deployment(plan.deployment_id), "DeploymentStart")

    def abandon(self, plan, exc):
        """Settle a deployment that an error interrupted (Failed, with the cause), releasing the group's lock."""
        if not plan.deployment_id or getattr(exc, "settled", False):
            return
        code = getattr(exc, "code", None) or "INTERNAL_ERROR"
        message = getattr(exc, "message", None) or str(exc) or "the controller failed"
        try:
            self.ledger.abandon(plan.deployment_id, "Failed", code, "%s (the controller settled it when the error happened)" % message)
        except Exception:  # pylint: disable=broad-except  # the original error is the one to report
            pass

    # ------------------------------------------------------------------ AWS helpers for the plan
    def balancers(self, plan, role=None):
        """The plan's load balancers (those of a host of ``role``: a target group pair has one group per role), or None without
        traffic control."""
        if not plan.controls_traffic:
            return None
        from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import LoadBalancers, TrafficError
        from ansible_collections.rollout.codedeploy.plugins.module_utils.haproxy import Backend, HaproxyError
        backends = []
        for spec in plan.haproxy_backends:
            if self.runtimes is None:
                raise TrafficError("the deployment group has HAProxy backends but this controller step cannot reach HAProxy's runtime API.")
            try:
                backends.append(Backend(spec, self.runtimes(spec["runtime_api"]), time.monotonic))
            except HaproxyError as exc:
                raise TrafficError(exc.message, code=exc.code)
        return LoadBalancers(elbv2=self.aws.client("elbv2") if plan.target_groups else None,
                             elb=self.aws.client("elb") if plan.classic_elbs else None,
                             target_groups=reroute.target_groups_for(plan, role), classic_elbs=plan.classic_elbs, haproxy=backends)

    def notifier(self, plan):
        if not plan.triggers:
            return None
        from ansible_collections.rollout.codedeploy.plugins.module_utils.notify import Notifier
        return Notifier(sns=self.aws.client("sns"), events=self.aws.client("events"), triggers=plan.triggers,
                        region=self.aws.region, account_id=plan.account_id or "000000000000")

    def notify(self, plan, deployment, name):
        notes = self.notifier(plan)
        return notes.deployment_event(name, deployment) if notes is not None else []

    # ------------------------------------------------------------------ between batches
    def after_batch(self, plan, batch_hosts):
        """Stop requests, alarms and the bake after a batch: {proceed, status, error_code?, msg?, baked}."""
        current = self.ledger.get_deployment(plan.deployment_id, include_instances=False)
        if current["status"] in TERMINAL_STATUSES:
            return {"proceed": False, "status": current["status"], "changed": False}
        request = current.get("stop_request")
        if request:
            by = " of %s" % request["requested_by"] if request.get("requested_by") else ""
            return self._stop(plan, "MANUAL_STOP", "stopped on request%s after the current batch" % by)
        if plan.alarm_names():
            check = check_alarms(self.aws.client("cloudwatch"), plan.alarm_names(), plan.ignore_poll_alarm_failure())
            if not check.ok:
                return self._stop(plan, "ALARM_ACTIVE", check.message)
        bake = plan.bake_seconds(batch_hosts)
        if bake > 0 and plan.alarm_names():
            # Zonal deployments bake after each zone; the alarms are watched for the whole bake.
            check = watch_alarms(self.aws.client("cloudwatch"), plan.alarm_names(), bake, plan.ignore_poll_alarm_failure(),
                                 interval=min(10.0, max(bake / 5.0, 0.5)), sleep=self._sleep)
            if not check.ok:
                return self._stop(plan, "ALARM_ACTIVE", "%s (during the %d s bake)" % (check.message, bake))
        elif bake > 0:
            self._sleep(bake)
        self.ledger.renew_lease(plan.deployment_id, lease_seconds=plan.lease_seconds)
        if plan.roles and set(batch_hosts or ()) & set(plan.hosts_in_role("green")):
            ready, why = self.green_ready(plan, final=False)
            if not ready:
                # The blue hosts' admission asks the same question and leaves them untouched; settle fails the deployment.
                return {"proceed": False, "status": current["status"], "error_code": "HEALTH_CONSTRAINTS", "baked": bake, "changed": False,
                        "msg": "%s: %s; the blue hosts keep serving" % (plan.deployment_id, why)}
            if self.green_installed(plan, current):
                return dict(self.ready_wait(plan), baked=bake)
            if plan.reroute and reroute.due(plan, self.ledger.get_deployment(plan.deployment_id, include_instances=True)):
                return dict(reroute.run(self, plan), baked=bake)
        return {"proceed": True, "status": current["status"], "baked": bake, "changed": False}

    # ------------------------------------------------------------------ blue/green: the ready wait (STOP_DEPLOYMENT)
    def green_installed(self, plan, current):
        """True once, after the last green install batch of a plan with a ready wait: no green host is still to install and
        no continue was given yet."""
        if not plan.waits_ready or current.get("continue_request") or current["status"] != "InProgress":
            return False
        deployment = self.ledger.get_deployment(plan.deployment_id, include_instances=True)
        green = set(plan.instances[h] for h in plan.hosts_in_role("green"))
        return not any(i["status"] in ("Pending", "InProgress") for i in deployment.get("instances") or [] if i["instance_id"] in green)

    def ready_wait(self, plan):
        """The green fleet is installed: the deployment waits in status Ready (the group stays locked, the lease is renewed) for
        a continue request (it goes on InProgress and reroutes), a stop request or the end of the wait (Stopped, nothing rerouted)."""
        self.ledger.update_status(plan.deployment_id, "Ready")
        self.notify(plan, self.ledger.get_deployment(plan.deployment_id), "DeploymentReady")
        seconds = int(plan.ready_wait)

        def answer(current, waited):
            del waited
            if current["status"] in TERMINAL_STATUSES:
                return {"proceed": False, "status": current["status"], "changed": False}
            if current.get("continue_request"):
                self.ledger.update_status(plan.deployment_id, "InProgress")
                by = current["continue_request"].get("requested_by")
                return {"proceed": True, "status": "InProgress", "changed": True,
                        "msg": "%s: continued%s; rerouting the traffic to the green hosts" % (plan.deployment_id, " by %s" % by if by else "")}
            if current.get("stop_request"):
                by = " of %s" % current["stop_request"]["requested_by"] if current["stop_request"].get("requested_by") else ""
                return self._stop(plan, "MANUAL_STOP", "stopped on request%s while the green fleet waited in status Ready" % by)
            return None

        return self._poll(plan, seconds, answer) or self._stop(plan, READY_TIMEOUT_CODE, ready_timeout_message(seconds))

    def _poll(self, plan, seconds, answer):
        """Wait up to ``seconds`` for a request from another process: every READY_POLL seconds (at most a third of the lease)
        ``answer(deployment summary, seconds waited)`` is asked, and the lease renewed; its first non-None answer is returned,
        None when the time ran out."""
        started = self._clock()
        poll = max(1, min(READY_POLL, int(plan.lease_seconds or DEFAULT_LEASE_SECONDS) // 3))
        while True:
            found = answer(self.ledger.get_deployment(plan.deployment_id, include_instances=False), self._clock() - started)
            if found is not None:
                return found
            left = started + seconds - self._clock()
            if left <= 0:
                return None
            self._sleep(min(poll, left))
            self.ledger.renew_lease(plan.deployment_id, lease_seconds=plan.lease_seconds)

    def request_continue_group(self, settings, inventory_group, requested_by=None):
        """request_continue for the deployment of a deployment group that waits in status Ready (an AWX workflow knows the group
        before the deploy job ends, not the deployment's id)."""
        application, group, _group_id = group_names(settings, inventory_group)
        ready = self.ledger.list_deployments(application, group, statuses=["Ready"], limit=1)
        if ready:
            return self.request_continue(ready[0]["deployment_id"], requested_by)
        active = self.ledger.list_deployments(application, group, statuses=["Created", "Queued", "InProgress", "Baking"], limit=1)
        if active and (active[0].get("swap") or {}).get("state") == TERMINATION_WAIT:
            return self.request_continue(active[0]["deployment_id"], requested_by)
        now = "its deployment %s is %s" % (active[0]["deployment_id"], active[0]["status"]) if active else "it has no active deployment"
        raise ServiceError("deployment group %s (%s/%s) has no deployment waiting in status Ready or in its termination wait: %s. Only "
                           "a blue/green deployment whose green fleet is installed and waits for a continue (deployment_ready_option "
                           "STOP_DEPLOYMENT), or one that waits to terminate its blue fleet (TERMINATE), can be continued"
                           % (inventory_group, application, group, now), "DEPLOYMENT_IS_NOT_READY")

    def request_continue(self, deployment_id, requested_by=None):
        """Let a deployment that waits in status Ready reroute its traffic, or one in its termination wait terminate the blue
        fleet now (from another process: the continue playbook)."""
        current = self.ledger.get_deployment(deployment_id, include_instances=False)
        if current["status"] == "InProgress" and (current.get("swap") or {}).get("state") == TERMINATION_WAIT:
            self.ledger.update_swap(deployment_id, {"termination_continue": {"requested_at": utc_now(),
                                                                             "requested_by": stop_hint_owner(requested_by)}})
            return {"changed": True, "deployment_id": deployment_id, "status": "InProgress",
                    "msg": "asked %s to end its termination wait: its controller terminates the blue fleet within a few seconds"
                           % deployment_id}
        if current["status"] != "Ready":
            raise ServiceError(continue_refusal(deployment_id, current["status"]), "DEPLOYMENT_IS_NOT_READY")
        try:
            self.ledger.request_continue(deployment_id, requested_by=requested_by)
        except LedgerError as exc:  # it stopped (timed out) between the two reads
            raise ServiceError(exc.message, "DEPLOYMENT_IS_NOT_READY")
        return {"changed": True, "deployment_id": deployment_id, "status": "Ready",
                "msg": "asked %s to reroute the traffic to its green fleet: its controller goes on within a few seconds" % deployment_id}

    # ------------------------------------------------------------------ blue/green
    def green_ready(self, plan, final=True):
        """Whether the green fleet satisfies the minimum healthy hosts: (True, None) or (False, why). ``final``: every green host
        must have finished (the question the blue hosts ask before they leave the load balancers); otherwise hosts still to go
        count as possible successes."""
        deployment = self.ledger.get_deployment(plan.deployment_id, include_instances=True)
        counts = green_counts(plan, deployment)
        if final and counts["pending"]:
            return False, "%d green host(s) have not finished" % counts["pending"]
        outcome = configs.evaluate(counts["total"], counts["succeeded"], counts["failed"], counts["pending"], plan.minimum)
        if outcome.status == "Failed":
            return False, "HEALTH_CONSTRAINTS: %d of %d green hosts succeeded, at least %d needed before traffic leaves the blue hosts" % (
                counts["succeeded"], counts["total"], max(plan.minimum, 1))
        return True, None

    def _stop(self, plan, code, message):
        self.ledger.update_status(plan.deployment_id, "Stopped", code, message)
        return {"proceed": False, "status": "Stopped", "error_code": code, "msg": message, "changed": True}

    # ------------------------------------------------------------------ settle
    def settle(self, plan, reported=None):
        """The final status (CodeDeploy's success rule), notifications and the rollback target.

        ``reported``: inventory host -> what its deploy_host task returned, for hosts whose outcome the ledger could not
        record at the time (``ledger_unrecorded``); their outcome is recorded here before the verdict."""
        if not plan.deploys:
            return {"changed": False, "deployment_id": None, "status": "Succeeded", "msg": plan.note or "nothing deployed",
                    "rollback": None, "overview": {}, "out_of_service": [], "error": None}
        deployment = self.ledger.get_deployment(plan.deployment_id, include_instances=True)
        unrecorded, blue_green = [], None
        if deployment["status"] not in TERMINAL_STATUSES:
            unrecorded, recorded = self.record_reported(plan, deployment, reported or {})
            if recorded:
                deployment = self.ledger.get_deployment(plan.deployment_id, include_instances=True)
            if plan.roles:
                blue_green = self._blue_green_verdict(plan, deployment)
            else:
                self._verdict(plan, deployment)
            deployment = self.ledger.get_deployment(plan.deployment_id, include_instances=True)
        elif plan.roles:
            # Stopped between batches (a stop request, an alarm) or settled by another run: put the traffic back all the same.
            blue_green = self._traffic_rollback(plan, deployment)
        blue_green = green_copy.after_settle(self.aws, self.ledger, plan, deployment, blue_green)  # COPY_AUTO_SCALING_GROUP only
        reroute.finish(self, plan)
        event = {"Succeeded": "DeploymentSuccess", "Failed": "DeploymentFailure", "Stopped": "DeploymentStop"}[deployment["status"]]
        warnings = self.notify(plan, deployment, event)
        out_of_service = [i.get("host") or i["instance_id"] for i in deployment.get("instances") or [] if i.get("out_of_service")]
        error = deployment.get("error") or {}
        summary = "Deployment %s %s: %s" % (plan.deployment_id, deployment["status"], ", ".join(
            "%s %d" % (k, v) for k, v in sorted(deployment["overview"].items()) if v))
        if error:
            summary += ". %s: %s" % (error.get("code"), error.get("message"))
        if out_of_service:
            summary += ". Out of service in their load balancers: %s" % ", ".join(out_of_service)
        if unrecorded:
            summary += ". The ledger has no outcome for %s: %s" % (", ".join(unrecorded), UNRECORDED_HINT)
        if blue_green and blue_green.get("msg"):
            summary += ". %s" % blue_green["msg"]
        rollback = None if plan.roles else self.rollback_target(plan, deployment)
        if rollback:
            summary += ". Rolling back %d host(s) to %s (%s)" % (len(rollback["hosts"]), rollback["reuse_deployment"], rollback["location"])
        return {"changed": True, "deployment_id": plan.deployment_id, "status": deployment["status"], "error": error or None,
                "overview": deployment["overview"], "out_of_service": out_of_service, "msg": summary, "rollback": rollback,
                "unrecorded": unrecorded, "blue_green": blue_green,
                "notification_warnings": [w for w in warnings or [] if w]}

    def record_reported(self, plan, deployment, reported):
        """Record the outcome that a host's task reported when the ledger could not take it then; returns the hosts whose
        instance the ledger still has unfinished (InProgress), each with why, and how many it recorded."""
        unrecorded, recorded = [], 0
        for instance in deployment.get("instances") or []:
            if instance["status"] != "InProgress":
                continue
            host = instance.get("host") or instance["instance_id"]
            result = reported.get(host) or {}
            if result.get("deployment_id") != plan.deployment_id or result.get("status") not in ("Succeeded", "Failed"):
                unrecorded.append("%s (InProgress, no result from its task)" % host)
                continue
            try:
                self.ledger.record_events(plan.deployment_id, instance["instance_id"], result.get("events") or [])
                self.ledger.finish_instance(plan.deployment_id, instance["instance_id"], result["status"], error_code=result.get("error_code"),
                                            message=result.get("msg"), out_of_service=bool(result.get("out_of_service")))
                recorded += 1
            except LedgerError as exc:
                unrecorded.append("%s (%s on the host; %s)" % (host, result["status"], exc.message))
        return unrecorded, recorded

    def _verdict(self, plan, deployment):
        total, succeeded = len(plan.hosts), deployment["overview"].get("Succeeded", 0)
        # Skipped (never deployed) instances count against the deployment like failed ones.
        outcome = configs.evaluate(total, succeeded, total - succeeded, 0, plan.minimum)
        if outcome.status == "Succeeded":
            self.ledger.update_status(plan.deployment_id, "Succeeded")
            return
        lines = failure_summary(deployment)
        message = "%s (%d of %d instances succeeded, at least %d needed)" % (
            "; ".join(lines) or outcome.message, succeeded, total, max(plan.minimum, 1))
        self.ledger.update_status(plan.deployment_id, "Failed", outcome.error_code or "HEALTH_CONSTRAINTS", message)

    # ------------------------------------------------------------------ blue/green settle
    def _blue_green_verdict(self, plan, deployment):
        """Settle a blue/green deployment: the green fleet's minimum and every blue host out of the load balancers make it
        Succeeded (then KEEP_ALIVE or TERMINATE the blue fleet); anything else fails it and puts the traffic back first."""
        counts = green_counts(plan, deployment)
        # At the end, green hosts that never finished count as failed.
        green_ok = configs.evaluate(counts["total"], counts["succeeded"], counts["failed"] + counts["pending"], 0,
                                    plan.minimum).status == "Succeeded"
        blue = [i for i in deployment.get("instances") or [] if i.get("role") == "blue"]
        blue_failed = [i for i in blue if i["status"] != "Succeeded"]
        if green_ok and not blue_failed:
            done = self._after_reroute(plan, blue)
            if done.get("stopped"):
                self.ledger.update_status(plan.deployment_id, "Stopped", "MANUAL_STOP", "%s after the reroute; the blue hosts were not "
                                          "terminated" % done["stopped"])
                back = self._traffic_rollback(plan, self.ledger.get_deployment(plan.deployment_id, include_instances=True),
                                              event="DEPLOYMENT_STOP_ON_REQUEST")
                return dict(back, msg="%s. %s" % (done["msg"], back["msg"]))
            if done.get("error_code"):
                self.ledger.update_status(plan.deployment_id, "Failed", done["error_code"], done["msg"])
            else:
                self.ledger.update_status(plan.deployment_id, "Succeeded")
            return done
        lines = failure_summary(deployment)
        if not green_ok:
            code = "HEALTH_CONSTRAINTS"
            why = "%d of %d green hosts succeeded, at least %d needed" % (counts["succeeded"], counts["total"], max(plan.minimum, 1))
        else:
            failed = next((i for i in blue_failed if i["status"] == "Failed"), blue_failed[0])
            code = deployment_error_code(failed.get("error_code"))
            why = "blue host(s) %s did not complete BeforeBlockTraffic, BlockTraffic and AfterBlockTraffic" % ", ".join(
                i.get("host") or i["instance_id"] for i in blue_failed)
        # Settled first: the group is then free for the rollback deployment that puts the traffic back (linked to this one).
        self.ledger.update_status(plan.deployment_id, "Failed", code, "%s (%s)" % ("; ".join(lines) or why, why))
        return self._traffic_rollback(plan, self.ledger.get_deployment(plan.deployment_id, include_instances=True), event="DEPLOYMENT_FAILURE")

    def _after_reroute(self, plan, blue):
        """After every blue host left the load balancers: KEEP_ALIVE leaves the blue fleet running, TERMINATE terminates it after
        the termination wait (renewing the deployment's lease meanwhile)."""
        setting = (plan.blue_green or {}).get("terminate_blue_instances_on_deployment_success") or {}
        action = setting.get("action") or "TERMINATE"
        ids = [i["instance_id"] for i in blue]
        names = ", ".join(i.get("host") or i["instance_id"] for i in blue)
        if action == "KEEP_ALIVE" or not ids:
            for instance in blue:
                self.ledger.set_instance(plan.deployment_id, instance["instance_id"], instance["status"], blue_fleet="kept alive")
            return {"phase": "rerouted", "action": "KEEP_ALIVE", "blue": ids, "terminated": [],
                    "msg": "Traffic rerouted to the green hosts; the blue hosts %s are out of the load balancers and left running "
                           "(KEEP_ALIVE)" % (names or "(none)")}
        wait = int(setting.get("termination_wait_time_in_minutes") or 0) * 60
        ended = self._termination_wait(plan, wait)
        if ended.get("stopped"):
            for instance in blue:
                self.ledger.set_instance(plan.deployment_id, instance["instance_id"], instance["status"], blue_fleet="kept (stopped)")
            return {"phase": "rerouted", "action": "TERMINATE", "blue": ids, "terminated": [], "stopped": ended["stopped"],
                    "msg": "Traffic rerouted to the green hosts; the deployment was stopped during the termination wait (%s), so the "
                           "blue hosts %s were not terminated" % (ended["stopped"], names)}
        from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import AwsError
        try:
            states = green_copy.terminate_blue(self.aws, self.ledger, plan, ids)  # a copied green fleet: the original ASG goes first
        except AwsError as exc:
            for instance in blue:
                self.ledger.set_instance(plan.deployment_id, instance["instance_id"], instance["status"], blue_fleet="termination failed")
            return {"phase": "rerouted", "action": "TERMINATE", "blue": ids, "terminated": [], "error_code": exc.code,
                    "msg": "Traffic rerouted to the green hosts, but the blue hosts were not terminated after %d min: %s" % (
                        wait // 60, exc.message)}
        for instance in blue:
            self.ledger.set_instance(plan.deployment_id, instance["instance_id"], instance["status"], blue_fleet="terminated")
        after = "after %d min" % (wait // 60)
        if ended.get("continued"):
            after = "when %s ended the termination wait after %s" % (ended["continued"], _duration(int(ended["waited"])))
        return {"phase": "rerouted", "action": "TERMINATE", "blue": ids, "terminated": sorted(states or ids),
                "msg": "Traffic rerouted to the green hosts; the blue hosts %s were terminated %s (TERMINATE)" % (names, after)}

    def _termination_wait(self, plan, seconds):
        """The termination wait of a TERMINATE blue/green deployment, renewing the lease: {} when it ran out, ``continued`` (who)
        and ``waited`` when a continue ended it early (CodeDeploy's continue-deployment for the termination wait), ``stopped`` (why)
        on a stop request. The swap record says ``termination_wait`` meanwhile, which is what lets ``continue`` find it."""
        if seconds <= 0:
            return {}
        self.ledger.update_swap(plan.deployment_id, {"state": TERMINATION_WAIT, "termination_wait_seconds": int(seconds),
                                                     "termination_wait_started": utc_now()})

        def answer(current, waited):
            asked = (current.get("swap") or {}).get("termination_continue")
            if asked:
                return {"continued": asked.get("requested_by") or "a continue request", "waited": waited}
            if current.get("stop_request"):
                by = current["stop_request"].get("requested_by")
                return {"stopped": "stop requested%s" % (" by %s" % by if by else "")}
            return None

        ended = self._poll(plan, int(seconds), answer) or {}
        self.ledger.update_swap(plan.deployment_id, {"state": "rerouted"})
        return ended

    def _traffic_rollback(self, plan, deployment, event=None):
        """Put the traffic back to blue after a blue/green deployment failed or stopped (settled first, so that the moves are a
        rollback deployment of their own, linked to it: plugin_utils/traffic_rollback.py)."""
        from ansible_collections.rollout.codedeploy.plugins.plugin_utils.traffic_rollback import TrafficRollback
        return TrafficRollback(self, plan, deployment, event or _rollback_event(deployment)).run()

    def rollback_target(self, plan, deployment):
        """When automatic rollback (or a stop with rollback) applies: the last good deployment and the hosts it goes back to."""
        if deployment.get("creator") == "rollback":
            return None
        event = _rollback_event(deployment)
        auto = plan.options.get("auto_rollback") or {}
        asked = (deployment.get("stop_request") or {}).get("rollback") and event == "DEPLOYMENT_STOP_ON_REQUEST"
        if not event or not (asked or (auto.get("enabled") and event in (auto.get("events") or ["DEPLOYMENT_FAILURE"]))):
            return None
        good = self.ledger.last_successful(plan.application, plan.deployment_group)
        if not good or good["deployment_id"] == deployment["deployment_id"]:
            return None
        touched = [i["host"] for i in deployment.get("instances") or [] if i.get("status") in ("Succeeded", "Failed", "InProgress")]
        if not touched:
            return None
        return {"reuse_deployment": good["deployment_id"], "hosts": touched, "rollback_of": deployment["deployment_id"],
                "location": (good.get("revision") or {}).get("location"), "event": event}

    # ------------------------------------------------------------------ stop (from another process)
    def request_stop(self, deployment_id, rollback=False, requested_by=None, force=False):
        """Ask the running controller to stop after its batch; settle at once when forced or when that controller is gone."""
        current = self.ledger.get_deployment(deployment_id, include_instances=False)
        if current["status"] in TERMINAL_STATUSES:
            return {"changed": False, "deployment_id": deployment_id, "status": current["status"],
                    "msg": "%s is already %s; nothing to stop" % (deployment_id, current["status"])}
        gone = controller_gone(current.get("owner"))
        if force or gone:
            why = "forced by %s" % (requested_by or "an operator") if force else "its controller (%s) is no longer running" % current.get("owner")
            message = "stopped without its controller: %s. Hosts it was deploying may be half-way; redeploy or roll back." % why
            self.ledger.abandon(deployment_id, "Stopped", "MANUAL_STOP", message)
            return {"changed": True, "deployment_id": deployment_id, "status": "Stopped",
                    "msg": "%s is Stopped (MANUAL_STOP) and its group unlocked: %s" % (deployment_id, why)}
        self.ledger.request_stop(deployment_id, rollback=rollback, requested_by=requested_by)
        return {"changed": True, "deployment_id": deployment_id, "status": current["status"],
                "msg": "asked %s to stop after its current batch%s" % (deployment_id, " and roll back" if rollback else "")}


def ready_timeout_message(seconds):
    return ("no continue came while the green fleet waited %s in status Ready (deployment_ready_option STOP_DEPLOYMENT): the deployment "
            "stopped before the reroute; the green hosts were not registered and the blue hosts keep serving" % _duration(seconds))


def _duration(seconds):
    return "%d min" % (seconds // 60) if seconds % 60 == 0 else "%d s" % seconds


def continue_refusal(deployment_id, status):
    if status in TERMINAL_STATUSES:
        return "%s is already %s; there is nothing to continue" % (deployment_id, status)
    return ("%s is %s, not Ready: only a blue/green deployment whose green fleet is installed and waits for a continue "
            "(deployment_ready_option STOP_DEPLOYMENT) can be continued; try again once rollout.codedeploy.deployment_info shows it Ready"
            % (deployment_id, status))


def ready_wait_seconds(options, request):
    """Seconds a blue/green deployment waits in status Ready for a continue (deployment_ready_option STOP_DEPLOYMENT), else None:
    the extra var codedeploy_ready_wait_seconds when given, otherwise wait_time_in_minutes."""
    ready = (options.get("blue_green") or {}).get("deployment_ready_option") or {}
    if ready.get("action_on_timeout") != "STOP_DEPLOYMENT":
        return None
    if request.get("ready_wait_seconds"):
        return int(request["ready_wait_seconds"])
    return int(ready.get("wait_time_in_minutes") or 0) * 60 or None


def _ready_fields(options, request, planned):
    """The plan's ready-wait fields: the first play installs the green batches, the reroute play runs them again and the blue batch."""
    wait = ready_wait_seconds(options, request)
    if not wait or not getattr(planned, "green_hosts", None):
        return {}
    return {"ready_wait": wait, "serial": list(planned.green_serial) or [1], "reroute_hosts": list(planned.hosts),
            "reroute_serial": list(planned.serial) or [1]}


def blue_green_hosts(blue, green, group):
    """The hosts of a blue/green deployment: the deployment group's (role blue) and the green fleet (role green)."""
    if not green:
        raise ServiceError("deployment group %s is BLUE_GREEN and no green hosts were given: pass -e green_hosts=<inventory group>" % group,
                           "INVALID_INPUT")
    blue_ids = {h["instance_id"]: h["host"] for h in blue}
    both = ["%s (%s and %s)" % (h["instance_id"], blue_ids[h["instance_id"]], h["host"]) for h in green if h["instance_id"] in blue_ids]
    if both:
        raise ServiceError("green_hosts names instance(s) that are also hosts of deployment group %s: %s. A host cannot be blue and green; "
                           "select the green instances by a tag the group's hosts do not carry" % (group, ", ".join(both)), "INVALID_INPUT")
    return [dict(h, role="blue") for h in blue] + [dict(h, role="green") for h in green]


def green_counts(plan, deployment):
    """The green fleet's instances by outcome: {total, succeeded, failed (Failed, Skipped, Unknown), pending}."""
    green = set(plan.instances[h] for h in plan.hosts_in_role("green"))
    counts = {"total": len(green), "succeeded": 0, "failed": 0, "pending": 0}
    for instance in deployment.get("instances") or []:
        if instance["instance_id"] not in green:
            continue
        status = instance["status"]
        key = "succeeded" if status == "Succeeded" else "pending" if status in ("Pending", "InProgress", "Ready") else "failed"
        counts[key] += 1
    return counts


def controller_gone(owner, hostname=None):
    """True when ``owner`` names an ansible-playbook process on this machine that no longer runs."""
    found = re.match(r"^(\S+) pid (\d+) on (\S+) ", owner or "")
    if not found or found.group(3) != (hostname or socket.gethostname()):
        return False
    return not heartbeat.alive(int(found.group(2)))


def _runs(last, sha256):
    last = last or {}
    return last.get("status") == "Succeeded" and last.get("revision_sha256") == sha256


def deployment_error_code(instance_code):
    """The deployment's error code for a host's failure: a hook script's code (ScriptFailed, ScriptTimedOut...) is CodeDeploy's
    HOOK_EXECUTION_FAILURE; a traffic step's code (ELB_INVALID_INSTANCE, TIMEOUT...) is already a deployment code."""
    from ansible_collections.rollout.codedeploy.plugins.module_utils.hooks import ERROR_CODES
    if not instance_code:
        return "HEALTH_CONSTRAINTS"
    return "HOOK_EXECUTION_FAILURE" if instance_code in ERROR_CODES else instance_code


def _rollback_event(deployment):
    if deployment["status"] == "Failed":
        return "DEPLOYMENT_FAILURE"
    if deployment["status"] == "Stopped":
        code = (deployment.get("error") or {}).get("code")
        return "DEPLOYMENT_STOP_ON_ALARM" if code == "ALARM_ACTIVE" else "DEPLOYMENT_STOP_ON_REQUEST"
    return None


def preview_message(plan, group, fleet_size):
    """Check mode: the plan (batches, hosts, the events and scripts each would run) with nothing recorded or touched."""
    hooks = plan.appspec.get("hooks") or {} if plan.appspec else {}

    def runs(host=None):
        return "; ".join("%s%s" % (e, " (%s)" % ", ".join(s["location"] for s in hooks[e]) if hooks.get(e) else "") for e in plan.host_events(host))

    lines = ["Check mode: nothing is recorded or changed. Plan for %s: %s, %s, minimum healthy %d of %d" % (
        group, plan.location, plan.options["deployment_config"], plan.minimum, fleet_size)]
    for number, batch in enumerate(plan.batches, 1):
        labels = ["%s (%s%s)" % (n, plan.instances[n], ", %s" % plan.roles[n] if n in plan.roles else "") for n in batch]
        lines.append("batch %d: %s" % (number, ", ".join(labels)))
    if plan.roles:
        for role in ("green", "blue"):
            hosts = plan.hosts_in_role(role)
            if hosts:
                lines.append("each %s host runs: %s" % (role, runs(hosts[0])))
    else:
        lines.append("each host runs: %s" % runs())
    if plan.waits_ready:
        lines.append("the green hosts install first (to ValidateService); then the deployment waits in status Ready up to %s for "
                     "rollout.codedeploy.continue before they run BeforeAllowTraffic, AllowTraffic and AfterAllowTraffic and the blue "
                     "hosts leave the load balancers; without a continue it stops there" % _duration(int(plan.ready_wait)))
    lines.append("ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run the scripts of the revision each host ran last")
    return "\n".join(lines)
