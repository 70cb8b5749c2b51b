# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CodeDeploy's instance selection and deployment-group settings, as pure data functions.

This file is the one place that knows

* which instances a deployment group selects (docs/codedeploy-rules.md §2):

  - a *tag filter* is ``{key, value, type}`` with ``type`` one of KEY_ONLY (the instance has a
    tag with this key, whatever its value), VALUE_ONLY (the instance has a tag, under any key,
    with this value) and KEY_AND_VALUE (the instance has this tag with exactly this value);
    keys and values compare exactly: case-sensitive, spaces kept, no wildcards;
  - ``ec2_tag_filters`` / ``on_premises_tag_filters``: a flat list, an instance matches when
    ANY filter matches;
  - ``ec2_tag_set`` / ``on_premises_tag_set``: up to 3 tag groups (lists of filters); an
    instance matches when it matches EVERY group, and a group when ANY of its filters matches;
  - ``autoscaling_groups``: up to 10 Auto Scaling group names;
  - a group's instances are the union of what its tags and its Auto Scaling groups select;

* what a deployment group's settings look like once validated and normalized (the group var
  ``codedeploy_deployment_group``), with CodeDeploy's limits and error messages that name the
  key, the value and the fix;

* which EC2 ``describe_instances`` filters fetch a superset of what a set of selectors can
  match, so the inventory plugin asks EC2 for as little as possible (``ec2_query_plan``).

Pure Python (standard library only, Python 3.8+); no boto3 here.
"""

from __future__ import absolute_import, division, print_function

import difflib
import re
import uuid

from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy
from ansible_collections.rollout.codedeploy.plugins.module_utils.deployment_config import (
    DEFAULT_CONFIG_NAME,
    MOST_CONCURRENCY,
    DeploymentConfigError,
    resolve_config,
)

__metaclass__ = type  # pylint: disable=invalid-name

KEY_ONLY = "KEY_ONLY"
VALUE_ONLY = "VALUE_ONLY"
KEY_AND_VALUE = "KEY_AND_VALUE"
FILTER_TYPES = (KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE)

MAX_TAG_SET_GROUPS = 3
MAX_AUTOSCALING_GROUPS = 10
MAX_LOAD_BALANCERS = 10
MAX_ALARMS = 10
MAX_TRIGGERS = 10
MAX_WAIT_MINUTES = 2880

IN_PLACE = "IN_PLACE"
BLUE_GREEN = "BLUE_GREEN"
WITH_TRAFFIC_CONTROL = "WITH_TRAFFIC_CONTROL"
WITHOUT_TRAFFIC_CONTROL = "WITHOUT_TRAFFIC_CONTROL"
AUTO_ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST")
TRIGGER_EVENTS = (
    "DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback",
    "DeploymentReady", "InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady",
)
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
OUTDATED_INSTANCES_STRATEGIES = ("UPDATE", "IGNORE")
TERMINATION_ACTIONS = ("TERMINATE", "KEEP_ALIVE")
READY_ACTIONS = ("CONTINUE_DEPLOYMENT", "STOP_DEPLOYMENT")
GREEN_FLEET_ACTIONS = ("DISCOVER_EXISTING", "COPY_AUTO_SCALING_GROUP")

# Auto Scaling lifecycle states (DescribeAutoScalingGroups Instances[].LifecycleState).
LIFECYCLE_STATES = (
    "Pending", "Pending:Wait", "Pending:Proceed", "Quarantined", "InService", "Terminating",
    "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching", "Detached",
    "EnteringStandby", "Standby", "Warmed:Pending", "Warmed:Pending:Wait", "Warmed:Pending:Proceed",
    "Warmed:Terminating", "Warmed:Terminating:Wait", "Warmed:Terminating:Proceed", "Warmed:Terminated",
    "Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated",
)
DEFAULT_LIFECYCLE_STATES = ("InService",)

# The tag Auto Scaling puts on its instances (read for host vars; never needed for selection).
AUTOSCALING_GROUP_TAG = "aws:autoscaling:groupName"

GROUP_KEYS = (
    "ec2_tag_filters", "ec2_tag_set", "autoscaling_groups", "on_premises_tag_filters", "on_premises_tag_set",
    "deployment_config", "deployment_style", "load_balancer", "alarms", "auto_rollback", "triggers",
    "blue_green", "file_exists_behavior", "outdated_instances_strategy", "deployment_group_id", "region",
    "inventory_group",
)
APPLICATION_KEYS = ("deployment_groups",)
ON_PREMISES_KEYS = ("name", "address", "tags", "region")
SELECTION_KEYS = ("ec2_tag_filters", "ec2_tag_set", "autoscaling_groups", "on_premises_tag_filters", "on_premises_tag_set")

# CodeDeploy API (camelCase) names and common slips -> the key used here.
HINTS = {
    "ec2TagFilters": "ec2_tag_filters",
    "ec2TagSet": "ec2_tag_set",
    "ec2TagSetList": "ec2_tag_set",
    "ec2_tag_set_list": "ec2_tag_set",
    "autoScalingGroups": "autoscaling_groups",
    "auto_scaling_groups": "autoscaling_groups",
    "onPremisesInstanceTagFilters": "on_premises_tag_filters",
    "on_premises_instance_tag_filters": "on_premises_tag_filters",
    "onPremisesTagSet": "on_premises_tag_set",
    "onPremisesTagSetList": "on_premises_tag_set",
    "deploymentConfigName": "deployment_config",
    "deployment_config_name": "deployment_config",
    "deploymentStyle": "deployment_style",
    "loadBalancerInfo": "load_balancer",
    "load_balancer_info": "load_balancer",
    "alarmConfiguration": "alarms",
    "alarm_configuration": "alarms",
    "autoRollbackConfiguration": "auto_rollback",
    "auto_rollback_configuration": "auto_rollback",
    "triggerConfigurations": "triggers",
    "trigger_configurations": "triggers",
    "blueGreenDeploymentConfiguration": "blue_green",
    "blue_green_deployment_configuration": "blue_green",
    "fileExistsBehavior": "file_exists_behavior",
    "outdatedInstancesStrategy": "outdated_instances_strategy",
    "deploymentGroupId": "deployment_group_id",
    "deploymentGroups": "deployment_groups",
    "deploymentType": "type",
    "deploymentOption": "deployment_option",
    "targetGroupInfoList": "target_groups",
    "target_group_info_list": "target_groups",
    "elbInfoList": "classic_elbs",
    "elb_info_list": "classic_elbs",
    "ignorePollAlarmFailure": "ignore_poll_alarm_failure",
    "alarms": "names",
    "triggerName": "name",
    "triggerTargetArn": "target",
    "trigger_target_arn": "target",
    "triggerEvents": "events",
    "trigger_events": "events",
    "terminateBlueInstancesOnDeploymentSuccess": "terminate_blue_instances_on_deployment_success",
    "deploymentReadyOption": "deployment_ready_option",
    "greenFleetProvisioningOption": "green_fleet_provisioning_option",
    "terminationWaitTimeInMinutes": "termination_wait_time_in_minutes",
    "actionOnTimeout": "action_on_timeout",
    "waitTimeInMinutes": "wait_time_in_minutes",
    "Key": "key",
    "Value": "value",
    "Type": "type",
    "tags": "ec2_tag_filters",
    "tag_filters": "ec2_tag_filters",
    "asg": "autoscaling_groups",
    "asgs": "autoscaling_groups",
    "application": "applications",
    "deploymentConfigs": "deployment_configs",
    "onPremisesInstances": "on_premises_instances",
    "on_premise_instances": "on_premises_instances",
    "ansible_host": "ansible_host_source",
    "lifecycle_states": "autoscaling_lifecycle_states",
}
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INVALID_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")
_SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$")
# An EventBridge bus as a trigger target: the events go there with CodeDeploy's detail-types.
_EVENT_BUS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9/_.-]+$")
# Characters EC2 filter values treat as wildcards or escapes: values holding them are never pushed down.
_FILTER_SPECIAL = ("*", "?", "\\")
_MISSING = object()
# How much of a value a message shows: a value nested or repeated without end (YAML aliases) stays short.
_SHOW_DEPTH = 3
_SHOW_ITEMS = 10
_SHOW_CHARS = 200
# CodeDeploy's limit on application and deployment group names.
MAX_NAME_LENGTH = 100
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class SelectionError(ValueError):
    """An inventory source setting that CodeDeploy would refuse.

    ``key`` is the dotted path of the offending setting inside its deployment group (or
    inside the file for on-premises instances), ``value`` what was given; ``application`` and
    ``group`` name the deployment group when there is one.  ``str()`` is the full message.
    """

    def __init__(self, key, problem, value=_MISSING, application=None, group=None):
        super(SelectionError, self).__init__(problem)
        self.key = key
        self.problem = problem
        self.value = None if value is _MISSING else value
        self.has_value = value is not _MISSING
        self.application = application
        self.group = group

    @property
    def message(self):
        where = []
        if self.application is not None:
            where.append("application %s" % _quote(self.application))
        if self.group is not None:
            where.append("deployment group %s" % _quote(self.group))
        if self.key:
            where.append("key %s" % self.key)
        text = self.problem
        if self.has_value:
            if text.startswith(("is ", "must ")):
                text = "%s %s" % (_cut(_show(self.value), 2 * _SHOW_CHARS), text)
            else:
                text = "got %s; %s" % (_cut(_show(self.value), 2 * _SHOW_CHARS), text)
        if not text.endswith((".", "?")):
            text += "."
        return "%s: %s" % (", ".join(where), text) if where else text

    def __str__(self):
        return self.message


def _quote(value):
    return '"%s"' % (value,)


def _show(value, depth=0):
    """The value as YAML-like text for a message, bounded: a huge or aliased (YAML bomb) value is cut short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"%s"' % _cut(value)
    if isinstance(value, (list, tuple, dict)) and depth >= _SHOW_DEPTH:
        return "[...]" if isinstance(value, (list, tuple)) else "{...}"
    if isinstance(value, (list, tuple)):
        items = [_show(item, depth + 1) for item in value[:_SHOW_ITEMS]]
        return "[%s]" % ", ".join(items + (["... %d more" % (len(value) - _SHOW_ITEMS)] if len(value) > _SHOW_ITEMS else []))
    if isinstance(value, dict):
        items = ["%s: %s" % (_cut(str(key)), _show(item, depth + 1)) for key, item in list(value.items())[:_SHOW_ITEMS]]
        return "{%s}" % ", ".join(items + (["... %d more" % (len(value) - _SHOW_ITEMS)] if len(value) > _SHOW_ITEMS else []))
    return _cut(repr(value))


