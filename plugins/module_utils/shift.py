# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""Weighted traffic shifting between a blue and a green fleet: the building blocks of blue/green rerouting.

A *target* moves a share of the traffic to the green fleet: ``set_weights(green_percent)``
returns what it set, ``read_weights()`` what the load balancer has now.  Two kinds:

``AlbTarget``
    One or more places of an Application Load Balancer listener (its default actions, or given
    listener rules) whose forward action sends traffic to the blue target group.  Each step
    rewrites that forward action as a weighted forward between the blue group (weight
    ``100 - p``) and the green group (weight ``p``) through ModifyListener / ModifyRule; other
    actions and the forward action's stickiness settings are kept.  A place that forwards to
    neither group, or to a third group as well, is refused with ELASTIC_LOAD_BALANCING_INVALID
    naming what it forwards to.

``HaproxyTarget``
    The blue and green servers of one HAProxy backend, through the runtime API
    (``set weight B/S N``).  Per-server weights are chosen so that the green servers together
    get ``p`` percent of the weight, whatever the number of servers on each side
    (``server_weights``), within HAProxy's 0..256.

``Shifter`` runs a list of steps (``deployment_config.traffic_steps``): it sets every target to
the step's share, records the step, then waits the step's time while checking the alarms every
``alarm_interval`` seconds.  When an alarm fires, traffic goes straight back to 0 % green and
the result says why (ALARM_ACTIVE).  ``sleep`` and ``clock`` are injectable, so tests never wait.
Runs on the controller; the boto3 client and the HAProxy runtime are made by the caller.
"""

from __future__ import absolute_import, division, print_function

import copy
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import error_text
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError

__metaclass__ = type  # pylint: disable=invalid-name

ELASTIC_LOAD_BALANCING_INVALID = "ELASTIC_LOAD_BALANCING_INVALID"
ALARM_ACTIVE = "ALARM_ACTIVE"

SUCCEEDED = "Succeeded"
ROLLED_BACK = "RolledBack"
FAILED = "Failed"

DEFAULT_ALARM_INTERVAL = 10.0
# The weight a fleet gets when it takes all the traffic (ALB weights go up to 999, HAProxy's to 256).
FULL_WEIGHT = 100
MAX_ALB_WEIGHT = 999
DEFAULT_RULE = "default"


class ShiftError(Exception):
    """Traffic could not be shifted; ``code`` is CodeDeploy's word for it, ``target`` the load balancer concerned.

    ``rollback`` is set when the Shifter tried to move traffic back to blue after the failure:
    ``{"ok": bool, "message": text}``."""

    def __init__(self, message, code=ELASTIC_LOAD_BALANCING_INVALID, target=None):
        super(ShiftError, self).__init__(message)
        self.message = message
        self.code = code
        self.target = target
        self.rollback = None

    def __str__(self):
        return self.message


# ----------------------------------------------------------------------------------------------
# Arithmetic
# ----------------------------------------------------------------------------------------------
def check_percent(green_percent):
    """``green_percent`` as an int 0..100; ValueError otherwise."""
    if isinstance(green_percent, bool) or not isinstance(green_percent, int) or not 0 <= green_percent <= 100:
        raise ValueError("a green traffic share must be a whole percentage from 0 to 100, not %r" % (green_percent,))
    return green_percent


def check_steps(steps):
    """Validate ``[(green_percent, wait_seconds_after), ...]``: percentages 0..100, waits >= 0; returns a list of tuples."""
    result = []
    for index, step in enumerate(steps or ()):
        try:
            percent, wait = step
        except (TypeError, ValueError):
            raise ValueError("step %d is %r; each step is (green_percent, wait_seconds_after)" % (index + 1, step))
        check_percent(percent)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise ValueError("step %d waits %r seconds; a wait is a number of seconds >= 0" % (index + 1, wait))
        result.append((percent, wait))
    if not result:
        raise ValueError("no steps: give at least [(100, 0)]")
    return result


def alb_weights(green_percent):
    """Target group weights ``(blue, green)`` for a green share: ``(100 - p, p)``."""
    percent = check_percent(green_percent)
    return 100 - percent, percent


def green_share(blue_weights, green_weights):
    """The green fleet's share of the traffic in percent (a float), from per-server or per-group weights; None when all are 0."""
    blue = sum(blue_weights)
    green = sum(green_weights)
    if blue + green == 0:
        return None
    return 100.0 * green / (blue + green)


