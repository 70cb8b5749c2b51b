#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_host
short_description: Deploy a planned revision to one host of a CodeDeploy deployment
version_added: 0.1.0
description:
  - The host's part of an in-place deployment that M(rollout.codedeploy.deployment) planned, as one task.
  - Waits for a slot under the deployment's minimum healthy hosts (the ledger keeps the count across Ansible's
    forks), then runs the host's lifecycle with M(rollout.codedeploy.lifecycle) and, when the group has load
    balancers, deregisters the host before and registers it after on the controller
    (BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic, ApplicationStop ... ValidateService,
    BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic).
  - Every event's status, times, error code and log tail go to the ledger; the group's triggers get
    InstanceStart, InstanceSuccess and InstanceFailure.
  - A host is skipped when the deployment stopped, or when deploying it would break the minimum healthy hosts.
  - A slice of events with nothing to run on the host (no script in the appspec, not V(DownloadBundle) or V(Install),
    not an event that runs the previous revision's scripts) is not sent to the host; its events are recorded as
    M(rollout.codedeploy.lifecycle) would record them, V(Skipped) with error code V(Success).
  - One deployment at a time per host. The host's first lifecycle run takes the host lock, the runs in between keep it
    across the controller's load-balancer steps, and the host's last run with work on the host (or a failure) releases it.
  - Runs as an action plugin; it is the task the playbook C(rollout.codedeploy.deploy) runs on each host.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  deployment:
    description:
      - The plan that M(rollout.codedeploy.deployment) returned with O(rollout.codedeploy.deployment#module:state=started).
      - Its C(deployment_root) and C(max_revisions), when set, are given to every lifecycle run on the host
        (O(rollout.codedeploy.lifecycle#module:deployment_root), O(rollout.codedeploy.lifecycle#module:max_revisions)).
    type: dict
    required: true
  phase:
    description:
      - Which part of its steps the host runs. Omitted, every step.
      - In a blue/green deployment that waits in status V(Ready) (C(deployment_ready_option) V(STOP_DEPLOYMENT)), a green host runs
        its steps up to ValidateService with V(install) (it ends V(Ready)) and the rest, from BeforeAllowTraffic, with V(reroute),
        once the deployment was continued. Every other host runs all its steps with either value.
    type: str
    choices: [install, reroute]
  host_lock_wait:
    description:
      - Seconds the host's lifecycle runs wait while another deployment holds the host before the host fails with
        error code C(HostLocked) (O(rollout.codedeploy.lifecycle#module:host_lock_wait)).
      - The playbook C(rollout.codedeploy.deploy) sets it from the extra var C(codedeploy_host_lock_wait).
      - Omitted, the lifecycle module's default (300 seconds) applies.
    type: int
seealso:
  - module: rollout.codedeploy.deployment
  - module: rollout.codedeploy.lifecycle
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - rollout.codedeploy.attributes.action
"""

EXAMPLES = r"""
- name: Deploy to the host
  rollout.codedeploy.deploy_host:
    deployment: "{{ hostvars['localhost']['codedeploy_deployment']['plan'] }}"
  ignore_errors: true
"""

RETURN = r"""
status:
  description:
    - The host's outcome, V(Succeeded) or V(Failed); skipped hosts return C(skipped).
    - V(Ready) for a green host that installed the revision and waits for the reroute (O(phase=install) with a ready wait).
  returned: when the host was deployed
  type: str
events:
  description:
    - Every lifecycle event of the host that ran or was skipped, in order, as the ledger records them.
    - Host events have the fields of the C(events) that M(rollout.codedeploy.lifecycle) returns (C(event), C(status), C(error_code),
      C(message), C(start), C(end), C(duration) in seconds, C(log_tail)), plus C(script_name), the failing script's location when a
      hook script failed. The controller's V(BlockTraffic) and V(AllowTraffic) records have the same fields, with a load-balancer
      error code when they fail.
  returned: when the host was deployed
  type: list
  elements: dict
failed_event:
  description: The event at which the host failed.
  returned: when the host failed
  type: str
  sample: ValidateService
error_code:
  description: The failed event's error code (the agent's diagnostics code, C(HOST_UNREACHABLE), a load-balancer error code, ...).
  returned: when the host failed
  type: str
  sample: ScriptFailed
script:
  description: The failing script's location in the revision; None when the failure was not a script's (a load-balancer step, an unreachable host).
  returned: when the host failed
  type: str
  sample: scripts/validate_service.sh
log_tail:
  description: The failed event's log tail (the newest script output); empty when no script ran.
  returned: when the host failed
  type: str
msg:
  description: What failed, where and why, naming the host, the deployment, the event and the script.
  returned: when the host failed or was skipped
  type: str
out_of_service:
  description: The host failed after BlockTraffic and is out of its load balancers.
  returned: when the host was deployed
  type: bool
ledger_unrecorded:
  description:
    - Why the ledger could not record some of the host's events or its outcome, even after its retries. C(status) and
      C(events) still hold the host's real outcome; the settle step (O(rollout.codedeploy.deployment#module:state=finished))
      records it from this result.
  returned: when the ledger could not record the host's outcome
  type: str
"""
