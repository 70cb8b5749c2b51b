# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Weighted rerouting of a blue/green deployment: traffic moves from the blue to the green fleet in steps
(canary, linear, or one step for a target group pair) instead of with the blue hosts' BlockTraffic.

The deployment service (plugin_utils/service.py) calls in at five points:

- ``plan_field`` when it plans: whether and how this deployment shifts (``Plan.reroute``), or None when the
  traffic moves all at once, CodeDeploy's way (no pair, and a config without canary/linear steps);
- ``prepare`` when it starts: for a target group pair, which group of the pair serves now (blue) and which one the
  green hosts join; every load balancer is set to 0 % green, so green hosts join at weight 0;
- ``run`` after the batch in which the last green host finished AllowTraffic: the steps (module_utils/shift.py),
  with stop requests, the deployment's alarms and the lease looked after at every step; on an alarm or a stop all
  traffic goes straight back to blue and the deployment stops;
- ``blue_refusal`` when a blue host asks to leave its load balancers: not before the shift reached 100 %;
- ``to_blue`` before green hosts leave again in a traffic rollback, and ``finish`` when the deployment settles.

Every weight change is appended to the deployment's swap record (``traffic``) with its time; ``state`` says where the
swap is. Controller-only; docs/traffic-shifting.md describes the behaviour."""

from __future__ import annotations

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs
from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, selection, shift
from ansible_collections.rollout.codedeploy.plugins.module_utils.alarms import check_alarms
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import TERMINAL_STATUSES
from ansible_collections.rollout.codedeploy.plugins.module_utils.hooks import utc_timestamp

ELB_INVALID = shift.ELASTIC_LOAD_BALANCING_INVALID
_name = shift._tg_name  # pylint: disable=protected-access  # web-blue for a target group ARN
#: Swap states (the ledger's conventional words).
INSTALLING, SHIFTING, REROUTED, ROLLED_BACK, STOPPED = "installing", "shifting", "rerouted", "rolled_back", "stopped"
#: Alarms and stop requests are looked at this often during a step at most (seconds), and at least every MAX_POLL.
MIN_POLL, MAX_POLL = 0.5, 10.0


class RerouteError(Exception):
    def __init__(self, message, code=ELB_INVALID):
        super(RerouteError, self).__init__(message)
        self.message = message
        self.code = code


# ------------------------------------------------------------------------------ planning
def scaled_steps(configured, interval_seconds=None):
    """``[[green_percent, wait], ...]``: every wait but the last replaced by ``interval_seconds`` when given."""
    last = len(configured) - 1
    return [[percent, 0 if index == last else (wait if interval_seconds is None else int(interval_seconds))]
            for index, (percent, wait) in enumerate(configured)]


def alarm_interval(steps):
    """How often alarms and stop requests are polled while a step waits: a fifth of the shortest wait, within 0.5-10 s."""
    waits = [wait for _percent, wait in steps if wait > 0]
    return min(MAX_POLL, max(MIN_POLL, min(waits) / 5.0)) if waits else MAX_POLL


def plan_field(settings, options, request, strategy_name):
    """``Plan.reroute`` for a deployment: None when traffic moves all at once with the blue hosts' BlockTraffic; else
    ``{steps, configured_steps, interval_seconds, alarm_interval, pair, haproxy}``. RerouteError when the group's load
    balancers cannot carry the config's weighted steps."""
    if strategy_name != "blue_green":
        return None
    balancers = settings.get("load_balancer") or {}
    try:
        config = configs.resolve_config(options.get("deployment_config"), settings.get("deployment_configs") or {})
    except configs.DeploymentConfigError as exc:
        raise RerouteError(exc.message, getattr(exc, "code", None) or "INVALID_INPUT")
    problem = selection.traffic_problem(balancers, config)
    if problem:
        raise RerouteError("%s. Nothing was touched." % problem)
    pair = balancers.get("target_group_pair_info")
    weighted = len(configs.traffic_steps(config)) > 1
    if not pair and not weighted:
        return None
    configured = [list(step) for step in configs.traffic_steps(config)]
    steps = scaled_steps(configured, request.get("traffic_interval_seconds"))
    route = (pair or {}).get("prod_traffic_route") or {}
    return {"steps": steps, "configured_steps": configured, "interval_seconds": request.get("traffic_interval_seconds"),
            "alarm_interval": alarm_interval(steps), "haproxy": bool(balancers.get("haproxy_backends")),
            "pair": {"target_groups": list(pair["target_groups"]), "listener_arns": list(route.get("listener_arns") or []),
                     "rule_arns": list(route.get("rule_arns") or []), "blue": None, "green": None} if pair else None}


