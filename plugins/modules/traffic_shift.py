#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_shift
short_description: Move traffic from a blue to a green fleet in steps, on an ALB listener or an HAProxy backend
version_added: 0.2.0
description:
  - Shifts the traffic of one load balancer from the blue fleet to the green fleet in the steps of a deployment configuration
    (V(Rollout.Canary10Percent5Minutes), V(Rollout.Linear10PercentEvery1Minute), any C(CodeDeployDefault.*) name for all at
    once, or an inline C(traffic_routing_config) mapping) or in explicit O(steps).
  - On an Application Load Balancer the listener's default forward action (or the forward action of the rules in O(rule_arns))
    becomes a weighted forward between O(blue_target_group) and O(green_target_group).
  - On HAProxy the servers of O(haproxy_backend) get weights through the runtime API so that the O(green_servers) together carry the
    step's share of the traffic.
  - The CloudWatch alarms in O(alarms) are checked before the first step, every O(alarm_interval) seconds while a step waits, and
    before the next step. When one is in ALARM, all traffic goes straight back to the blue fleet and the task fails with
    C(error_code=ALARM_ACTIVE), naming the alarm.
  - With O(direction=back) all traffic goes to the blue fleet at once (a rollback helper).
  - A bad input is refused before anything changes, with a message naming the option, the value and the fix.
  - Runs as an action plugin on the controller, which needs boto3 for an ALB or for alarms, and a route to HAProxy's runtime API.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: full
    details:
      - In check mode the inputs are checked, the load balancer's current weights are read and returned with the planned steps;
        nothing is changed and no alarm is polled.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  direction:
    description:
      - V(forward) moves traffic to the green fleet in steps; V(back) sends all traffic to the blue fleet in one step
        (O(deployment_config) and O(steps) are then ignored).
    type: str
    choices: [forward, back]
    default: forward
  deployment_config:
    description:
      - "The schedule, a deployment configuration name or an inline mapping in the C(traffic_routing_config) shape
        (C({type: TimeBasedLinear, time_based_linear: {linear_percentage: 25, linear_interval: 2}}))."
      - Names without traffic routing (C(CodeDeployDefault.AllAtOnce), ...) move all traffic at once. Without this option and
        without O(steps) all traffic moves at once.
    type: raw
  steps:
    description:
      - Explicit steps instead of O(deployment_config); percentages must not decrease and the last one must be 100.
    type: list
    elements: dict
    suboptions:
      percent:
        description: The green fleet's share of the traffic in this step, 0 to 100.
        type: int
        required: true
      wait_seconds:
        description: How long to stay at this share before the next step (alarms are watched meanwhile).
        type: float
        default: 0
  interval_scale:
    description:
      - Multiplies every wait (for tests and dry runs); V(0) runs all steps without waiting, V(0.01) turns five minutes into three
        seconds. Leave it at V(1) for real traffic.
    type: float
    default: 1.0
  alarm_interval:
    description: Seconds between alarm checks while a step waits.
    type: float
    default: 10
  alarms:
    description: CloudWatch alarm names checked at every step; one in ALARM sends traffic back to blue and fails the task.
    type: list
    elements: str
  ignore_poll_alarm_failure:
    description:
      - Go on when the alarm states cannot be read (CloudWatch unreachable, an alarm that does not exist); by default that
        counts as an alarm, as in CodeDeploy.
    type: bool
    default: false
  listener_arn:
    description: The ALB listener's ARN. Give it, or O(haproxy_backend).
    type: str
  rule_arns:
    description: Listener rules whose forward action is shifted instead of the listener's default actions (V(default) names those).
    type: list
    elements: str
  blue_target_group:
    description: With O(listener_arn), the blue fleet's target group (name or ARN).
    type: str
  green_target_group:
    description: With O(listener_arn), the green fleet's target group (name or ARN).
    type: str
  haproxy_backend:
    description: The HAProxy backend whose server weights are shifted. Give it, or O(listener_arn).
    type: str
  runtime_api:
    description:
      - With O(haproxy_backend), how to reach HAProxy's runtime API, as in C(load_balancer.haproxy_backends) (see the collection's
        docs/haproxy.md) - C(HOST:PORT) of a TCP admin socket, a socket path on the controller, or
        C(host) and C(socket) keys (an inventory host whose connection reaches the socket).
    type: raw
  haproxy_servers:
    description: Maps inventory hosts to HAProxy server names where they differ (host name to server name).
    type: dict
  blue_servers:
    description: With O(haproxy_backend), the blue fleet's inventory hosts or server names.
    type: list
    elements: str
  green_servers:
    description: With O(haproxy_backend), the green fleet's inventory hosts or server names.
    type: list
    elements: str