def _cut(text, limit=_SHOW_CHARS):
    return text if len(text) <= limit else text[:limit] + "... (%d characters)" % len(text)


def _suggest(word, candidates):
    """" Did you mean x?" for a misspelt word, or ""."""
    text = str(word)
    for candidate in candidates:
        if candidate.lower() == text.lower():
            return " Did you mean %s?" % candidate
    close = difflib.get_close_matches(text, list(candidates), n=1, cutoff=0.7)
    return " Did you mean %s?" % close[0] if close else ""


def _check_keys(mapping, allowed, path):
    for key in mapping:
        if key in allowed:
            continue
        hint = HINTS.get(key)
        if hint in allowed:
            fix = "Use %s: keys are snake_case here, values keep CodeDeploy's words." % hint
        else:
            fix = "Allowed keys: %s.%s" % (", ".join(allowed), _suggest(key, allowed))
        raise SelectionError(_join(path, key), "unknown key. %s" % fix)


def join_path(path, key):
    """``path.key`` or ``path[index]``: how messages name a setting."""
    return _join(path, key)


def _join(path, key):
    if not path:
        return str(key)
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key)


def _mapping(value, path, example):
    if not isinstance(value, dict):
        raise SelectionError(path, "must be a mapping like %s" % example, value)
    return value


def _list(value, path, example):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SelectionError(path, "must be a list like %s" % example, value)
    return list(value)


