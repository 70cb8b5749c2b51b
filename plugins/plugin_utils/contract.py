# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The input contract of the deploy, rollback and stop playbooks: every extra var they accept, its type
and its choices, checked in one place before a deployment is opened.

A refusal is an ``InputError`` whose message names the input, the value given and what is accepted;
nothing is recorded and no host is touched when one is raised. docs/deploy.md lists the same inputs
for users. Controller-only."""

from __future__ import annotations

import json
import re

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST")
#: "autoscaling": a scale-out deployment of the group's last good revision to new instances (playbooks/scale_out.yml).
CREATORS = ("user", "rollback", "autoscaling")
DEPLOYMENT_ID = re.compile(r"^d-[A-Z0-9]{9}$")
LEASE_RANGE = (1, 86400)
TIMEOUT_RANGE = (1, 3600)
HOST_LOCK_WAIT_RANGE = (0, 86400)
#: codedeploy_ready_wait_seconds: at most CodeDeploy's longest ready wait (2 days).
READY_WAIT_RANGE = (1, 172800)
#: codedeploy_traffic_interval_seconds: 0 (no wait between steps) up to 2 days, the longest configurable interval.
TRAFFIC_INTERVAL_RANGE = (0, 172800)
TEXT_LIMIT = 4096
CONFIG_NAME_LIMIT = 100
# The extra var of the playbooks that sets a task argument, when the two names differ: messages and examples use it.
EXTRA_VARS = {"lease_seconds": "codedeploy_lease_seconds", "connect_timeout": "codedeploy_aws_connect_timeout",
              "read_timeout": "codedeploy_aws_read_timeout", "host_lock_wait": "codedeploy_host_lock_wait",
              "ledger": "codedeploy_ledger", "reuse_deployment": "deployment_id", "ready_wait_seconds": "codedeploy_ready_wait_seconds",
              "green_fleet_timeout": "codedeploy_green_fleet_timeout", "traffic_interval_seconds": "codedeploy_traffic_interval_seconds"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SHOW_DEPTH = 3
_SHOW_ITEMS = 10
_SHOW_CHARS = 200
_TRUE = ("yes", "on", "true", "1", "y", "t")
_FALSE = ("no", "off", "false", "0", "n", "f")
AWS_INPUTS = ("region", "endpoint_url", "profile", "access_key", "secret_key", "session_token", "validate_certs",
              "connect_timeout", "read_timeout")


class InputError(Exception):
    """Bad input; ``message`` names the input, the value and what is accepted."""

    code = "INVALID_INPUT"

    def __init__(self, message, field=None):
        super(InputError, self).__init__(message)
        self.message = message
        self.field = field


def _show(value):
    """The value as Python-like text for a message, bounded by depth, items and length: a huge or aliased
    (YAML bomb) value is cut short instead of being expanded; control characters are shown escaped."""
    text = _shown(value, 0)
    return text if isinstance(value, str) or len(text) <= 2 * _SHOW_CHARS else text[:2 * _SHOW_CHARS] + "... (cut short)"


def _shown(value, depth):
    if isinstance(value, str):
        return "'%s'" % _cut(_CONTROL.sub(lambda found: "\\x%02x" % ord(found.group(0)), value[:4 * _SHOW_CHARS]), len(value))
    if isinstance(value, (list, tuple, dict)) and depth >= _SHOW_DEPTH:
        return "[...]" if isinstance(value, (list, tuple)) else "{...}"
    if isinstance(value, (list, tuple)):
        items = [_shown(item, depth + 1) for item in value[:_SHOW_ITEMS]]
        return "[%s]" % ", ".join(items + (["... %d more" % (len(value) - _SHOW_ITEMS)] if len(value) > _SHOW_ITEMS else []))
    if isinstance(value, dict):
        items = ["%s: %s" % (_shown(key, _SHOW_DEPTH), _shown(item, depth + 1)) for key, item in list(value.items())[:_SHOW_ITEMS]]
        return "{%s}" % ", ".join(items + (["... %d more" % (len(value) - _SHOW_ITEMS)] if len(value) > _SHOW_ITEMS else []))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** _SHOW_CHARS:
        return "(a number of about %d digits)" % int(abs(value).bit_length() * 0.30103)  # str() refuses over 4300 digits
    text = repr(value) if isinstance(value, (bool, int, float)) or value is None else "<%s>" % type(value).__name__
    return _cut(text, len(text))


def _cut(text, length):
    """``text`` (the start of a value ``length`` characters long) cut to _SHOW_CHARS, saying how long the value is."""
    return text if length <= _SHOW_CHARS and len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "... (%d characters)" % length


def _example(field, value):
    """``name=value`` for -e, with the playbooks' extra var name; a nested field as JSON."""
    parts = field.split(".")
    name = EXTRA_VARS.get(parts[0], parts[0])
    if len(parts) == 1:
        return name + "=" + value
    nested = {"true": True, "false": False}.get(value, value)
    for part in reversed(parts[1:]):
        nested = {part: nested}
    return "'%s'" % json.dumps({name: nested})


