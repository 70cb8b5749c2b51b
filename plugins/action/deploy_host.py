# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of rollout.codedeploy.deploy_host: checks its argument against the documented spec and
hands the host to plugin_utils/host_run.py, giving it the one host entry (the lifecycle action's
``run_lifecycle``) as the way to run host events. See docs/design.md."""

from __future__ import annotations

import os
import traceback

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.rollout.codedeploy.plugins.action.lifecycle import ActionModule as LifecycleAction
from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle
from ansible_collections.rollout.codedeploy.plugins.modules.deploy_host import DOCUMENTATION
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import haproxy_runtime
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.argspec import check_arguments, spec_from_documentation
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.host_run import HostRun, unreachable_outcome
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan, PlanError
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import DeploymentService

SPEC = spec_from_documentation(DOCUMENTATION)
ACTION = "rollout.codedeploy.deploy_host"


class ActionModule(LifecycleAction):
    TRANSFERS_FILES = False
    #: A rollback host without the earlier archive gets the bundle from then on.
    _from_bundle = False
    #: Whether the host lock is this deployment's between two runs (the last run kept it).
    _keeps_host = False
    #: What the host's runs warned about (a stale host lock taken over), shown as the task's warnings.
    _notes = ()

    def run(self, tmp=None, task_vars=None):
        result = super(LifecycleAction, self).run(tmp, task_vars)  # pylint: disable=bad-super-call
        del tmp
        task_vars = task_vars or {}
        try:
            params = check_arguments(SPEC, self._task.args, ACTION)
            plan = Plan.from_dict(params["deployment"])
            plan.phase = params.get("phase")
            if not plan.deploys:
                raise PlanError("deployment is a plan that deploys nothing (%s)" % (plan.note or "no deployment id"))
            service = DeploymentService(ledgers.open_ledger(plan.ledger, aws=plan.aws),
                                        aws_access.AwsAccess(aws_access.settings_from(plan.aws)),
                                        runtimes=haproxy_runtime.factory(task_vars.get("hostvars") or {}))
            parent = os.getppid()
            host = task_vars.get("inventory_hostname")
            runner = HostRun(service, plan, host, lambda events: self._run_host_events(plan, events, task_vars, params.get("host_lock_wait")),
                             controller_alive=lambda: os.getppid() == parent, release_host=lambda: self._release_host(plan, task_vars))
            result.update(runner.run())
            if self._notes:
                result["warnings"] = list(self._notes)
        except (PlanError, ledgers.LedgerError, aws_access.AwsError) as exc:
            result.update(failed=True, msg=exc.message)
        except ValueError as exc:
            result.update(failed=True, msg=str(exc))
        except Exception as exc:  # pylint: disable=broad-except  # a bug: say so plainly, keep the traceback for -vvv
            result.update(failed=True, exception=traceback.format_exc(),
                          msg="%s stopped on an internal error (%s). Rerun with -vvv for the details and report them." % (ACTION, exc))
        return result

    def _run_host_events(self, plan, events, task_vars, host_lock_wait=None):
        """Run a slice of host events; a slice with nothing to do on the host costs no round trip, an unreachable host is a failure."""
        if not lifecycle.needs_host(events, plan.appspec):
            return {"changed": False, "events": lifecycle.skipped_events(events)}
        host = task_vars.get("inventory_hostname")
        try:
            outcome = self.run_lifecycle(self._host_args(plan, events, host_lock_wait, host), task_vars)
            if outcome.get("archive_missing") and plan.bundle:
                # The host no longer keeps the earlier archive and nothing ran: send the revision's bundle instead.
                self._from_bundle = True
                outcome = self.run_lifecycle(self._host_args(plan, events, host_lock_wait, host), task_vars)
        except AnsibleConnectionFailure as exc:
            return unreachable_outcome(host, plan.deployment_id, events, str(exc).strip().splitlines()[0])
        if outcome.get("unreachable"):
            return unreachable_outcome(host, plan.deployment_id, events, outcome.get("msg") or "no answer")
        if outcome.get("archive_missing"):
            outcome["msg"] = "%s in %s: %s. No fallback: %s. Redeploy that revision from its source with rollout.codedeploy.deploy." % (
                host, plan.deployment_id, outcome.get("message") or outcome.get("msg"), plan.fallback or "none")
        self._keeps_host = outcome.get("host_lock") == "kept"
        self._notes = tuple(self._notes) + tuple(outcome.get("warnings") or ())
        return outcome

    def _host_args(self, plan, events, host_lock_wait, host=None):
        args = plan.host_arguments(events, from_bundle=self._from_bundle, host=host)
        if host_lock_wait is not None:
            args["host_lock_wait"] = host_lock_wait
        return args

    def _release_host(self, plan, task_vars):
        """Free the host when a controller step ends its lifecycle between two runs (one more module run, only then)."""
        if not self._keeps_host:
            return
        args = plan.host_arguments([], host=task_vars.get("inventory_hostname"))
        args.pop("bundle_src", None)
        args["release_host_lock"] = True
        try:
            self.run_lifecycle(args, task_vars)
        except AnsibleConnectionFailure:
            pass  # the lock expires on its own (host_lock_hold)
        self._keeps_host = False
