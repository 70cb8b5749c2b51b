# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""The task rollout.codedeploy.traffic_shift: its inputs checked and turned into steps, and its result.

``request(args)`` checks the task's arguments (after the argument spec applied types and
defaults) and returns what the action plugin needs: the kind of load balancer, the steps
(already scaled by ``interval_scale``), the alarm names.  Mistakes raise ``RequestError``
naming the field, the value and the fix.  ``run_forward`` / ``run_back`` / ``preview`` do the
work on targets made by the caller (shift.AlbTarget / shift.HaproxyTarget), so they can be
tested with fakes.  Controller-side; no AWS or socket code here.
"""

from __future__ import absolute_import, division, print_function

import datetime
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as dc
from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, shift

__metaclass__ = type  # pylint: disable=invalid-name

INVALID_INPUT = "INVALID_INPUT"
FORWARD = "forward"
BACK = "back"


class RequestError(ValueError):
    """A bad input: ``message`` names the field, the value and the fix."""

    def __init__(self, field, value, fix):
        message = "traffic_shift: %s=%r is not accepted: %s" % (field, value, fix)
        super(RequestError, self).__init__(message)
        self.message = message
        self.field = field
        self.code = INVALID_INPUT

    def __str__(self):
        return self.message


def _text_list(field, value):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise RequestError(field, value, "give a list of names")
    result = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise RequestError(field, value, "every entry must be a non-empty name")
        result.append(item.strip())
    return result


def _number(field, value, lowest, exclusive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(field, value, "give a number")
    if value < lowest or (exclusive and value == lowest):
        raise RequestError(field, value, "give a number %s %s" % (">" if exclusive else ">=", lowest))
    return value


def explicit_steps(value):
    """``[(green_percent, wait_seconds)]`` from the ``steps`` option: a list of ``{percent, wait_seconds}``."""
    if not isinstance(value, (list, tuple)) or not value:
        raise RequestError("steps", value, "give a list like [{percent: 10, wait_seconds: 60}, {percent: 100}]")
    result = []
    for index, item in enumerate(value):
        field = "steps[%d]" % index
        if not isinstance(item, dict):
            raise RequestError(field, item, "each step is a mapping like {percent: 10, wait_seconds: 60}")
        unknown = sorted(str(key) for key in item if key not in ("percent", "wait_seconds"))
        if unknown:
            raise RequestError("%s.%s" % (field, unknown[0]), item[unknown[0]], "a step has only percent and wait_seconds")
        percent = item.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise RequestError(field + ".percent", percent, "give the green share as a whole number from 0 to 100")
        wait = item.get("wait_seconds", 0)
        if wait is None:
            wait = 0
        _number(field + ".wait_seconds", wait, 0)
        if result and percent < result[-1][0]:
            raise RequestError(field + ".percent", percent, "steps go towards green; use direction: back to send traffic to blue")
        result.append((percent, wait))
    if result[-1][0] != 100:
        raise RequestError("steps", value, "the last step must reach percent: 100 (direction: back sends everything to blue)")
    return result


def scale_steps(steps, scale):
    """The steps with every wait multiplied by ``scale`` (0 means no waiting)."""
    return [(percent, wait * scale) for percent, wait in steps]


def request(args):
    """Check the task's arguments; returns a dict with ``kind``, ``direction``, ``steps``, ``alb``, ``haproxy``, ``alarms``..."""
    direction = args.get("direction") or FORWARD
    if direction not in (FORWARD, BACK):
        raise RequestError("direction", direction, "use forward (blue to green in steps) or back (everything to blue at once)")
    listener = args.get("listener_arn")
    backend = args.get("haproxy_backend")
    if listener and backend:
        raise RequestError("haproxy_backend", backend, "give either listener_arn (an ALB) or haproxy_backend (HAProxy), not both")
    if not listener and not backend:
        raise RequestError("listener_arn", listener, "give listener_arn (with blue_target_group and green_target_group) or "
                           "haproxy_backend (with runtime_api, blue_servers and green_servers)")
    out = {"direction": direction, "alb": None, "haproxy": None}
    if listener:
        out["kind"] = "alb"
        if not str(listener).startswith("arn:") or ":listener/" not in str(listener):
            raise RequestError("listener_arn", listener, "give the listener's ARN (arn:aws:elasticloadbalancing:...:listener/app/...)")
        for field in ("blue_target_group", "green_target_group"):
            if not args.get(field):
                raise RequestError(field, args.get(field), "name the target group (its name or ARN) with an ALB listener")
        if args["blue_target_group"] == args["green_target_group"]:
            raise RequestError("green_target_group", args["green_target_group"], "blue and green must be different target groups")
        for field in ("runtime_api", "blue_servers", "green_servers", "haproxy_servers"):
            if args.get(field):
                raise RequestError(field, args[field], "this option is for haproxy_backend; an ALB listener uses target groups")
        out["alb"] = {"listener_arn": listener, "rule_arns": _text_list("rule_arns", args.get("rule_arns")) or None,
                      "blue": args["blue_target_group"], "green": args["green_target_group"]}
    else:
        out["kind"] = "haproxy"
        for field in ("blue_target_group", "green_target_group", "rule_arns"):
            if args.get(field):
                raise RequestError(field, args[field], "this option is for listener_arn; an HAProxy backend uses blue_servers and green_servers")
        if args.get("runtime_api") is None:
            raise RequestError("runtime_api", None, "say how to reach HAProxy's runtime API (HOST:PORT, a socket path, or "
                               "{host: <inventory host>, socket: /run/haproxy/admin.sock})")
        try:
            spec = haproxy.normalize_backends([{"backend": backend, "runtime_api": args["runtime_api"],
                                                "servers": args.get("haproxy_servers") or {}}], path="haproxy")[0]
        except haproxy.SettingError as exc:
            field = {"haproxy[0].backend": "haproxy_backend", "haproxy[0].runtime_api": "runtime_api"}.get(exc.path, exc.path)
            if field.startswith("haproxy[0].servers"):
                field = "haproxy_servers" + field[len("haproxy[0].servers"):]
            elif field.startswith("haproxy[0].runtime_api"):
                field = "runtime_api" + field[len("haproxy[0].runtime_api"):]
            raise RequestError(field, exc.value[0] if exc.value else args.get("runtime_api"), exc.problem)
        blue = _text_list("blue_servers", args.get("blue_servers"))
        green = _text_list("green_servers", args.get("green_servers"))
        for colour, names in (("blue", blue), ("green", green)):
            if not names:
                field = colour + "_servers"
                raise RequestError(field, args.get(field), "list the %s fleet's inventory hosts or server names" % colour)
        both = sorted(set(blue) & set(green))
        if both:
            raise RequestError("green_servers", both, "a server belongs to the blue or to the green fleet, not both")
        out["haproxy"] = {"spec": spec, "blue": blue, "green": green}
    has_config = args.get("deployment_config") not in (None, "")
    has_steps = args.get("steps") not in (None, [])
    if has_config and has_steps:
        raise RequestError("steps", args.get("steps"), "give either deployment_config or steps, not both")
    if direction == BACK:
        steps = [(0, 0)]
    elif has_steps:
        steps = explicit_steps(args["steps"])
    else:
        config = args.get("deployment_config") if has_config else dc.TRAFFIC_ALL_AT_ONCE_CONFIG
        try:
            steps = dc.traffic_steps(config)
        except dc.DeploymentConfigError as exc:
            raise RequestError("deployment_config", config, "%s (%s)" % (exc, getattr(exc, "code", "")))
    scale = _number("interval_scale", 1.0 if args.get("interval_scale") is None else args["interval_scale"], 0)
    out["configured_steps"] = [list(step) for step in steps]
    out["steps"] = scale_steps(steps, scale)
    out["interval_scale"] = scale
    interval = 10 if args.get("alarm_interval") is None else args["alarm_interval"]
    out["alarm_interval"] = _number("alarm_interval", interval, 0, exclusive=True)
    out["alarms"] = _text_list("alarms", args.get("alarms"))
    out["ignore_poll_alarm_failure"] = bool(args.get("ignore_poll_alarm_failure"))
    return out