def target_groups_for(plan, role=None):
    """The target groups a host of ``role`` registers in: with a pair, green hosts join the green group and blue hosts leave
    the blue one (both for None, before the pair's sides are known); otherwise the plan's target groups."""
    pair = (plan.reroute or {}).get("pair")
    if not pair or role not in ("green", "blue") or not pair.get(role):
        return list(plan.target_groups)
    return [pair[role]]


# ------------------------------------------------------------------------------ the load balancers' targets
def _places(pair):
    """``[(listener_arn, [rule or "default", ...])]``: each listener's default actions and the rules under it."""
    places = [(listener, [shift.DEFAULT_RULE]) for listener in pair["listener_arns"]]
    for rule in pair["rule_arns"]:
        listener = selection.rule_listener(rule)
        found = next((place for place in places if place[0] == listener), None)
        if found is None:
            places.append((listener, [rule]))
        else:
            found[1].append(rule)
    return places


def serving_side(elbv2, pair):
    """(blue, green) target group ARNs of the pair: blue is the one the listeners and rules forward to now. RerouteError
    when they split the traffic between the two (an earlier shift did not finish) or disagree."""
    try:
        found = elbv2.describe_target_groups(Names=[g for g in pair["target_groups"] if not g.startswith("arn:")])["TargetGroups"] \
            if any(not g.startswith("arn:") for g in pair["target_groups"]) else []
    except (ClientError, BotoCoreError) as exc:
        raise RerouteError("Could not find the target groups %s of load_balancer.target_group_pair_info: %s. Create them, or fix "
                           "the names." % (", ".join(pair["target_groups"]), exc))
    by_name = dict((g["TargetGroupName"], g["TargetGroupArn"]) for g in found)
    arns = [group if group.startswith("arn:") else by_name.get(group) for group in pair["target_groups"]]
    serving = set()
    for listener, rules in _places(pair):
        for rule in rules:
            try:
                weights = shift.AlbTarget(elbv2, listener, arns[0], arns[1], rule_arns=[rule]).read_weights()
            except shift.ShiftError as exc:
                raise RerouteError(exc.message)
            live = [arn for arn in arns if weights.get(arn)]
            if len(live) != 1:
                where = "listener %s" % listener if rule == shift.DEFAULT_RULE else "rule %s" % rule
                split = ", ".join("%s weight %s" % (_name(arn), weights.get(arn)) for arn in arns)
                raise RerouteError("%s sends traffic to both target groups of the pair (%s): an earlier shift did not finish. Send all "
                                   "traffic to the group that should serve (rollout.codedeploy.traffic_shift with direction: back, or the "
                                   "console), then deploy again. Nothing was touched." % (where, split))
            serving.add(live[0])
    if len(serving) != 1:
        raise RerouteError("the listeners and rules of load_balancer.target_group_pair_info do not agree which target group serves "
                           "(%s). Point them all at the same group of the pair, then deploy again. Nothing was touched."
                           % ", ".join(sorted(_name(arn) for arn in serving)))
    blue = serving.pop()
    return blue, next(arn for arn in arns if arn != blue)


def targets(service, plan, green_hosts=None):
    """The shift targets: an AlbTarget per listener of the pair, an HaproxyTarget per HAProxy backend (blue servers are the
    blue hosts, green servers ``green_hosts``, by default every green host)."""
    found = []
    pair = plan.reroute.get("pair")
    if pair:
        elbv2 = service.aws.client("elbv2")
        for listener, rules in _places(pair):
            found.append(shift.AlbTarget(elbv2, listener, pair["blue"], pair["green"], rule_arns=rules))
    if plan.reroute.get("haproxy") and plan.haproxy_backends:
        green = plan.hosts_in_role("green") if green_hosts is None else list(green_hosts)
        for backend in service.balancers(plan).haproxy:
            found.append(shift.HaproxyTarget(backend, plan.hosts_in_role("blue"), green))
    return found


def _plain(weights):
    return dict((label, dict((_name(key), value) for key, value in (outcome.get("weights") or {}).items()))
                for label, outcome in (weights or {}).items())