def _text(value, path, what="a string", allow_empty=False):
    """A tag key/value or a name: strings, and numbers written without quotes; never booleans or None."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, tuple, dict)):
        raise SelectionError(path, "must be %s; quote it in YAML if it looks like a boolean or a number" % what, value)
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise SelectionError(path, "must be %s" % what, value)
    text = str(value)
    if not allow_empty and text == "":
        raise SelectionError(path, "must not be empty", value)
    return text


def _bool(value, path):
    if not isinstance(value, bool):
        raise SelectionError(path, "must be true or false", value)
    return value


def _choice(value, choices, path, what):
    if not isinstance(value, str) or value not in choices:
        raise SelectionError(path, "is not %s. Use one of %s (CodeDeploy's words).%s" % (
            what, ", ".join(choices), _suggest(value, choices) if isinstance(value, str) else ""), value)
    return str(value)


def _minutes(value, path, maximum=MAX_WAIT_MINUTES):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > maximum:
        raise SelectionError(path, "must be a whole number of minutes from 0 to %d" % maximum, value)
    return value


def _unique_names(values, path, what, limit=None, limit_text=""):
    names = []
    for index, item in enumerate(values):
        name = _text(item, _join(path, index), what)
        if name in names:
            raise SelectionError(_join(path, index), "%s is listed twice. Remove the duplicate" % _quote(name))
        names.append(name)
    if limit is not None and len(names) > limit:
        raise SelectionError(path, "%d %s given; CodeDeploy allows at most %d%s. Remove some" % (
            len(names), what if what.endswith("s") else what + "s", limit, limit_text))
    return names


# --------------------------------------------------------------------------------------
# Tags and tag filters
# --------------------------------------------------------------------------------------
def normalize_tags(tags, path="tags"):
    """Tags as a plain ``{key: value}`` dict, from a mapping or an EC2-style ``[{Key, Value}]`` list."""
    if tags is None:
        return {}
    result = {}
    if isinstance(tags, (list, tuple)):
        for index, item in enumerate(tags):
            item = _mapping(item, _join(path, index), "{Key: Env, Value: prod}")
            key = item.get("Key", item.get("key"))
            value = item.get("Value", item.get("value", ""))
            result[_text(key, _join(_join(path, index), "key"), "a tag key")] = _text(
                value, _join(_join(path, index), "value"), "a tag value", allow_empty=True)
        return result
    tags = _mapping(tags, path, "{Env: prod, Role: web}")
    for key, value in tags.items():
        value = "" if value is None else value
        result[_text(key, path, "a tag key")] = _text(value, _join(path, key), "a tag value", allow_empty=True)
    return result


def normalize_tag_filter(spec, path="filter"):
    """``{key, value, type}`` with CodeDeploy's type; the type is inferred when omitted.

    ``type`` defaults to KEY_AND_VALUE when both ``key`` and ``value`` are given, KEY_ONLY when
    only ``key`` is, VALUE_ONLY when only ``value`` is.  The key that a type ignores is ``None``
    in the result.
    """
    spec = _mapping(spec, path, "{key: Env, value: prod, type: KEY_AND_VALUE}")
    _check_keys(spec, ("key", "value", "type"), path)
    key = spec.get("key")
    value = spec.get("value")
    if key is not None:
        key = _text(key, _join(path, "key"), "a tag key", allow_empty=True)
    if value is not None:
        value = _text(value, _join(path, "value"), "a tag value", allow_empty=True)
    kind = spec.get("type")
    if kind is None:
        if key and value is not None:
            kind = KEY_AND_VALUE
        elif key:
            kind = KEY_ONLY
        elif value is not None:
            kind = VALUE_ONLY
        else:
            raise SelectionError(path, "a tag filter needs a key, a value or both, like {key: Env, value: prod}", spec)
    kind = _choice(kind, FILTER_TYPES, _join(path, "type"), "a tag filter type")
    if kind == KEY_ONLY:
        if not key:
            raise SelectionError(_join(path, "key"), "a KEY_ONLY filter needs a non-empty key", key)
        if value not in (None, ""):
            raise SelectionError(_join(path, "value"), "a KEY_ONLY filter ignores the value. Remove the value, or use "
                                 "type KEY_AND_VALUE to match it", value)
        return {"key": key, "value": None, "type": KEY_ONLY}
    if kind == VALUE_ONLY:
        if value is None:
            raise SelectionError(_join(path, "value"), "a VALUE_ONLY filter needs a value")
        if key not in (None, ""):
            raise SelectionError(_join(path, "key"), "a VALUE_ONLY filter ignores the key. Remove the key, or use "
                                 "type KEY_AND_VALUE to match it", key)
        return {"key": None, "value": value, "type": VALUE_ONLY}
    if not key:
        raise SelectionError(_join(path, "key"), "a KEY_AND_VALUE filter needs a non-empty key", key)
    if value is None:
        raise SelectionError(_join(path, "value"), "a KEY_AND_VALUE filter needs a value (use type KEY_ONLY to match "
                             "any value of the key)")
    return {"key": key, "value": value, "type": KEY_AND_VALUE}


def normalize_tag_filters(spec, path="ec2_tag_filters"):
    """A flat list of tag filters (OR)."""
    items = _list(spec, path, "[{key: Role, value: web}]")
    return [normalize_tag_filter(item, _join(path, index)) for index, item in enumerate(items)]


def normalize_tag_set(spec, path="ec2_tag_set"):
    """A tag set: up to 3 non-empty lists of tag filters (AND across lists, OR inside one)."""
    groups = _list(spec, path, "[[{key: Env, value: prod}], [{key: Role, value: web}, {key: Role, value: api}]]")
    result = []
    for index, group in enumerate(groups):
        where = _join(path, index)
        if isinstance(group, dict):
            raise SelectionError(where, "a tag set is a list of tag groups, each a LIST of filters. Write "
                                 "[[{key: Env, value: prod}]], or use the flat form %s for one OR list"
                                 % path.replace("_set", "_filters"), group)
        items = _list(group, where, "[{key: Role, value: web}]")
        if not items:
            raise SelectionError(where, "tag group %d is empty; every tag group needs at least one filter "
                                 "(an empty group would match no instance). Remove it" % (index + 1))
        result.append([normalize_tag_filter(item, _join(where, position)) for position, item in enumerate(items)])
    if len(result) > MAX_TAG_SET_GROUPS:
        raise SelectionError(path, "%d tag groups given; CodeDeploy allows at most %d (an instance must match "
                             "one filter of every group). Merge or remove groups" % (len(result), MAX_TAG_SET_GROUPS))
    return result


def filter_matches(tag_filter, tags):
    """True when ``tags`` (a ``{key: value}`` dict) satisfy one normalized tag filter."""
    kind = tag_filter["type"]
    if kind == KEY_AND_VALUE:
        key = tag_filter["key"]
        return key in tags and tags[key] == tag_filter["value"]
    if kind == KEY_ONLY:
        return tag_filter["key"] in tags
    value = tag_filter["value"]
    for tag_value in tags.values():
        if tag_value == value:
            return True
    return False


def filters_match(tag_filters, tags):
    """The flat form: ANY filter matches.  An empty list matches nothing."""
    for tag_filter in tag_filters:
        if filter_matches(tag_filter, tags):
            return True
    return False


def tag_set_matches(tag_set, tags):
    """The tag-set form: EVERY group has a matching filter.  An empty set matches nothing."""
    if not tag_set:
        return False
    for group in tag_set:
        if not filters_match(group, tags):
            return False
    return True


def tags_selected(selection, tags, prefix="ec2"):
    """Whether ``tags`` are selected by the ``<prefix>_tag_filters`` or ``<prefix>_tag_set`` of a normalized selection."""
    tag_filters = selection.get("%s_tag_filters" % prefix) or []
    if tag_filters:
        return filters_match(tag_filters, tags)
    return tag_set_matches(selection.get("%s_tag_set" % prefix) or [], tags)


# --------------------------------------------------------------------------------------
# EC2 query plan: describe_instances filters that fetch a superset of the selection
# --------------------------------------------------------------------------------------
def pushable(text):
    """Whether ``text`` can be an EC2 filter value that matches only itself (no wildcard or escape)."""
    return bool(text) and not any(char in text for char in _FILTER_SPECIAL)


def _group_constraint(tag_filters):
    """One EC2 filter ``(name, values)`` that every instance matching ANY of ``tag_filters`` passes, or None."""
    if not tag_filters:
        return None
    keys = [f["key"] for f in tag_filters if f["type"] != VALUE_ONLY]
    values = [f["value"] for f in tag_filters if f["type"] != KEY_ONLY]
    every_key_value = all(f["type"] == KEY_AND_VALUE for f in tag_filters)
    if every_key_value and len(set(keys)) == 1 and pushable(keys[0]) and all(pushable(v) for v in values):
        return "tag:%s" % keys[0], sorted(set(values))
    if len(values) == len(tag_filters) and all(pushable(v) for v in values):
        return "tag-value", sorted(set(values))
    if len(keys) == len(tag_filters) and all(pushable(k) for k in keys):
        return "tag-key", sorted(set(keys))
    return None


def _selection_disjunct(selection, prefix="ec2"):
    """The EC2 filters (``{name: values}``, AND across names) implied by one selection, ``{}`` when none
    can be pushed down, or None when the selection can match no instance by tags."""
    tag_filters = selection.get("%s_tag_filters" % prefix) or []
    tag_set = selection.get("%s_tag_set" % prefix) or []
    if tag_filters:
        constraint = _group_constraint(tag_filters)
        return dict([constraint]) if constraint else {}
    if not tag_set:
        return None
    disjunct = {}
    for group in tag_set:
        constraint = _group_constraint(group)
        if constraint is None:
            continue
        name, values = constraint
        if name not in disjunct:
            disjunct[name] = values
        elif name.startswith("tag:"):
            # One key has one value per instance: both groups hold only for the common values.
            common = sorted(set(disjunct[name]) & set(values))
            if not common:
                return None
            disjunct[name] = common
        elif len(values) < len(disjunct[name]):
            disjunct[name] = values
    return disjunct


def _implies(narrow, wide):
    """True when every instance passing the filters ``narrow`` passes ``wide`` too."""
    for name, values in wide.items():
        if name not in narrow or not set(narrow[name]) <= set(values):
            return False
    return True


def _chunks(disjunct, max_values):
    """Split the largest value list until each query holds at most ``max_values`` filter values."""
    total = sum(len(values) for values in disjunct.values())
    if total <= max_values:
        return [disjunct]
    name = max(sorted(disjunct), key=lambda n: len(disjunct[n]))
    values = disjunct[name]
    if len(values) < 2:
        return [disjunct]
    room = max_values - (total - len(values))
    size = room if room >= 1 else (len(values) + 1) // 2
    result = []
    for start in range(0, len(values), size):
        piece = dict(disjunct)
        piece[name] = values[start:start + size]
        result.extend(_chunks(piece, max_values))
    return result


def ec2_query_plan(selections, max_values=199):
    """The ``describe_instances`` filter sets whose union covers every instance the selections can match by tags.

    ``selections`` are normalized selections (the ``selection`` part of normalized groups).
    Returns a list of ``{filter name: [values]}`` (AND across names, OR inside one), each one
    paginated ``describe_instances`` query; ``[]`` when no selection uses EC2 tags and ``[{}]``
    when one of them cannot be narrowed (a full listing).  Queries that share a filter name are
    merged into one wider query (fewer calls, a little more data); queries implied by another
    are dropped.  Each query holds at most ``max_values`` values (EC2 allows 200 per call,
    one is kept for the instance-state filter).  The caller matches exactly afterwards.
    """
    disjuncts = []
    for selection in selections:
        disjunct = _selection_disjunct(selection)
        if disjunct is None:
            continue
        if not disjunct:
            return [{}]
        disjuncts.append(disjunct)
    merged = True
    while merged:
        merged = False
        kept = []
        for disjunct in disjuncts:
            if any(_implies(disjunct, other) for other in kept):
                continue
            kept = [other for other in kept if not _implies(other, disjunct)]
            for index, other in enumerate(kept):
                common = set(other) & set(disjunct)
                if common:
                    kept[index] = dict((name, sorted(set(other[name]) | set(disjunct[name]))) for name in common)
                    merged = True
                    break
            else:
                kept.append(disjunct)
        disjuncts = kept
    plan = []
    for disjunct in sorted(disjuncts, key=lambda d: sorted(d.items())):
        plan.extend(_chunks(dict((name, list(values)) for name, values in sorted(disjunct.items())), max_values))
    return plan


# --------------------------------------------------------------------------------------
# Deployment-group settings
# --------------------------------------------------------------------------------------
def inventory_group_name(application, group):
    """``<application>_<group>`` with every character outside ``[A-Za-z0-9_]`` replaced by ``_``
    (case kept), and a leading ``_`` when it would start with a digit."""
    name = _INVALID_GROUP_CHARS.sub("_", "%s_%s" % (application, group))
    if name[:1].isdigit():
        name = "_" + name
    return name


def default_group_id(application, group):
    """A stable UUID for a group without ``deployment_group_id``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "rollout.codedeploy:%s:%s" % (application, group)))