def iso(epoch):
    """``2026-11-30T15:04:05.123Z`` for a time.time() value."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def _plain_weights(weights):
    """``{target label: {name: weight}}`` with target group ARNs shortened to names."""
    result = {}
    for label, outcome in (weights or {}).items():
        result[label] = dict((shift._tg_name(key), value) for key, value in (outcome.get("weights") or {}).items())  # pylint: disable=protected-access
    return result


def report(timeline):
    """The result's ``steps``: one entry per event with its weights and ISO UTC time."""
    entries = []
    for event in timeline:
        entry = {"event": event["event"], "green_percent": event.get("green_percent"), "at": iso(event["at"]),
                 "elapsed": round(event.get("elapsed") or 0.0, 3)}
        if "weights" in event:
            entry["weights"] = _plain_weights(event["weights"])
            entry["share"] = dict((label, outcome.get("share")) for label, outcome in event["weights"].items())
            entry["changed"] = any(outcome.get("changed") for outcome in event["weights"].values())
        if event["event"] == "shift":
            entry.update(step=event["step"], wait_seconds=event["wait_seconds"])
        if event.get("message") or event.get("reason"):
            entry["message"] = event.get("message") or event.get("reason")
        entries.append(entry)
    return entries


def current_weights(targets):
    """``{target label: {name: weight}}`` read from every target."""
    return dict((target.label, dict((shift._tg_name(key), value)  # pylint: disable=protected-access
                                    for key, value in target.read_weights().items())) for target in targets)