def _refuse(field, value, accepted, example=None):
    message = "%s=%s is not accepted: %s" % (field, _show(value), accepted)
    extra = EXTRA_VARS.get(field.split(".")[0])
    if extra:
        message += "; the playbooks take it as the extra var %s" % extra
    if example:
        message += " (for example -e %s)" % example
    raise InputError(message, field)


# ------------------------------------------------------------------------------ scalar types
def as_bool(field, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    return _refuse(field, value, "a boolean, true or false", _example(field, "true"))


def as_int(field, value, low=None, high=None):
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.match(r"^\s*\d+\s*$", value):
        number = int(value)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        bounds = "a whole number" + (" from %d to %d" % (low, high) if low is not None and high is not None else "")
        return _refuse(field, value, bounds, _example(field, str(max(low if low is not None else 1, 1))))
    return number


def as_text(field, value, pattern=None, accepted=None, limit=TEXT_LIMIT, lines=False):
    """A non-empty string of at most ``limit`` characters, without control characters (tab and newline allowed with ``lines``)."""
    if not isinstance(value, str) or not value.strip():
        return _refuse(field, value, accepted or "a non-empty string")
    value = value.strip()
    if len(value) > limit:
        return _refuse(field, value, "at most %d characters, not %d" % (limit, len(value)))
    control = _CONTROL.search(value.replace("\t", " ").replace("\n", " ") if lines else value)
    if control:
        return _refuse(field, value, "text without control characters; it holds %r at position %d" % (control.group(0), control.start()))
    if pattern is not None and not pattern.match(value):
        return _refuse(field, value, accepted or "text matching %s" % pattern.pattern)
    return value


def as_choice(field, value, choices):
    if isinstance(value, str) and value.strip() in choices:
        return value.strip()
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in choices:
            return upper
    return _refuse(field, value, "one of %s" % ", ".join(choices), _example(field, choices[0]))


def as_names(field, value):
    """A list of names: a list of strings, or one comma-separated string (Ansible's list convention)."""
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item.strip() for item in value):
        return _refuse(field, value, "a list of names", "'{\"%s\": [\"a\", \"b\"]}'" % EXTRA_VARS.get(field, field))
    return [item.strip() for item in value]


def _mapping(field, value, keys, example):
    if not isinstance(value, dict):
        _refuse(field, value, "a mapping with the keys %s" % ", ".join(keys), example)
    unknown = [k for k in value if k not in keys]
    if unknown:
        shown = ", ".join(_show(k)[1:-1] if isinstance(k, str) else _show(k) for k in unknown[:_SHOW_ITEMS])
        more = " and %d more" % (len(unknown) - _SHOW_ITEMS) if len(unknown) > _SHOW_ITEMS else ""
        raise InputError("%s has the unknown key(s) %s%s; the keys are %s (for example -e %s)" % (
            field, shown, more, ", ".join(keys), example), field)
    return value


