# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's part of a deployment: admission under minimum healthy hosts, the lifecycle events on the
host, load-balancer traffic control on the controller, and every event recorded in the ledger."""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail

from ansible_collections.rollout.codedeploy.plugins.action.lifecycle import ActionModule as LifecycleAction
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle, service
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import controller


class ActionModule(LifecycleAction):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(LifecycleAction, self).run(tmp, task_vars)  # pylint: disable=bad-super-call
        del tmp
        plan = self._task.args.get("deployment")
        if not isinstance(plan, dict) or not plan.get("deployment_id"):
            raise AnsibleActionFail("deploy_host needs deployment: the plan that rollout.codedeploy.deployment (state=started) returned")
        host = task_vars.get("inventory_hostname")
        instance = plan["instances"].get(host)
        if instance is None:
            result.update(skipped=True, msg="%s is not part of deployment %s" % (host, plan["deployment_id"]))
            return result
        ledger = controller.ledger(plan)
        deployment_id = plan["deployment_id"]

        admitted, why = self._admit(ledger, plan, instance)
        if not admitted:
            ledger.set_instance(deployment_id, instance, "Skipped", message=why)
            result.update(skipped=True, changed=False, msg="%s skipped in %s: %s" % (host, deployment_id, why))
            return result
        notifier = controller.notifier(plan)
        controller.notify_instance(notifier, ledger, plan, instance, "InstanceStart")

        balancers = controller.balancers(plan)
        events, failed, blocked = [], None, False
        for step in plan["steps"]:
            if isinstance(step, list):
                outcome = self._run_host_events(plan, step, task_vars)
                step_events = outcome.get("events") or []
                events.extend(step_events)
                ledger.record_events(deployment_id, instance, step_events)
                if outcome.get("failed"):
                    failed = outcome
                    break
            else:
                record, error = controller.traffic_step(balancers, step, instance)
                events.append(record)
                ledger.record_events(deployment_id, instance, [record])
                # Out of its load balancers from BlockTraffic (even a failed one) until AllowTraffic.
                blocked = step == "BlockTraffic"
                if error:
                    failed = {"failed": True, "failed_event": step, "error_code": record["error_code"], "msg": "%s failed on %s (%s): %s" % (
                        step, host, deployment_id, error)}
                    break

        status = "Failed" if failed else "Succeeded"
        ledger.finish_instance(deployment_id, instance, status, error_code=(failed or {}).get("error_code"),
                               message=(failed or {}).get("msg"), out_of_service=bool(failed and blocked))
        # Every finished host proves the controller alive: a long batch must not look like a dead controller.
        ledger.renew_lease(deployment_id, lease_seconds=plan.get("lease_seconds") or 300)
        controller.notify_instance(notifier, ledger, plan, instance, "InstanceFailure" if failed else "InstanceSuccess")
        result.update(changed=True, deployment_id=deployment_id, instance_id=instance, status=status, events=events,
                      out_of_service=bool(failed and blocked))
        if failed:
            result.update(failed=True, msg=failed.get("msg"), failed_event=failed.get("failed_event"), error_code=failed.get("error_code"))
            if blocked:
                result["msg"] += " %s is out of service in its load balancers until it is deployed again or rolled back." % host
        return result

    def _admit(self, ledger, plan, instance):
        """Wait for a slot under the minimum healthy hosts; give up when the deployment stopped or can never admit us."""
        deployment_id = plan["deployment_id"]
        idle_since = None
        while True:
            current = ledger.get_deployment(deployment_id, include_instances=False)
            if current["status"] in service.TERMINAL:
                return False, "the deployment is %s" % current["status"]
            if current.get("stop_request"):
                return False, "a stop was requested"
            if ledger.try_start_instance(deployment_id, instance, plan["max_unhealthy"]):
                return True, None
            if current["overview"].get("InProgress", 0) == 0:
                # Nothing in flight can free a slot: the failures so far already use up what the minimum allows.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2.0:
                    return False, ("HEALTH_CONSTRAINTS: deploying to it would leave fewer than %d healthy instances"
                                   % plan["minimum"])
            else:
                idle_since = None
            time.sleep(0.3)

    def _run_host_events(self, plan, events, task_vars):
        """Run a slice of host events; a slice with nothing to do on the host (no scripts) costs no round trip."""
        if not lifecycle.needs_host(events, plan.get("appspec")):
            return {"changed": False, "events": lifecycle.skipped_events(events)}
        return self.run_lifecycle(self._lifecycle_args(plan, events), task_vars)

    @staticmethod
    def _lifecycle_args(plan, events):
        args = {
            "deployment_id": plan["deployment_id"], "deployment_group_id": plan["deployment_group_id"],
            "application_name": plan["application"], "deployment_group_name": plan["deployment_group"],
            "events": events, "appspec": plan["appspec"], "revision": plan.get("revision_env") or {},
            "file_exists_behavior": plan["options"]["file_exists_behavior"],
            "ignore_application_stop_failures": bool(plan["options"]["ignore_application_stop_failures"]),
            "bundle_sha256": plan.get("sha256"),
        }
        if plan.get("reuse_deployment"):
            args["reuse_deployment"] = plan["reuse_deployment"]
        else:
            args["bundle_src"] = plan["bundle"]
        for option in ("deployment_root", "max_revisions"):
            if plan.get(option) is not None:
                args[option] = plan[option]
        return args
