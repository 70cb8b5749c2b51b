# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of rollout.codedeploy.scale_out: the scale-out plan (plugin_utils/scale_out.py) and the lifecycle completion
(module_utils/lifecycle_hooks.py) for playbooks/scale_out.yml. See docs/scale-out.md."""

from __future__ import annotations

import traceback

from ansible.plugins.action import ActionBase

from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks as hooks
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.modules.scale_out import DOCUMENTATION
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import scale_out as scale
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.argspec import check_arguments, spec_from_documentation
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import ServiceError, group_hosts, group_names

SPEC = spec_from_documentation(DOCUMENTATION)
ACTION = "rollout.codedeploy.scale_out"
REFUSALS = (scale.ScaleOutError, contract.InputError, ServiceError, hooks.HookError)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        try:
            params = check_arguments(SPEC, self._task.args, ACTION)
            if params["state"] == "completed":
                return dict(result, **self._completed(params, task_vars))
            return dict(result, **self._planned(params, task_vars))
        except REFUSALS as exc:
            result.update(failed=True, msg=exc.message, error_code=getattr(exc, "code", None))
        except (ledgers.LedgerError, aws_access.AwsError) as exc:
            result.update(failed=True, msg=exc.message)
        except ValueError as exc:
            result.update(failed=True, msg=str(exc), error_code="INVALID_INPUT")
        except Exception as exc:  # pylint: disable=broad-except  # a bug: say so plainly, keep the traceback for -vvv
            result.update(failed=True, error_code="INTERNAL_ERROR", exception=traceback.format_exc(),
                          msg="%s stopped on an internal error (%r). Rerun with -vvv for the details and report them; the lifecycle "
                              "action, if any, gets the hook's default result once its heartbeat timeout passes" % (ACTION, exc))
        return result

    # ------------------------------------------------------------------ planned
    def _planned(self, params, task_vars):
        lifecycle = _lifecycle(params)
        if lifecycle.get("kind") in ("test", "other"):
            why = ("Auto Scaling's test notification" if lifecycle["kind"] == "test" else
                   "a %s lifecycle message, not a launch" % lifecycle.get("transition"))
            return {"changed": False, "deploy": False, "skip": True, "instances": {}, "lifecycle": lifecycle, "refused": None,
                    "msg": "Nothing to do: %s" % why}
        groups = task_vars.get("groups") or {}
        plugin_groups = task_vars.get("codedeploy_deployment_groups") or {}
        hostvars = task_vars.get("hostvars") or {}
        base = {"changed": False, "deploy": False, "skip": False, "deployment_group": None, "lifecycle": lifecycle,
                "instances": {i: None for i in (params.get("instance_id") or lifecycle.get("instance_id"),) if i}, "refused": None,
                "aws": aws_access.public_settings(aws_access.settings_from(contract.aws_settings(params)))}
        try:
            name = contract.deployment_group(params.get("deployment_group") or lifecycle.get("deployment_group"), groups, plugin_groups)
            base["deployment_group"] = name
            ids = scale.instance_ids(params.get("instance_id") or lifecycle.get("instance_id"), params.get("instance_ids"))
            base["instances"] = {i: None for i in ids}
            if lifecycle.get("token") and len(ids) > 1:
                raise scale.ScaleOutError("lifecycle_action_token is for one instance, but %d were given (%s): leave the token out to "
                                          "complete each action by instance id" % (len(ids), ", ".join(ids)), "lifecycle_action_token")
            hosts, settings = group_hosts(name, groups, hostvars, plugin_groups)
            if (settings.get("deployment_style") or {}).get("type") == "BLUE_GREEN":
                raise scale.ScaleOutError("deployment group %s is BLUE_GREEN: its new fleet is deployed by a blue/green deployment, "
                                          "not by a scale-out. Leave the launch hook off its Auto Scaling groups" % name,
                                          "INVALID_DEPLOYMENT_STYLE")
            instances = scale.targets(ids, name, hosts)
            base["instances"] = instances
            lifecycle.setdefault("auto_scaling_group", None)
            if not lifecycle.get("auto_scaling_group"):
                lifecycle["auto_scaling_group"] = (hostvars.get(instances[ids[0]]) or {}).get("codedeploy_autoscaling_group")
            aws = aws_access.AwsAccess(aws_access.settings_from(dict(contract.aws_settings(params),
                                                                     region=params.get("region") or settings.get("region"))))
            base["aws"] = aws_access.public_settings(aws.settings)
            application, group, _group_id = group_names(settings, name)
            book = _ledger(params.get("ledger"), aws.settings)
            wait = 0 if self._task.check_mode else _wait(params.get("wait_seconds"))
            plan = scale.plan_scale_out(book, application, group, instances, wait, heartbeat=_heartbeat(aws, lifecycle, ids))
        except REFUSALS as exc:
            if not lifecycle.get("hook_name"):
                raise
            return dict(base, refused=exc.message, msg="Refused: %s. The lifecycle action is abandoned (ABANDON)" % exc.message)
        return dict(base, **plan)

    # ------------------------------------------------------------------ completed
    def _completed(self, params, task_vars):
        plan = params.get("plan") or {}
        lifecycle = dict(plan.get("lifecycle") or {})
        instances = plan.get("instances") or {}
        if plan.get("skip") or not instances:
            return {"changed": False, "results": {}, "msg": plan.get("msg") or "Nothing to complete"}
        deployment = None
        if params.get("deployment_id"):
            book = _ledger(params.get("ledger"), aws_access.settings_from(plan.get("aws") or {}))
            deployment = book.get_deployment(params["deployment_id"])
        refused = params.get("refused") or plan.get("refused")
        decided = scale.lifecycle_results(list(instances), plan, deployment, refused)
        hook = params.get("lifecycle_hook_name") or lifecycle.get("hook_name")
        results = {i: {"result": r, "why": why, "sent": False, "host": instances.get(i)} for i, (r, why) in decided.items()}
        words = ["%s: %s (%s)" % (i, r["result"], r["why"]) for i, r in results.items()]
        if not hook:
            return {"changed": False, "results": results,
                    "msg": "No lifecycle hook named, so no lifecycle action completed. Outcome: %s" % "; ".join(words)}
        asg = params.get("autoscaling_group") or lifecycle.get("auto_scaling_group")
        if not asg:
            raise scale.ScaleOutError("the Auto Scaling group of %s is unknown: pass -e autoscaling_group=<name> (the lifecycle message's "
                                      "AutoScalingGroupName)" % ", ".join(instances), "autoscaling_group")
        if self._task.check_mode:
            return {"changed": False, "results": results, "msg": "Check mode: would complete %s on hook %s: %s" % (asg, hook, "; ".join(words))}
        client = aws_access.AwsAccess(aws_access.settings_from(plan.get("aws") or {})).client("autoscaling")
        token = params.get("lifecycle_action_token") or lifecycle.get("token")
        errors = []
        for instance, entry in results.items():
            try:
                hooks.complete_action(client, asg, hook, instance, entry["result"], token if len(results) == 1 else None)
                entry["sent"] = True
            except (ClientError, BotoCoreError) as exc:
                entry["error"] = aws_access.error_text(exc)
                errors.append("%s: %s" % (instance, entry["error"]))
        msg = "Lifecycle action on %s (hook %s): %s" % (asg, hook, "; ".join(words))
        if errors:
            return {"failed": True, "changed": any(e["sent"] for e in results.values()), "results": results,
                    "msg": "%s. Auto Scaling refused to complete: %s. Without a completion the hook's default result applies once its "
                           "heartbeat timeout passes" % (msg, "; ".join(errors))}
        return {"changed": True, "results": results, "msg": msg}


def _lifecycle(params):
    """The lifecycle fields from the message and the explicit options (the options win)."""
    fields = hooks.parse_message(params["lifecycle_message"]) if params.get("lifecycle_message") not in (None, "", {}) else {}
    if params.get("notification_metadata") not in (None, "", {}) and not fields.get("deployment_group"):
        fields["deployment_group"] = hooks.deployment_group_of(params["notification_metadata"])
    for option, key in (("lifecycle_hook_name", "hook_name"), ("lifecycle_action_token", "token"), ("autoscaling_group", "auto_scaling_group")):
        if params.get(option):
            fields[key] = params[option]
    return fields


def _wait(value):
    if value is None:
        return scale.DEFAULT_WAIT
    low, high = scale.WAIT_RANGE
    if not low <= value <= high:
        raise scale.ScaleOutError("codedeploy_scale_out_wait=%s is not accepted: give %d to %d seconds (keep it below the launch hook's "
                                  "heartbeat timeout)" % (value, low, high), "wait_seconds")
    return value


def _ledger(location, aws_settings):
    try:
        return ledgers.open_ledger(location, aws=aws_settings, readonly=True)
    except ledgers.LedgerMissingError:
        return None  # never deployed from this controller: nothing to scale out


def _heartbeat(aws, lifecycle, ids):
    """Keep each instance's lifecycle action alive while the run waits for the group (best effort)."""
    if not lifecycle.get("hook_name") or not lifecycle.get("auto_scaling_group"):
        return None

    def beat():
        for instance in ids:
            try:
                aws.client("autoscaling").record_lifecycle_action_heartbeat(
                    AutoScalingGroupName=lifecycle["auto_scaling_group"], LifecycleHookName=lifecycle["hook_name"], InstanceId=instance)
            except (ClientError, BotoCoreError, aws_access.AwsError):
                pass  # the heartbeat only extends the wait; the hook's timeout is the bound anyway
    return beat
