# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of rollout.codedeploy.traffic_shift: checks the arguments (module_utils/shift_task.py), makes the
load-balancer target and the alarm check, and runs shift.Shifter on the controller."""

from __future__ import annotations

import time
import traceback

from ansible.plugins.action import ActionBase

from ansible_collections.rollout.codedeploy.plugins.module_utils import alarms as alarm_checks
from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, shift, shift_task
from ansible_collections.rollout.codedeploy.plugins.modules.traffic_shift import DOCUMENTATION
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import contract, haproxy_runtime
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.argspec import check_arguments, spec_from_documentation

SPEC = spec_from_documentation(DOCUMENTATION)
ACTION = "rollout.codedeploy.traffic_shift"
KNOWN_ERRORS = (shift_task.RequestError, contract.InputError, shift.ShiftError, haproxy.HaproxyError, aws_access.AwsError)


def parse_arguments(args):
    """The checked request and the AWS settings, or RequestError / ValueError naming what is wrong."""
    params = check_arguments(SPEC, args, ACTION)
    return shift_task.request(params), contract.aws_settings(params)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            req, aws_settings = parse_arguments(dict(self._task.args))
            access = aws_access.AwsAccess(aws_access.settings_from(aws_settings))
            targets = [self._target(req, access, (task_vars or {}).get("hostvars") or {})]
            if self._task.check_mode:
                return dict(result, **shift_task.preview(targets, req))
            if req["direction"] == shift_task.BACK:
                return dict(result, **shift_task.run_back(targets))
            check = None
            if req["alarms"]:
                cloudwatch = access.client("cloudwatch")

                def check():
                    verdict = alarm_checks.check_alarms(cloudwatch, req["alarms"], req["ignore_poll_alarm_failure"])
                    return (verdict.ok, verdict.message)
            return dict(result, **shift_task.run_forward(targets, req, check_alarms=check))
        except KNOWN_ERRORS as exc:
            result.update(failed=True, msg=exc.message, error_code=getattr(exc, "code", None) or shift_task.INVALID_INPUT)
        except ValueError as exc:  # the argument spec's own wording
            result.update(failed=True, msg=str(exc), error_code=shift_task.INVALID_INPUT)
        except Exception as exc:  # pylint: disable=broad-except  # a bug: say so plainly, keep the traceback for -vvv
            result.update(failed=True, error_code="INTERNAL_ERROR", exception=traceback.format_exc(),
                          msg="%s stopped on an internal error (%s). Rerun with -vvv for the details and report them." % (ACTION, exc))
        return result

    @staticmethod
    def _target(req, access, hostvars):
        if req["kind"] == "alb":
            alb = req["alb"]
            return shift.AlbTarget(access.client("elbv2"), alb["listener_arn"], alb["blue"], alb["green"], rule_arns=alb["rule_arns"])
        spec = req["haproxy"]["spec"]
        backend = haproxy.Backend(spec, haproxy_runtime.runtime_for(spec["runtime_api"], hostvars), time.monotonic)
        return shift.HaproxyTarget(backend, req["haproxy"]["blue"], req["haproxy"]["green"])
