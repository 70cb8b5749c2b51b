# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load-balancer traffic control for in-place deployments: CodeDeploy's BlockTraffic and AllowTraffic.

Runs on the controller (action plugins, one worker process per host); the boto3 clients are made
by the caller (``elbv2`` for ALB/NLB target groups, ``elb`` for classic load balancers).  The
decisions about target states are pure functions (``target_out``, ``target_verdict``,
``classic_out``, ``classic_verdict``) so that states moto never shows (initial, draining,
unhealthy) are tested at the unit level.

BlockTraffic (``LoadBalancers.block``)
    The instance is deregistered from every target group, with every port it is registered on
    (a target group may hold the instance on several ports), and from every classic load
    balancer that lists it; then we wait until it is out everywhere, all load balancers at once
    (the deregistration delays run in parallel).  Out means: target group state ``unused`` or
    not listed (``draining``/``unhealthy.draining`` = wait, the connections are still draining);
    classic: not listed by DescribeInstanceHealth or ``OutOfService``.  An instance that is not
    registered is already out: nothing is called, ``changed`` is false.

AllowTraffic (``LoadBalancers.allow``)
    The instance is registered in every target group (on the group's port, or the port given for
    it) and classic load balancer where it is not registered yet, then we wait until it is
    healthy everywhere.  ``initial`` = wait; ``unhealthy`` = keep waiting (the application may
    still be warming up) until the timeout, which then fails with the target group's name, state,
    reason code and description and what the health check is.  Decisions:

    * ``unavailable`` with reason ``Target.HealthCheckDisabled`` counts as healthy: the target
      group has no health checks, so the load balancer sends traffic to every registered target.
    * ``unused`` with reason ``Target.NotInUse`` counts as healthy: the instance is registered but
      no load balancer (or no enabled Availability Zone) routes to the target group, so there is
      nothing to wait for.  The result carries a warning.
    * ``unused`` with ``Target.InvalidState`` (instance stopped or terminated) or
      ``Target.IpUnusable`` fails at once with ELB_INVALID_INSTANCE: waiting cannot help.
    * ``draining`` right after registering = wait (the registration cancels the drain).

Errors are ``TrafficError`` with ``.code`` in CodeDeploy's words: ELASTIC_LOAD_BALANCING_INVALID
(a target group or load balancer is missing, of the wrong kind, or an ELB call failed),
ELB_INVALID_INSTANCE (the load balancer refuses the instance) and TIMEOUT (a wait ran out).
Throttling and connection errors while polling are retried at the next poll until the timeout;
around register/deregister calls they are retried a few times with backoff.