def _normalize_style(spec, has_load_balancer):
    if spec is None:
        spec = {}
    if isinstance(spec, str):
        spec = {"type": spec}
    spec = _mapping(spec, "deployment_style", "{type: IN_PLACE, traffic_control: true}")
    _check_keys(spec, ("type", "traffic_control", "deployment_option"), "deployment_style")
    kind = _choice(spec.get("type", IN_PLACE), (IN_PLACE, BLUE_GREEN), "deployment_style.type", "a deployment type")
    traffic = spec.get("traffic_control")
    option = spec.get("deployment_option")
    if traffic is not None:
        traffic = _bool(traffic, "deployment_style.traffic_control")
    if option is not None:
        option = _choice(option, (WITH_TRAFFIC_CONTROL, WITHOUT_TRAFFIC_CONTROL), "deployment_style.deployment_option",
                         "a deployment option")
        if traffic is not None and traffic != (option == WITH_TRAFFIC_CONTROL):
            raise SelectionError("deployment_style", "traffic_control and deployment_option disagree. Give only one "
                                 "of them", spec)
        traffic = option == WITH_TRAFFIC_CONTROL
    if traffic is None:
        traffic = has_load_balancer or kind == BLUE_GREEN
    if traffic and not has_load_balancer:
        raise SelectionError("deployment_style.traffic_control", "traffic control needs a load balancer, and "
                             "load_balancer names none. Add load_balancer.target_groups, classic_elbs, haproxy_backends or "
                             "target_group_pair_info, "
                             "or set traffic_control: false")
    if kind == BLUE_GREEN and not traffic:
        raise SelectionError("deployment_style.traffic_control", "a BLUE_GREEN deployment reroutes traffic through a "
                             "load balancer, so it runs WITH_TRAFFIC_CONTROL. Set traffic_control: true", traffic)
    return {"type": kind, "deployment_option": WITH_TRAFFIC_CONTROL if traffic else WITHOUT_TRAFFIC_CONTROL,
            "traffic_control": traffic}