# ------------------------------------------------------------------------------ structured options
def auto_rollback(value, field="auto_rollback"):
    """``{enabled, events}``; a boolean is the short form (true: roll back on DEPLOYMENT_FAILURE)."""
    example = "'{\"%s\": {\"enabled\": true, \"events\": [\"DEPLOYMENT_FAILURE\"]}}'" % field
    if not isinstance(value, dict):
        try:
            enabled = as_bool(field, value)
        except InputError:
            return _refuse(field, value, "true, false, or a mapping {enabled: bool, events: [%s]}" % ", ".join(ROLLBACK_EVENTS),
                           example)
        return {"enabled": enabled, "events": ["DEPLOYMENT_FAILURE"] if enabled else []}
    _mapping(field, value, ("enabled", "events"), example)
    enabled = as_bool(field + ".enabled", value.get("enabled", True))
    events = value.get("events")
    events = ["DEPLOYMENT_FAILURE"] if events is None and enabled else as_names(field + ".events", events or [])
    return {"enabled": enabled, "events": [as_choice(field + ".events", event, ROLLBACK_EVENTS) for event in events]}


def alarms(value, field="alarms"):
    """``{enabled, names, ignore_poll_alarm_failure}``; a list of alarm names is the short form (enabled)."""
    example = "'{\"%s\": {\"enabled\": true, \"names\": [\"web-5xx\"]}}'" % field
    if isinstance(value, (list, tuple)):
        return {"enabled": True, "names": as_names(field, value), "ignore_poll_alarm_failure": False}
    if not isinstance(value, dict):
        return _refuse(field, value, "a mapping {enabled: bool, names: [alarm names], ignore_poll_alarm_failure: bool} "
                       "or a list of alarm names", example)
    _mapping(field, value, ("enabled", "names", "ignore_poll_alarm_failure"), example)
    names = as_names(field + ".names", value.get("names") or [])
    return {"enabled": as_bool(field + ".enabled", value.get("enabled", bool(names))), "names": names,
            "ignore_poll_alarm_failure": as_bool(field + ".ignore_poll_alarm_failure", value.get("ignore_poll_alarm_failure", False))}


def deployment_config(value, custom_configs, field="deployment_config"):
    name = as_text(field, value, accepted="a deployment configuration name such as %s" % configs.ONE_AT_A_TIME, limit=CONFIG_NAME_LIMIT)
    try:
        configs.resolve_config(name, custom_configs or {})
    except configs.DeploymentConfigError as exc:
        raise InputError("%s=%s is not accepted: %s" % (field, _show(value), exc.message), field)
    return name


def revision(value):
    """The revision's shape (a location string or a mapping with s3, url, git or path); the content is checked on fetch."""
    if isinstance(value, str) and value.strip():
        return as_text("revision", value)
    if isinstance(value, dict) and len([key for key in ("s3", "url", "git", "path") if key in value]) == 1:
        return _revision_mapping(value)
    if value is None or value == "":
        message = ("no revision given: pass -e revision=<s3://bucket/key | a revision directory | a zip/tar/tgz bundle> "
                   "or a mapping with s3 (bucket, key), url (with sha256) or git (repo, commit)")
        raise InputError(message, "revision")
    return _refuse("revision", value, "s3://bucket/key[?versionId=...], a local revision directory or bundle, or a mapping with "
                   "exactly one of s3, url (with sha256), git or path", "revision=s3://my-bucket/app/app-1.0.tgz")


