# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's part of a deployment, on the controller: admission under the minimum healthy hosts,
the host's steps (host events through a callback, traffic steps through the load balancers), every
event recorded in the ledger, and the instance notifications.

The action plugin ``deploy_host`` gives it a callback that runs a slice of host events over SSH; an
unreachable host comes back from that callback as a failure of the event it was at, so the health rule
decides what follows. Controller-only; see docs/design.md."""

from __future__ import annotations

import time

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import TERMINAL_STATUSES
from ansible_collections.rollout.codedeploy.plugins.module_utils.hooks import utc_timestamp as utc_now
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import DeploymentSettledError, LedgerError
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import reroute

#: How long admission waits with nothing in flight before it concludes that no slot will ever free.
IDLE_LIMIT = 2.0
POLL = 0.3


def failed_record(event, message):
    """The ledger record of an event that failed before the host could say anything about it."""
    now = utc_now()
    return {"event": event, "status": "Failed", "start": now, "end": now, "duration": 0.0, "error_code": "UnknownError",
            "message": message, "log_tail": ""}


def unreachable_outcome(host, deployment_id, events, why):
    """The outcome of a slice of host events that never ran because the host could not be reached."""
    event = events[0] if events else "the next event"
    span = event if len(events) < 2 else "%s (the host was running %s through %s)" % (event, events[0], events[-1])
    message = "%s was unreachable at %s in %s: %s. Check that the host is up and reachable over SSH." % (host, span, deployment_id, why)
    return {"failed": True, "unreachable": True, "failed_event": event, "error_code": "HOST_UNREACHABLE", "msg": message,
            "events": [failed_record(event, message)]}


def _explained(outcome, events, host):
    """A failed outcome always carries a message and a failed event record (a module that crashed on the host has neither)."""
    if not outcome.get("failed") or (outcome.get("msg") and outcome.get("events")):
        return outcome
    detail = outcome.get("msg") or outcome.get("module_stderr") or outcome.get("module_stdout") or ""
    detail = (str(detail).strip().splitlines() or ["no message"])[-1]
    event = outcome.get("failed_event") or (events[0] if events else "the next event")
    message = outcome.get("msg") or "the lifecycle module failed on %s during %s: %s" % (host, event, detail)
    return dict(outcome, msg=message, failed_event=event, error_code=outcome.get("error_code") or "UnknownError",
                events=outcome.get("events") or [failed_record(event, message)])


class HostRun(object):
    """``run()`` deploys the plan to one host and returns the task's result."""

    def __init__(self, service, plan, host, run_host_events, controller_alive=lambda: True, sleep=time.sleep, clock=time.monotonic,
                 release_host=lambda: None):
        self.service = service
        self.ledger = service.ledger
        self.plan = plan
        self.host = host
        self.instance = plan.instance_of(host)
        self._run_host_events = run_host_events
        self._release_host = release_host
        self._controller_alive = controller_alive
        self._sleep = sleep
        self._clock = clock
        self._unrecorded = []  # event records the ledger could not take yet (see _record)
        self._settled = None  # why this controller lost the deployment (settled elsewhere): it stops at once

    def run(self):
        plan, instance = self.plan, self.instance
        if instance is None:
            return {"skipped": True, "changed": False, "msg": "%s is not part of deployment %s" % (self.host, plan.deployment_id)}
        split = plan.waits_for_green(self.host)
        rerouting = split and plan.phase == "reroute"
        if rerouting:
            not_ready = self._not_ready()
            if not_ready:
                return {"skipped": True, "changed": False, "msg": "%s skipped in %s: %s" % (self.host, plan.deployment_id, not_ready)}
        admitted, why = self.admit()
        if not admitted:
            self.ledger.set_instance(plan.deployment_id, instance, "Skipped", message=why)
            return {"skipped": True, "changed": False, "msg": "%s skipped in %s: %s" % (self.host, plan.deployment_id, why)}
        if not rerouting:
            self._notify("InstanceStart")
        events, failed, blocked = self._steps()
        # A green host of a plan with a ready wait is Ready once installed; it succeeds after its reroute steps.
        status = "Failed" if failed else "Ready" if split and not rerouting else "Succeeded"
        unrecorded = self._finish(status, failed, blocked)
        if self._controller_alive():
            self._renew()  # a worker whose controller is gone does not hold the group for it
        self._notify("InstanceReady" if status == "Ready" else "InstanceFailure" if failed else "InstanceSuccess")
        result = {"changed": True, "deployment_id": plan.deployment_id, "instance_id": instance, "status": status, "events": events,
                  "out_of_service": bool(failed and blocked)}
        if failed:
            result.update(failed=True, msg=failed.get("msg"), failed_event=failed.get("failed_event"), error_code=failed.get("error_code"),
                          unreachable_host=bool(failed.get("unreachable")), script=failed.get("script"), log_tail=failed.get("log_tail") or "")
            if blocked:
                result["msg"] += " %s is out of service in its load balancers until it is deployed again or rolled back." % self.host
        if unrecorded:
            self._report_unrecorded(result, unrecorded)
        return result

    # ------------------------------------------------------------------ admission
    def _not_ready(self):
        """In the reroute phase: why this green host does not reroute (its install did not end Ready), or None."""
        deployment = self.ledger.get_deployment(self.plan.deployment_id, include_instances=True)
        mine = next((i for i in deployment.get("instances") or [] if i["instance_id"] == self.instance), {})
        if mine.get("status") in ("Ready", "InProgress"):
            return None
        return "it was not installed (%s), so it does not join the load balancers" % mine.get("status")

    def admit(self):
        """Wait for a slot under the minimum healthy hosts; give up when the deployment stopped or can never admit this host."""
        plan, idle_since = self.plan, None
        # Blue hosts go all at once, and only once the green fleet is ready: the minimum healthy hosts is green's rule.
        blue = plan.role_of(self.host) == "blue"
        limit = len(plan.hosts) + 1 if blue else plan.max_unhealthy
        while True:
            if not self._controller_alive():
                return False, "its controller (ansible-playbook) is gone"
            current = self.ledger.get_deployment(plan.deployment_id, include_instances=False)
            if current["status"] in TERMINAL_STATUSES:
                return False, "the deployment is %s" % current["status"]
            if current.get("stop_request"):
                return False, "a stop was requested"
            if blue:
                ready, why = self.service.green_ready(plan)
                if not ready:
                    return False, why
                why = reroute.blue_refusal(plan, current)
                if why:
                    return False, why
            if self.ledger.try_start_instance(plan.deployment_id, self.instance, limit):
                return True, None
            if current["overview"].get("InProgress", 0) == 0:
                # Nothing in flight can free a slot: the failures so far already use up what the minimum allows.
                idle_since = idle_since or self._clock()
                if self._clock() - idle_since > IDLE_LIMIT:
                    return False, "HEALTH_CONSTRAINTS: deploying to it would leave fewer than %d healthy instances" % plan.minimum
            else:
                idle_since = None
            self._sleep(POLL)

    # ------------------------------------------------------------------ the host's steps
    def _steps(self):
        """Run the plan's steps in order; returns (event records, the failure or None, whether the host is out of rotation)."""
        plan, events, blocked = self.plan, [], False
        balancers = self.service.balancers(plan, plan.role_of(self.host))
        for step in plan.steps_for(self.host):
            if not self._controller_alive():
                failure = self._gone(step)
                events.extend(failure["events"])
                self._record(failure["events"])
                self._release_host()  # the host may be needed by the deployment that settles this one
                return events, failure, blocked
            if isinstance(step, list):
                outcome = _explained(self._run_host_events(step), step, self.host)
                events.extend(outcome.get("events") or [])
                self._record(outcome.get("events") or [])
                if self._settled:
                    self._release_host()
                    return events, self._lost(step), blocked
                if outcome.get("failed"):
                    return events, outcome, blocked
                continue
            record, error = self._traffic(balancers, step)
            events.append(record)
            self._record([record])
            if self._settled:
                self._release_host()
                return events, self._lost(step), step == "BlockTraffic" or blocked
            # Out of its load balancers from BlockTraffic (even a failed one) until an AllowTraffic that succeeded.
            blocked = step == "BlockTraffic" or bool(error)
            if error:
                # The host's lifecycle ends here, between two of its runs: free it for other deployments now.
                self._release_host()
                return events, {"failed": True, "failed_event": step, "error_code": record["error_code"],
                                "msg": "%s failed on %s (%s): %s" % (step, self.host, plan.deployment_id, error)}, blocked
        return events, None, blocked

    def _traffic(self, balancers, step, timeout=300):
        """BlockTraffic / AllowTraffic for this host: (ledger event record, error message or None)."""
        from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
        started, clock = utc_now(), self._clock()
        record = {"event": step, "status": "Succeeded", "start": started, "error_code": "Success", "message": "", "log_tail": ""}
        error = None
        try:
            if step == "BlockTraffic":
                done = balancers.block(self.instance, timeout=timeout, host=self.host)
            else:
                done = balancers.allow(self.instance, timeout=timeout, host=self.host)
            names = sorted(name for kind in ("target_groups", "classic_elbs", "haproxy_backends") for name in (done.get(kind) or {}))
            verb = "out of" if step == "BlockTraffic" else "in service in"
            record["message"] = "%s %s" % (verb, ", ".join(names) or "no load balancer")
            if done.get("warnings"):
                record["message"] += " (%s)" % "; ".join(done["warnings"])
        except TrafficError as exc:
            record.update(status="Failed", error_code=exc.code, message=exc.message)
            error = exc.message
        record.update(end=utc_now(), duration=round(self._clock() - clock, 3))
        return record, error

    def _lost(self, step):
        event = step[0] if isinstance(step, list) else step
        return {"failed": True, "failed_event": event, "error_code": "DEPLOYMENT_SETTLED",
                "msg": "%s stopped on %s after %s: %s" % (self.plan.deployment_id, self.host, event, self._settled)}

    def _gone(self, step):
        event = step[0] if isinstance(step, list) else step
        message = "the controller (ansible-playbook) of %s stopped before %s on %s; this worker does not go on alone" % (
            self.plan.deployment_id, event, self.host)
        return {"failed": True, "failed_event": event, "error_code": "CONTROLLER_GONE", "msg": message,
                "events": [failed_record(event, message)]}

    # ------------------------------------------------------------------ ledger writes that must not lose the host's outcome
    def _record(self, events):
        """Record event records; once the ledger failed a write (after its own retries), keep the rest for one try at the end."""
        if not events:
            return
        if not self._unrecorded:
            try:
                self.ledger.record_events(self.plan.deployment_id, self.instance, events)
                return
            except DeploymentSettledError as exc:
                self._settled = exc.message  # another run settled it: stop writing and stop this host's steps
                return
            except LedgerError:
                pass  # the host goes on; _finish tries once more and reports what is still missing
        self._unrecorded.extend(events)

    def _finish(self, status, failed, blocked):
        """Record the kept events, then the instance's end; returns why the ledger could not (None: all recorded)."""
        errors = [self._settled] if self._settled else []
        if self._settled:
            return "; ".join(errors)
        if self._unrecorded:
            try:
                self.ledger.record_events(self.plan.deployment_id, self.instance, self._unrecorded)
                self._unrecorded = []
            except LedgerError as exc:
                errors.append(exc.message)
        try:
            self.ledger.finish_instance(self.plan.deployment_id, self.instance, status, error_code=(failed or {}).get("error_code"),
                                        message=(failed or {}).get("msg"), out_of_service=bool(failed and blocked))
        except LedgerError as exc:
            errors.append(exc.message)
        return "; ".join(errors) or None

    def _report_unrecorded(self, result, why):
        """The task result keeps the host's real status and events, and says that the ledger does not have them yet."""
        note = ("%s finished %s in %s, but the ledger could not record it: %s. The settle step records this result from the task, "
                "and the host keeps its own record of its last successful revision." % (self.host, result["status"], self.plan.deployment_id, why))
        result["ledger_unrecorded"] = why
        result["msg"] = "%s %s" % (result["msg"], note) if result.get("msg") else note
        result.setdefault("warnings", []).append(note)

    # ------------------------------------------------------------------ bookkeeping
    def _renew(self):
        """Every finished host proves the controller alive (the heartbeat does too); a settled deployment is not renewed."""
        try:
            self.ledger.renew_lease(self.plan.deployment_id, lease_seconds=self.plan.lease_seconds)
        except LedgerError:
            pass

    def _notify(self, name):
        notes = self.service.notifier(self.plan)
        if notes is None:
            return []
        deployment = self.ledger.get_deployment(self.plan.deployment_id, include_instances=True)
        instance = next((i for i in deployment.get("instances") or [] if i["instance_id"] == self.instance), {"instance_id": self.instance})
        return notes.instance_event(name, deployment, instance)