def _names_list(items, path, what):
    names = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            _check_keys(item, ("name",), _join(path, index))
            item = item.get("name")
        names.append(item)
    return names


_LISTENER_ARN_RE = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[^:]*:[^:]*:listener/(app|net)/[^/]+/[^/]+/[^/]+$")
_RULE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[^:]*:[^:]*:listener-rule/(app|net)/[^/]+/[^/]+/[^/]+/[^/]+$")
PAIR_EXAMPLE = ("{target_groups: [web-blue, web-green], prod_traffic_route: {listener_arns: "
                "[arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2]}}")


def rule_listener(rule_arn):
    """The listener ARN of a listener rule ARN (``...:listener-rule/app/lb/id/listener-id/rule-id``)."""
    head, _sep, _rule = str(rule_arn).rpartition("/")
    return head.replace(":listener-rule/", ":listener/", 1)


def _normalize_pair(spec, path="load_balancer.target_group_pair_info"):
    """The blue/green target group pair and the listener (default actions) and/or rules whose forward action shifts between
    them: ``{target_groups: [first, second], prod_traffic_route: {listener_arns: [...], rule_arns: [...]}}``."""
    spec = _mapping(spec, path, PAIR_EXAMPLE)
    _check_keys(spec, ("target_groups", "prod_traffic_route"), path)
    groups = _unique_names(_names_list(_list(spec.get("target_groups"), path + ".target_groups", "[web-blue, web-green]"),
                                       path + ".target_groups", "target group"), path + ".target_groups", "target group")
    if len(groups) != 2:
        raise SelectionError(path + ".target_groups", "a pair is exactly two target groups (names or ARNs), the one that serves "
                             "now and the one the green instances join, like [web-blue, web-green]; %d given" % len(groups), groups)
    route_path = path + ".prod_traffic_route"
    route = _mapping(spec.get("prod_traffic_route") or {}, route_path, "{listener_arns: [arn:aws:elasticloadbalancing:...:listener/app/...]}")
    _check_keys(route, ("listener_arns", "rule_arns"), route_path)
    listeners = _unique_names(_list(route.get("listener_arns"), route_path + ".listener_arns", "[arn:...:listener/app/web/...]"),
                              route_path + ".listener_arns", "listener ARN", MAX_LOAD_BALANCERS)
    rules = _unique_names(_list(route.get("rule_arns"), route_path + ".rule_arns", "[arn:...:listener-rule/app/web/...]"),
                          route_path + ".rule_arns", "listener rule ARN", MAX_LOAD_BALANCERS)
    for index, arn in enumerate(listeners):
        if not _LISTENER_ARN_RE.match(arn):
            raise SelectionError(_join(route_path + ".listener_arns", index), "is not a listener ARN like "
                                 "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2 "
                                 "(the listener whose default actions forward to the pair)", arn)
    for index, arn in enumerate(rules):
        if not _RULE_ARN_RE.match(arn):
            raise SelectionError(_join(route_path + ".rule_arns", index), "is not a listener rule ARN like "
                                 "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/"
                                 "f2f7dc8efc522ab2/9683b2d02a6cabee (a rule whose forward action goes to the pair)", arn)
    if not listeners and not rules:
        raise SelectionError(route_path, "names no listener and no rule: traffic shifts on the forward action of listeners "
                             "(listener_arns: their default actions) and/or listener rules (rule_arns). Add one")
    return {"target_groups": groups, "prod_traffic_route": {"listener_arns": listeners, "rule_arns": rules}}


def _normalize_load_balancer(spec):
    if spec is None:
        spec = {}
    spec = _mapping(spec, "load_balancer", "{target_groups: [web-tg], classic_elbs: []}")
    for key in ("target_group_pairs", "targetGroupPairInfoList", "target_group_pair_info_list"):
        if key in spec:
            raise SelectionError("load_balancer.%s" % key, "name one pair as a mapping: target_group_pair_info: %s" % PAIR_EXAMPLE)
    _check_keys(spec, ("target_groups", "classic_elbs", "haproxy_backends", "target_group_pair_info"), "load_balancer")
    result = {}
    for key, what in (("target_groups", "target group"), ("classic_elbs", "Classic Load Balancer")):
        items = _list(spec.get(key), "load_balancer.%s" % key, "[web-tg]")
        result[key] = _unique_names(_names_list(items, "load_balancer.%s" % key, what), "load_balancer.%s" % key,
                                    what, MAX_LOAD_BALANCERS)
    try:
        result["haproxy_backends"] = haproxy.normalize_backends(spec.get("haproxy_backends"))
    except haproxy.SettingError as exc:
        raise SelectionError(exc.path, exc.problem, *exc.value)
    if spec.get("target_group_pair_info") is not None:
        result["target_group_pair_info"] = _normalize_pair(spec["target_group_pair_info"])
        if result["target_groups"]:
            raise SelectionError("load_balancer.target_groups", "is given with target_group_pair_info: the pair's target groups are "
                                 "the ones the blue and green instances leave and join. Move the target groups into the pair, "
                                 "or remove target_group_pair_info", result["target_groups"])
    return result


def traffic_problem(load_balancer, config):
    """Why a group's load balancers cannot carry ``config``'s weighted traffic steps (a resolved DeploymentConfig), or None.

    A canary or linear config moves traffic by weight: on a target group pair (ALB weighted forward) or on HAProxy server
    weights. Plain target groups and classic load balancers have no weight: a green instance they register takes its full
    share at once."""
    routing = config.traffic_routing
    if routing is None or routing.type not in ("TimeBasedCanary", "TimeBasedLinear"):
        return None
    load_balancer = load_balancer or {}
    weighted = load_balancer.get("target_group_pair_info") or load_balancer.get("haproxy_backends")
    plain = [("target_groups", load_balancer.get("target_groups")), ("classic_elbs", load_balancer.get("classic_elbs"))]
    plain = ["%s %s" % (key, ", ".join(names)) for key, names in plain if names]
    if weighted and not plain:
        return None
    if plain:
        return ("%s shifts traffic in weighted steps (%s), and load_balancer.%s cannot carry a weight: a green instance registered "
                "there would take its full share at once. Use load_balancer.target_group_pair_info (an ALB listener's weighted "
                "forward between a blue and a green target group) or haproxy_backends, or a config without "
                "traffic_routing_config" % (config.name, routing.describe(), "; ".join(plain)))
    return ("%s shifts traffic in weighted steps (%s), which needs load_balancer.target_group_pair_info or haproxy_backends"
            % (config.name, routing.describe()))