def _rounded(number):
    return int(number + 0.5)


def server_weights(green_percent, blue_count, green_count, max_weight=haproxy.MAX_WEIGHT):
    """Per-server weights ``(blue_weight, green_weight)`` that give the green servers ``green_percent`` of the traffic.

    Every blue server gets ``blue_weight`` and every green one ``green_weight``, so the green
    share is ``g * wg / (g * wg + b * wb)``.  0 % is ``(FULL_WEIGHT, 0)``, 100 % ``(0, FULL_WEIGHT)``;
    in between both weights are 1..``max_weight`` and the share is the closest one integer
    weights allow (exact whenever possible; ties go to the larger weights, which HAProxy
    spreads more evenly).  Lopsided fleets may not reach a small share: 1 blue and 7 green
    servers cannot go below 7/263 = 2.7 % green (blue 256, green 1 each).  1 blue and 1 green server at 10 %: ``(252, 28)``; 3 blue and 1
    green at 10 %: ``(255, 85)``.
    """
    percent = check_percent(green_percent)
    for count, side in ((blue_count, "blue"), (green_count, "green")):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("the %s fleet needs at least one server, got %r" % (side, count))
    if percent == 0:
        return FULL_WEIGHT, 0
    if percent == 100:
        return 0, FULL_WEIGHT
    best = None
    for big in range(max_weight, 0, -1):
        candidates = (
            (_rounded(big * green_count * (100 - percent) / (percent * blue_count)), big),
            (big, _rounded(big * blue_count * percent / (green_count * (100 - percent)))),
        )
        for blue, green in candidates:
            blue, green = min(max(blue, 1), max_weight), min(max(green, 1), max_weight)
            error = abs(green_share([blue] * blue_count, [green] * green_count) - percent)
            key = (round(error, 9), -max(blue, green), -min(blue, green))
            if best is None or key < best[0]:
                best = (key, (blue, green))
    return best[1]


def _tg_name(arn):
    """``web-blue`` for ``arn:...:targetgroup/web-blue/0123``; the text itself when it is no target group ARN."""
    text = str(arn or "")
    if ":targetgroup/" in text:
        return text.split(":targetgroup/", 1)[1].split("/")[0]
    return text


def forward_groups(action):
    """``{target_group_arn: weight}`` of a forward action (a plain forward counts as weight 1); {} for other actions."""
    if (action or {}).get("Type") != "forward":
        return {}
    groups = ((action.get("ForwardConfig") or {}).get("TargetGroups")) or []
    if groups:
        return dict((group.get("TargetGroupArn"), int(group.get("Weight", 1))) for group in groups)
    if action.get("TargetGroupArn"):
        return {action["TargetGroupArn"]: 1}
    return {}