REVISION_KEYS = {"s3": ("s3",), "url": ("url", "sha256"), "git": ("git",), "path": ("path",)}
REVISION_PARTS = {"s3": (("bucket", "key"), ("version", "etag")), "git": (("repo", "commit"), ())}
REVISION_EXAMPLES = {"s3": "'{\"revision\": {\"s3\": {\"bucket\": \"my-bucket\", \"key\": \"app/app-1.0.tgz\"}}}'",
                     "git": "'{\"revision\": {\"git\": {\"repo\": \"https://git.example.com/app.git\", \"commit\": \"<sha>\"}}}'",
                     "url": "'{\"revision\": {\"url\": \"https://example.com/app.tgz\", \"sha256\": \"<hex>\"}}'",
                     "path": "'{\"revision\": {\"path\": \"/srv/app\"}}'"}


def _revision_mapping(value):
    """A revision mapping's keys and the types of its parts, so that fetching it cannot stumble on a wrong type."""
    kind = next(key for key in ("s3", "url", "git", "path") if key in value)
    _mapping("revision", value, REVISION_KEYS[kind], REVISION_EXAMPLES[kind])
    if kind in REVISION_PARTS:
        required, optional = REVISION_PARTS[kind]
        part = _mapping("revision." + kind, value[kind], required + optional, REVISION_EXAMPLES[kind])
        for key in required:
            as_text("revision.%s.%s" % (kind, key), part.get(key), accepted="a non-empty string (revision.%s needs %s)" % (
                kind, " and ".join(required)))
        for key in optional:
            if part.get(key) is not None:
                as_text("revision.%s.%s" % (kind, key), part[key])
    else:
        for key in REVISION_KEYS[kind]:
            as_text("revision." + key, value.get(key), accepted="a non-empty string")
    return value


# ------------------------------------------------------------------------------ deployment groups
def deployment_group(name, groups, plugin_groups):
    """The inventory group ``name`` when the codedeploy inventory plugin made it a deployment group."""
    real = sorted(plugin_groups or ())
    listing = ", ".join(real) if real else "none: add an inventory source <name>.codedeploy.yml read by rollout.codedeploy.codedeploy"
    if name is not None and not isinstance(name, str):
        return _refuse("deployment_group", name, "one group name (a string); the deployment groups of this inventory are: %s" % listing,
                       "deployment_group=%s" % (real[0] if real else "web_production"))
    if name is not None and (len(name) > TEXT_LIMIT or _CONTROL.search(name)):
        as_text("deployment_group", name)
    if not isinstance(name, str) or not name.strip():
        raise InputError("no deployment_group given: pass -e deployment_group=<application>_<group>; the deployment groups of "
                         "this inventory are: %s" % listing, "deployment_group")
    name = name.strip()
    if name not in real:
        what = "an inventory group, but not a deployment group made by the rollout.codedeploy.codedeploy inventory plugin" \
            if name in (groups or {}) else "not a group of this inventory"
        raise InputError("deployment_group=%s is %s. The deployment groups of this inventory are: %s" % (_show(name), what, listing),
                         "deployment_group")
    return name


# ------------------------------------------------------------------------------ the green fleet of a blue/green deployment
#: Host variables that may hold a host's EC2 instance id, in the order they are read: the codedeploy inventory plugin's, then
#: amazon.aws.aws_ec2's (``instance_id``, or ``ec2_instance_id`` when composed).
INSTANCE_ID_VARS = ("codedeploy_instance_id", "instance_id", "ec2_instance_id")
GREEN_EXAMPLE = "green_hosts=web_green"


def _style(settings):
    return ((settings or {}).get("deployment_style") or {}).get("type") or "IN_PLACE"