def preview(targets, req):
    """Check mode: the steps and the current weights, nothing changed."""
    return {"changed": False, "status": "Preview", "green_percent": None, "current_weights": current_weights(targets),
            "planned_steps": [{"green_percent": percent, "wait_seconds": wait} for percent, wait in req["steps"]],
            "steps": [], "msg": "Check mode: would move traffic %s in %d step%s; nothing was changed." % (
                "to green" if req["direction"] == FORWARD else "back to blue", len(req["steps"]),
                "" if len(req["steps"]) == 1 else "s")}


def run_back(targets, clock=time.time):
    """Everything to blue at once (a rollback helper)."""
    weights = {}
    started = clock()
    for target in targets:
        weights[target.label] = target.set_weights(0)
    event = {"event": "shift", "step": 1, "steps": 1, "green_percent": 0, "weights": weights, "wait_seconds": 0,
             "at": clock(), "elapsed": clock() - started}
    steps = report([event])
    return {"changed": steps[0]["changed"], "status": shift.SUCCEEDED, "code": None, "green_percent": 0, "steps": steps,
            "current_weights": current_weights(targets), "msg": "All traffic goes to the blue fleet."}


def run_forward(targets, req, check_alarms=None, sleep=time.sleep, clock=time.time):
    """Run the steps with the Shifter; the task's result (``failed`` with ALARM_ACTIVE when an alarm sent traffic back)."""
    shifter = shift.Shifter(targets, alarm_interval=req["alarm_interval"], sleep=sleep, clock=clock)
    outcome = shifter.run(req["steps"], check_alarms=check_alarms)
    steps = report(outcome["timeline"])
    result = {"changed": any(entry.get("changed") for entry in steps), "status": outcome["status"], "code": outcome["code"],
              "green_percent": outcome["green_percent"], "steps": steps, "completed_steps": outcome["completed_steps"],
              "duration": round(outcome["duration"], 3), "msg": outcome["message"]}
    if outcome["status"] != shift.SUCCEEDED:
        result.update(failed=True, error_code=outcome["code"])
    return result