def _normalize_alarms(spec):
    if spec is None:
        spec = {}
    if isinstance(spec, (list, tuple)):
        spec = {"names": list(spec)}
    spec = _mapping(spec, "alarms", "{enabled: true, names: [web-5xx], ignore_poll_alarm_failure: false}")
    _check_keys(spec, ("enabled", "names", "ignore_poll_alarm_failure"), "alarms")
    names = _unique_names(_list(spec.get("names"), "alarms.names", "[web-5xx]"), "alarms.names", "alarm",
                          MAX_ALARMS, " per deployment group")
    enabled = spec.get("enabled")
    enabled = bool(names) if enabled is None else _bool(enabled, "alarms.enabled")
    if enabled and not names:
        raise SelectionError("alarms.names", "alarms are enabled but no alarm is named. Add CloudWatch alarm names, "
                             "or set alarms.enabled: false")
    ignore = _bool(spec.get("ignore_poll_alarm_failure", False), "alarms.ignore_poll_alarm_failure")
    return {"enabled": enabled, "names": names, "ignore_poll_alarm_failure": ignore}


def _normalize_auto_rollback(spec):
    if spec is None:
        spec = {}
    spec = _mapping(spec, "auto_rollback", "{enabled: true, events: [DEPLOYMENT_FAILURE]}")
    _check_keys(spec, ("enabled", "events"), "auto_rollback")
    events_given = spec.get("events")
    events = []
    for index, event in enumerate(_list(events_given, "auto_rollback.events", "[DEPLOYMENT_FAILURE]")):
        event = _choice(event, AUTO_ROLLBACK_EVENTS, "auto_rollback.events[%d]" % index, "an auto-rollback event")
        if event in events:
            raise SelectionError("auto_rollback.events[%d]" % index, "%s is listed twice. Remove the duplicate" % event)
        events.append(event)
    enabled = spec.get("enabled")
    enabled = bool(events) if enabled is None else _bool(enabled, "auto_rollback.enabled")
    if enabled and not events:
        if events_given is not None:
            raise SelectionError("auto_rollback.events", "auto-rollback is enabled with no event. Name at least one of "
                                 "%s, or set auto_rollback.enabled: false" % ", ".join(AUTO_ROLLBACK_EVENTS))
        events = ["DEPLOYMENT_FAILURE"]
    return {"enabled": enabled, "events": events}


def _normalize_triggers(spec):
    items = _list(spec, "triggers", "[{name: ops, target: arn:aws:sns:us-east-1:123456789012:ops, events: [DeploymentFailure]}]")
    if len(items) > MAX_TRIGGERS:
        raise SelectionError("triggers", "%d triggers given; CodeDeploy allows at most %d per deployment group. "
                             "Remove some" % (len(items), MAX_TRIGGERS))
    result = []
    names = set()
    for index, item in enumerate(items):
        path = "triggers[%d]" % index
        item = _mapping(item, path, "{name: ops, target: arn:aws:sns:us-east-1:123456789012:ops, events: [DeploymentFailure]}")
        _check_keys(item, ("name", "target", "events"), path)
        name = _text(item.get("name"), path + ".name", "a trigger name")
        if name in names:
            raise SelectionError(path + ".name", "two triggers are named %s. Trigger names must be unique" % _quote(name))
        names.add(name)
        target = _text(item.get("target"), path + ".target", "an SNS topic ARN")
        if not (_SNS_ARN_RE.match(target) or _EVENT_BUS_ARN_RE.match(target)):
            raise SelectionError(path + ".target", "is neither an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:topic nor "
                                 "an EventBridge bus ARN like arn:aws:events:us-east-1:123456789012:event-bus/default", target)
        events = []
        for position, event in enumerate(_list(item.get("events"), path + ".events", "[DeploymentFailure]")):
            event = _choice(event, TRIGGER_EVENTS, "%s.events[%d]" % (path, position), "a trigger event")
            if event not in events:
                events.append(event)
        if not events:
            raise SelectionError(path + ".events", "a trigger needs at least one event (%s)" % ", ".join(TRIGGER_EVENTS))
        result.append({"name": name, "target": target, "events": events})
    return result


def _normalize_blue_green(spec):
    if spec is None:
        spec = {}
    spec = _mapping(spec, "blue_green", "{terminate_blue_instances_on_deployment_success: {action: TERMINATE}}")
    keys = ("terminate_blue_instances_on_deployment_success", "deployment_ready_option", "green_fleet_provisioning_option")
    _check_keys(spec, keys, "blue_green")
    path = "blue_green.terminate_blue_instances_on_deployment_success"
    terminate = _mapping(spec.get(keys[0]) or {}, path, "{action: TERMINATE, termination_wait_time_in_minutes: 60}")
    _check_keys(terminate, ("action", "termination_wait_time_in_minutes"), path)
    path = "blue_green.deployment_ready_option"
    ready = _mapping(spec.get(keys[1]) or {}, path, "{action_on_timeout: CONTINUE_DEPLOYMENT, wait_time_in_minutes: 0}")
    _check_keys(ready, ("action_on_timeout", "wait_time_in_minutes"), path)
    path = "blue_green.green_fleet_provisioning_option"
    green = _mapping(spec.get(keys[2]) or {}, path, "{action: DISCOVER_EXISTING}")
    _check_keys(green, ("action",), path)
    result = {
        "terminate_blue_instances_on_deployment_success": {
            "action": _choice(terminate.get("action", "TERMINATE"), TERMINATION_ACTIONS,
                              "blue_green.terminate_blue_instances_on_deployment_success.action", "a termination action"),
            "termination_wait_time_in_minutes": _minutes(
                terminate.get("termination_wait_time_in_minutes", 60),
                "blue_green.terminate_blue_instances_on_deployment_success.termination_wait_time_in_minutes"),
        },
        "deployment_ready_option": {
            "action_on_timeout": _choice(ready.get("action_on_timeout", "CONTINUE_DEPLOYMENT"), READY_ACTIONS,
                                         "blue_green.deployment_ready_option.action_on_timeout", "a ready action"),
            "wait_time_in_minutes": _minutes(ready.get("wait_time_in_minutes", 0),
                                             "blue_green.deployment_ready_option.wait_time_in_minutes"),
        },
        "green_fleet_provisioning_option": {
            "action": _choice(green.get("action", "DISCOVER_EXISTING"), GREEN_FLEET_ACTIONS,
                              "blue_green.green_fleet_provisioning_option.action", "a green fleet provisioning action"),
        },
    }
    ready = result["deployment_ready_option"]
    if ready["action_on_timeout"] == "STOP_DEPLOYMENT" and ready["wait_time_in_minutes"] == 0:
        raise SelectionError("blue_green.deployment_ready_option.wait_time_in_minutes", "STOP_DEPLOYMENT waits for an "
                             "explicit continue; with 0 minutes the deployment would stop at once. Give the minutes to "
                             "wait (1-%d)" % MAX_WAIT_MINUTES, 0)
    return result


