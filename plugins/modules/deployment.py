#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment
short_description: Start, check and settle a CodeDeploy deployment on the controller
version_added: 0.1.0
description:
  - The controller's part of an in-place deployment, as run by the playbook C(rollout.codedeploy.deploy).
  - With O(state=started) it fetches the revision once into the controller's cache (by sha256), validates its
    appspec before any host is touched, opens the deployment in the ledger (one active deployment per group),
    orders the hosts (unhealthy first) and plans the batches from the deployment configuration, checks the
    group's alarms and publishes DeploymentStart. It returns the plan for M(rollout.codedeploy.deploy_host).
  - With O(state=batch), after each batch, it stops the deployment on a stop request (V(MANUAL_STOP)) or an
    alarm (V(ALARM_ACTIVE)), bakes after each zone of a zonal deployment while watching the alarms, and renews the
    deployment's lease in the ledger.
  - With O(state=stop_requested) it asks a deployment that another process runs to stop after its current batch
    (optionally rolling back); that process sees the request after the batch.
  - For a blue/green group with C(green_fleet_provisioning_option.action) V(COPY_AUTO_SCALING_GROUP), O(state=started) first copies
    the group's one Auto Scaling group to C(CodeDeploy_<group>_<deployment id>) (launch template or configuration, subnets, tags,
    as many instances as the source has healthy ones; not its load balancers), waits for its instances and returns them as
    C(green_fleet_hosts) for M(ansible.builtin.add_host). See the collection's docs/blue-green.md.
  - With O(state=continue_requested) it lets a blue/green deployment that waits in status V(Ready) (C(deployment_ready_option)
    V(STOP_DEPLOYMENT)) reroute the traffic to its green fleet; it is refused, naming the status, for any other deployment.
  - With O(state=finished) it applies CodeDeploy's success rule, records the final status with its error code
    and a message naming the failed hosts, events, scripts and log tails, and publishes the outcome.
  - Every input is checked before the deployment is opened (the deployment group must be one that the
    C(rollout.codedeploy.codedeploy) inventory plugin made, the revision a zip, tar or tgz archive with an appspec at its
    root, each option of the documented type and choices); a refusal names the input, the value and what is accepted,
    and records nothing.
  - Runs as an action plugin on the controller.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: full
    details:
      - With O(state=started) in check mode the revision is fetched into the controller's cache and validated, and the plan (batches,
        hosts, the events and scripts each host would run) is returned as C(msg); nothing is recorded in the ledger and no host is
        touched. The other states then have nothing to do.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  state:
    description: Which step of the deployment to run.
    type: str
    choices: [started, batch, finished, stop_requested, continue_requested]
    default: started
  deployment_group:
    description: The inventory group of the deployment group (C(<application>_<group>) from the C(rollout.codedeploy.codedeploy) inventory).
    type: str
  revision:
    description:
      - "The revision: C(s3://bucket/key[?versionId=...]), a local revision directory or bundle, or a mapping
        with key C(s3) (C(bucket), C(key), C(version), C(etag)), C(url) and C(sha256), or C(git) (C(repo), C(commit))."
    type: raw
  deployment_config:
    description: Overrides the group's deployment configuration (a C(CodeDeployDefault.*) name or a custom one of the inventory).
    type: str
  file_exists_behavior:
    description: Overrides the group's file_exists_behavior.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
  ignore_application_stop_failures:
    description: Carry on past failures of the previous revision's ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic.
    type: bool
  update_outdated_instances_only:
    description: Deploy only to instances that do not run the group's last successful revision.
    type: bool
  auto_rollback:
    description:
      - Overrides the group's auto-rollback configuration, a mapping with C(enabled) (bool) and C(events) (a list of
        V(DEPLOYMENT_FAILURE), V(DEPLOYMENT_STOP_ON_ALARM), V(DEPLOYMENT_STOP_ON_REQUEST)).
      - "A boolean is short for C({enabled: true, events: [DEPLOYMENT_FAILURE]}) or C({enabled: false})."
    type: raw
  alarms:
    description:
      - Overrides the group's alarm configuration, a mapping with C(enabled) (bool), C(names) (alarm names) and
        C(ignore_poll_alarm_failure) (bool).
      - "A list of alarm names is short for C({enabled: true, names: [...]})."
    type: raw
  description:
    description: A description recorded with the deployment.
    type: str
  ledger:
    description: The ledger, a SQLite path or C(dynamodb://<table>); defaults to C(~/.ansible/codedeploy/ledger.sqlite3).
    type: str
  bundle_cache:
    description: The controller's bundle cache.
    type: path
    default: ~/.ansible/codedeploy/bundles
  deployment:
    description: The plan that O(state=started) returned; required for O(state=batch) and O(state=finished).
    type: dict
  deployment_id:
    description:
      - With O(state=stop_requested), the deployment to stop after its current batch.
      - With O(state=continue_requested), the blue/green deployment that waits in status V(Ready) to continue; without it,
        O(deployment_group) names the group whose waiting deployment continues.
    type: str
  rollback:
    description: With O(state=stop_requested), roll the stopped deployment back to the last good revision.
    type: bool
    default: false
  force:
    description:
      - With O(state=stop_requested), settle the deployment at once as V(Stopped) (V(MANUAL_STOP), naming who forced it) and
        release its group, without waiting for its controller. Use it when that controller is gone (killed, its machine lost).
      - Not needed when the lock names an C(ansible-playbook) process of this machine that no longer runs; that deployment is
        settled at once anyway.
    type: bool
    default: false
  batch_hosts:
    description:
      - With O(state=batch), the hosts of the batch that just ran (C(ansible_play_batch)); a zonal deployment bakes after
        the batch that ends a zone, watching the alarms meanwhile.
    type: list
    elements: str
  reuse_deployment:
    description:
      - With O(state=started), deploy the revision of this earlier deployment from the archives it left on the hosts
        (no fetch, no download). This is how rollbacks run.
    type: str
  green_hosts:
    description:
      - With O(state=started), for a deployment group whose C(deployment_style.type) is C(BLUE_GREEN) (required there, refused
        otherwise) - the inventory group or groups whose hosts are the green fleet (existing instances, C(DISCOVER_EXISTING)).
        They get the revision and take over the group's load balancers; the group's own hosts are the blue fleet.
      - Each green host needs its EC2 instance id in C(codedeploy_instance_id), C(instance_id) or C(ec2_instance_id) and must not be a host of the group.
      - Refused for a group whose C(green_fleet_provisioning_option.action) is V(COPY_AUTO_SCALING_GROUP), whose green fleet is a copy of its
        Auto Scaling group, made by this step.
    type: list
    elements: str
  green_fleet_timeout:
    description:
      - With O(state=started), for a BLUE_GREEN group with C(green_fleet_provisioning_option.action) V(COPY_AUTO_SCALING_GROUP), how many
        seconds (default 900) the copied Auto Scaling group's instances have to be V(InService) with an address (the inventory source's
        C(ansible_host_source)). When they are not, the copy is deleted, the deployment is recorded V(Failed) and the blue fleet is untouched.
      - The playbook C(rollout.codedeploy.deploy) sets it from the extra var C(codedeploy_green_fleet_timeout).
    type: int
  only_hosts:
    description: With O(state=started), deploy only to these hosts of the group (a rollback targets the hosts the failed deployment touched).
    type: list
    elements: str
  rollback_of:
    description: With O(state=started), the deployment this one rolls back; the ledger links the two both ways.
    type: str
  lease_seconds:
    description:
      - How long the deployment holds its group without a sign of life from its controller (renewed after every host and batch),
        from 1 to 86400 seconds; defaults to 300.
        When a controller dies, the next deployment to the group marks this one Failed (V(TIMEOUT)) once the lease ran out.
    type: int
  creator:
    description:
      - Who started the deployment, V(user), V(rollback), or V(autoscaling) (the scale-out of new Auto Scaling instances by the
        playbook C(rollout.codedeploy.scale_out), as CodeDeploy names it).
    type: str
    choices: [user, rollback, autoscaling]
    default: user
  deployment_root:
    description:
      - The agent's deployment root on the hosts (an absolute path). Defaults to the agent's
        C(/opt/codedeploy-agent/deployment-root), so hosts the real agent managed keep their history.
    type: str
  max_revisions:
    description: How many revisions each host keeps under the deployment root (the agent's C(max_revisions)); defaults to 5.
    type: int
  ready_wait_seconds:
    description:
      - With O(state=started), for a BLUE_GREEN group whose C(deployment_ready_option.action_on_timeout) is V(STOP_DEPLOYMENT),
        how many seconds (1 to 172800) the installed green fleet waits in status V(Ready) for a continue, instead of the group's
        C(wait_time_in_minutes). Refused for any other group.
      - The playbook C(rollout.codedeploy.deploy) sets it from the extra var C(codedeploy_ready_wait_seconds).
    type: int
  traffic_interval_seconds:
    description:
      - With O(state=started), for a BLUE_GREEN deployment whose deployment configuration shifts traffic in steps (a
        C(traffic_routing_config) of type V(TimeBasedCanary) or V(TimeBasedLinear)), how many seconds (0 to 172800) each step
        waits before the next one, instead of the configuration's interval in minutes. Refused for any other deployment.
      - The playbook C(rollout.codedeploy.deploy) sets it from the extra var C(codedeploy_traffic_interval_seconds).
    type: int
  host_lock_wait:
    description:
      - With O(state=started), only checked (0 to 86400 seconds) so that a bad value is refused before the deployment is opened;
        M(rollout.codedeploy.deploy_host) uses it. The playbooks set it from the extra var C(codedeploy_host_lock_wait).
    type: int
  region:
    description: The AWS region; defaults to the deployment group's region, then E(AWS_REGION).
    type: str
seealso:
  - module: rollout.codedeploy.deploy_host
  - module: rollout.codedeploy.deployment_info
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - rollout.codedeploy.aws
  - rollout.codedeploy.attributes.action
"""

EXAMPLES = r"""
- name: Open the deployment
  rollout.codedeploy.deployment:
    state: started
    deployment_group: web_production
    revision: s3://my-revisions/web/web-1.4.2.tgz
  register: codedeploy_deployment

- name: Settle it
  rollout.codedeploy.deployment:
    state: finished
    deployment: "{{ codedeploy_deployment.plan }}"
"""

RETURN = r"""
deployment_id:
  description: The deployment's id.
  returned: always
  type: str
  sample: d-7FQJ2I5DU
plan:
  description:
    - The plan the hosts follow (batches, order, bundle, appspec, options, load balancers), to pass on as O(deployment)
      unchanged; its fields are described in the collection's docs/design.md.
  returned: with O(state=started)
  type: dict
green_asg:
  description:
    - For a blue/green deployment with C(COPY_AUTO_SCALING_GROUP), the copied Auto Scaling group - C(name), C(arn), C(source_name),
      C(source_arn) and C(desired) (its instance count). None otherwise.
  returned: with O(state=started)
  type: dict
  sample: {name: CodeDeploy_production_d-7FQJ2I5DU, arn: "arn:aws:autoscaling:...", source_name: web-asg, desired: 2}
green_fleet_hosts:
  description:
    - For a blue/green deployment with C(COPY_AUTO_SCALING_GROUP), the copied group's instances as M(ansible.builtin.add_host) arguments -
      C(name), C(groups) (V(codedeploy_green)), C(ansible_host), the C(codedeploy_*) variables of the inventory plugin and the connection
      variables every blue host shares. Empty otherwise.
  returned: with O(state=started)
  type: list
  elements: dict
rollout_hosts:
  description: The hosts to roll out to, in order (empty in check mode and when nothing is deployed).
  returned: with O(state=started)
  type: list
  elements: str
rollout_serial:
  description: The batch sizes, for the rollout play's C(serial).
  returned: with O(state=started)
  type: list
  elements: int
rollout_reroute_hosts:
  description:
    - A blue/green deployment that waits in status V(Ready) (C(deployment_ready_option) V(STOP_DEPLOYMENT)) rolls out in two plays.
      Its C(rollout_hosts) are the green hosts, which only install; these are the hosts of the second play, the reroute (the
      green hosts again, then the blue hosts).
    - Empty for every other deployment.
  returned: with O(state=started)
  type: list
  elements: str
rollout_reroute_serial:
  description: The batch sizes of the reroute play (V([1]) when there is none).
  returned: with O(state=started)
  type: list
  elements: int
appspec_warnings:
  description: Warnings about the revision's appspec (also shown as task warnings).
  returned: with O(state=started)
  type: list
  elements: str
status:
  description: The deployment's status after the step.
  returned: with O(state=batch) and O(state=finished)
  type: str
  sample: Succeeded
proceed:
  description:
    - Whether the next batch may start. False once the deployment stopped (a stop request, an alarm, the end of a ready wait) or,
      for blue/green, when the green fleet can no longer meet its minimum healthy hosts.
  returned: with O(state=batch)
  type: bool
error_code:
  description:
    - With O(state=batch), why the deployment stops after the batch (V(MANUAL_STOP), V(ALARM_ACTIVE), V(HEALTH_CONSTRAINTS), ...).
    - On failure, the error code of the refusal or error (V(INVALID_INPUT), V(INTERNAL_ERROR), ...).
  returned: with O(state=batch) when the deployment stops; on failure
  type: str
error:
  description: CodeDeploy's error code and the message, when the deployment failed or stopped.
  returned: with O(state=finished)
  type: dict
overview:
  description: Instance counts by status.
  returned: with O(state=finished)
  type: dict
rollback:
  description: When auto-rollback applies, the earlier deployment to redeploy (C(reuse_deployment)), the C(hosts) to roll back and the C(event).
  returned: with O(state=finished)
  type: dict
out_of_service:
  description: Hosts that failed after leaving their load balancers.
  returned: with O(state=finished)
  type: list
  elements: str
blue_green:
  description:
    - For a blue/green deployment, what happened to the traffic and the blue fleet - C(phase) (C(rerouted), C(before_reroute),
      C(after_reroute)), C(action) (C(KEEP_ALIVE) or C(TERMINATE)) and C(terminated) after a success, C(deregistered_green),
      C(registered_blue), C(errors), C(rollback_deployment_id) (the linked rollback deployment that moved the traffic back,
      None when nothing was moved) and C(rollback_status) after a failure, and C(msg). None for an in-place deployment.
    - With C(COPY_AUTO_SCALING_GROUP) also C(green_asg), the copied group with its C(state) - V(serving) (kept), V(deleted) or
      V(delete_failed).
  returned: with O(state=finished)
  type: dict
unrecorded:
  description:
    - Hosts whose outcome the ledger still does not have (their instance stays V(InProgress)), each with why. A host whose
      deploy_host task could not record its outcome is recorded from that task's result first.
  returned: with O(state=finished)
  type: list
  elements: str
"""
