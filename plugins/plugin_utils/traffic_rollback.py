# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback of a blue/green deployment that failed or stopped: the traffic goes back to the blue fleet.

Before the reroute no blue host was touched: the green hosts that reached AllowTraffic leave the load
balancers again. After it (when automatic rollback, or a stop with rollback, applies) the blue hosts
that left are registered again first, and only when every one of them is back do the green hosts
leave. The moves are a deployment of their own in the ledger (creator ``rollback``), linked both ways
to the deployment it rolls back, with one instance per host it moved and the traffic step it ran
(AllowTraffic or BlockTraffic) as that instance's lifecycle event, so ``deployment_info`` tells the
whole story. docs/blue-green.md describes it. Controller-only."""

from __future__ import annotations

from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError, utc_now
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import reroute

BEFORE = "before_reroute"
AFTER = "after_reroute"


def _name(instance):
    return instance.get("host") or instance["instance_id"]


def rollback_applies(plan, deployment, event):
    """Whether the traffic of a deployment that already rerouted goes back: automatic rollback for ``event``, or a stop
    request that asked for a rollback."""
    auto = plan.options.get("auto_rollback") or {}
    asked = (deployment.get("stop_request") or {}).get("rollback") and event == "DEPLOYMENT_STOP_ON_REQUEST"
    return bool(asked or (auto.get("enabled") and event in (auto.get("events") or ["DEPLOYMENT_FAILURE"])))


def moves(deployment):
    """(phase, blue instances to register again, green instances to deregister) for a settled blue/green deployment."""
    instances = deployment.get("instances") or []
    green = [i for i in instances if i.get("role") == "green" and any(e.get("event") == "AllowTraffic" for e in i.get("events") or [])]
    blue = [i for i in instances if i.get("role") == "blue" and i["status"] not in ("Pending", "Skipped")]
    return (AFTER if blue else BEFORE), blue, green


class TrafficRollback(object):
    """Moves the traffic of one settled blue/green deployment back to blue, recorded as a linked rollback deployment.

    ``service`` is the DeploymentService (its ledger, load balancers, notifications and owner)."""

    def __init__(self, service, plan, deployment, event):
        self.service = service
        self.ledger = service.ledger
        self.plan = plan
        self.deployment = deployment
        self.event = event
        self.rollback_id = None
        self.rollback_status = None
        self.errors = []

    def run(self):
        phase, blue, green = moves(self.deployment)
        if phase == AFTER and not rollback_applies(self.plan, self.deployment, self.event):
            return self._result(phase, [], [], "Traffic was already rerouted to the green hosts and automatic rollback is off for %s: the "
                                "blue hosts %s stay out of the load balancers" % (self.event, ", ".join(_name(i) for i in blue)))
        if phase == BEFORE:
            # A weighted shift that had begun goes back to 100 % blue before any green host leaves.
            self.errors += reroute.to_blue(self.service, self.plan, "the deployment ended before the reroute")
            if not green:
                text = "Traffic stays on the blue hosts, which were not touched"
                return self._result(phase, [], [], text + (". Not done: %s" % "; ".join(self.errors) if self.errors else ""))
        self._open(phase, blue + green)
        back = self._move(blue, "AllowTraffic") if phase == AFTER else []
        if phase == AFTER and not self.errors:
            self.errors += reroute.to_blue(self.service, self.plan, "traffic rollback: the blue hosts were registered again")
        out = []
        if not self.errors:
            out = self._move(green, "BlockTraffic")
        else:
            self._skip(green, "kept in the load balancers: a blue host could not come back, and green keeps the traffic meanwhile")
        if phase == BEFORE:
            text = "Traffic stays on the blue hosts, which were not touched; green host(s) %s left the load balancers again" % (
                ", ".join(out) or "none")
        else:
            text = "Rolled the traffic back: blue host(s) %s registered again" % (", ".join(back) or "none")
            text += ", green host(s) %s deregistered" % ", ".join(out) if out else ", the green hosts keep serving (a blue host could not come back)"
        return self._close(phase, back, out, text)

    # ------------------------------------------------------------------ the rollback deployment
    def _open(self, phase, instances):
        """Open the rollback deployment (the rolled-back one is settled, so the group is free), or go on unrecorded."""
        plan, good = self.plan, None
        try:
            good = self.ledger.last_successful(plan.application, plan.deployment_group)
        except LedgerError:
            good = None
        revision = (good or {}).get("revision") or {"location": "the blue fleet as it runs (no earlier deployment of the group is recorded)"}
        rows = [{"instance_id": i["instance_id"], "host": i.get("host"), "zone": i.get("zone"), "role": i.get("role")} for i in instances]
        description = "automatic rollback (%s) of %s: traffic back to the blue fleet" % (self.event, plan.deployment_id)
        options = {"blue_green": dict(plan.blue_green or {}), "traffic_rollback": phase, "rollback_event": self.event}
        try:
            created = self.ledger.create_deployment(
                plan.application, plan.deployment_group, plan.deployment_group_id, revision,
                (plan.options or {}).get("deployment_config"), rows, creator="rollback", options=options, description=description,
                rollback_of=plan.deployment_id, lease_seconds=plan.lease_seconds, owner=self.service.owner)
            self.rollback_id = created["deployment_id"]
            self.ledger.update_status(self.rollback_id, "InProgress")
            self.ledger.update_swap(self.rollback_id, {"state": "rolling_back", "phase": phase, "rollback_of": plan.deployment_id})
        except LedgerError as exc:
            # The traffic matters more than its record: move it anyway and say why there is no rollback deployment.
            self.rollback_id = None
            self.errors.append("the rollback deployment could not be recorded (%s); the traffic was moved all the same" % exc.message)
            return
        self.service.notify(plan, self.ledger.get_deployment(self.rollback_id), "DeploymentStart")

    def _move(self, instances, step):
        """Run ``step`` (BlockTraffic or AllowTraffic) for each instance; record it on the rollback deployment. The hosts moved."""
        from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
        moved = []
        if not instances:
            return moved
        balancers = self.service.balancers(self.plan, instances[0].get("role"))  # a target group pair has one group per role
        for instance in instances:
            host = _name(instance)
            self._start(instance)
            started = utc_now()
            failure = None
            try:
                if step == "BlockTraffic":
                    balancers.block(instance["instance_id"], timeout=300, host=host)
                else:
                    balancers.allow(instance["instance_id"], timeout=300, host=host)
            except TrafficError as exc:
                failure = exc
                self.errors.append("%s on %s: %s" % (step, host, exc.message))
            self._finish(instance, step, started, failure)
            if failure is None:
                moved.append(host)
        return moved

    def _start(self, instance):
        if self.rollback_id:
            self._write(self.ledger.try_start_instance, self.rollback_id, instance["instance_id"], 10 ** 6)

    def _finish(self, instance, step, started, failure):
        if not self.rollback_id:
            return
        ended = utc_now()
        event = {"event": step, "status": "Failed" if failure else "Succeeded", "start": started, "end": ended,
                 "error_code": getattr(failure, "code", None), "message": getattr(failure, "message", None)}
        self._write(self.ledger.record_events, self.rollback_id, instance["instance_id"], [event])
        if failure is None:
            self._write(self.ledger.finish_instance, self.rollback_id, instance["instance_id"], "Succeeded",
                        message="registered again" if step == "AllowTraffic" else "deregistered")
        else:
            self._write(self.ledger.finish_instance, self.rollback_id, instance["instance_id"], "Failed", error_code=failure.code,
                        message=failure.message, out_of_service=step == "AllowTraffic")

    def _skip(self, instances, why):
        for instance in instances:
            if self.rollback_id:
                self._write(self.ledger.finish_instance, self.rollback_id, instance["instance_id"], "Skipped", message=why)

    def _write(self, write, *args, **kwargs):
        try:
            write(*args, **kwargs)
        except LedgerError as exc:
            self.errors.append("the ledger did not take a record of the rollback: %s" % exc.message)

    def _close(self, phase, back, out, text):
        if self.errors:
            text += ". Not done: %s" % "; ".join(self.errors)
        if self.rollback_id:
            traffic_errors = [e for e in self.errors if not e.startswith("the ledger")]
            status = "Failed" if traffic_errors else "Succeeded"
            self.rollback_status = status
            try:
                self.ledger.update_status(self.rollback_id, status, "ELASTIC_LOAD_BALANCING_INVALID" if traffic_errors else None,
                                          text if traffic_errors else None)
                self.ledger.update_swap(self.rollback_id, {"state": "rolled_back" if status == "Succeeded" else "rollback_failed"})
                self.ledger.link_rollback(self.plan.deployment_id, self.rollback_id, "%s rolls back %s: %s" % (
                    self.rollback_id, self.plan.deployment_id, text))
                self.service.notify(self.plan, self.ledger.get_deployment(self.rollback_id),
                                    "DeploymentSuccess" if status == "Succeeded" else "DeploymentFailure")
            except LedgerError as exc:
                text += ". The ledger did not take the end of rollback deployment %s: %s" % (self.rollback_id, exc.message)
            text = "%s (rollback deployment %s)" % (text, self.rollback_id)
        try:
            self.ledger.update_swap(self.plan.deployment_id, {"state": "rolled_back", "rollback_deployment_id": self.rollback_id})
        except LedgerError:
            pass
        return self._result(phase, back, out, text)

    def _result(self, phase, back, out, text):
        return {"phase": phase, "deregistered_green": out, "registered_blue": back, "errors": list(self.errors),
                "rollback_deployment_id": self.rollback_id, "rollback_status": self.rollback_status, "msg": text}