Target groups are given by name or ARN, or as ``{name|arn, port}``; they are resolved once (one
paginated DescribeTargetGroups per kind) and cached, together with their health-check settings
for the error messages.  ``resolve()`` may be called early (before any host is touched) to fail
fast on a misconfigured group.
"""

from __future__ import absolute_import, division, print_function

import time

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import error_text
from ansible_collections.rollout.codedeploy.plugins.module_utils.haproxy import HaproxyError

__metaclass__ = type  # pylint: disable=invalid-name

ELASTIC_LOAD_BALANCING_INVALID = "ELASTIC_LOAD_BALANCING_INVALID"
ELB_INVALID_INSTANCE = "ELB_INVALID_INSTANCE"
TIMEOUT = "TIMEOUT"

HEALTHY = "healthy"
WAITING = "waiting"
FAILED = "failed"

# Target group target states (elbv2 TargetHealth.State).
TG_INITIAL = "initial"
TG_HEALTHY = "healthy"
TG_UNHEALTHY = "unhealthy"
TG_UNHEALTHY_DRAINING = "unhealthy.draining"
TG_UNUSED = "unused"
TG_DRAINING = "draining"
TG_UNAVAILABLE = "unavailable"
NOT_REGISTERED = "Target.NotRegistered"
NOT_IN_USE = "Target.NotInUse"
HEALTH_CHECK_DISABLED = "Target.HealthCheckDisabled"
_REFUSED_REASONS = ("Target.InvalidState", "Target.IpUnusable")

# Classic load balancer instance states (elb InstanceState.State).
IN_SERVICE = "InService"
OUT_OF_SERVICE = "OutOfService"
UNKNOWN = "Unknown"

BLOCK_TRAFFIC = "BlockTraffic"
ALLOW_TRAFFIC = "AllowTraffic"

_THROTTLING = frozenset((
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
    "ServiceUnavailable", "InternalFailure", "InternalError",
))
_TG_NOT_FOUND = frozenset(("TargetGroupNotFound", "TargetGroupNotFoundException"))
_LB_NOT_FOUND = frozenset(("LoadBalancerNotFound", "AccessPointNotFound", "AccessPointNotFoundException"))
_INVALID_TARGET = frozenset(("InvalidTarget", "InvalidInstance", "InvalidEndPoint", "InvalidTargetException"))
_BAD_INPUT = frozenset(("ValidationError", "InvalidParameterValue", "InvalidConfigurationRequest"))
_CALL_RETRIES = 4
_KINDS = ("target_groups", "classic_elbs", "haproxy_backends")


class TrafficError(Exception):
    """A traffic-control failure with CodeDeploy's error code.

    ``message`` says what failed, where (instance, target group or load balancer), why and what
    to do; ``code`` is ELASTIC_LOAD_BALANCING_INVALID, ELB_INVALID_INSTANCE or TIMEOUT.
    ``load_balancer`` (the target group or classic load balancer name, when one is concerned),
    ``instance_id``, ``state`` and ``reason`` carry the details for reports.
    """

    def __init__(self, message, code=ELASTIC_LOAD_BALANCING_INVALID, load_balancer=None, instance_id=None,
                 state=None, reason=None):
        super(TrafficError, self).__init__(message)
        self.message = message
        self.code = code
        self.load_balancer = load_balancer
        self.instance_id = instance_id
        self.state = state
        self.reason = reason

    def __str__(self):
        return self.message


# ----------------------------------------------------------------------------------------------
# Pure decisions
# ----------------------------------------------------------------------------------------------
def _health(description):
    health = description.get("TargetHealth") or {}
    return health.get("State"), health.get("Reason"), health.get("Description")


def find_target(descriptions, instance_id, port=None):
    """The TargetHealthDescription of ``instance_id`` (on ``port`` when given), or None.

    With several entries for the instance (several ports) a registered one wins over ``unused``.
    """
    found = None
    for description in descriptions or ():
        target = description.get("Target") or {}
        if target.get("Id") != instance_id:
            continue
        if port is not None and target.get("Port") is not None and int(target["Port"]) != int(port):
            continue
        if found is None or (_health(found)[0] == TG_UNUSED and _health(description)[0] != TG_UNUSED):
            found = description
    return found


def target_out(descriptions, instance_id, port=None):
    """True when a target group sends no traffic to the instance any more (BlockTraffic is done).

    ``descriptions`` is DescribeTargetHealth's TargetHealthDescriptions.  Out: not listed, or
    every entry of the instance is ``unused``.  ``draining`` (and ``unhealthy.draining``) is not
    out yet: existing connections are still being served.
    """
    for description in descriptions or ():
        target = description.get("Target") or {}
        if target.get("Id") != instance_id:
            continue
        if port is not None and target.get("Port") is not None and int(target["Port"]) != int(port):
            continue
        if _health(description)[0] != TG_UNUSED:
            return False
    return True


def target_verdict(descriptions, instance_id, port=None):
    """Whether AllowTraffic is done for one target group: ``(verdict, state, reason)``.

    ``verdict`` is "healthy" (done), "waiting" (poll again) or "failed" (waiting cannot help);
    ``state`` and ``reason`` are the target group's words (``unused``/``Target.NotRegistered``
    when the instance is not listed).  See the module docstring for the decisions.
    """
    description = find_target(descriptions, instance_id, port)
    if description is None:
        return WAITING, TG_UNUSED, NOT_REGISTERED
    state, reason, _text = _health(description)
    if state == TG_HEALTHY:
        return HEALTHY, state, reason
    if state == TG_UNAVAILABLE and reason == HEALTH_CHECK_DISABLED:
        return HEALTHY, state, reason
    if state == TG_UNUSED:
        if reason == NOT_IN_USE:
            return HEALTHY, state, reason
        if reason in _REFUSED_REASONS:
            return FAILED, state, reason
    return WAITING, state, reason


def _classic_state(states, instance_id):
    for item in states or ():
        if item.get("InstanceId") == instance_id:
            return item
    return None


def classic_out(states, instance_id):
    """True when a classic load balancer sends no traffic to the instance: not listed or OutOfService."""
    item = _classic_state(states, instance_id)
    return item is None or item.get("State") == OUT_OF_SERVICE


def classic_verdict(states, instance_id):
    """AllowTraffic on a classic load balancer: ``(verdict, state, reason)``.

    InService = healthy; Unknown (registration in progress) and OutOfService (health checks not
    passed yet) = waiting, except an OutOfService instance that the load balancer reports as
    stopped or terminated, which fails at once.  Not listed = waiting (``NotRegistered``).
    """
    item = _classic_state(states, instance_id)
    if item is None:
        return WAITING, OUT_OF_SERVICE, "NotRegistered"
    state = item.get("State")
    reason = item.get("ReasonCode")
    if state == IN_SERVICE:
        return HEALTHY, state, reason
    text = (item.get("Description") or "").lower()
    if state == OUT_OF_SERVICE and ("stopped" in text or "terminated" in text):
        return FAILED, state, reason
    return WAITING, state, reason


def out_of_service(member):
    """True when no load balancer routes new traffic to the instance (an entry of ``members()``)."""
    groups = (member or {}).get("target_groups") or {}
    classic = (member or {}).get("classic_elbs") or {}
    return (all(state in (TG_UNUSED, TG_DRAINING, TG_UNHEALTHY_DRAINING) for state in groups.values())
            and all(state != IN_SERVICE for state in classic.values()))


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _error_code(exc):
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Code") or ""


def _transient(exc):
    return isinstance(exc, BotoCoreError) or _error_code(exc) in _THROTTLING


def _pages(call, result_key, **kwargs):
    """Every item of a Marker/NextMarker-paginated ELB describe call."""
    items = []
    while True:
        page = call(**kwargs)
        items.extend(page.get(result_key) or [])
        marker = page.get("NextMarker")
        if not marker:
            return items
        kwargs["Marker"] = marker


def _target_group_spec(entry, index):
    if isinstance(entry, dict):
        name, arn, port = entry.get("name"), entry.get("arn"), entry.get("port")
    else:
        name, arn, port = None, None, None
        text = str(entry or "").strip()
        if text.startswith("arn:"):
            arn = text
        else:
            name = text
    if not name and not arn:
        raise TrafficError("load_balancer.target_groups entry %d (%r) names no target group: give a name, an ARN, "
                           "or a mapping with name or arn (and optionally port)." % (index + 1, entry))
    if arn and not str(arn).startswith("arn:"):
        raise TrafficError("load_balancer.target_groups entry %d: %r is not a target group ARN." % (index + 1, arn))
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            port = -1
        if not 1 <= port <= 65535:
            raise TrafficError("load_balancer.target_groups entry %d (%s): port %r is not a port number (1-65535)."
                               % (index + 1, name or arn, entry.get("port")))
    return {"name": name, "arn": arn, "port": port}


def _health_check_text(group):
    check = group.get("health_check") or {}
    if check.get("enabled") is False:
        return "health checks are disabled"
    parts = [check.get("protocol") or "?", "port %s" % (check.get("port") or "traffic-port")]
    if check.get("path"):
        parts.append("path %s" % check["path"])
    if check.get("interval") and check.get("healthy_threshold"):
        parts.append("%s checks %s s apart" % (check["healthy_threshold"], check["interval"]))
    return "health check " + " ".join(parts)


# ----------------------------------------------------------------------------------------------
# The load balancers of one deployment group
# ----------------------------------------------------------------------------------------------
class LoadBalancers(object):
    """Block and allow traffic to one instance on all load balancers of a deployment group.

    ``block``/``allow`` return::

        {"instance_id": "i-...", "action": "BlockTraffic" | "AllowTraffic", "changed": bool,
         "target_groups": {name: {"arn", "port", "state", "reason", "description", "changed"}},
         "classic_elbs": {name: {"state", "reason", "description", "changed"}},
         "duration": seconds, "waited": polls, "warnings": [...]}

    ``sleep`` and ``clock`` are injectable (tests run without real waiting); ``poll`` is the
    pause between two polls in seconds.
    """

    def __init__(self, elbv2=None, elb=None, target_groups=(), classic_elbs=(), sleep=time.sleep,
                 clock=time.monotonic, poll=2.0, haproxy=(), haproxy_poll=0.5):
        self.elbv2 = elbv2
        self.haproxy = list(haproxy or ())
        self.haproxy_poll = float(haproxy_poll)
        self.elb = elb
        self._specs = [_target_group_spec(entry, index) for index, entry in enumerate(target_groups or ())]
        names = []
        for name in classic_elbs or ():
            name = str(name or "").strip()
            if not name:
                raise TrafficError("load_balancer.classic_elbs holds an empty name.")
            if name not in names:
                names.append(name)
        self._classic_names = names
        self._sleep = sleep
        self._clock = clock
        self.poll = float(poll)
        self._groups = None

    # ------------------------------------------------------------------ resolution
    def resolve(self, hosts=()):
        """Resolve and check every target group, classic load balancer and HAProxy backend once; return the target groups.

        ``hosts`` (inventory hostnames) are checked to have a server in every HAProxy backend.

        Each resolved group: ``{"key", "name", "arn", "port", "vpc", "target_type", "load_balancers",
        "health_check"}``.  Raises ELASTIC_LOAD_BALANCING_INVALID naming what is missing or wrong.
        """
        if self._groups is not None:
            return self._groups
        groups = []
        if self._specs:
            if self.elbv2 is None:
                raise TrafficError("The deployment group has target groups but no elbv2 client was given to traffic control.")
            by_name, by_arn = self._describe_target_groups()
            for spec in self._specs:
                described = by_arn.get(spec["arn"]) if spec["arn"] else by_name.get(spec["name"])
                groups.append(self._check_target_group(spec, described))
            seen = {}
            for group in groups:
                seen[group["name"]] = seen.get(group["name"], 0) + 1
            for group in groups:
                group["key"] = group["name"] if seen[group["name"]] == 1 else "%s:%d" % (group["name"], group["port"])
        if self._classic_names:
            if self.elb is None:
                raise TrafficError("The deployment group has classic load balancers but no elb client was given to traffic control.")
            self._check_classic()
        for backend in self.haproxy:
            try:
                backend.resolve(hosts)
            except HaproxyError as exc:
                raise TrafficError(exc.message, code=exc.code, load_balancer=backend.label)
        self._groups = groups
        return groups

    def _describe_target_groups(self):
        names = sorted(set(s["name"] for s in self._specs if s["name"]))
        arns = sorted(set(s["arn"] for s in self._specs if s["arn"]))
        by_name, by_arn = {}, {}
        for key, values in (("Names", names), ("TargetGroupArns", arns)):
            if not values:
                continue
            try:
                found = _pages(self.elbv2.describe_target_groups, "TargetGroups", **{key: values})
            except ClientError as exc:
                if _error_code(exc) not in _TG_NOT_FOUND | _BAD_INPUT:
                    raise self._api_error(exc, "describe the target groups %s" % ", ".join(values))
                found = []
                for value in values:  # find out which one is missing
                    try:
                        found.extend(_pages(self.elbv2.describe_target_groups, "TargetGroups", **{key: [value]}))
                    except ClientError as inner:
                        if _error_code(inner) in _TG_NOT_FOUND | _BAD_INPUT:
                            continue
                        raise self._api_error(inner, "describe target group %s" % value)
                    except BotoCoreError as inner:
                        raise self._api_error(inner, "describe target group %s" % value)
            except BotoCoreError as exc:
                raise self._api_error(exc, "describe the target groups %s" % ", ".join(values))
            for group in found:
                by_name[group.get("TargetGroupName")] = group
                by_arn[group.get("TargetGroupArn")] = group
        return by_name, by_arn

    @staticmethod
    def _check_target_group(spec, described):
        label = spec["name"] or spec["arn"]
        if described is None:
            raise TrafficError(
                "Target group %s does not exist (Elastic Load Balancing does not know it in this account and region). "
                "Create it, or fix load_balancer.target_groups of the deployment group." % label, load_balancer=label)
        name = described.get("TargetGroupName") or label
        target_type = described.get("TargetType") or "instance"
        if target_type != "instance":
            raise TrafficError(
                "Target group %s has target type %s; traffic control registers EC2 instances by id, so it needs a target "
                "group with target type instance." % (name, target_type), load_balancer=name)
        port = spec["port"] or described.get("Port")
        if not port:
            raise TrafficError("Target group %s has no port; give one with {name: %s, port: N}." % (name, name), load_balancer=name)
        return {
            "key": name, "name": name, "arn": described.get("TargetGroupArn"), "port": int(port),
            "vpc": described.get("VpcId"), "target_type": target_type,
            "load_balancers": list(described.get("LoadBalancerArns") or []),
            "health_check": {
                "enabled": described.get("HealthCheckEnabled", True),
                "protocol": described.get("HealthCheckProtocol"), "port": described.get("HealthCheckPort"),
                "path": described.get("HealthCheckPath"), "interval": described.get("HealthCheckIntervalSeconds"),
                "healthy_threshold": described.get("HealthyThresholdCount"),
            },
        }

    def _check_classic(self):
        try:
            found = _pages(self.elb.describe_load_balancers, "LoadBalancerDescriptions", LoadBalancerNames=self._classic_names)
        except ClientError as exc:
            if _error_code(exc) not in _LB_NOT_FOUND | _BAD_INPUT:
                raise self._api_error(exc, "describe the classic load balancers %s" % ", ".join(self._classic_names))
            found = []
            for name in self._classic_names:
                try:
                    found.extend(_pages(self.elb.describe_load_balancers, "LoadBalancerDescriptions", LoadBalancerNames=[name]))
                except ClientError as inner:
                    if _error_code(inner) not in _LB_NOT_FOUND | _BAD_INPUT:
                        raise self._api_error(inner, "describe classic load balancer %s" % name)
        except BotoCoreError as exc:
            raise self._api_error(exc, "describe the classic load balancers %s" % ", ".join(self._classic_names))
        known = set(item.get("LoadBalancerName") for item in found)
        for name in self._classic_names:
            if name not in known:
                raise TrafficError(
                    "Classic load balancer %s does not exist in this account and region. Create it, or fix "
                    "load_balancer.classic_elbs of the deployment group." % name, load_balancer=name)

    # ------------------------------------------------------------------ calls
    @staticmethod
    def _api_error(exc, what, load_balancer=None, instance_id=None):
        if isinstance(exc, BotoCoreError):
            why = "Elastic Load Balancing could not be reached (%s)" % exc
            hint = "Check the endpoint, region and network of the controller, then retry."
        else:
            why = "Elastic Load Balancing answered %s" % error_text(exc)
            hint = ("Check the controller's AWS credentials and their elasticloadbalancing permissions, "
                    "and the load balancer settings of the deployment group.")
        return TrafficError("Could not %s: %s. %s" % (what, why, hint), load_balancer=load_balancer, instance_id=instance_id)

    def _call(self, function, what, load_balancer=None, instance_id=None, **kwargs):
        """One ELB call; throttling and connection errors are retried with backoff, others become TrafficError."""
        delay = max(self.poll, 0.5)
        for attempt in range(_CALL_RETRIES + 1):
            try:
                return function(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                code = _error_code(exc)
                if _transient(exc) and attempt < _CALL_RETRIES:
                    self._sleep(min(delay * (2 ** attempt), 20.0))
                    continue
                if code in _INVALID_TARGET:
                    raise TrafficError(
                        "%s refused instance %s (%s). The instance must exist, be running, and be in the load "
                        "balancer's VPC; a stopped or terminated instance cannot take traffic."
                        % (load_balancer, instance_id, error_text(exc)),
                        code=ELB_INVALID_INSTANCE, load_balancer=load_balancer, instance_id=instance_id)
                raise self._api_error(exc, what, load_balancer, instance_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _poll(self, function, **kwargs):
        """A describe call while waiting: transient errors return None (poll again), others raise."""
        try:
            return function(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if _transient(exc):
                return None
            raise

    def _tg_health(self, group, targets=None, instance_id=None, waiting=False):
        kwargs = {"TargetGroupArn": group["arn"]}
        if targets:
            kwargs["Targets"] = targets
        what = "read the target health of target group %s" % group["name"]
        if waiting:
            try:
                answer = self._poll(self.elbv2.describe_target_health, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                if _error_code(exc) in _INVALID_TARGET:
                    raise TrafficError(
                        "Target group %s does not accept instance %s (%s). The instance must exist and be running in "
                        "the target group's VPC (%s)." % (group["name"], instance_id, error_text(exc), group.get("vpc")),
                        code=ELB_INVALID_INSTANCE, load_balancer=group["name"], instance_id=instance_id)
                raise self._api_error(exc, what, group["name"], instance_id)
            return None if answer is None else answer.get("TargetHealthDescriptions") or []
        return self._call(self.elbv2.describe_target_health, what, group["name"], instance_id,
                          **kwargs).get("TargetHealthDescriptions") or []

    def _classic_health(self, name, instance_id=None, waiting=False):
        what = "read the instance health of classic load balancer %s" % name
        if waiting:
            try:
                answer = self._poll(self.elb.describe_instance_health, LoadBalancerName=name)
            except (ClientError, BotoCoreError) as exc:
                raise self._api_error(exc, what, name, instance_id)
            return None if answer is None else answer.get("InstanceStates") or []
        return self._call(self.elb.describe_instance_health, what, name, instance_id,
                          LoadBalancerName=name).get("InstanceStates") or []

    # ------------------------------------------------------------------ block
    def block(self, instance_id, timeout=300, host=None):
        """BlockTraffic: deregister ``instance_id`` everywhere and wait until it is out (see the module docstring).

        ``host`` is the inventory hostname, which names the host's server in HAProxy backends (unless mapped)."""
        groups = self.resolve()
        start = self._clock()
        result = self._new_result(instance_id, BLOCK_TRAFFIC)
        pending = []
        for group in groups:
            registered = [d for d in self._tg_health(group, instance_id=instance_id)
                          if (d.get("Target") or {}).get("Id") == instance_id and _health(d)[0] != TG_UNUSED]
            entry = {"arn": group["arn"], "port": group["port"], "state": TG_UNUSED, "reason": NOT_REGISTERED,
                     "description": None, "changed": False}
            result["target_groups"][group["key"]] = entry
            if not registered:
                continue
            targets = [{"Id": instance_id, "Port": int((d.get("Target") or {}).get("Port") or group["port"])} for d in registered]
            draining = all(_health(d)[0] in (TG_DRAINING, TG_UNHEALTHY_DRAINING) for d in registered)
            if not draining:
                self._call(self.elbv2.deregister_targets, "deregister %s from target group %s" % (instance_id, group["name"]),
                           group["name"], instance_id, TargetGroupArn=group["arn"], Targets=targets)
                entry["changed"] = True
            entry["state"], entry["reason"], entry["description"] = _health(registered[0])
            pending.append(("tg", group, targets))
        for name in self._classic_names:
            item = _classic_state(self._classic_health(name, instance_id), instance_id)
            entry = {"state": OUT_OF_SERVICE, "reason": "NotRegistered", "description": None, "changed": False}
            result["classic_elbs"][name] = entry
            if item is None:
                continue
            self._call(self.elb.deregister_instances_from_load_balancer, "deregister %s from classic load balancer %s" % (instance_id, name),
                       name, instance_id, LoadBalancerName=name, Instances=[{"InstanceId": instance_id}])
            entry.update(changed=True, state=item.get("State"), reason=item.get("ReasonCode"), description=item.get("Description"))
            pending.append(("classic", name, None))
        pending.extend(self._haproxy_start(result, "start_block", host or instance_id))
        result["changed"] = any(e["changed"] for kind in _KINDS for e in result[kind].values())
        self._wait(result, pending, start, timeout, self._block_step)
        return result

    def _block_step(self, result, item, instance_id):
        kind, lb, targets = item
        if kind == "tg":
            descriptions = self._tg_health(lb, targets, instance_id, waiting=True)
            if descriptions is None:
                return False
            entry = result["target_groups"][lb["key"]]
            description = None
            for target in targets:
                description = find_target(descriptions, instance_id, target["Port"])
                if description is not None and _health(description)[0] != TG_UNUSED:
                    break
            if description is None:
                entry.update(state=TG_UNUSED, reason=NOT_REGISTERED, description=None)
            else:
                entry["state"], entry["reason"], entry["description"] = _health(description)
            return all(target_out(descriptions, instance_id, t["Port"]) for t in targets)
        states = self._classic_health(lb, instance_id, waiting=True)
        if states is None:
            return False
        entry = result["classic_elbs"][lb]
        item = _classic_state(states, instance_id)
        if item is None:
            entry.update(state=OUT_OF_SERVICE, reason="NotRegistered", description=None)
        else:
            entry.update(state=item.get("State"), reason=item.get("ReasonCode"), description=item.get("Description"))
        return classic_out(states, instance_id)

    # ------------------------------------------------------------------ allow
    def allow(self, instance_id, timeout=300, host=None):
        """AllowTraffic: register ``instance_id`` everywhere and wait until it is healthy (see the module docstring)."""
        groups = self.resolve()
        start = self._clock()
        result = self._new_result(instance_id, ALLOW_TRAFFIC)
        pending = []
        for group in groups:
            target = [{"Id": instance_id, "Port": group["port"]}]
            description = find_target(self._tg_health(group, target, instance_id), instance_id, group["port"])
            state, reason, text = _health(description) if description is not None else (TG_UNUSED, NOT_REGISTERED, None)
            entry = {"arn": group["arn"], "port": group["port"], "state": state, "reason": reason, "description": text,
                     "changed": False}
            result["target_groups"][group["key"]] = entry
            if state in (TG_DRAINING, TG_UNHEALTHY_DRAINING) or (state == TG_UNUSED and reason == NOT_REGISTERED) or state is None:
                self._call(self.elbv2.register_targets, "register %s in target group %s" % (instance_id, group["name"]),
                           group["name"], instance_id, TargetGroupArn=group["arn"], Targets=target)
                entry["changed"] = True
            pending.append(("tg", group, target))
        for name in self._classic_names:
            item = _classic_state(self._classic_health(name, instance_id), instance_id)
            entry = {"state": OUT_OF_SERVICE, "reason": "NotRegistered", "description": None, "changed": False}
            result["classic_elbs"][name] = entry
            if item is None:
                self._call(self.elb.register_instances_with_load_balancer, "register %s with classic load balancer %s" % (instance_id, name),
                           name, instance_id, LoadBalancerName=name, Instances=[{"InstanceId": instance_id}])
                entry["changed"] = True
            else:
                entry.update(state=item.get("State"), reason=item.get("ReasonCode"), description=item.get("Description"))
            pending.append(("classic", name, None))
        pending.extend(self._haproxy_start(result, "start_allow", host or instance_id))
        result["changed"] = any(e["changed"] for kind in _KINDS for e in result[kind].values())
        self._wait(result, pending, start, timeout, self._allow_step)
        for key, entry in result["target_groups"].items():
            if entry["reason"] == NOT_IN_USE:
                result["warnings"].append(
                    "Target group %s routes no traffic (%s: %s): %s is registered but no load balancer sends it requests."
                    % (key, entry["state"], entry["reason"], instance_id))
        return result

    def _allow_step(self, result, item, instance_id):
        kind, lb, targets = item
        if kind == "tg":
            descriptions = self._tg_health(lb, targets, instance_id, waiting=True)
            if descriptions is None:
                return False
            entry = result["target_groups"][lb["key"]]
            verdict, state, reason = target_verdict(descriptions, instance_id, lb["port"])
            description = find_target(descriptions, instance_id, lb["port"])
            entry.update(state=state, reason=reason, description=_health(description)[2] if description else None)
            if verdict == FAILED:
                raise TrafficError(
                    "AllowTraffic failed on %s: target group %s reports %s (%s: %s); waiting cannot help. Start the "
                    "instance or remove it from the deployment group." % (instance_id, lb["name"], state, reason, entry["description"]),
                    code=ELB_INVALID_INSTANCE, load_balancer=lb["name"], instance_id=instance_id, state=state, reason=reason)
            return verdict == HEALTHY
        states = self._classic_health(lb, instance_id, waiting=True)
        if states is None:
            return False
        entry = result["classic_elbs"][lb]
        verdict, state, reason = classic_verdict(states, instance_id)
        item = _classic_state(states, instance_id)
        entry.update(state=state, reason=reason, description=item.get("Description") if item else None)
        if verdict == FAILED:
            raise TrafficError(
                "AllowTraffic failed on %s: classic load balancer %s reports %s (%s: %s); waiting cannot help. Start the "
                "instance or remove it from the deployment group." % (instance_id, lb, state, reason, entry["description"]),
                code=ELB_INVALID_INSTANCE, load_balancer=lb, instance_id=instance_id, state=state, reason=reason)
        return verdict == HEALTHY

    # ------------------------------------------------------------------ waiting
    @staticmethod
    def _new_result(instance_id, action):
        return {"instance_id": instance_id, "action": action, "changed": False, "target_groups": {}, "classic_elbs": {},
                "haproxy_backends": {}, "duration": 0.0, "waited": 0, "warnings": []}

    # ------------------------------------------------------------------ HAProxy backends
    def _haproxy_start(self, result, method, host):
        """Send each HAProxy backend its first commands for ``host``; the pending items to poll."""
        pending = []
        for backend in self.haproxy:
            for attempt in range(_CALL_RETRIES):
                try:
                    state = getattr(backend, method)(host)
                    break
                except HaproxyError as exc:
                    if not exc.transient or attempt + 1 == _CALL_RETRIES:
                        raise TrafficError(exc.message, code=exc.code, load_balancer=backend.label, instance_id=result["instance_id"])
                    self._sleep(self.haproxy_poll * (attempt + 1))
            result["haproxy_backends"][backend.label] = state["entry"]
            pending.append(("haproxy", backend, state))
        return pending

    def _haproxy_step(self, result, item):
        _kind, backend, state = item
        step = backend.step_block if result["action"] == BLOCK_TRAFFIC else backend.step_allow
        try:
            done = step(state)
        except HaproxyError as exc:
            if exc.transient and self._clock() < state["deadline"]:
                state["entry"]["check"] = exc.message  # HAProxy reloading or the link hiccuped: poll again
                return False
            raise TrafficError(exc.message, code=exc.code, load_balancer=backend.label, instance_id=result["instance_id"],
                               state=exc.status, reason=exc.check)
        if done and state.get("warning") and state["warning"] not in result["warnings"]:
            result["warnings"].append(state["warning"])
        return done

    def _wait(self, result, pending, start, timeout, step):
        instance_id = result["instance_id"]
        # HAProxy backends end their own waits (drain_timeout, up_timeout); the step's deadline leaves them room.
        own = [float(item[2]["deadline"] - start) for item in pending if item[0] == "haproxy"]
        timeout = max([float(timeout)] + [wait + 2 * self.haproxy_poll for wait in own])
        deadline = start + timeout
        while pending:
            pending = [item for item in pending
                       if not (self._haproxy_step(result, item) if item[0] == "haproxy" else step(result, item, instance_id))]
            result["waited"] += 1
            now = self._clock()
            result["duration"] = round(max(now - start, 0.0), 3)
            if not pending:
                break
            if now >= deadline:
                raise self._timeout(result, pending, timeout)
            pause = self.haproxy_poll if any(item[0] == "haproxy" for item in pending) else self.poll
            self._sleep(max(min(pause, deadline - now), 0.0))
        result["duration"] = round(max(self._clock() - start, 0.0), 3)

    def _timeout(self, result, pending, timeout):
        instance_id = result["instance_id"]
        action = result["action"]
        details = []
        first = None
        for kind, lb, _targets in pending:
            if kind == "haproxy":
                entry = result["haproxy_backends"][lb.label]
                details.append("%s server %s is %s, last health check %s" % (lb.label, entry["server"], entry["status"], entry["check"]))
                if first is None:
                    first = (kind, lb, {"state": entry["status"], "reason": entry["check"]})
                continue
            if kind == "tg":
                entry = result["target_groups"][lb["key"]]
                label = "target group %s" % lb["name"]
            else:
                entry = result["classic_elbs"][lb]
                label = "classic load balancer %s" % lb
            text = "%s reports %s" % (label, entry["state"])
            if entry.get("reason") or entry.get("description"):
                text += " (%s: %s)" % (entry.get("reason") or "-", entry.get("description") or "-")
            details.append(text)
            if first is None:
                first = (kind, lb, entry)
        kind, lb, entry = first
        if kind == "haproxy":
            hint = "HAProxy did not finish in time: check the backend's servers and their health checks, or raise drain_timeout/up_timeout."
        elif action == BLOCK_TRAFFIC:
            hint = self._drain_hint(lb) if kind == "tg" else (
                "The load balancer's connection draining takes longer than the traffic timeout; lower it or raise the timeout.")
        elif kind == "tg":
            hint = ("The instance does not pass the %s: check that the application listens and answers it, "
                    "or raise the traffic timeout." % _health_check_text(lb))
        else:
            hint = ("The instance does not pass the classic load balancer's health check: check the application, "
                    "or raise the traffic timeout.")
        message = "%s timed out after %s s on %s: %s. %s" % (action, _seconds(timeout), instance_id, "; ".join(details), hint)
        name = lb["name"] if kind == "tg" else lb.label if kind == "haproxy" else lb
        return TrafficError(message, code=TIMEOUT, load_balancer=name, instance_id=instance_id,
                            state=entry.get("state"), reason=entry.get("reason"))

    def _drain_hint(self, group):
        delay = None
        try:
            attributes = self.elbv2.describe_target_group_attributes(TargetGroupArn=group["arn"]).get("Attributes") or []
            for attribute in attributes:
                if attribute.get("Key") == "deregistration_delay.timeout_seconds":
                    delay = attribute.get("Value")
        except (ClientError, BotoCoreError, AttributeError):
            delay = None
        known = " (deregistration_delay.timeout_seconds = %s)" % delay if delay is not None else ""
        return ("The target group's deregistration delay%s is longer than the traffic timeout, or connections stay open: "
                "lower the delay or raise the timeout." % known)

    # ------------------------------------------------------------------ members
    def members(self, instance_ids):
        """Where each instance stands now: ``{instance_id: {"target_groups": {name: state}, "classic_elbs": {name: state}}}``.

        One DescribeTargetHealth per target group and one DescribeInstanceHealth per classic load
        balancer, whatever the number of instances.  Not registered: ``unused`` for a target group,
        ``OutOfService`` for a classic load balancer.  ``out_of_service(entry)`` tells whether an
        instance gets no new traffic.
        """
        groups = self.resolve()
        ids = list(instance_ids or ())
        members = dict((instance_id, {"target_groups": {}, "classic_elbs": {}}) for instance_id in ids)
        for group in groups:
            descriptions = self._tg_health(group)
            for instance_id in ids:
                description = find_target(descriptions, instance_id, None)
                members[instance_id]["target_groups"][group["key"]] = _health(description)[0] if description else TG_UNUSED
        for name in self._classic_names:
            states = self._classic_health(name)
            for instance_id in ids:
                item = _classic_state(states, instance_id)
                members[instance_id]["classic_elbs"][name] = item.get("State") if item else OUT_OF_SERVICE
        return members


def _seconds(value):
    value = float(value)
    return "%d" % value if value == int(value) else "%.1f" % value