def weighted_actions(actions, blue_arn, green_arn, blue_weight, green_weight):
    """A copy of ``actions`` whose forward action is a weighted forward between blue and green; the rest is kept.

    Stickiness settings of the forward action are kept.  An ``authenticate-oidc`` action read back
    without its client secret is told to keep the existing one.
    """
    result = []
    for action in actions or ():
        action = copy.deepcopy(action)
        if action.get("Type") == "forward":
            stickiness = (action.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
            action.pop("TargetGroupArn", None)
            forward = {"TargetGroups": [{"TargetGroupArn": blue_arn, "Weight": blue_weight},
                                        {"TargetGroupArn": green_arn, "Weight": green_weight}]}
            if stickiness:
                forward["TargetGroupStickinessConfig"] = stickiness
            action["ForwardConfig"] = forward
        elif action.get("Type") == "authenticate-oidc":
            oidc = action.get("AuthenticateOidcConfig") or {}
            if "ClientSecret" not in oidc:
                oidc["UseExistingClientSecret"] = True
        result.append(action)
    return result


# ----------------------------------------------------------------------------------------------
# ALB
# ----------------------------------------------------------------------------------------------
class AlbTarget(object):
    """Weighted forwarding between a blue and a green target group on an ALB listener.

    ``listener_arn``: the listener; ``rule_arns``: the rules to shift (a list; ``"default"`` or
    None means the listener's default actions).  ``blue_target_group`` / ``green_target_group``:
    ARNs or names.  ``elbv2`` is a boto3 client.
    """

    kind = "alb"

    def __init__(self, elbv2, listener_arn, blue_target_group, green_target_group, rule_arns=None):
        self.elbv2 = elbv2
        self.listener_arn = listener_arn
        if rule_arns is None or isinstance(rule_arns, str):
            rule_arns = [rule_arns or DEFAULT_RULE]
        self.rule_arns = list(rule_arns) or [DEFAULT_RULE]
        self.blue = blue_target_group
        self.green = green_target_group
        self._arns = None
        self.label = "listener %s" % listener_arn

    # ------------------------------------------------------------------ AWS calls
    def _call(self, function, what, **kwargs):
        try:
            return function(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise ShiftError("Could not %s: Elastic Load Balancing answered %s. Check the listener and target groups of the "
                             "blue/green settings and the controller's elasticloadbalancing permissions."
                             % (what, error_text(exc)), target=self.label)

    def resolve(self):
        """``(blue_arn, green_arn)``: the target groups, looked up by name when not given as ARNs (cached)."""
        if self._arns is None:
            arns = []
            for given, colour in ((self.blue, "blue"), (self.green, "green")):
                text = str(given or "").strip()
                if not text:
                    raise ShiftError("No %s target group given for %s." % (colour, self.label), target=self.label)
                if not text.startswith("arn:"):
                    found = self._call(self.elbv2.describe_target_groups, "find the %s target group %s" % (colour, text),
                                       Names=[text])["TargetGroups"]
                    text = found[0]["TargetGroupArn"]
                arns.append(text)
            if arns[0] == arns[1]:
                raise ShiftError("The blue and the green target group are both %s; traffic can only shift between two "
                                 "different target groups." % _tg_name(arns[0]), target=self.label)
            self._arns = tuple(arns)
        return self._arns

    def _places(self):
        """``[(rule_arn or "default", actions)]`` for every place to shift."""
        places = []
        rules = [arn for arn in self.rule_arns if arn != DEFAULT_RULE]
        if DEFAULT_RULE in self.rule_arns:
            listeners = self._call(self.elbv2.describe_listeners, "describe listener %s" % self.listener_arn,
                                   ListenerArns=[self.listener_arn])["Listeners"]
            places.append((DEFAULT_RULE, listeners[0].get("DefaultActions") or []))
        if rules:
            found = self._call(self.elbv2.describe_rules, "describe the rules %s" % ", ".join(rules), RuleArns=rules)["Rules"]
            by_arn = dict((rule["RuleArn"], rule) for rule in found)
            for arn in rules:
                rule = by_arn.get(arn)
                if rule is None:
                    raise ShiftError("Listener rule %s was not found." % arn, target=self.label)
                places.append((arn, rule.get("Actions") or []))
        return places

    def _check(self, place, actions):
        blue, green = self.resolve()
        where = "the default actions of %s" % self.label if place == DEFAULT_RULE else "rule %s of %s" % (place, self.label)
        forwards = [forward_groups(action) for action in actions if action.get("Type") == "forward"]
        if not forwards:
            kinds = ", ".join(str(action.get("Type")) for action in actions) or "no action"
            raise ShiftError("%s do not forward to the blue target group %s (they are: %s). Point the listener at the blue "
                             "target group, or name the rule that forwards to it." % (where, _tg_name(blue), kinds),
                             target=self.label)
        groups = forwards[0]
        if blue not in groups and green not in groups:
            found = ", ".join(sorted(_tg_name(arn) for arn in groups))
            raise ShiftError("%s forward to %s, not to the blue target group %s. Point the listener at the blue target group, "
                             "or fix the blue target group or the rule." % (where, found, _tg_name(blue)), target=self.label)
        others = sorted(_tg_name(arn) for arn in groups if arn not in (blue, green))
        if others:
            raise ShiftError("%s also forward to %s besides the blue target group %s and the green target group %s, so a "
                             "blue/green weight would not be the traffic share. Remove the other target groups from the "
                             "forward action." % (where, ", ".join(others), _tg_name(blue), _tg_name(green)), target=self.label)
        return {blue: groups.get(blue, 0), green: groups.get(green, 0)}

    # ------------------------------------------------------------------ the target interface
    def read_weights(self):
        """``{target_group_arn: weight}`` of the blue and green groups at the first place (0 for a group not forwarded to)."""
        place, actions = self._places()[0]
        return self._check(place, actions)

    def set_weights(self, green_percent):
        """Set blue ``100 - p`` and green ``p`` at every place.

        Returns ``{"green_percent", "weights": {target_group_arn: weight}, "share", "changed"}``;
        places that already have these weights are not modified."""
        blue, green = self.resolve()
        blue_weight, green_weight = alb_weights(green_percent)
        wanted = {blue: blue_weight, green: green_weight}
        changed = False
        for place, actions in self._places():
            if self._check(place, actions) == wanted and all(action.get("ForwardConfig") for action in actions
                                                             if action.get("Type") == "forward"):
                continue
            new_actions = weighted_actions(actions, blue, green, blue_weight, green_weight)
            if place == DEFAULT_RULE:
                self._call(self.elbv2.modify_listener, "set the weights of %s" % self.label,
                           ListenerArn=self.listener_arn, DefaultActions=new_actions)
            else:
                self._call(self.elbv2.modify_rule, "set the weights of rule %s" % place, RuleArn=place, Actions=new_actions)
            changed = True
        return {"green_percent": green_percent, "weights": wanted, "share": float(green_percent), "changed": changed}


# ----------------------------------------------------------------------------------------------
# HAProxy
# ----------------------------------------------------------------------------------------------
class HaproxyTarget(object):
    """Server weights of the blue and green servers of one HAProxy backend.

    ``backend`` is a ``haproxy.Backend`` (its spec, runtime and label); ``blue`` / ``green`` are
    inventory hosts or server names (mapped through the backend's ``servers``).  Servers of the
    backend in neither list keep their weight and are not counted in the share.
    """

    kind = "haproxy"

    def __init__(self, backend, blue, green):
        self.backend = backend
        self.blue_hosts = list(blue or ())
        self.green_hosts = list(green or ())
        self.label = backend.label
        self.blue = [haproxy.server_name(backend.spec, host) for host in self.blue_hosts]
        self.green = [haproxy.server_name(backend.spec, host) for host in self.green_hosts]
        both = sorted(set(self.blue) & set(self.green))
        if both:
            raise ShiftError("%s: server %s is listed in both the blue and the green fleet; each server belongs to one."
                             % (self.label, ", ".join(both)), target=self.label)
        if not self.blue or not self.green:
            raise ShiftError("%s: the %s fleet has no server in this backend; traffic shifts between blue and green servers "
                             "of one backend." % (self.label, "blue" if not self.blue else "green"), target=self.label)

    def _rows(self):
        try:
            return self.backend.resolve(self.blue_hosts + self.green_hosts)
        except haproxy.HaproxyError as exc:
            raise ShiftError(exc.message, code=exc.code, target=self.label)

    def read_weights(self):
        """``{server: weight}`` of the blue and green servers, from ``show stat``."""
        rows = self._rows()
        return dict((server, haproxy.weight_of(rows[server])) for server in self.blue + self.green)

    def set_weights(self, green_percent):
        """Give the green servers ``green_percent`` of the weight; ``{"green_percent", "weights", "share", "changed"}``."""
        blue_weight, green_weight = server_weights(green_percent, len(self.blue), len(self.green))
        current = self.read_weights()
        wanted = dict([(server, blue_weight) for server in self.blue] + [(server, green_weight) for server in self.green])
        changed = False
        for server, weight in wanted.items():
            if current.get(server) == weight:
                continue
            text = haproxy.weight_command(self.backend.name, server, weight)
            try:
                reply = self.backend.runtime.send(text)
            except haproxy.HaproxyError as exc:
                raise ShiftError("%s: '%s' failed: %s" % (self.label, text, exc.message), target=self.label)
            if (reply or "").strip():
                raise ShiftError("%s: '%s' was refused: %s. Check that the backend uses a dynamic balance algorithm "
                                 "(roundrobin, leastconn), not static-rr, and that the socket is 'level admin'."
                                 % (self.label, text, haproxy.refusal(reply) or reply.strip().splitlines()[0]), target=self.label)
            changed = True
        return {"green_percent": green_percent, "weights": wanted,
                "share": round(green_share([blue_weight] * len(self.blue), [green_weight] * len(self.green)), 2),
                "changed": changed}


# ----------------------------------------------------------------------------------------------
# Running the steps
# ----------------------------------------------------------------------------------------------
def _alarm_message(verdict):
    """None when ``check_alarms`` says all is well, else the alarm's message.

    Accepted answers: None/True (fine), False (an alarm, no words), a non-empty string (an alarm,
    its message), or ``(ok, message)``."""
    if verdict is None or verdict is True:
        return None
    if verdict is False:
        return "an alarm is active"
    if isinstance(verdict, str):
        return verdict or None
    ok, message = verdict
    return None if ok else (message or "an alarm is active")


class Shifter(object):
    """Moves traffic to the green fleet step by step on one or more targets, watching alarms.

    ``run`` returns::

        {"status": "Succeeded" | "RolledBack" | "Failed", "code": None | "ALARM_ACTIVE",
         "message": text, "green_percent": the share at the end, "steps": n, "completed_steps": k,
         "timeline": [events], "duration": seconds}

    Events (also given to ``record`` as they happen) are ``{"event": "shift", "step", "steps",
    "green_percent", "weights": {target label: set_weights() result}, "at", "elapsed",
    "wait_seconds"}``, ``{"event": "alarm", "message", "green_percent", "at", "elapsed"}`` and
    ``{"event": "rollback", "green_percent": 0, "weights", "reason", "ok", "at", "elapsed"}``.
    Failures of a target raise ShiftError after traffic was moved back to blue (the error's
    ``rollback`` says whether that worked); exceptions from ``check_alarms`` are re-raised the
    same way.
    """

    def __init__(self, targets, alarm_interval=DEFAULT_ALARM_INTERVAL, sleep=time.sleep, clock=time.monotonic):
        self.targets = list(targets) if isinstance(targets, (list, tuple)) else [targets]
        if not self.targets:
            raise ValueError("no target to shift traffic on")
        if isinstance(alarm_interval, bool) or not isinstance(alarm_interval, (int, float)) or alarm_interval <= 0:
            raise ValueError("alarm_interval must be a number of seconds > 0, not %r" % (alarm_interval,))
        self.alarm_interval = float(alarm_interval)
        self.sleep = sleep
        self.clock = clock

    def run(self, steps, check_alarms=None, record=None, sleep=None, clock=None):
        """Run ``steps`` (``[(green_percent, wait_seconds_after)]``, see deployment_config.traffic_steps)."""
        steps = check_steps(steps)
        run = _Run(self, check_alarms, record, sleep or self.sleep, clock or self.clock, len(steps))
        try:
            message = run.alarm()
            if message:
                return run.roll_back(message)
            for index, (percent, wait) in enumerate(steps, 1):
                run.shift(index, percent, wait)
                message = run.wait(wait)
                if message:
                    return run.roll_back(message)
        except Exception as exc:  # pylint: disable=broad-except
            outcome = run.roll_back_after_error(exc)
            if isinstance(exc, ShiftError):
                exc.rollback = outcome
                if outcome["ok"]:
                    exc.message += " Traffic was moved back to the blue fleet."
                else:
                    exc.message += " Moving traffic back to the blue fleet failed too: %s" % outcome["message"]
                exc.args = (exc.message,)
            raise
        return run.result(SUCCEEDED, None, "All traffic goes to the green fleet after %d step%s."
                          % (len(steps), "" if len(steps) == 1 else "s"))


class _Run(object):
    """The state of one Shifter.run."""

    def __init__(self, shifter, check_alarms, record, sleep, clock, steps):
        self.shifter = shifter
        self.check_alarms = check_alarms
        self.record_event = record
        self.sleep = sleep
        self.clock = clock
        self.steps = steps
        self.started = clock()
        self.timeline = []
        self.green_percent = None
        self.completed = 0

    def _emit(self, event):
        event["at"] = self.clock()
        event["elapsed"] = event["at"] - self.started
        self.timeline.append(event)
        if self.record_event is not None:
            self.record_event(dict(event))

    def alarm(self):
        if self.check_alarms is None:
            return None
        message = _alarm_message(self.check_alarms())
        if message:
            self._emit({"event": "alarm", "message": message, "green_percent": self.green_percent})
        return message

    def shift(self, index, percent, wait):
        weights = {}
        for target in self.shifter.targets:
            weights[target.label] = target.set_weights(percent)
        self.green_percent = percent
        self.completed = index
        self._emit({"event": "shift", "step": index, "steps": self.steps, "green_percent": percent, "weights": weights,
                    "wait_seconds": wait})

    def wait(self, seconds):
        deadline = self.clock() + seconds
        while True:
            now = self.clock()
            if now >= deadline:
                return None
            self.sleep(min(self.shifter.alarm_interval, deadline - now))
            message = self.alarm()
            if message:
                return message

    def _to_blue(self, reason):
        weights, problems = {}, []
        for target in self.shifter.targets:
            try:
                weights[target.label] = target.set_weights(0)
            except ShiftError as exc:
                problems.append(exc.message)
        ok = not problems
        if ok:
            self.green_percent = 0
        self._emit({"event": "rollback", "green_percent": 0, "weights": weights, "reason": reason, "ok": ok,
                    "message": " ".join(problems)})
        return {"ok": ok, "message": " ".join(problems)}

    def roll_back(self, alarm_message):
        at = self.green_percent or 0
        outcome = self._to_blue(alarm_message)
        if outcome["ok"]:
            return self.result(ROLLED_BACK, ALARM_ACTIVE, "Alarm at %d%% green traffic (step %d of %d): %s. All traffic was "
                               "moved back to the blue fleet." % (at, self.completed, self.steps, alarm_message))
        return self.result(FAILED, ALARM_ACTIVE, "Alarm at %d%% green traffic (step %d of %d): %s. Moving traffic back to "
                           "the blue fleet failed: %s" % (at, self.completed, self.steps, alarm_message, outcome["message"]))

    def roll_back_after_error(self, exc):
        return self._to_blue(str(exc) or exc.__class__.__name__)

    def result(self, status, code, message):
        return {"status": status, "code": code, "message": message, "green_percent": self.green_percent,
                "steps": self.steps, "completed_steps": self.completed, "timeline": list(self.timeline),
                "duration": self.clock() - self.started}
