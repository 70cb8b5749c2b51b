# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy service's controller steps for one deployment (runs on the controller only):

- ``state: started``: fetch the revision once, validate its appspec, open the deployment in the ledger
  (one active per group), plan the batches, check alarms, publish DeploymentStart; return the plan.
- ``state: batch``: after a batch, apply the health rule, alarms and stop requests.
- ``state: finished``: settle the final status with CodeDeploy's error code and a message naming the
  hosts, events, scripts and log tails; publish the outcome.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as appspec_rules
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import revision_source
from ansible_collections.rollout.codedeploy.plugins.module_utils import service
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import controller

DEFAULT_LEASE = 300
OVERRIDES = ("deployment_config", "file_exists_behavior", "ignore_application_stop_failures", "update_outdated_instances_only",
             "auto_rollback", "alarms")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        state = self._task.args.get("state", "started")
        try:
            if state == "started":
                result.update(self._start(task_vars))
            elif state == "batch":
                result.update(self._batch())
            elif state == "finished":
                result.update(self._finish())
            elif state == "stop_requested":
                result.update(self._request_stop())
            else:
                raise AnsibleActionFail("state must be started, batch, finished or stop_requested, not %r" % state)
        except (service.ServiceError, revision_source.RevisionError, ledgers.LedgerError) as exc:
            code = getattr(exc, "code", None)
            result.update(failed=True, msg=exc.message, error_code=code)
        except AnsibleActionFail:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            # Never leave a deployment InProgress behind an unexpected error: settle it as Failed, then report.
            plan = self._task.args.get("deployment") or {}
            if plan.get("deployment_id"):
                try:
                    controller.ledger(plan).update_status(plan["deployment_id"], "Failed", "INTERNAL_ERROR", "%s: %s" % (type(exc).__name__, exc))
                except Exception:  # pylint: disable=broad-except
                    pass
            result.update(failed=True, error_code="INTERNAL_ERROR",
                          msg="rollout.codedeploy.deployment state=%s failed unexpectedly: %s: %s" % (state, type(exc).__name__, exc))
        return result

    # ----------------------------------------------------------------- start
    def _start(self, task_vars):
        args = self._task.args
        group = args.get("deployment_group")
        if not group:
            raise service.ServiceError("no deployment_group: pass -e deployment_group=<application>_<group> (an inventory group of the "
                                       "codedeploy inventory plugin)", "DEPLOYMENT_GROUP_MISSING")
        hosts, settings = service.group_hosts(group, task_vars.get("groups") or {}, task_vars.get("hostvars") or {})
        options = service.effective_options(settings, {k: args.get(k) for k in OVERRIDES})
        if args.get("creator") == "rollback":
            # A rollback is the remedy for what tripped the alarm: it is not stopped by the same alarm.
            options["alarms"] = dict(options["alarms"], enabled=False)
        aws = {"region": args.get("region") or settings.get("region"), "endpoint_url": args.get("endpoint_url"), "profile": args.get("profile")}

        application = settings.get("application") or group
        group_name = settings.get("name") or group
        group_id = settings.get("id") or group
        check_mode = bool(self._task.check_mode)
        try:
            book = ledgers.open_ledger(args.get("ledger"), aws=aws, readonly=check_mode)
        except ledgers.LedgerMissingError:
            book = None  # check mode before the first deployment: nothing recorded yet
        if args.get("reuse_deployment"):
            if book is None:
                raise service.ServiceError("no ledger at %s: there is no deployment %s to reuse" % (args.get("ledger"), args["reuse_deployment"]))
            # A rollback: the revision is the one an earlier deployment left on each host; nothing is fetched.
            earlier = book.get_deployment(args["reuse_deployment"], include_instances=False)
            fetched = {"bundle": None, "sha256": earlier["revision"].get("sha256"), "bundle_type": earlier["revision"].get("bundle_type"),
                       "location": earlier["revision"].get("location"), "source": earlier["revision"].get("source"),
                       "env": earlier["revision"].get("env")}
            spec, warnings = earlier["revision"].get("appspec") or {}, []
            if args.get("only_hosts"):
                hosts = [h for h in hosts if h["host"] in args["only_hosts"]]
        else:
            fetched, spec, warnings = self._fetch(args, aws)
        history = book.instance_history(application, group_name, [h["instance_id"] for h in hosts]) if book else {}
        last = book.last_successful(application, group_name) if book else None
        if options["update_outdated_instances_only"]:
            current = [h["host"] for h in hosts if (history.get(h["instance_id"]) or {}).get("status") == "Succeeded"
                       and (history.get(h["instance_id"]) or {}).get("revision_sha256") == fetched["sha256"]]
            hosts = [h for h in hosts if h["host"] not in current]
            if not hosts:
                note = "Nothing to deploy: every instance of %s already runs %s (update_outdated_instances_only)" % (group, fetched["location"])
                return {"changed": False, "deployment_id": None, "plan": {"hosts": [], "serial": [1], "note": note}, "msg": note}
        planned = service.plan(options["deployment_config"], settings.get("deployment_configs"), hosts, history,
                               current_revision=(last or {}).get("revision", {}).get("sha256"))
        by_host = {h["host"]: h for h in hosts}
        if check_mode:
            return self._preview(group, fetched, spec, options, planned, by_host, service.load_balancers(settings))
        revision = {"location": fetched["location"], "sha256": fetched["sha256"], "bundle_type": fetched["bundle_type"],
                    "source": fetched["source"], "env": fetched["env"], "appspec": spec}
        deployment = book.create_deployment(
            application, group_name, group_id, revision, planned.to_dict() if hasattr(planned, "to_dict") else options["deployment_config"],
            [{"instance_id": by_host[name]["instance_id"], "host": name, "zone": by_host[name].get("zone")} for name in planned.hosts],
            creator=args.get("creator") or "user", options=options, description=args.get("description"),
            rollback_of=args.get("rollback_of"), lease_seconds=int(args.get("lease_seconds") or DEFAULT_LEASE))
        deployment_id = deployment["deployment_id"]
        target_groups, classic_elbs = service.load_balancers(settings)
        plan = {"target_groups": target_groups, "classic_elbs": classic_elbs, "aws": aws}
        lbs = controller.balancers(plan)
        if lbs is not None:
            from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
            try:
                lbs.resolve()
            except TrafficError as exc:
                book.update_status(deployment_id, "Failed", exc.code, exc.message)
                raise service.ServiceError("%s failed before any host was touched: %s" % (deployment_id, exc.message), exc.code)
        plan = {
            "deployment_id": deployment_id, "application": application, "deployment_group": group_name, "deployment_group_id": group_id,
            "inventory_group": group, "hosts": list(planned.hosts), "serial": list(planned.serial) or [1],
            "instances": {name: by_host[name]["instance_id"] for name in planned.hosts},
            "minimum": planned.minimum, "max_unhealthy": len(hosts) - planned.minimum,
            "bundle": fetched["bundle"], "sha256": fetched["sha256"], "appspec": spec, "revision_env": fetched["env"] or {},
            "options": options, "steps": service.host_steps(bool(target_groups or classic_elbs)),
            "target_groups": target_groups, "classic_elbs": classic_elbs, "triggers": settings.get("triggers") or [],
            "account_id": controller.account_id(aws) if settings.get("triggers") else None,
            "ledger": args.get("ledger"), "aws": aws, "lease_seconds": int(args.get("lease_seconds") or DEFAULT_LEASE),
            "location": fetched["location"], "reuse_deployment": args.get("reuse_deployment"),
            "batches": [list(batch) for batch in planned.batches], "bake_after": list(planned.bake_after),
        }
        if options["alarms"].get("enabled") and options["alarms"].get("names"):
            check = self._alarms(plan)
            if not check.ok:
                book.update_status(deployment_id, "Stopped", "ALARM_ACTIVE", check.message)
                raise service.ServiceError("%s stopped before it started: %s" % (deployment_id, check.message), "ALARM_ACTIVE")
        book.update_status(deployment_id, "InProgress")
        controller.notify_deployment(controller.notifier(plan), book.get_deployment(deployment_id), "DeploymentStart")
        orphaned = deployment.get("orphaned") or []
        message = "Deployment %s: %s to %d hosts of %s, %s (batches %s)" % (
            deployment_id, fetched["location"], len(hosts), group, options["deployment_config"], planned.serial)
        if orphaned:
            message += ". Marked Failed (TIMEOUT) the deployment(s) %s whose controller stopped without finishing" % ", ".join(orphaned)
        return {"changed": True, "deployment_id": deployment_id, "plan": plan, "appspec_warnings": warnings,
                "orphaned": orphaned, "msg": message}

    @staticmethod
    def _preview(group, fetched, spec, options, planned, by_host, balancers):
        """Check mode: the plan (batches, hosts, the events each would run) with nothing recorded or touched."""
        steps = service.host_steps(bool(balancers[0] or balancers[1]))
        events = []
        for step in steps:
            events.extend(step if isinstance(step, list) else [step])
        hooks = spec.get("hooks") or {}
        per_event = ["%s%s" % (e, " (%s)" % ", ".join(script["location"] for script in hooks[e]) if hooks.get(e) else "") for e in events]
        batches = [list(batch) for batch in planned.batches]
        lines = ["Check mode: nothing is recorded or changed. Plan for %s: %s, %s, minimum healthy %d of %d" % (
            group, fetched["location"], options["deployment_config"], planned.minimum, len(by_host))]
        for number, batch in enumerate(batches, 1):
            lines.append("batch %d: %s" % (number, ", ".join("%s (%s)" % (n, by_host[n]["instance_id"]) for n in batch)))
        lines.append("each host runs: %s" % "; ".join(per_event))
        lines.append("ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run the scripts of the revision each host ran last")
        return {"changed": False, "deployment_id": None, "msg": "\n".join(lines),
                "plan": {"hosts": [], "serial": [1], "note": "check mode", "batches": batches, "events": events}}

    @staticmethod
    def _fetch(args, aws):
        """The revision, fetched once into the controller's cache, and its validated appspec."""
        needs_s3 = isinstance(args.get("revision"), dict) and "s3" in args["revision"] or str(args.get("revision", "")).startswith("s3://")
        s3 = controller.aws_client("s3", aws) if needs_s3 else None
        fetched = revision_source.fetch(args.get("revision"), s3_client=s3, cache=args.get("bundle_cache") or revision_source.DEFAULT_CACHE)
        try:
            text, member = bundles.read_appspec(fetched["bundle"])
            spec, warnings = appspec_rules.parse_appspec(text, source="%s:%s" % (fetched["location"], member))
        except appspec_rules.AppSpecError as exc:
            raise service.ServiceError("revision %s has an invalid appspec: %s" % (fetched["location"], exc.message), "INVALID_REVISION")
        except bundles.BundleError as exc:
            raise service.ServiceError("revision %s cannot be used: %s" % (fetched["location"], exc.message), "INVALID_REVISION")
        return fetched, spec, warnings

    @staticmethod
    def _alarms(plan):
        from ansible_collections.rollout.codedeploy.plugins.module_utils.alarms import check_alarms
        alarms = plan["options"]["alarms"]
        return check_alarms(controller.aws_client("cloudwatch", plan.get("aws")), alarms["names"],
                            alarms.get("ignore_poll_alarm_failure", False))

    # ----------------------------------------------------------------- after a batch
    def _batch(self):
        plan = self._task.args["deployment"]
        book = controller.ledger(plan)
        deployment_id = plan["deployment_id"]
        current = book.get_deployment(deployment_id, include_instances=False)
        if current["status"] in service.TERMINAL:
            return {"changed": False, "proceed": False, "status": current["status"]}
        request = current.get("stop_request")
        if request:
            book.update_status(deployment_id, "Stopped", "MANUAL_STOP", "stopped on request%s after the current batch" % (
                " of %s" % request.get("requested_by") if request.get("requested_by") else ""))
            return {"changed": True, "proceed": False, "status": "Stopped", "error_code": "MANUAL_STOP"}
        if plan["options"]["alarms"].get("enabled") and plan["options"]["alarms"].get("names"):
            check = self._alarms(plan)
            if not check.ok:
                book.update_status(deployment_id, "Stopped", "ALARM_ACTIVE", check.message)
                return {"changed": True, "proceed": False, "status": "Stopped", "error_code": "ALARM_ACTIVE", "msg": check.message}
        bake = self._bake_seconds(plan, self._task.args.get("batch_hosts") or [])
        if bake > 0:
            # Zonal deployments bake after each zone; the alarms are watched for the whole bake.
            from ansible_collections.rollout.codedeploy.plugins.module_utils.alarms import watch_alarms
            alarms = plan["options"]["alarms"]
            if alarms.get("enabled") and alarms.get("names"):
                check = watch_alarms(controller.aws_client("cloudwatch", plan.get("aws")), alarms["names"], bake,
                                     alarms.get("ignore_poll_alarm_failure", False), interval=min(10.0, max(bake / 5.0, 0.5)))
                if not check.ok:
                    book.update_status(deployment_id, "Stopped", "ALARM_ACTIVE", "%s (during the %d s bake)" % (check.message, bake))
                    return {"changed": True, "proceed": False, "status": "Stopped", "error_code": "ALARM_ACTIVE", "msg": check.message}
            else:
                time.sleep(bake)
        book.renew_lease(deployment_id, lease_seconds=plan.get("lease_seconds") or DEFAULT_LEASE)
        return {"changed": False, "proceed": True, "baked": bake, "status": current["status"]}

    @staticmethod
    def _bake_seconds(plan, batch_hosts):
        """The bake (monitor) time after the batch that just ran: the plan batch holding these hosts."""
        batch_hosts = set(batch_hosts)
        for index, batch in enumerate(plan.get("batches") or []):
            if batch_hosts & set(batch):
                return int((plan.get("bake_after") or [0] * (index + 1))[index] or 0)
        return 0

    # ----------------------------------------------------------------- stop (from another process)
    def _request_stop(self):
        args = self._task.args
        deployment_id = args.get("deployment_id")
        if not deployment_id:
            raise service.ServiceError("no deployment_id: pass -e deployment_id=d-XXXXXXXXX (rollout.codedeploy.deployment_info lists them)")
        book = ledgers.open_ledger(args.get("ledger"), aws={"region": args.get("region")})
        current = book.get_deployment(deployment_id, include_instances=False)
        if current["status"] in service.TERMINAL:
            return {"changed": False, "deployment_id": deployment_id, "status": current["status"],
                    "msg": "%s is already %s; nothing to stop" % (deployment_id, current["status"])}
        rollback = bool(args.get("rollback"))
        book.request_stop(deployment_id, rollback=rollback)
        return {"changed": True, "deployment_id": deployment_id, "status": current["status"],
                "msg": "asked %s to stop after its current batch%s" % (deployment_id, " and roll back" if rollback else "")}

    # ----------------------------------------------------------------- finish
    def _finish(self):
        plan = self._task.args["deployment"]
        if not plan.get("deployment_id"):
            # Nothing was deployed (check mode, or every instance already up to date).
            return {"changed": False, "deployment_id": None, "status": "Succeeded", "msg": plan.get("note") or "nothing deployed",
                    "rollback": None, "overview": {}, "out_of_service": [], "error": None}
        book = controller.ledger(plan)
        deployment_id = plan["deployment_id"]
        deployment = book.get_deployment(deployment_id, include_instances=True)
        overview = deployment["overview"]
        total = len(plan["hosts"])
        if deployment["status"] not in service.TERMINAL:
            succeeded = overview.get("Succeeded", 0)
            # Skipped (never deployed) instances count against the deployment like failed ones.
            outcome = service.verdict(total, succeeded, total - succeeded, 0, plan["minimum"])
            if outcome.status == "Succeeded":
                book.update_status(deployment_id, "Succeeded")
            else:
                lines = service.failure_summary(deployment)
                message = "%s (%d of %d instances succeeded, at least %d needed)" % (
                    "; ".join(lines) or outcome.message, succeeded, total, max(plan["minimum"], 1))
                book.update_status(deployment_id, "Failed", outcome.error_code or "HEALTH_CONSTRAINTS", message)
            deployment = book.get_deployment(deployment_id, include_instances=True)
        notes = controller.notifier(plan)
        event = {"Succeeded": "DeploymentSuccess", "Failed": "DeploymentFailure", "Stopped": "DeploymentStop"}[deployment["status"]]
        warnings = controller.notify_deployment(notes, deployment, event)
        out_of_service = [i.get("host") or i["instance_id"] for i in deployment.get("instances") or [] if i.get("out_of_service")]
        error = deployment.get("error") or {}
        summary = "Deployment %s %s: %s" % (deployment_id, deployment["status"], ", ".join(
            "%s %d" % (k, v) for k, v in sorted(deployment["overview"].items()) if v))
        if error:
            summary += ". %s: %s" % (error.get("code"), error.get("message"))
        if out_of_service:
            summary += ". Out of service in their load balancers: %s" % ", ".join(out_of_service)
        rollback = self._rollback_target(book, plan, deployment)
        if rollback:
            summary += ". Rolling back %d host(s) to %s (%s)" % (len(rollback["hosts"]), rollback["reuse_deployment"], rollback["location"])
        return {"changed": True, "deployment_id": deployment_id, "status": deployment["status"], "error": error or None,
                "overview": deployment["overview"], "out_of_service": out_of_service, "msg": summary, "rollback": rollback,
                "notification_warnings": [w for w in warnings or [] if w]}

    @staticmethod
    def _rollback_target(book, plan, deployment):
        """When auto-rollback applies: the last good deployment whose archives the touched hosts still keep, and those hosts."""
        auto = plan["options"].get("auto_rollback") or {}
        if deployment.get("creator") == "rollback":
            return None
        error_code = (deployment.get("error") or {}).get("code")
        event = {"Failed": "DEPLOYMENT_FAILURE"}.get(deployment["status"])
        if deployment["status"] == "Stopped":
            event = "DEPLOYMENT_STOP_ON_ALARM" if error_code == "ALARM_ACTIVE" else "DEPLOYMENT_STOP_ON_REQUEST"
        asked = (deployment.get("stop_request") or {}).get("rollback") and event == "DEPLOYMENT_STOP_ON_REQUEST"
        if not event or not (asked or (auto.get("enabled") and event in (auto.get("events") or ["DEPLOYMENT_FAILURE"]))):
            return None
        good = book.last_successful(plan["application"], plan["deployment_group"])
        if not good or good["deployment_id"] == deployment["deployment_id"]:
            return None
        touched = [i["host"] for i in deployment.get("instances") or [] if i.get("status") in ("Succeeded", "Failed", "InProgress")]
        if not touched:
            return None
        return {"reuse_deployment": good["deployment_id"], "hosts": touched, "rollback_of": deployment["deployment_id"],
                "location": (good.get("revision") or {}).get("location"), "event": event}