def green_hosts(value, settings, deployment_group_name, groups, hostvars):
    """The green fleet named by ``green_hosts`` (inventory group names): ``(names, [{host, instance_id, zone, role}])``.

    Required for a BLUE_GREEN group, refused for any other; every green host must be outside the deployment group (a blue
    host cannot also be green) and have an EC2 instance id in its host variables."""
    style = _style(settings)
    copies = (((settings or {}).get("blue_green") or {}).get("green_fleet_provisioning_option") or {}).get("action") == "COPY_AUTO_SCALING_GROUP"
    if copies and style == "BLUE_GREEN":
        if value not in (None, "", []):
            raise InputError("green_hosts=%s is not accepted: deployment group %s makes its green fleet by copying its Auto Scaling group "
                             "(green_fleet_provisioning_option COPY_AUTO_SCALING_GROUP), so there are no existing green hosts to name. "
                             "Leave green_hosts out, or set the group's green_fleet_provisioning_option.action to DISCOVER_EXISTING to "
                             "deploy to existing instances" % (_show(value), deployment_group_name), "green_hosts")
        return None, None
    if value in (None, "", []):
        if style == "BLUE_GREEN":
            raise InputError("deployment group %s is BLUE_GREEN: its deployment needs the green fleet. Pass the inventory group (or "
                             "groups) of the green instances with -e %s; its hosts get the revision and take over the traffic of "
                             "the group's hosts" % (deployment_group_name, GREEN_EXAMPLE), "green_hosts")
        return None, None
    names = as_names("green_hosts", value)
    if style != "BLUE_GREEN":
        raise InputError("green_hosts=%s is not accepted: deployment group %s is %s, and only a BLUE_GREEN group has a green fleet. "
                         "Leave green_hosts out, or set deployment_style.type: BLUE_GREEN in the inventory source" % (
                             _show(value), deployment_group_name, style), "green_hosts")
    groups = groups or {}
    hostvars = hostvars or {}
    blue = set(groups.get(deployment_group_name) or ())
    fleet, seen = [], set()
    for name in names:
        if name not in groups:
            raise InputError("green_hosts=%s is not accepted: %s is not a group of this inventory. Name an inventory group whose "
                             "hosts are the green instances (for example a second deployment group of the codedeploy inventory "
                             "source that selects them by tag)" % (_show(value), _show(name)), "green_hosts")
        if not groups.get(name):
            raise InputError("green_hosts=%s is not accepted: inventory group %s has no hosts; the green fleet must be running "
                             "instances. Check the tags that select them" % (_show(value), _show(name)), "green_hosts")
        for host in groups[name]:
            if host in seen:
                continue
            seen.add(host)
            if host in blue or name == deployment_group_name:
                raise InputError("green_hosts=%s is not accepted: %s is in deployment group %s, so it is a blue (original) host; "
                                 "a host cannot be blue and green. Select the green instances by a tag the group's hosts do not "
                                 "carry" % (_show(value), host, deployment_group_name), "green_hosts")
            host_vars = hostvars.get(host) or {}
            instance_id = next((host_vars.get(key) for key in INSTANCE_ID_VARS if host_vars.get(key)), None)
            if not instance_id:
                raise InputError("green_hosts=%s is not accepted: green host %s has no EC2 instance id in its host variables (%s). "
                                 "Take the green group from the rollout.codedeploy.codedeploy or amazon.aws.aws_ec2 inventory plugin, "
                                 "or set one of these variables" % (_show(value), host, ", ".join(INSTANCE_ID_VARS)), "green_hosts")
            zone = host_vars.get("codedeploy_availability_zone") or (host_vars.get("placement") or {}).get("availability_zone")
            fleet.append({"host": host, "instance_id": str(instance_id), "zone": zone, "role": "green"})
    return names, fleet


