#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: scale_out
short_description: Plan a scale-out deployment to new Auto Scaling instances and complete their lifecycle actions
version_added: 0.3.0
description:
  - The controller's part of the playbook C(rollout.codedeploy.scale_out), which gives new instances of a deployment group's Auto
    Scaling group the group's last good revision (CodeDeploy's scale-out deployments, creator V(autoscaling)). See the collection's
    docs/scale-out.md.
  - With O(state=planned) it checks that the instances are hosts of the deployment group, waits (at most O(wait_seconds)) while
    another deployment of the group is active, so that an instance launched during a deployment gets that deployment's revision
    once it ends, then reads the group's last successful deployment. It returns what the playbook passes to
    M(rollout.codedeploy.deployment) (C(reuse_deployment), C(only_hosts)), or why there is nothing to deploy (no successful
    deployment yet, or the instances already run it).
  - With O(state=completed) it completes each instance's lifecycle action - V(CONTINUE) when its deployment succeeded or there was
    nothing to deploy, V(ABANDON) when it failed or the run was refused - and says which in C(msg).
  - A refusal (an instance that is not a host of the group, a wait that ran out) fails the task at once when no lifecycle hook is
    named; with O(lifecycle_hook_name) it is returned as C(refused) so that the playbook can still ABANDON the instance.
  - Runs as an action plugin on the controller.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: partial
    details:
      - With O(state=planned) the plan is made (without waiting) and returned; with O(state=completed) nothing is sent.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  state:
    description: Which step to run.
    type: str
    choices: [planned, completed]
    default: planned
  deployment_group:
    description:
      - The inventory group of the deployment group (C(<application>_<group>)). Defaults to the one named in the lifecycle message's
        notification metadata (written by M(rollout.codedeploy.lifecycle_hook)).
    type: str
  instance_id:
    description: The new instance (an EC2 instance id).
    type: str
  instance_ids:
    description: Several new instances; each lifecycle action is then completed by instance id.
    type: list
    elements: str
  lifecycle_message:
    description:
      - The Auto Scaling lifecycle message (the SQS message body, an SNS envelope or an EventBridge event, as a mapping or JSON text).
        It gives the instance, the Auto Scaling group, the hook, the token and the deployment group. Auto Scaling's test
        notification is recognised and nothing is done.
    type: raw
  notification_metadata:
    description:
      - The hook's C(NotificationMetadata) from the lifecycle message (JSON text written by M(rollout.codedeploy.lifecycle_hook));
        it names the deployment group when O(deployment_group) is not given. The playbook sets it from C(lifecycle_notification_metadata).
      - A mapping is accepted too (ansible-rulebook turns JSON text it renders into a mapping).
    type: raw
  lifecycle_hook_name:
    description: The launch lifecycle hook whose action is completed; without it (and without O(lifecycle_message)) nothing is completed.
    type: str
  lifecycle_action_token:
    description: The lifecycle action's token (from the message); only with one instance. Without it the action is completed by instance id.
    type: str
  autoscaling_group:
    description: The instance's Auto Scaling group; defaults to the one the inventory recorded for the host (C(codedeploy_autoscaling_group)).
    type: str
  wait_seconds:
    description:
      - With O(state=planned), how long (0 to 7200 seconds, default 1800) to wait for an active deployment of the group to end.
        Keep it below the hook's heartbeat timeout. The playbook sets it from C(codedeploy_scale_out_wait).
    type: int
  ledger:
    description: The ledger, a SQLite path or C(dynamodb://<table>); defaults to C(~/.ansible/codedeploy/ledger.sqlite3).
    type: str
  plan:
    description: With O(state=completed), what O(state=planned) returned.
    type: dict
  deployment_id:
    description: With O(state=completed), the scale-out deployment (none when nothing was deployed).
    type: str
  refused:
    description: With O(state=completed), why the run could not deploy (every instance is then abandoned).
    type: str
  region:
    description: The AWS region; defaults to the deployment group's region, then E(AWS_REGION).
    type: str
  endpoint_url:
    description: An alternative AWS endpoint (for example a test server); defaults to E(AWS_ENDPOINT_URL).
    type: str
  profile:
    description: The AWS profile; otherwise boto3's usual sources.
    type: str
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - rollout.codedeploy.attributes.action
"""

EXAMPLES = r"""
- name: Plan the scale-out of a new instance
  rollout.codedeploy.scale_out:
    state: planned
    deployment_group: web_production
    instance_id: i-0123456789abcdef0
  register: codedeploy_scale_out
"""

RETURN = r"""
deploy:
  description: With O(state=planned), whether a deployment is needed.
  returned: with O(state=planned)
  type: bool
reuse_deployment:
  description: The group's last successful deployment, whose revision the new instances get.
  returned: with O(state=planned)
  type: str
only_hosts:
  description: The inventory hosts to deploy to.
  returned: with O(state=planned)
  type: list
  elements: str
instances:
  description: The instances of the run, each with its inventory host.
  returned: always
  type: dict
refused:
  description: Why the run was refused (the instances are then abandoned by O(state=completed)), or None.
  returned: with O(state=planned)
  type: str
results:
  description: With O(state=completed), each instance's lifecycle result (V(CONTINUE) or V(ABANDON)), why, and whether it was sent.
  returned: with O(state=completed)
  type: dict
msg:
  description: What was decided or done, for people.
  returned: always
  type: str
"""