def _normalize_selection(spec):
    selection = {}
    for prefix, label in (("ec2", "EC2"), ("on_premises", "on-premises")):
        filters_key, set_key = "%s_tag_filters" % prefix, "%s_tag_set" % prefix
        tag_filters = normalize_tag_filters(spec.get(filters_key), filters_key)
        tag_set = normalize_tag_set(spec.get(set_key), set_key)
        if tag_filters and tag_set:
            raise SelectionError(set_key, "%s and %s are both given; CodeDeploy selects %s instances by one of them. "
                                 "Keep %s (AND across groups) or %s (any filter)" % (
                                     filters_key, set_key, label, set_key, filters_key))
        selection[filters_key] = tag_filters
        selection[set_key] = tag_set
    selection["autoscaling_groups"] = _unique_names(
        _list(spec.get("autoscaling_groups"), "autoscaling_groups", "[web-asg]"), "autoscaling_groups",
        "Auto Scaling group", MAX_AUTOSCALING_GROUPS, " per deployment group")
    return {
        "ec2_tag_filters": selection["ec2_tag_filters"],
        "ec2_tag_set": selection["ec2_tag_set"],
        "autoscaling_groups": selection["autoscaling_groups"],
        "on_premises_tag_filters": selection["on_premises_tag_filters"],
        "on_premises_tag_set": selection["on_premises_tag_set"],
    }


def _config_definition(config):
    definition = {}
    if config.type != MOST_CONCURRENCY:  # a traffic-shifting config without its own rule keeps OneAtATime's
        definition["minimum_healthy_hosts"] = config.minimum_healthy_hosts.to_dict()
    if config.zonal_config is not None:
        definition["zonal_config"] = config.zonal_config.to_dict()
    if config.traffic_routing is not None:
        definition["traffic_routing_config"] = config.traffic_routing.to_dict()
    return definition


def normalize_custom_configs(custom_configs):
    """Validate every entry of the file's ``deployment_configs``; returns ``{name: DeploymentConfig}``."""
    if custom_configs is None:
        return {}
    if not isinstance(custom_configs, dict):
        raise SelectionError("deployment_configs", "must be a mapping of config name to "
                             "{minimum_healthy_hosts: {type: HOST_COUNT, value: 2}}", custom_configs)
    resolved = {}
    for name in custom_configs:
        try:
            resolved[str(name)] = resolve_config(str(name), custom_configs)
        except DeploymentConfigError as exc:
            raise SelectionError("deployment_configs.%s" % name, exc.message)
    return resolved


def normalize_deployment_group(application, name, spec, custom_configs=None, regions=None, default_region=None):
    """Validate one deployment group's settings and return the normalized ``codedeploy_deployment_group`` mapping.

    ``custom_configs`` is the file's ``deployment_configs``; ``regions`` the allowed regions
    (empty: any); ``default_region`` the region of a group without ``region``.  Raises
    SelectionError naming the application, the group, the key and the fix.
    """
    try:
        group = _normalize_group(str(application), str(name), spec, custom_configs, regions or [], default_region)
        if not any(group["selection"].values()):
            raise SelectionError("", "the deployment group selects no instance: it names none of %s. Add one, for "
                                 "example ec2_tag_filters: [{key: Role, value: web}]" % ", ".join(SELECTION_KEYS))
        return group
    except SelectionError as exc:
        exc.application = str(application)
        exc.group = str(name)
        raise


def _normalize_group(application, name, spec, custom_configs, regions, default_region):
    if spec is None:
        spec = {}
    spec = _mapping(spec, "", "{ec2_tag_filters: [{key: Role, value: web}], deployment_config: CodeDeployDefault.OneAtATime}")
    _check_keys(spec, GROUP_KEYS, "")
    selection = _normalize_selection(spec)
    load_balancer = _normalize_load_balancer(spec.get("load_balancer"))
    has_load_balancer = bool(load_balancer["target_groups"] or load_balancer["classic_elbs"] or load_balancer["haproxy_backends"]
                             or load_balancer.get("target_group_pair_info"))
    style = _normalize_style(spec.get("deployment_style"), has_load_balancer)
    if load_balancer.get("target_group_pair_info") and style["type"] != BLUE_GREEN:
        raise SelectionError("load_balancer.target_group_pair_info", "a target group pair shifts traffic from the instances that serve "
                             "to a green fleet, which only a BLUE_GREEN deployment has. Use load_balancer.target_groups for IN_PLACE, "
                             "or set deployment_style.type: BLUE_GREEN")
    if style["type"] == BLUE_GREEN:
        if selection["on_premises_tag_filters"] or selection["on_premises_tag_set"]:
            raise SelectionError("deployment_style.type", "BLUE_GREEN deployments replace EC2 instances; on-premises "
                                 "instances cannot take part. Remove the on-premises tags or use IN_PLACE", BLUE_GREEN)
    blue_green = _normalize_blue_green(spec.get("blue_green"))
    if style["type"] == BLUE_GREEN and blue_green["green_fleet_provisioning_option"]["action"] == "COPY_AUTO_SCALING_GROUP" \
            and len(selection["autoscaling_groups"]) != 1:
        raise SelectionError("blue_green.green_fleet_provisioning_option.action", "COPY_AUTO_SCALING_GROUP copies exactly "
                             "one Auto Scaling group, and autoscaling_groups names %d. Name exactly one, or use "
                             "DISCOVER_EXISTING" % len(selection["autoscaling_groups"]), "COPY_AUTO_SCALING_GROUP")

    config_name = spec.get("deployment_config")
    if isinstance(config_name, dict):
        raise SelectionError("deployment_config", "name a deployment config here; define custom ones under the file's "
                             "top-level deployment_configs and refer to them by name", config_name)
    try:
        config = resolve_config(config_name, custom_configs or {})
    except DeploymentConfigError as exc:
        raise SelectionError("deployment_config", exc.message)
    if config.traffic_routing is not None and style["type"] != BLUE_GREEN:
        raise SelectionError("deployment_config", "%s shifts traffic between a blue and a green fleet (%s), which only a "
                             "BLUE_GREEN deployment does; this group deploys IN_PLACE. Use a config without "
                             "traffic_routing_config, such as %s, or set deployment_style.type: BLUE_GREEN"
                             % (config.name, config.traffic_routing.describe(), DEFAULT_CONFIG_NAME), config.name)
    problem = traffic_problem(load_balancer, config)
    if problem:
        raise SelectionError("deployment_config", problem, config.name)
    configs = {} if config.predefined else {config.name: _config_definition(config)}

    group_id = spec.get("deployment_group_id")
    if group_id is None:
        group_id = default_group_id(application, name)
    else:
        try:
            group_id = str(uuid.UUID(_text(group_id, "deployment_group_id", "a UUID")))
        except ValueError:
            raise SelectionError("deployment_group_id", "is not a UUID like 0f4d5c55-6e0a-4a4b-9c6b-8b8f1c5e2d7a "
                                 "(the deploymentGroupId of an existing CodeDeploy group)", group_id)

    region = spec.get("region")
    if region is None:
        region = default_region
        if region is None:
            raise SelectionError("region", "no region: set the inventory's regions (or region / AWS_REGION), or the "
                                 "group's region")
    else:
        region = _text(region, "region", "a region name")
        if regions and region not in regions:
            raise SelectionError("region", "is not one of the inventory's regions (%s). Add it to regions or fix the "
                                 "name" % ", ".join(regions), region)

    group = spec.get("inventory_group")
    if group is None:
        group = inventory_group_name(application, name)
    else:
        group = _text(group, "inventory_group", "a group name")
        if not _IDENTIFIER_RE.match(group):
            raise SelectionError("inventory_group", "is not a valid Ansible group name (letters, digits and _, not "
                                 "starting with a digit)", group)
    return {
        "application": application,
        "name": name,
        "inventory_group": group,
        "id": group_id,
        "region": region,
        "deployment_config": config.name,
        "deployment_configs": configs,
        "deployment_style": style,
        "load_balancer": load_balancer,
        "alarms": _normalize_alarms(spec.get("alarms")),
        "auto_rollback": _normalize_auto_rollback(spec.get("auto_rollback")),
        "triggers": _normalize_triggers(spec.get("triggers")),
        "blue_green": blue_green,
        "file_exists_behavior": _choice(spec.get("file_exists_behavior", "DISALLOW"), FILE_EXISTS_BEHAVIORS,
                                        "file_exists_behavior", "a file-exists behavior"),
        "outdated_instances_strategy": _choice(spec.get("outdated_instances_strategy", "UPDATE"),
                                               OUTDATED_INSTANCES_STRATEGIES, "outdated_instances_strategy",
                                               "an outdated-instances strategy"),
        "selection": selection,
    }