seealso:
  - module: rollout.codedeploy.deployment
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - rollout.codedeploy.aws
  - rollout.codedeploy.attributes.action
"""

EXAMPLES = r"""
- name: Canary on an ALB listener, watching two alarms
  rollout.codedeploy.traffic_shift:
    listener_arn: "{{ web_listener_arn }}"
    blue_target_group: web-blue
    green_target_group: web-green
    deployment_config: Rollout.Canary10Percent5Minutes
    alarms: [web-5xx, web-latency]
  register: web_shift

- name: Linear on an HAProxy backend
  rollout.codedeploy.traffic_shift:
    haproxy_backend: web
    runtime_api: {host: lb1, socket: /run/haproxy/admin.sock}
    blue_servers: "{{ groups['web_blue'] }}"
    green_servers: "{{ groups['web_green'] }}"
    deployment_config: Rollout.Linear10PercentEvery1Minute

- name: Explicit steps
  rollout.codedeploy.traffic_shift:
    listener_arn: "{{ web_listener_arn }}"
    blue_target_group: web-blue
    green_target_group: web-green
    steps:
      - {percent: 5, wait_seconds: 120}
      - {percent: 50, wait_seconds: 300}
      - {percent: 100}

- name: Everything back to blue
  rollout.codedeploy.traffic_shift:
    direction: back
    listener_arn: "{{ web_listener_arn }}"
    blue_target_group: web-blue
    green_target_group: web-green
"""

RETURN = r"""
status:
  description: V(Succeeded), V(RolledBack) (an alarm sent traffic back to blue), V(Failed) or, in check mode, V(Preview).
  returned: always
  type: str
  sample: Succeeded
green_percent:
  description: The green fleet's share of the traffic at the end (None in check mode).
  returned: always
  type: int
  sample: 100
steps:
  description:
    - What happened, in order. Each entry has C(event) (V(shift), V(alarm) or V(rollback)), C(green_percent), C(at) (ISO 8601 UTC),
      C(elapsed) (seconds since the start), and for shifts and rollbacks C(weights) (per load balancer, the weight of each target
      group or server), C(share) and C(changed); shifts also have C(step) and C(wait_seconds); alarms a C(message).
  returned: always
  type: list
  elements: dict
  sample: [{"event": "shift", "step": 1, "green_percent": 10, "at": "2026-11-30T15:04:05.123Z", "elapsed": 0.0, "wait_seconds": 300,
            "weights": {"listener arn:...": {"web-blue": 90, "web-green": 10}}, "share": {"listener arn:...": 10.0}, "changed": true}]
planned_steps:
  description: In check mode, the steps that would run (C(green_percent), C(wait_seconds) after scaling).
  returned: in check mode
  type: list
  elements: dict
current_weights:
  description:
    - The weights read from the load balancer (per load balancer, per target group or server) - before anything in check mode,
      after the move back with O(direction=back).
  returned: in check mode and with O(direction=back)
  type: dict
error_code:
  description:
    - V(ALARM_ACTIVE) when an alarm sent traffic back; V(ELASTIC_LOAD_BALANCING_INVALID) when the load balancer refused;
      V(INVALID_INPUT) for bad inputs.
  returned: on failure
  type: str
msg:
  description: What happened, in one or two sentences.
  returned: always
  type: str
"""
