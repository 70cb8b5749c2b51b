# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of rollout.codedeploy.deployment: checks its arguments against the documented spec
and the input contract, then hands each state to the deployment service (plugin_utils/service.py).
The logic lives there; see docs/design.md."""

from __future__ import annotations

import json
import os
import traceback

from ansible.inventory.group import to_safe_group_name
from ansible.plugins.action import ActionBase

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19
    trust_as_template = None

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.modules.deployment import DOCUMENTATION
from ansible_collections.rollout.codedeploy.plugins.module_utils import green_fleet
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract, green_copy, haproxy_runtime, heartbeat
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.argspec import check_arguments, spec_from_documentation
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan, PlanError
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import DeploymentService, ServiceError, fetch_revision, group_hosts

SPEC = spec_from_documentation(DOCUMENTATION)
ACTION = "rollout.codedeploy.deployment"
KNOWN_ERRORS = (contract.InputError, ServiceError, PlanError, ledgers.LedgerError, aws_access.AwsError)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        state = args.get("state") or "started"
        service = None
        plan = None
        try:
            if state == "started":
                return dict(result, **self._started(args, task_vars or {}))
            if state == "stop_requested":
                checked = contract.stop_request(args)
                params = check_arguments(SPEC, dict(args, rollback=checked["rollback"], force=checked["force"]), ACTION)
                service = self._service(params, checked["aws"], readonly=False)
                return dict(result, **service.request_stop(checked["deployment_id"], checked["rollback"], self._owner(task_vars),
                                                           force=checked["force"]))
            if state == "continue_requested":
                return dict(result, **self._continue(args, task_vars or {}))
            params = check_arguments(SPEC, args, ACTION)
            plan = Plan.from_dict(params.get("deployment"))
            service = self._service(dict(params, ledger=plan.ledger), plan.aws, readonly=False) if plan.deploys \
                else DeploymentService(None, None)
            if state == "batch":
                return dict(result, **service.after_batch(plan, params.get("batch_hosts") or []))
            return dict(result, **service.settle(plan, reported=reported_results(plan, task_vars)))
        except KNOWN_ERRORS as exc:
            result.update(failed=True, msg=exc.message, error_code=getattr(exc, "code", None))
        except ValueError as exc:  # the argument spec's own wording
            result.update(failed=True, msg=str(exc), error_code="INVALID_INPUT")
        except Exception as exc:  # pylint: disable=broad-except  # a bug: settle, say so plainly, keep the traceback for -vvv
            if service is not None and plan is not None:
                service.abandon(plan, exc)
            result.update(failed=True, error_code="INTERNAL_ERROR", exception=traceback.format_exc(),
                          msg="%s state=%s stopped on an internal error (%s). The deployment, if one was open, is settled as Failed "
                              "and its group unlocked. Rerun with -vvv for the details and report them." % (ACTION, state, exc))
        return result

    # ------------------------------------------------------------------ open
    def _started(self, args, task_vars):
        """Check every input, then open the deployment (or, in check mode, only plan it)."""
        groups = task_vars.get("groups") or {}
        plugin_groups = task_vars.get("codedeploy_deployment_groups") or {}
        # The group first: its settings decide which deployment configs are known.
        name = contract.deployment_group(args.get("deployment_group"), groups, plugin_groups)
        hosts, settings = group_hosts(name, groups, task_vars.get("hostvars") or {}, plugin_groups)
        request = contract.start_request(args, settings, groups, plugin_groups, hostvars=task_vars.get("hostvars") or {})
        params = check_arguments(SPEC, _present(args, request), ACTION)
        request["ledger"] = params.get("ledger")
        request["aws"].setdefault("region", settings.get("region"))
        copier = None
        if green_fleet.copies_auto_scaling_group(settings):
            # COPY_AUTO_SCALING_GROUP: the green fleet is created (and named like the inventory's hosts) before the deployment opens.
            fetch = green_copy.FetchOnce(fetch_revision)
            service = self._service(params, request["aws"], readonly=self._task.check_mode, task_vars=task_vars, fetch=fetch)
            copier = self._copier(service, settings, hosts, task_vars, request.get("green_fleet_timeout"))
            opening = green_copy.open_with_copy(service, request, hosts, settings, copier, fetch, check_mode=bool(self._task.check_mode))
        else:
            service = self._service(params, request["aws"], readonly=self._task.check_mode, task_vars=task_vars)
            opening = service.open(request, hosts, settings, check_mode=bool(self._task.check_mode))
        warnings = ["%s: %s" % (opening.plan.location, w) for w in opening.warnings]
        if opening.preview:
            note = Plan(note="check mode", batches=opening.plan.batches)
            return {"changed": False, "deployment_id": None, "msg": opening.message, "plan": note.to_dict(),
                    "events": opening.plan.host_events(), "warnings": warnings, "appspec_warnings": opening.warnings}
        plan = opening.plan
        return {"changed": plan.deploys, "deployment_id": plan.deployment_id, "plan": plan.to_dict(),
                "green_asg": plan.green_asg, "green_fleet_hosts": copier.entries if copier is not None else [],
                "rollout_hosts": plan.first_play_hosts(), "rollout_serial": plan.serial,
                "rollout_reroute_hosts": plan.reroute_hosts, "rollout_reroute_serial": plan.reroute_serial or [1], "appspec_warnings": opening.warnings,
                "warnings": warnings, "orphaned": opening.orphaned, "msg": opening.message}

    def _copier(self, service, settings, hosts, task_vars, timeout):
        """The copy of the group's Auto Scaling group, whose instances are named and reached like the blue hosts."""
        hostvars = task_vars.get("hostvars") or {}
        blue = [h["host"] for h in hosts]
        templar = self._templar

        def render(value, jinja_filter):
            template = "{{ %s | %s }}" % (json.dumps(value), jinja_filter)
            return templar.template(trust_as_template(template) if trust_as_template else template)
        taken = set((task_vars.get("groups") or {}).get("all") or ())
        return green_copy.Copier(service.aws, settings, naming=green_copy.host_naming(blue, hostvars), taken=taken,
                                 connection=green_copy.shared_connection_vars(blue, hostvars), render=render, sanitize=to_safe_group_name,
                                 timeout=timeout or green_copy.DEFAULT_TIMEOUT)

    def _continue(self, args, task_vars):
        """Let a deployment waiting in status Ready reroute: by its id, or the one of an inventory deployment group."""
        plugin_groups = task_vars.get("codedeploy_deployment_groups") or {}
        checked = contract.continue_request(args, task_vars.get("groups") or {}, plugin_groups)
        params = check_arguments(SPEC, args, ACTION)
        service = self._service(params, checked["aws"], readonly=False)
        if checked["deployment_id"]:
            return service.request_continue(checked["deployment_id"], self._owner(task_vars))
        _hosts, settings = group_hosts(checked["deployment_group"], task_vars.get("groups") or {}, task_vars.get("hostvars") or {},
                                       plugin_groups)
        return service.request_continue_group(settings, checked["deployment_group"], self._owner(task_vars))

    # ------------------------------------------------------------------ wiring
    def _service(self, params, aws_settings, readonly, task_vars=None, fetch=fetch_revision):
        settings = aws_access.settings_from(dict(aws_settings or {}, **contract.aws_settings(params)))
        try:
            book = ledgers.open_ledger(params.get("ledger"), aws=settings, readonly=readonly)
        except ledgers.LedgerMissingError:
            if not readonly:
                raise
            book = None  # check mode before the first deployment: nothing recorded yet

        def keep_alive(plan):
            heartbeat.start(plan.ledger, settings, plan.deployment_id, plan.owner, plan.lease_seconds, ledgers.worker_parent_pid() or os.getpid())
        return DeploymentService(book, aws_access.AwsAccess(settings), owner=self._owner(task_vars), fetch=fetch,
                                 bundle_cache=params.get("bundle_cache"), heartbeat=keep_alive,
                                 runtimes=haproxy_runtime.factory((task_vars or {}).get("hostvars") or {}))

    @staticmethod
    def _owner(task_vars):
        """The controller process (not this worker) and its host, plus the AWX job and who launched it when run from AWX."""
        return ledgers.controller_owner(**ledgers.awx_job(task_vars))


def reported_results(plan, task_vars):
    """What each host's deploy_host task returned (registered as ``codedeploy_host``) when the ledger could not record it."""
    hostvars = (task_vars or {}).get("hostvars") or {}
    found = {}
    for host in plan.hosts:
        try:
            result = hostvars[host].get("codedeploy_host")
        except (KeyError, TypeError, AttributeError):
            continue
        if isinstance(result, dict) and result.get("ledger_unrecorded"):
            found[host] = result
    return found


def _present(args, request):
    """The task's arguments with the contract's typed values in place of what the playbook passed."""
    merged = dict(args)
    for key, value in request.items():
        if key in merged and key != "aws":
            merged[key] = value if value is not None else merged[key]
    if merged.get("revision") is None:
        merged.pop("revision", None)
    return merged
