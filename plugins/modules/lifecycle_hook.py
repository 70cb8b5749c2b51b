#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle_hook
short_description: Install or remove a deployment group's launch lifecycle hook on its Auto Scaling groups
version_added: 0.3.0
description:
  - CodeDeploy's scale-out support. With a launch lifecycle hook on a deployment group's Auto Scaling groups, every new instance
    waits in C(Pending:Wait) until the group's last successful revision is deployed to it by the playbook
    C(rollout.codedeploy.scale_out) (run by the Event-Driven Ansible rulebook C(extensions/eda/rulebooks/scale_out.yml), by AWX, or by
    hand), which then completes the lifecycle action with V(CONTINUE) (deployed) or V(ABANDON) (failed, and Auto Scaling terminates the
    instance). See the collection's docs/scale-out.md.
  - The hook (transition C(autoscaling:EC2_INSTANCE_LAUNCHING)) is named C(rollout-codedeploy-<deployment group>), so several
    deployment groups on one Auto Scaling group each have their own hook, and its C(NotificationMetadata) names the deployment group
    for whoever reads the lifecycle messages.
  - Lifecycle messages go to O(notification_target_arn) (an SQS queue or SNS topic, with O(role_arn)) or, without one, to
    EventBridge's default bus as C(EC2 Instance-launch Lifecycle Action) events.
  - O(state=absent) removes this deployment group's hook and no other.
  - Idempotent - a second run with the same options changes nothing.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: full
    details:
      - In check mode the current hooks are read and the changes that would be made are reported (with the diff); nothing is changed.
  diff_mode:
    support: full
    details:
      - The diff shows, per Auto Scaling group, the hook's compared fields before and after.
  platform:
    support: full
    platforms: posix
options:
  deployment_group:
    description:
      - The deployment group's inventory group (C(<application>_<group>) of the C(rollout.codedeploy.codedeploy) inventory). It names
        the hook and is written into the hook's notification metadata.
    type: str
    required: true
  autoscaling_groups:
    description:
      - The deployment group's Auto Scaling groups (its C(autoscaling_groups) setting), for example
        C("{{ codedeploy_deployment_groups['web_production'].autoscaling_groups }}") in a play that has the inventory.
    type: list
    elements: str
    required: true
  state:
    description: V(present) installs or updates the hook on every named Auto Scaling group; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  heartbeat_timeout:
    description:
      - Seconds (30 to 7200) a new instance may wait for its deployment before O(default_result) applies. Make it longer than a
        deployment of one instance takes, plus the wait for a running deployment of the group (C(codedeploy_scale_out_wait)).
    type: int
    default: 900
  default_result:
    description: What Auto Scaling does when nobody completes the action in time; V(ABANDON) terminates the instance.
    type: str
    choices: [ABANDON, CONTINUE]
    default: ABANDON
  notification_target_arn:
    description:
      - The SQS queue (or SNS topic) that receives the lifecycle messages. Leave it out to receive them through EventBridge.
    type: str
  role_arn:
    description: The IAM role that lets Auto Scaling publish to O(notification_target_arn); required with it.
    type: str
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Install the launch hook of web_production, with lifecycle messages on an SQS queue
  rollout.codedeploy.lifecycle_hook:
    deployment_group: web_production
    autoscaling_groups: "{{ codedeploy_deployment_groups['web_production'].autoscaling_groups }}"
    notification_target_arn: arn:aws:sqs:us-east-1:123456789012:web-launches
    role_arn: arn:aws:iam::123456789012:role/autoscaling-notifications
    heartbeat_timeout: 1200

- name: Remove it
  rollout.codedeploy.lifecycle_hook:
    deployment_group: web_production
    autoscaling_groups: [web-asg]
    state: absent
"""

RETURN = r"""
name:
  description: The hook's name.
  returned: always
  type: str
  sample: rollout-codedeploy-web_production
hooks:
  description: What was done on each Auto Scaling group (C(action) is V(put), V(delete) or V(none)).
  returned: always
  type: list
  elements: dict
  sample: [{"auto_scaling_group": "web-asg", "name": "rollout-codedeploy-web_production", "action": "put"}]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError


def main():
    argument_spec = dict(
        deployment_group=dict(type="str", required=True),
        autoscaling_groups=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        heartbeat_timeout=dict(type="int", default=lifecycle_hooks.DEFAULT_HEARTBEAT),
        default_result=dict(type="str", choices=list(lifecycle_hooks.RESULTS), default="ABANDON"),
        notification_target_arn=dict(type="str"),
        role_arn=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        name = lifecycle_hooks.hook_name(params["deployment_group"])
        desired = None
        if params["state"] == "present":
            desired = lifecycle_hooks.desired_hook(params["deployment_group"], params["heartbeat_timeout"], params["default_result"],
                                                   params["notification_target_arn"], params["role_arn"], name=name)
        if not params["autoscaling_groups"]:
            raise lifecycle_hooks.HookError("autoscaling_groups is empty: name the deployment group's Auto Scaling groups")
        client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff())
        outcome = lifecycle_hooks.ensure_hooks(client, params["autoscaling_groups"], desired, name, check_mode=module.check_mode)
    except lifecycle_hooks.HookError as exc:
        module.fail_json(msg=exc.message, error_code=exc.code)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Auto Scaling refused the lifecycle hook of %s on %s" % (
            params["deployment_group"], ", ".join(params["autoscaling_groups"])))
    result = {"changed": outcome["changed"], "name": name, "hooks": outcome["hooks"]}
    if module._diff:
        result["diff"] = outcome["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