def _entry(step, green_percent, weights, reason):
    return {"step": step, "green_percent": green_percent, "weights": _plain(weights), "time": utc_timestamp(), "reason": reason}


def _set_all(found, percent):
    weights = {}
    for target in found:
        weights[target.label] = target.set_weights(percent)
    return weights


# ------------------------------------------------------------------------------ start: the pair's sides, green at weight 0
def prepare(service, plan):
    """Before any host runs: which group of the pair serves (blue), and every load balancer at 0 % green, so green hosts
    join with no traffic. Records the swap's first entry (step 0). RerouteError when a load balancer refuses."""
    pair = plan.reroute.get("pair")
    fields = {"state": INSTALLING, "steps": [{"green_percent": p, "wait_seconds": w} for p, w in plan.reroute["steps"]]}
    if pair:
        blue, green = serving_side(service.aws.client("elbv2"), pair)
        plan.reroute = dict(plan.reroute, pair=dict(pair, blue=blue, green=green))
        fields.update(blue_target_group=_name(blue), green_target_group=_name(green))
    try:
        weights = _set_all(targets(service, plan), 0)
    except (shift.ShiftError, haproxy.HaproxyError) as exc:
        raise RerouteError("the load balancers could not be set to 0 %% green before the green hosts join: %s" % exc.message,
                           getattr(exc, "code", None) or ELB_INVALID)
    service.ledger.update_swap(plan.deployment_id, fields=fields,
                               append={"traffic": _entry(0, 0, weights, "before the green hosts join: all traffic on blue")})


# ------------------------------------------------------------------------------ after the last green batch: the steps
def _state(deployment):
    return ((deployment or {}).get("swap") or {}).get("state")


def due(plan, deployment):
    """True when the shift should run now: every green host finished (none Pending, InProgress or Ready) and it has not run."""
    if not plan.reroute or _state(deployment) not in (None, INSTALLING, "ready"):
        return False
    green = set(plan.instances[h] for h in plan.hosts_in_role("green"))
    return not any(i["status"] in ("Pending", "InProgress", "Ready") for i in deployment.get("instances") or [] if i["instance_id"] in green)


def run(service, plan):
    """Shift the traffic to the green fleet step by step: ``after_batch``'s answer ({proceed, status, ...})."""
    ledger, deployment_id = service.ledger, plan.deployment_id
    deployment = ledger.get_deployment(deployment_id, include_instances=True)
    by_id = dict((i["instance_id"], i) for i in deployment.get("instances") or [])
    green = [h for h in plan.hosts_in_role("green") if (by_id.get(plan.instances[h]) or {}).get("status") == "Succeeded"]
    why = {}

    def check():
        current = ledger.get_deployment(deployment_id, include_instances=False)
        if current["status"] in TERMINAL_STATUSES:
            why.update(code=None, status=current["status"])
            return False, "the deployment is already %s" % current["status"]
        request = current.get("stop_request")
        if request:
            why.update(code="MANUAL_STOP")
            return False, "stopped on request%s during the traffic shift" % (" of %s" % request["requested_by"] if request.get("requested_by") else "")
        if plan.alarm_names():
            verdict = check_alarms(service.aws.client("cloudwatch"), plan.alarm_names(), plan.ignore_poll_alarm_failure())
            if not verdict.ok:
                why.update(code="ALARM_ACTIVE")
                return False, verdict.message
        ledger.renew_lease(deployment_id, lease_seconds=plan.lease_seconds)
        return True, None

    def record(event):
        if event["event"] == "shift":
            last = event["step"] == event["steps"]
            wait = event.get("wait_seconds") or 0
            reason = "step %d of %d%s" % (event["step"], event["steps"], ", %s s at this share" % _number(wait) if wait else "")
            ledger.update_swap(deployment_id, fields={"state": REROUTED if last and event["green_percent"] == 100 else SHIFTING},
                               append={"traffic": _entry(event["step"], event["green_percent"], event["weights"], reason)})
        elif event["event"] == "rollback":
            state = STOPPED if why.get("code") == "MANUAL_STOP" else ROLLED_BACK
            reason = "back to blue: %s" % (event.get("reason") or "")
            if not event.get("ok"):
                reason += " (not every load balancer moved back: %s)" % event.get("message")
            ledger.update_swap(deployment_id, fields={"state": state},
                               append={"traffic": _entry(len(plan.reroute["steps"]) + 1, 0, event.get("weights"), reason)})

    try:
        found = targets(service, plan, green)
        shifter = shift.Shifter(found, alarm_interval=plan.reroute.get("alarm_interval") or MAX_POLL, sleep=service._sleep,  # pylint: disable=protected-access
                                clock=service._clock)  # pylint: disable=protected-access
        outcome = shifter.run([tuple(step) for step in plan.reroute["steps"]], check_alarms=check, record=record)
    except (shift.ShiftError, haproxy.HaproxyError) as exc:
        ledger.update_swap(deployment_id, fields={"state": ROLLED_BACK})
        message = "the traffic shift to the green hosts failed: %s The blue hosts were not touched." % exc.message
        ledger.update_status(deployment_id, "Failed", getattr(exc, "code", None) or ELB_INVALID, message)
        return {"proceed": False, "status": "Failed", "error_code": getattr(exc, "code", None) or ELB_INVALID, "msg": message,
                "changed": True}
    if outcome["status"] == shift.SUCCEEDED:
        percents = ", ".join("%d %%" % p for p, _w in plan.reroute["steps"])
        return {"proceed": True, "status": "InProgress", "changed": True,
                "msg": "%s: traffic shifted to the green hosts in %d step(s) (%s); the blue hosts leave the load balancers next" % (
                    deployment_id, len(plan.reroute["steps"]), percents)}
    if why.get("status"):
        return {"proceed": False, "status": why["status"], "changed": False}
    code = why.get("code") or "ALARM_ACTIVE"
    text = outcome["message"].replace("Alarm at", "Stopped at" if code == "MANUAL_STOP" else "Alarm at", 1)
    return service._stop(plan, code, "%s The blue hosts were not touched." % text)  # pylint: disable=protected-access