def normalize_applications(applications, custom_configs=None, regions=None, default_region=None):
    """Every deployment group of the file's ``applications``: a list of normalized groups, in file order.

    Also refuses two groups that end up with the same inventory group name or id.
    """
    if applications is None:
        applications = {}
    if not isinstance(applications, dict):
        raise SelectionError("applications", "must be a mapping of application name to {deployment_groups: {...}}",
                             applications)
    normalize_custom_configs(custom_configs)
    groups = []
    seen = {}
    ids = {}
    if not applications:
        raise SelectionError("applications", "names no application, so the source would make no deployment group. Add "
                             "one like {web: {deployment_groups: {production: {ec2_tag_filters: [{key: Role, value: web}]}}}}")
    for application, app_spec in applications.items():
        where = "applications.%s" % _name(application, "applications", "an application name")
        if app_spec is None:
            app_spec = {}
        if not isinstance(app_spec, dict):
            raise SelectionError(where, "must be a mapping like {deployment_groups: {production: {...}}}", app_spec)
        _check_keys(app_spec, APPLICATION_KEYS, where)
        deployment_groups = app_spec.get("deployment_groups") or {}
        if not isinstance(deployment_groups, dict):
            raise SelectionError(where + ".deployment_groups", "must be a mapping of deployment group name to its "
                                 "settings", deployment_groups)
        if not deployment_groups:
            raise SelectionError(where + ".deployment_groups", "names no deployment group. Add one like "
                                 "{production: {ec2_tag_filters: [{key: Role, value: web}]}}, or remove the application")
        for name, spec in deployment_groups.items():
            _name(name, where + ".deployment_groups", "a deployment group name")
            group = normalize_deployment_group(application, name, spec, custom_configs, regions, default_region)
            other = seen.get(group["inventory_group"])
            if other is not None:
                raise SelectionError("inventory_group", "the inventory group name %s is also the name of application %s, "
                                     "deployment group %s. Set inventory_group on one of them" % (
                                         group["inventory_group"], _quote(other[0]), _quote(other[1])),
                                     application=str(application), group=str(name))
            seen[group["inventory_group"]] = (str(application), str(name))
            other = ids.get(group["id"])
            if other is not None:
                raise SelectionError("deployment_group_id", "application %s, deployment group %s has the same id. Each "
                                     "deployment group needs its own id" % (_quote(other[0]), _quote(other[1])),
                                     group["id"], str(application), str(name))
            ids[group["id"]] = (str(application), str(name))
            groups.append(group)
    return groups


def _name(value, path, what):
    """An application or deployment group name: text (numbers allowed), 1 to 100 characters, no control character."""
    text = _text(value, path, what)
    if len(text) > MAX_NAME_LENGTH:
        raise SelectionError(path, "%s of %d characters is too long: CodeDeploy allows %d" % (what, len(text), MAX_NAME_LENGTH),
                             text)
    for position, char in enumerate(text):
        if ord(char) < 32 or 127 <= ord(char) < 160:
            raise SelectionError(path, "%s holds the control character U+%04X at position %d. Remove it (names are "
                                 "plain text)" % (what, ord(char), position + 1), text)
    return text


def normalize_regions(regions):
    """The file's ``regions``: region names like us-east-1, each once."""
    result = []
    for index, region in enumerate(_list(regions, "regions", "[us-east-1, eu-west-1]")):
        region = _text(region, "regions[%d]" % index, "a region name")
        if not _REGION_RE.match(region):
            raise SelectionError("regions[%d]" % index, "is not a region name like us-east-1", region)
        if region not in result:
            result.append(region)
    return result


def normalize_on_premises_instances(spec, default_region=None):
    """The file's ``on_premises_instances``: ``[{name, address, tags, region}]`` with unique names."""
    items = _list(spec, "on_premises_instances", "[{name: rack1-web1, address: 192.0.2.11, tags: {Role: web}}]")
    result = []
    names = set()
    for index, item in enumerate(items):
        path = "on_premises_instances[%d]" % index
        item = _mapping(item, path, "{name: rack1-web1, address: 192.0.2.11, tags: {Role: web}}")
        _check_keys(item, ON_PREMISES_KEYS, path)
        name = _text(item.get("name"), path + ".name", "the instance name")
        if name in names:
            raise SelectionError(path + ".name", "two on-premises instances are named %s. Names must be unique" % _quote(name))
        names.add(name)
        address = _text(item.get("address", name), path + ".address", "a host name or IP address")
        region = item.get("region")
        region = default_region if region is None else _text(region, path + ".region", "a region name")
        result.append({"name": name, "address": address, "tags": normalize_tags(item.get("tags"), path + ".tags"),
                       "region": region})
    return result


def normalize_lifecycle_states(states):
    """The Auto Scaling lifecycle states that let an ASG member into its deployment group."""
    items = _list(states, "autoscaling_lifecycle_states", "[InService]")
    result = []
    for index, state in enumerate(items):
        state = _choice(state, LIFECYCLE_STATES, "autoscaling_lifecycle_states[%d]" % index, "an Auto Scaling lifecycle state")
        if state not in result:
            result.append(state)
    if not result:
        raise SelectionError("autoscaling_lifecycle_states", "names no state, so no Auto Scaling member would ever be "
                             "selected. Use [InService] (the default)")
    return result