# ------------------------------------------------------------------------------ the playbooks' inputs
def start_request(args, settings, groups, plugin_groups, hostvars=None):
    """The checked inputs of ``state=started`` (deploy and rollback), as a plain dict of typed values."""
    request = {"deployment_group": deployment_group(args.get("deployment_group"), groups, plugin_groups)}
    request["reuse_deployment"] = _optional(args, "reuse_deployment", lambda f, v: as_text(f, v, DEPLOYMENT_ID, "a deployment id d-XXXXXXXXX"))
    request["rollback_of"] = _optional(args, "rollback_of", lambda f, v: as_text(f, v, DEPLOYMENT_ID, "a deployment id d-XXXXXXXXX"))
    request["creator"] = as_choice("creator", args.get("creator") or "user", CREATORS)
    if request["creator"] == "rollback" and not request["reuse_deployment"]:
        raise InputError("a rollback needs the deployment to roll back to: pass -e deployment_id=d-XXXXXXXXX "
                         "(rollout.codedeploy.deployment_info lists the group's deployments)", "deployment_id")
    request["revision"] = None if request["reuse_deployment"] else revision(args.get("revision"))
    request["deployment_config"] = _optional(args, "deployment_config", lambda f, v: deployment_config(v, settings.get("deployment_configs"), f))
    request["file_exists_behavior"] = _optional(args, "file_exists_behavior", lambda f, v: as_choice(f, v, FILE_EXISTS_BEHAVIORS))
    for flag in ("ignore_application_stop_failures", "update_outdated_instances_only"):
        request[flag] = _optional(args, flag, as_bool)
    request["auto_rollback"] = _optional(args, "auto_rollback", lambda f, v: auto_rollback(v, f))
    request["alarms"] = _optional(args, "alarms", lambda f, v: alarms(v, f))
    request["description"] = _optional(args, "description", _description)
    request["lease_seconds"] = _optional(args, "lease_seconds", lambda f, v: as_int(f, v, *LEASE_RANGE))
    request["deployment_root"] = _optional(args, "deployment_root", _absolute_path)
    request["max_revisions"] = _optional(args, "max_revisions", lambda f, v: as_int(f, v, 1, 1000))
    request["host_lock_wait"] = _optional(args, "host_lock_wait", lambda f, v: as_int(f, v, *HOST_LOCK_WAIT_RANGE))
    request["only_hosts"] = _optional(args, "only_hosts", as_names)
    if _style(settings) == "BLUE_GREEN":
        if request["reuse_deployment"]:
            raise InputError("deployment group %s is BLUE_GREEN: it is rolled back by deploying the earlier revision to a green "
                             "fleet (-e revision=... -e %s), not by redeploying archives on its hosts" % (
                                 request["deployment_group"], GREEN_EXAMPLE), "deployment_id")
        if request["update_outdated_instances_only"]:
            raise InputError("update_outdated_instances_only=true is not accepted for BLUE_GREEN group %s: every green host gets "
                             "the revision. Leave it out" % request["deployment_group"], "update_outdated_instances_only")
    request["ready_wait_seconds"] = _optional(args, "ready_wait_seconds", lambda f, v: as_int(f, v, *READY_WAIT_RANGE))
    if request["ready_wait_seconds"] is not None and _ready_action(settings) != "STOP_DEPLOYMENT":
        raise InputError("codedeploy_ready_wait_seconds=%s is only for a BLUE_GREEN group whose blue_green.deployment_ready_option."
                         "action_on_timeout is STOP_DEPLOYMENT; deployment group %s %s. Leave it out" % (
                             request["ready_wait_seconds"], request["deployment_group"],
                             "is %s" % _style(settings) if _style(settings) != "BLUE_GREEN" else "reroutes at once (CONTINUE_DEPLOYMENT)"),
                         "ready_wait_seconds")
    request["green_fleet_timeout"] = _optional(args, "green_fleet_timeout", lambda f, v: as_int(f, v, *LEASE_RANGE))
    request["traffic_interval_seconds"] = _optional(args, "traffic_interval_seconds", lambda f, v: as_int(f, v, *TRAFFIC_INTERVAL_RANGE))
    if request["traffic_interval_seconds"] is not None:
        _check_traffic_interval(request, settings)
    request["green_hosts"], request["green_fleet"] = green_hosts(args.get("green_hosts"), settings, request["deployment_group"], groups,
                                                                 hostvars)
    request["aws"] = aws_settings(args)
    return request