def _number(value):
    return ("%d" % value) if float(value).is_integer() else ("%.1f" % value)


# ------------------------------------------------------------------------------ blue admission, rollback, settle
def blue_refusal(plan, current):
    """Why a blue host may not leave its load balancers yet (the shift did not reach 100 % green), or None."""
    if not plan.reroute:
        return None
    state = _state(current)
    if state == REROUTED:
        return None
    return "the traffic shift did not reach 100 %% green (swap state: %s), so the blue hosts keep serving" % (state or "not started")


def to_blue(service, plan, reason):
    """All traffic back to the blue fleet before green hosts leave (a traffic rollback); returns the errors (empty: done or
    nothing to do)."""
    if not plan.reroute or (plan.reroute.get("pair") and not plan.reroute["pair"].get("blue")):
        return []
    current = service.ledger.get_deployment(plan.deployment_id, include_instances=False)
    traffic = ((current.get("swap") or {}).get("traffic")) or []
    if traffic and traffic[-1].get("green_percent") == 0:
        return []
    try:
        weights = _set_all(targets(service, plan), 0)
    except (shift.ShiftError, haproxy.HaproxyError) as exc:
        return ["moving the traffic back to the blue hosts: %s" % exc.message]
    service.ledger.update_swap(plan.deployment_id, fields={"state": ROLLED_BACK},
                               append={"traffic": _entry(len(traffic), 0, weights, "back to blue: %s" % reason)})
    return []


def finish(service, plan):
    """When the deployment settles: HAProxy servers of the plan that left (maintenance) get their full weight back, so a later
    deployment that brings them back does not find them at the weight 0 the shift left them. Best effort; what failed is noted in the swap record."""
    if not plan.reroute or not plan.reroute.get("haproxy"):
        return
    problems = []
    try:
        for backend in service.balancers(plan).haproxy:
            rows = backend.rows()
            for host in plan.hosts:
                server = haproxy.server_name(backend.spec, host)
                row = rows.get(server)
                # ``show stat`` reports a server in maintenance with its effective weight, not the one set: set it always.
                if row and haproxy.status_of(row) == "MAINT":
                    reply = backend.runtime.send(haproxy.weight_command(backend.name, server, shift.FULL_WEIGHT))
                    if (reply or "").strip():
                        problems.append("%s: %s" % (server, reply.strip()))
    except (haproxy.HaproxyError, shift.ShiftError) as exc:
        problems.append(exc.message)
    except Exception as exc:  # pylint: disable=broad-except  # the deployment's outcome matters more than this tidy-up
        problems.append(str(exc))
    if problems:
        service.ledger.update_swap(plan.deployment_id, fields={"weight_restore_errors": problems})
