# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment group's launch lifecycle hook on its Auto Scaling groups, and the lifecycle messages it produces.

- ``hook_name``: the hook's name, made from the collection and the deployment group, so that several deployment
  groups on one Auto Scaling group each have their own hook (CodeDeploy users trip over shared hooks).
- ``desired_hook`` / ``hook_changes`` / ``ensure_hooks``: install or remove the hook on each Auto Scaling group,
  idempotently, with a before/after diff and a check mode.
- ``parse_message``: the Auto Scaling lifecycle message (SQS body, SNS envelope or EventBridge event) as plain fields;
  the test notification Auto Scaling sends when a hook is created is recognised and ignored.
- ``complete_action``: CONTINUE or ABANDON a waiting instance.

Used by the module rollout.codedeploy.lifecycle_hook and the scale-out step of rollout.codedeploy.scale_out
(docs/scale-out.md). Controller-only."""

from __future__ import annotations

import hashlib
import json
import re

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
EVENTBRIDGE_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action"
NAME_PREFIX = "rollout-codedeploy-"
NAME_LIMIT = 255
HEARTBEAT_RANGE = (30, 7200)
DEFAULT_HEARTBEAT = 900
RESULTS = ("CONTINUE", "ABANDON")
METADATA_LIMIT = 1023
COLLECTION = "rollout.codedeploy"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_/-]")
#: The fields of a hook that this collection sets and compares (DescribeLifecycleHooks names).
COMPARED = ("LifecycleTransition", "HeartbeatTimeout", "DefaultResult", "NotificationTargetARN", "RoleARN", "NotificationMetadata")


class HookError(Exception):
    """Bad input or a failed Auto Scaling call; ``message`` says what, where and what to do."""

    def __init__(self, message, code="INVALID_INPUT"):
        super(HookError, self).__init__(message)
        self.message = message
        self.code = code


def hook_name(deployment_group):
    """``rollout-codedeploy-<deployment group>``: characters Auto Scaling refuses become ``-``; a name over 255 characters is cut
    and ends in a hash of the whole, so it stays unique."""
    if not isinstance(deployment_group, str) or not deployment_group.strip():
        raise HookError("deployment_group=%r is not accepted: name the deployment group's inventory group, such as web_production"
                        % (deployment_group,))
    name = NAME_PREFIX + _NAME_CHARS.sub("-", deployment_group.strip())
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
        name = name[:NAME_LIMIT - 13] + "-" + digest
    return name


def metadata(deployment_group):
    """The hook's NotificationMetadata: what a lifecycle message's reader needs to find the deployment group."""
    return json.dumps({"collection": COLLECTION, "deployment_group": deployment_group}, sort_keys=True, separators=(",", ":"))


def desired_hook(deployment_group, heartbeat_timeout=DEFAULT_HEARTBEAT, default_result="ABANDON", notification_target_arn=None,
                 role_arn=None, name=None):
    """The PutLifecycleHook fields of the group's launch hook (without the Auto Scaling group's name), checked."""
    low, high = HEARTBEAT_RANGE
    if isinstance(heartbeat_timeout, bool) or not isinstance(heartbeat_timeout, int) or not low <= heartbeat_timeout <= high:
        raise HookError("heartbeat_timeout=%r is not accepted: Auto Scaling takes %d to %d seconds. It is how long a new instance "
                        "may wait for its deployment before the default result applies" % (heartbeat_timeout, low, high))
    if default_result not in RESULTS:
        raise HookError("default_result=%r is not accepted: use ABANDON (the instance is terminated when nobody completes the "
                        "action, the default) or CONTINUE" % (default_result,))
    if bool(notification_target_arn) != bool(role_arn):
        raise HookError("notification_target_arn and role_arn go together: Auto Scaling needs the role to publish to the target (%s "
                        "given). Leave both out to get the lifecycle events on EventBridge's default bus" % (
                            "notification_target_arn" if notification_target_arn else "role_arn"))
    if notification_target_arn and not str(notification_target_arn).startswith("arn:"):
        raise HookError("notification_target_arn=%r is not accepted: give the ARN of an SQS queue or SNS topic (arn:aws:sqs:...)"
                        % (notification_target_arn,))
    hook = {"LifecycleHookName": name or hook_name(deployment_group), "LifecycleTransition": LAUNCHING,
            "HeartbeatTimeout": heartbeat_timeout, "DefaultResult": default_result, "NotificationMetadata": metadata(deployment_group)}
    if notification_target_arn:
        hook["NotificationTargetARN"] = notification_target_arn
        hook["RoleARN"] = role_arn
    return hook


def comparable(hook):
    """The compared fields of a described (or desired) hook; absent ones are None."""
    return {key: (hook or {}).get(key) for key in COMPARED} if hook else None


def hook_changes(current, desired):
    """``(action, before, after)`` for one Auto Scaling group: action is ``put`` (create or update), ``delete`` or None."""
    before = comparable(current)
    after = comparable(desired)
    if desired is None:
        return ("delete" if current else None), before, None
    return (None if before == after else "put"), before, after


def described_hooks(client, asg_name, name):
    """The named hook of ``asg_name`` as DescribeLifecycleHooks returns it, or None."""
    found = client.describe_lifecycle_hooks(AutoScalingGroupName=asg_name, LifecycleHookNames=[name]).get("LifecycleHooks") or []
    return next((h for h in found if h.get("LifecycleHookName") == name), None)


def ensure_hooks(client, asg_names, desired, name, check_mode=False):
    """Make the hook ``name`` present (``desired`` fields) or absent (``desired`` None) on each Auto Scaling group.
    Returns ``{changed, hooks: [{auto_scaling_group, action}], diff: {before, after}}``; the diff is keyed by group."""
    changed = False
    result = []
    before, after = {}, {}
    known = set(_existing_groups(client, asg_names))
    missing = [g for g in asg_names if g not in known]
    if missing and desired is not None:
        raise HookError("Auto Scaling group(s) %s do not exist in this region: the deployment group's autoscaling_groups must name "
                        "existing groups. Check the names and the region" % ", ".join(missing), "AUTO_SCALING_CONFIGURATION")
    for asg in asg_names:
        current = described_hooks(client, asg, name) if asg in known else None
        action, was, will = hook_changes(current, desired)
        before[asg], after[asg] = was, will
        if action and not check_mode:
            if action == "put":
                client.put_lifecycle_hook(AutoScalingGroupName=asg, **{k: v for k, v in desired.items() if v is not None})
            else:
                client.delete_lifecycle_hook(AutoScalingGroupName=asg, LifecycleHookName=name)
        changed = changed or bool(action)
        result.append({"auto_scaling_group": asg, "name": name, "action": action or "none"})
    return {"changed": changed, "hooks": result, "diff": {"before": before, "after": after}}


def _existing_groups(client, asg_names):
    names = list(asg_names)
    found = []
    for start in range(0, len(names), 50):
        answer = client.describe_auto_scaling_groups(AutoScalingGroupNames=names[start:start + 50])
        found.extend(g["AutoScalingGroupName"] for g in answer.get("AutoScalingGroups") or [])
    return found


# ------------------------------------------------------------------------------------------ lifecycle messages
def parse_message(message):
    """The lifecycle fields of an Auto Scaling message, in any of its envelopes.

    ``message``: the SQS body (a mapping or JSON text), an SNS envelope (``Message`` holds the text), or an EventBridge event
    (``detail-type`` EC2 Instance-launch Lifecycle Action, fields in ``detail``). Returns ``{kind, instance_id,
    auto_scaling_group, hook_name, token, transition, deployment_group}`` where kind is ``launch``, ``test`` (the notification
    sent when a hook is created: nothing to do) or ``other`` (another transition). HookError for anything else."""
    body = _as_mapping(message, "lifecycle_message")
    if isinstance(body.get("Message"), str) and body.get("Type") == "Notification":  # SNS envelope
        body = _as_mapping(body["Message"], "lifecycle_message.Message")
    if "detail" in body and isinstance(body.get("detail"), dict):
        body = body["detail"]
    if body.get("Event") == TEST_NOTIFICATION:
        return {"kind": "test", "auto_scaling_group": body.get("AutoScalingGroupName")}
    transition = body.get("LifecycleTransition")
    if not transition:
        raise HookError("lifecycle_message is not an Auto Scaling lifecycle message: it has no LifecycleTransition (keys: %s). Pass the "
                        "body of the message the launch hook sent" % ", ".join(sorted(str(k) for k in body)[:12]))
    fields = {"kind": "launch" if transition == LAUNCHING else "other", "transition": transition,
              "instance_id": body.get("EC2InstanceId"), "auto_scaling_group": body.get("AutoScalingGroupName"),
              "hook_name": body.get("LifecycleHookName"), "token": body.get("LifecycleActionToken"),
              "deployment_group": deployment_group_of(body.get("NotificationMetadata"))}
    return fields


def deployment_group_of(notification_metadata):
    """The deployment group named in a hook's NotificationMetadata (as ``metadata`` writes it), or None."""
    if not notification_metadata:
        return None
    try:
        data = json.loads(notification_metadata) if isinstance(notification_metadata, str) else notification_metadata
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("collection") == COLLECTION and isinstance(data.get("deployment_group"), str):
        return data["deployment_group"]
    return None


def _as_mapping(value, field):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise HookError("%s is not JSON: %s" % (field, value[:200]))
    if not isinstance(value, dict):
        raise HookError("%s must be a mapping (the lifecycle message), not %s" % (field, type(value).__name__))
    return value


# ------------------------------------------------------------------------------------------ completing the action
def completion_result(succeeded):
    """CONTINUE when the instance's deployment succeeded (or there was nothing to deploy), ABANDON otherwise."""
    return "CONTINUE" if succeeded else "ABANDON"


def complete_action(client, asg_name, hook, instance_id, result, token=None):
    """CompleteLifecycleAction for one instance (by token when given, else by instance id). Returns the call's parameters."""
    if result not in RESULTS:
        raise HookError("lifecycle result %r is not CONTINUE or ABANDON" % (result,))
    params = {"AutoScalingGroupName": asg_name, "LifecycleHookName": hook, "LifecycleActionResult": result}
    if token:
        params["LifecycleActionToken"] = token
    if instance_id:
        params["InstanceId"] = instance_id
    client.complete_lifecycle_action(**params)
    return params