def _check_traffic_interval(request, settings):
    """codedeploy_traffic_interval_seconds only for a BLUE_GREEN deployment whose config shifts traffic in steps."""
    name = request["deployment_config"] or settings.get("deployment_config") or configs.ONE_AT_A_TIME
    try:
        steps = configs.traffic_steps(name, settings.get("deployment_configs") or {})
    except configs.DeploymentConfigError:
        steps = [(100, 0)]
    if _style(settings) == "BLUE_GREEN" and len(steps) > 1:
        return
    why = ("deployment group %s is %s" % (request["deployment_group"], _style(settings)) if _style(settings) != "BLUE_GREEN" else
           "deployment config %s moves all traffic at once" % name)
    raise InputError("codedeploy_traffic_interval_seconds=%s is only for a BLUE_GREEN deployment whose deployment config shifts traffic "
                     "in steps (traffic_routing_config TimeBasedCanary or TimeBasedLinear, such as Rollout.Canary10Percent5Minutes); %s. "
                     "Leave it out, or pass -e deployment_config=<a canary or linear config>" % (request["traffic_interval_seconds"], why),
                     "traffic_interval_seconds")


def stop_request(args):
    deployment_id = args.get("deployment_id")
    if deployment_id in (None, ""):
        raise InputError("no deployment_id given: pass -e deployment_id=d-XXXXXXXXX (rollout.codedeploy.deployment_info lists "
                         "the deployments)", "deployment_id")
    return {"deployment_id": as_text("deployment_id", deployment_id, DEPLOYMENT_ID, "a deployment id d-XXXXXXXXX"),
            "rollback": as_bool("rollback", args.get("rollback", False)), "force": as_bool("force", args.get("force", False)),
            "aws": aws_settings(args)}


def continue_request(args, groups=None, plugin_groups=None):
    """The checked inputs of ``state=continue_requested`` (the continue playbook): the deployment by its id, or the deployment
    group (an inventory group, as for deploy) whose deployment waits in status Ready."""
    deployment_id = args.get("deployment_id")
    if deployment_id in (None, "") and args.get("deployment_group") not in (None, ""):
        return {"deployment_id": None, "deployment_group": deployment_group(args["deployment_group"], groups or {}, plugin_groups or {}),
                "aws": aws_settings(args)}
    if deployment_id in (None, ""):
        raise InputError("no deployment_id given: pass -e deployment_id=d-XXXXXXXXX, the blue/green deployment that waits in status "
                         "Ready (rollout.codedeploy.deployment_info lists the deployments), or -i <inventory> -e deployment_group=<group> "
                         "for the deployment of that group that waits", "deployment_id")
    return {"deployment_id": as_text("deployment_id", deployment_id, DEPLOYMENT_ID, "a deployment id d-XXXXXXXXX"),
            "deployment_group": None, "aws": aws_settings(args)}


def _ready_action(settings):
    if _style(settings) != "BLUE_GREEN":
        return None
    return (((settings.get("blue_green") or {}).get("deployment_ready_option") or {}).get("action_on_timeout")) or "CONTINUE_DEPLOYMENT"


def aws_settings(args):
    """The AWS options given to the task, typed (secrets included; never put them in a plan)."""
    result = {}
    for key in AWS_INPUTS:
        value = args.get(key)
        if value in (None, ""):
            continue
        if key in ("connect_timeout", "read_timeout"):
            value = as_int(key, value, *TIMEOUT_RANGE)
        elif key == "validate_certs":
            value = as_bool(key, value)
        else:
            value = as_text(key, value)
        result[key] = value
    return result


def _optional(args, field, check):
    value = args.get(field)
    if value is None:
        return None
    return check(field, value)


def _absolute_path(field, value):
    value = as_text(field, value, accepted="an absolute path on the hosts")
    if not value.startswith("/") or "\x00" in value or any(part == ".." for part in value.split("/")):
        return _refuse(field, value, "an absolute path on the hosts without '..'", "%s=/opt/codedeploy-agent/deployment-root" % field)
    return value.rstrip("/") or "/"


def _description(field, value):
    """Text recorded in the ledger: a string (a number is taken as its text), one or more lines, no control characters."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return as_text(field, value, accepted="text (a string)", lines=True)
