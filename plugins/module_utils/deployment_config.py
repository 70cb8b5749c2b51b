# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment configurations for in-place EC2/on-premises deployments: the one place for the arithmetic.

Everything that needs to know how many instances may be deployed at once, whether a
deployment may start, in which order instances go, or whether a rollout continues after a
batch, calls this file.  It is pure Python (standard library only, Python 3.8+), so the
controller, modules on a host, the inventory plugin and benchmarks can all import it.

Vocabulary
----------
``minimum``
    The minimum number of healthy hosts, as a count.  FLEET_PERCENT is converted once, at the
    start of a deployment, from the number of instances in the deployment, rounding UP.
``healthy``
    Instances that count towards the minimum right now: instances that succeeded in this
    deployment plus instances not yet touched that were healthy at the start.  An instance
    being deployed to is not healthy; a failed one is not; a stopped EC2 instance is reported
    as failed by the caller.
``pace``
    The configuration's nominal batch size: ``fleet_size - minimum`` (HalfAtATime on 9
    instances: 4; OneAtATime: 1; AllAtOnce: everything).

Rules, as implemented (see each function for details)
-----------------------------------------------------
1. Predefined configs: AllAtOnce is HOST_COUNT 0; HalfAtATime is FLEET_PERCENT 50;
   OneAtATime (the default) is MOST_CONCURRENCY 1, the type GetDeploymentConfig reports for
   it, meaning "all instances but one" (``minimum = fleet_size - 1``).  Users cannot choose
   MOST_CONCURRENCY for custom configs, as in CodeDeploy.
2. Start check: the deployment fails at once with HEALTH_CONSTRAINTS_INVALID when
   ``minimum >= fleet_size`` (even a fully healthy fleet could not take a single instance
   offline: HalfAtATime on 1 instance, FLEET_PERCENT 95 of 10, HOST_COUNT 3 of 3), and with
   NO_INSTANCES for an empty fleet.  Instances that are unhealthy at the start (their last
   deployment failed) do not count as healthy, but they do not block the start either: they
   are deployed first and taking them offline costs nothing, so a fleet whose only problem is
   earlier failures can always be repaired by redeploying.  This is the careful reading of
   "healthy <= minimum fails at the start": with every instance healthy it is exactly that
   rule; OneAtATime on a single instance (minimum 0) and AllAtOnce (minimum 0) always start.
3. Order: unhealthy, unknown revision, old revision, current revision; input order is kept
   inside each class.
4. Batch size: ``min(remaining, pace, unhealthy_at_front + max(healthy - minimum, 0))``.
   With every instance healthy that is CodeDeploy's "healthy - minimum"; unhealthy instances
   at the front of the queue ride along for free, but never beyond the configured pace.
   The play runs the static plan's ``serial``; when failures shrink the allowance below
   the next planned batch, the controller stops or re-plans (see DeploymentPlan).
5. After each batch: the rollout goes on while another batch can start (rule 4 gives at
   least one instance) and the minimum is still reachable (``succeeded + pending >=
   max(minimum, 1)``); otherwise it stops with HEALTH_CONSTRAINTS.  When nothing is pending
   the deployment succeeds iff ``succeeded >= max(minimum, 1)``.  This is what makes failures
   on the final instance(s) tolerated (OneAtATime: a failure on the last instance still
   succeeds) and why at least one instance must succeed even with a minimum of 0.
6. Zonal configs (unverified in CodeDeploy's public material, decided here): zones go one
   at a time in sorted Availability Zone name order, except that zones holding unhealthy
   instances go before the others (rule 3 applied to zones: repairs free health capacity
   before a healthy zone is touched, and a broken zone is no worse off as the first zone);
   instances without a zone form one group placed after the named zones of its kind.  A
   zone's minimum is computed from the number of instances in that zone (FLEET_PERCENT
   rounds up, like the fleet minimum; the default is FLEET_PERCENT 0) and bounds batches
   inside the zone exactly as rule 4 does for the fleet; both bounds apply, and only the
   current zone's unhealthy instances count as "at the front".  The rollout stops (rule 5)
   when either bound leaves no room.  The final success rule stays fleet-wide.
   A zone whose minimum is >= its size fails the start check (HEALTH_CONSTRAINTS_INVALID,
   naming the zone).  After each zone except the last, the rollout bakes:
   first_zone_monitor_duration_in_seconds after the first zone (default: the monitor
   duration), monitor_duration_in_seconds after the others (default 0).  Batches never span
   two zones.  Unhealthy-first ordering applies inside each zone.
7. Traffic routing (beyond CodeDeploy, which shifts traffic gradually only for Lambda and ECS;
   decided here, see docs/traffic-shifting.md): a config may carry a ``traffic_routing_config``
   in CodeDeploy's shape (AllAtOnce, TimeBasedCanary, TimeBasedLinear) saying how a blue/green
   deployment moves traffic from the blue fleet to the green one.  ``traffic_steps`` turns it
   into ``[(green_percent, wait_seconds_after), ...]``.  Predefined ones are named
   ``Rollout.*``; a config without traffic routing moves all traffic at once.  Such a config
   still has a minimum healthy hosts rule (OneAtATime's when not given) for the in-place part.
"""

from __future__ import absolute_import, division, print_function

import difflib
import re
from collections import namedtuple

__metaclass__ = type  # pylint: disable=invalid-name

HOST_COUNT = "HOST_COUNT"
FLEET_PERCENT = "FLEET_PERCENT"
MOST_CONCURRENCY = "MOST_CONCURRENCY"
USER_TYPES = (HOST_COUNT, FLEET_PERCENT)

ALL_AT_ONCE = "CodeDeployDefault.AllAtOnce"
HALF_AT_A_TIME = "CodeDeployDefault.HalfAtATime"
ONE_AT_A_TIME = "CodeDeployDefault.OneAtATime"
DEFAULT_CONFIG_NAME = ONE_AT_A_TIME

PREDEFINED_PREFIX = "CodeDeployDefault."
# Predefined traffic-shifting configs of this collection (CodeDeploy has none for EC2/on-premises).
ROLLOUT_PREFIX = "Rollout."

LAMBDA_CONFIG_NAMES = tuple(
    PREDEFINED_PREFIX + name for name in (
        "LambdaCanary10Percent5Minutes", "LambdaCanary10Percent10Minutes",
        "LambdaCanary10Percent15Minutes", "LambdaCanary10Percent30Minutes",
        "LambdaLinear10PercentEvery1Minute", "LambdaLinear10PercentEvery2Minutes",
        "LambdaLinear10PercentEvery3Minutes", "LambdaLinear10PercentEvery10Minutes",
        "LambdaAllAtOnce",
    )
)
ECS_CONFIG_NAMES = tuple(
    PREDEFINED_PREFIX + name for name in (
        "ECSLinear10PercentEvery1Minutes", "ECSLinear10PercentEvery3Minutes",
        "ECSCanary10Percent5Minutes", "ECSCanary10Percent15Minutes", "ECSAllAtOnce",
    )
)

# Host classes, in deployment order.
UNHEALTHY = "unhealthy"
UNKNOWN = "unknown"
OLD = "old"
CURRENT = "current"
HOST_CLASSES = (UNHEALTHY, UNKNOWN, OLD, CURRENT)
_CLASS_RANK = dict((klass, rank) for rank, klass in enumerate(HOST_CLASSES))

# Deployment statuses and error codes, in CodeDeploy's words.
IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
NO_INSTANCES = "NO_INSTANCES"

# Configuration errors, named after the CodeDeploy API exceptions users search for.
INVALID_MINIMUM_HEALTHY_HOST_VALUE = "InvalidMinimumHealthyHostValueException"
DEPLOYMENT_CONFIG_DOES_NOT_EXIST = "DeploymentConfigDoesNotExistException"
INVALID_DEPLOYMENT_CONFIG_NAME = "InvalidDeploymentConfigNameException"
INVALID_COMPUTE_PLATFORM = "InvalidComputePlatformException"
INVALID_ZONAL_CONFIGURATION = "InvalidZonalDeploymentConfigurationException"
INVALID_TRAFFIC_ROUTING_CONFIGURATION = "InvalidTrafficRoutingConfigurationException"

# Traffic routing types, in CodeDeploy's words.
TRAFFIC_ALL_AT_ONCE = "AllAtOnce"
TIME_BASED_CANARY = "TimeBasedCanary"
TIME_BASED_LINEAR = "TimeBasedLinear"
TRAFFIC_TYPES = (TRAFFIC_ALL_AT_ONCE, TIME_BASED_CANARY, TIME_BASED_LINEAR)
MIN_TRAFFIC_PERCENTAGE = 1
MAX_TRAFFIC_PERCENTAGE = 99
MIN_TRAFFIC_INTERVAL = 1
MAX_TRAFFIC_INTERVAL = 2880  # minutes (48 hours), CodeDeploy's limit for canary and linear intervals

NO_ZONE = None
_NO_ZONE_LABEL = "(no Availability Zone)"
_INT_RE = re.compile(r"^\s*[-+]?\d+\s*$")
_CONFIG_KEYS = ("name", "compute_platform", "minimum_healthy_hosts", "zonal_config", "traffic_routing_config")
_TRAFFIC_KEYS = ("type", "time_based_canary", "time_based_linear")
_TRAFFIC_BLOCKS = {
    TIME_BASED_CANARY: ("time_based_canary", "canary_percentage", "canary_interval"),
    TIME_BASED_LINEAR: ("time_based_linear", "linear_percentage", "linear_interval"),
}
_ZONAL_KEYS = ("first_zone_monitor_duration_in_seconds", "monitor_duration_in_seconds", "minimum_healthy_hosts_per_zone")
_CAMEL_HINTS = {
    "minimumHealthyHosts": "minimum_healthy_hosts",
    "zonalConfig": "zonal_config",
    "computePlatform": "compute_platform",
    "deploymentConfigName": "name",
    "firstZoneMonitorDurationInSeconds": "first_zone_monitor_duration_in_seconds",
    "monitorDurationInSeconds": "monitor_duration_in_seconds",
    "minimumHealthyHostsPerZone": "minimum_healthy_hosts_per_zone",
    "Type": "type",
    "Value": "value",
    "trafficRoutingConfig": "traffic_routing_config",
    "timeBasedCanary": "time_based_canary",
    "timeBasedLinear": "time_based_linear",
    "canaryPercentage": "canary_percentage",
    "canaryInterval": "canary_interval",
    "linearPercentage": "linear_percentage",
    "linearInterval": "linear_interval",
}


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class DeploymentConfigError(ValueError):
    """A deployment configuration that cannot be used, or a deployment that cannot start.

    ``code`` is CodeDeploy's word for it (an API exception name for a bad configuration,
    HEALTH_CONSTRAINTS_INVALID or NO_INSTANCES for the start check); ``field`` names the
    offending option (a dotted path) when there is one, ``value`` what was given.
    """

    def __init__(self, message, code=INVALID_MINIMUM_HEALTHY_HOST_VALUE, field=None, value=None):
        super(DeploymentConfigError, self).__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.value = value

    def to_dict(self):
        """The error as plain data, for fail_json or the ledger."""
        return {"code": self.code, "message": self.message, "field": self.field, "value": self.value}


class HealthConstraintsInvalid(DeploymentConfigError):
    """The start check failed: HEALTH_CONSTRAINTS_INVALID (or NO_INSTANCES for an empty fleet)."""


# --------------------------------------------------------------------------------------
# Configuration objects
# --------------------------------------------------------------------------------------
class MinimumHealthyHosts(namedtuple("MinimumHealthyHosts", "type value")):
    """A minimum-healthy-hosts rule: ``type`` (HOST_COUNT, FLEET_PERCENT, MOST_CONCURRENCY) and ``value``."""

    __slots__ = ()

    def to_dict(self):
        """``{type, value}`` with CodeDeploy's values."""
        return {"type": self.type, "value": self.value}

    def describe(self):
        """Human words, e.g. ``FLEET_PERCENT 50`` or ``all instances but one``."""
        if self.type == MOST_CONCURRENCY:
            return "all instances but one (one at a time)"
        if self.type == FLEET_PERCENT:
            return "FLEET_PERCENT %d" % self.value
        return "HOST_COUNT %d" % self.value


class ZonalConfig(namedtuple("ZonalConfig", "first_zone_monitor_duration_in_seconds monitor_duration_in_seconds minimum_healthy_hosts_per_zone")):
    """Zonal settings; durations in seconds, ``minimum_healthy_hosts_per_zone`` a MinimumHealthyHosts."""

    __slots__ = ()

    def to_dict(self):
        """The settings with snake_case keys, as in the inventory source."""
        return {
            "first_zone_monitor_duration_in_seconds": self.first_zone_monitor_duration_in_seconds,
            "monitor_duration_in_seconds": self.monitor_duration_in_seconds,
            "minimum_healthy_hosts_per_zone": self.minimum_healthy_hosts_per_zone.to_dict(),
        }


class TrafficRoutingConfig(namedtuple("TrafficRoutingConfig", "type percentage interval")):
    """How traffic moves from the blue fleet to the green one.

    ``type`` is AllAtOnce, TimeBasedCanary or TimeBasedLinear; ``percentage`` (1-99) and
    ``interval`` (minutes, 1-2880) are None for AllAtOnce.  Canary: ``percentage`` first, the
    rest after ``interval`` minutes.  Linear: ``percentage`` more every ``interval`` minutes.
    """

    __slots__ = ()

    def to_dict(self):
        """CodeDeploy's trafficRoutingConfig shape with snake_case keys."""
        if self.type in _TRAFFIC_BLOCKS:
            block, percentage, interval = _TRAFFIC_BLOCKS[self.type]
            return {"type": self.type, block: {percentage: self.percentage, interval: self.interval}}
        return {"type": self.type}

    def describe(self):
        """Human words, e.g. ``canary: 10% for 5 minutes, then the rest``."""
        if self.type == TIME_BASED_CANARY:
            return "canary: %d%% for %s, then the rest" % (self.percentage, _minutes(self.interval))
        if self.type == TIME_BASED_LINEAR:
            return "linear: %d%% more every %s" % (self.percentage, _minutes(self.interval))
        return "all traffic at once"


def _minutes(number):
    return "%d minute%s" % (number, "" if number == 1 else "s")


TRAFFIC_ALL_AT_ONCE_CONFIG = TrafficRoutingConfig(TRAFFIC_ALL_AT_ONCE, None, None)


class DeploymentConfig(namedtuple("DeploymentConfig", "name type value zonal_config predefined traffic_routing")):
    """A resolved EC2/on-premises deployment configuration.

    ``type``/``value`` are the minimum healthy hosts rule; ``zonal_config`` is a ZonalConfig or
    None; ``predefined`` tells CodeDeployDefault.* and Rollout.* configs from custom ones;
    ``traffic_routing`` is a TrafficRoutingConfig or None (blue/green: all traffic at once).
    """

    __slots__ = ()

    def __new__(cls, name, type, value, zonal_config, predefined, traffic_routing=None):  # pylint: disable=redefined-builtin
        return super(DeploymentConfig, cls).__new__(cls, name, type, value, zonal_config, predefined, traffic_routing)

    @property
    def minimum_healthy_hosts(self):
        """The rule as a MinimumHealthyHosts."""
        return MinimumHealthyHosts(self.type, self.value)

    @property
    def zonal(self):
        """True when the config deploys one Availability Zone at a time."""
        return self.zonal_config is not None

    def describe(self):
        """``name (rule)``, for messages (``name (rule; traffic words)`` with traffic routing)."""
        if self.traffic_routing is not None:
            return "%s (%s; traffic %s)" % (self.name, self.minimum_healthy_hosts.describe(), self.traffic_routing.describe())
        return "%s (%s)" % (self.name, self.minimum_healthy_hosts.describe())

    def to_dict(self):
        """Plain data with snake_case keys and CodeDeploy's values."""
        return {
            "name": self.name,
            "predefined": self.predefined,
            "minimum_healthy_hosts": self.minimum_healthy_hosts.to_dict(),
            "zonal_config": self.zonal_config.to_dict() if self.zonal_config is not None else None,
            "traffic_routing_config": self.traffic_routing.to_dict() if self.traffic_routing is not None else None,
        }


PREDEFINED_CONFIGS = {
    ALL_AT_ONCE: DeploymentConfig(ALL_AT_ONCE, HOST_COUNT, 0, None, True),
    HALF_AT_A_TIME: DeploymentConfig(HALF_AT_A_TIME, FLEET_PERCENT, 50, None, True),
    ONE_AT_A_TIME: DeploymentConfig(ONE_AT_A_TIME, MOST_CONCURRENCY, 1, None, True),
}
PREDEFINED_NAMES = (ALL_AT_ONCE, HALF_AT_A_TIME, ONE_AT_A_TIME)


def _traffic_config(kind, percentage, interval):
    if kind == TIME_BASED_CANARY:
        name = "%sCanary%dPercent%dMinutes" % (ROLLOUT_PREFIX, percentage, interval)
    else:
        name = "%sLinear%dPercentEvery%dMinute%s" % (ROLLOUT_PREFIX, percentage, interval, "" if interval == 1 else "s")
    # The in-place part (installing on the green fleet) goes one instance at a time, as OneAtATime.
    return DeploymentConfig(name, MOST_CONCURRENCY, 1, None, True, TrafficRoutingConfig(kind, percentage, interval))


# The predefined traffic-shifting configs: the canary and linear schedules CodeDeploy offers for Lambda, under this
# collection's own prefix (CodeDeploy defines none for EC2/on-premises, so no CodeDeployDefault.* name is invented).
TRAFFIC_CONFIGS = dict((config.name, config) for config in (
    [_traffic_config(TIME_BASED_CANARY, 10, minutes) for minutes in (5, 10, 15, 30)]
    + [_traffic_config(TIME_BASED_LINEAR, 10, minutes) for minutes in (1, 2, 3, 10)]))
TRAFFIC_CONFIG_NAMES = tuple(TRAFFIC_CONFIGS)  # canaries, then linear, shortest interval first


def _rollout_equivalent(name):
    """The Rollout.* config with the same schedule as a Lambda/ECS config name, or None."""
    match = re.match(r"^CodeDeployDefault\.(?:Lambda|ECS)(Canary|Linear)(\d+)Percent(?:Every)?(\d+)Minutes?$", name)
    if match:
        kind = TIME_BASED_CANARY if match.group(1) == "Canary" else TIME_BASED_LINEAR
        candidate = _traffic_config(kind, int(match.group(2)), int(match.group(3))).name
        return candidate if candidate in TRAFFIC_CONFIGS else None
    if name.endswith("AllAtOnce"):
        return ALL_AT_ONCE
    return None


# --------------------------------------------------------------------------------------
# Validation and resolution
# --------------------------------------------------------------------------------------
def _known_names(custom_configs):
    names = list(PREDEFINED_NAMES) + list(TRAFFIC_CONFIG_NAMES)
    names.extend(sorted(str(name) for name in (custom_configs or {})))
    return names


# Values in messages are shown short: a huge or endlessly aliased (YAML bomb) value is cut, not expanded.
_BRIEF_DEPTH = 3
_BRIEF_ITEMS = 10
_BRIEF_CHARS = 200


def _brief(value):
    """repr() of a value, bounded in depth, items and length (subclasses of list/dict/str shown as the plain type)."""
    text = _bounded_repr(value, 0)
    return text if len(text) <= _BRIEF_CHARS else text[:_BRIEF_CHARS] + "... (%d characters)" % len(text)


def _bounded_repr(value, depth):
    if isinstance(value, (list, tuple, dict)):
        opening, closing = ("{", "}") if isinstance(value, dict) else ("(", ")") if isinstance(value, tuple) else ("[", "]")
        if depth >= _BRIEF_DEPTH:
            return opening + "..." + closing
        items = list(value.items())[:_BRIEF_ITEMS] if isinstance(value, dict) else list(value[:_BRIEF_ITEMS])
        if isinstance(value, dict):
            shown = ["%s: %s" % (_bounded_repr(key, depth + 1), _bounded_repr(item, depth + 1)) for key, item in items]
        else:
            shown = [_bounded_repr(item, depth + 1) for item in items]
        if len(value) > _BRIEF_ITEMS:
            shown.append("... %d more" % (len(value) - _BRIEF_ITEMS))
        return opening + ", ".join(shown) + closing
    if isinstance(value, str):
        value = str(value)
    text = repr(value)
    return text if len(text) <= _BRIEF_CHARS else text[:_BRIEF_CHARS] + "... (%d characters)" % len(text)


def _suggest(name, candidates):
    """A "Did you mean" sentence for a misspelt config name, or ''."""
    text = str(name)
    for candidate in candidates:
        if candidate.lower() in (text.lower(), (PREDEFINED_PREFIX + text).lower(), (ROLLOUT_PREFIX + text).lower()):
            return " Did you mean %s?" % candidate
    close = difflib.get_close_matches(text, candidates, n=1, cutoff=0.75)
    if close:
        return " Did you mean %s?" % close[0]
    return ""


def _as_int(value, field, where, code=INVALID_MINIMUM_HEALTHY_HOST_VALUE):
    """An integer from an int or a string of digits; bools, floats with a fraction and text are refused."""
    if isinstance(value, bool) or value is None:
        raise DeploymentConfigError(
            "%s: %s is %s, not a whole number. Set it to an integer." % (where, field, _brief(value)), code, field, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value):
        return int(value)
    raise DeploymentConfigError(
        "%s: %s is %s, not a whole number. Set it to an integer." % (where, field, _brief(value)), code, field, value)


def _check_keys(mapping, allowed, path, where, code):
    for key in mapping:
        if key in allowed:
            continue
        hint = _CAMEL_HINTS.get(key)
        if hint:
            fix = "Use the snake_case key %s (values keep CodeDeploy's words)." % hint
        else:
            fix = "Allowed keys: %s." % ", ".join(allowed)
        raise DeploymentConfigError(
            "%s: unknown key %s%s. %s" % (where, path, key, fix), code, path + str(key), mapping[key])


def validate_minimum_healthy_hosts(spec, field="minimum_healthy_hosts", where="deployment config"):
    """Validate ``{type: HOST_COUNT|FLEET_PERCENT, value: N}`` and return a MinimumHealthyHosts.

    HOST_COUNT must be >= 0 and FLEET_PERCENT within 0..99 (CodeDeploy's limits).  A value
    given as a string of digits is accepted (extra vars often arrive as text).  Errors name
    the field, the value and the fix.
    """
    if not isinstance(spec, dict):
        raise DeploymentConfigError(
            "%s: %s must be a mapping {type: HOST_COUNT|FLEET_PERCENT, value: N}, got %s." % (where, field, _brief(spec)),
            INVALID_MINIMUM_HEALTHY_HOST_VALUE, field, spec)
    _check_keys(spec, ("type", "value"), field + ".", where, INVALID_MINIMUM_HEALTHY_HOST_VALUE)
    if "type" not in spec or "value" not in spec:
        missing = "type" if "type" not in spec else "value"
        raise DeploymentConfigError(
            "%s: %s.%s is missing. Give both, e.g. {type: HOST_COUNT, value: 2} or {type: FLEET_PERCENT, value: 75}."
            % (where, field, missing), INVALID_MINIMUM_HEALTHY_HOST_VALUE, "%s.%s" % (field, missing), None)
    kind = spec["type"]
    kind_text = str(kind).strip().upper() if isinstance(kind, str) else kind
    if kind_text == MOST_CONCURRENCY:
        raise DeploymentConfigError(
            "%s: %s.type MOST_CONCURRENCY is reserved for %s. Use HOST_COUNT or FLEET_PERCENT, or name %s itself."
            % (where, field, ONE_AT_A_TIME, ONE_AT_A_TIME), INVALID_MINIMUM_HEALTHY_HOST_VALUE, field + ".type", kind)
    if kind_text not in USER_TYPES:
        raise DeploymentConfigError(
            "%s: %s.type is %s, which is not a minimum healthy hosts type. Use HOST_COUNT (a number of instances) "
            "or FLEET_PERCENT (a percentage of the fleet, rounded up)." % (where, field, _brief(kind)),
            INVALID_MINIMUM_HEALTHY_HOST_VALUE, field + ".type", kind)
    value = _as_int(spec["value"], field + ".value", where)
    if kind_text == HOST_COUNT and value < 0:
        raise DeploymentConfigError(
            "%s: %s.value is %d, but a HOST_COUNT must be 0 or more. Set %s.value to a whole number >= 0 "
            "(0 lets every instance be deployed at once)." % (where, field, value, field),
            INVALID_MINIMUM_HEALTHY_HOST_VALUE, field + ".value", value)
    if kind_text == FLEET_PERCENT and not 0 <= value <= 99:
        raise DeploymentConfigError(
            "%s: %s.value is %d, but a FLEET_PERCENT must be between 0 and 99 (100%% would leave no instance "
            "that may be taken offline). Set %s.value to 0..99." % (where, field, value, field),
            INVALID_MINIMUM_HEALTHY_HOST_VALUE, field + ".value", value)
    return MinimumHealthyHosts(kind_text, value)


def _duration(spec, key, default, where):
    field = "zonal_config." + key
    if spec.get(key) is None:
        return default
    seconds = _as_int(spec[key], field, where, INVALID_ZONAL_CONFIGURATION)
    if seconds < 0:
        raise DeploymentConfigError(
            "%s: %s is %d seconds; a monitor duration must be 0 or more. Set it to the bake time in seconds."
            % (where, field, seconds), INVALID_ZONAL_CONFIGURATION, field, seconds)
    return seconds


def validate_zonal_config(spec, where="deployment config"):
    """Validate ``zonal_config`` and return a ZonalConfig (None when not given).

    Every key is optional (an empty mapping turns zonal deployment on with the defaults).
    Defaults follow CodeDeploy: monitor_duration_in_seconds 0, first zone = the monitor
    duration, minimum_healthy_hosts_per_zone FLEET_PERCENT 0.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise DeploymentConfigError(
            "%s: zonal_config must be a mapping with first_zone_monitor_duration_in_seconds, "
            "monitor_duration_in_seconds and minimum_healthy_hosts_per_zone, got %s." % (where, _brief(spec)),
            INVALID_ZONAL_CONFIGURATION, "zonal_config", spec)
    _check_keys(spec, _ZONAL_KEYS, "zonal_config.", where, INVALID_ZONAL_CONFIGURATION)
    monitor = _duration(spec, "monitor_duration_in_seconds", 0, where)
    first = _duration(spec, "first_zone_monitor_duration_in_seconds", monitor, where)
    per_zone = spec.get("minimum_healthy_hosts_per_zone")
    if per_zone is None:
        per_zone_rule = MinimumHealthyHosts(FLEET_PERCENT, 0)
    else:
        per_zone_rule = validate_minimum_healthy_hosts(per_zone, "zonal_config.minimum_healthy_hosts_per_zone", where)
    return ZonalConfig(first, monitor, per_zone_rule)


def _platform_error(name, platform):
    equivalent = _rollout_equivalent(name)
    if equivalent and equivalent in TRAFFIC_CONFIGS:
        hint = (" For the same traffic schedule between two EC2 fleets (blue/green), use %s (%s)."
                % (equivalent, TRAFFIC_CONFIGS[equivalent].traffic_routing.describe()))
    elif equivalent:
        hint = " To move all traffic at once, use %s." % equivalent
    else:
        hint = ""
    return DeploymentConfigError(
        "%s is %s %s deployment configuration, but this deployment group deploys to EC2/on-premises instances. "
        "Use %s, or a custom config with minimum_healthy_hosts.%s"
        % (name, "an" if platform == "ECS" else "a", platform, ", ".join(PREDEFINED_NAMES), hint),
        INVALID_COMPUTE_PLATFORM, "deployment_config", name)


def _traffic_number(spec, block, key, lowest, highest, unit, where):
    field = "traffic_routing_config.%s.%s" % (block, key)
    if spec.get(key) is None:
        raise DeploymentConfigError(
            "%s: %s is missing. Give it as a whole number of %s from %d to %d." % (where, field, unit, lowest, highest),
            INVALID_TRAFFIC_ROUTING_CONFIGURATION, field, None)
    number = _as_int(spec[key], field, where, INVALID_TRAFFIC_ROUTING_CONFIGURATION)
    if not lowest <= number <= highest:
        raise DeploymentConfigError(
            "%s: %s is %d, but it must be between %d and %d %s. Set %s to %d..%d."
            % (where, field, number, lowest, highest, unit, field, lowest, highest),
            INVALID_TRAFFIC_ROUTING_CONFIGURATION, field, number)
    return number


def validate_traffic_routing_config(spec, where="deployment config"):
    """Validate ``traffic_routing_config`` and return a TrafficRoutingConfig (None when not given).

    The shape is CodeDeploy's trafficRoutingConfig with snake_case keys::

        {type: AllAtOnce | TimeBasedCanary | TimeBasedLinear,
         time_based_canary: {canary_percentage: 1-99, canary_interval: minutes 1-2880},
         time_based_linear: {linear_percentage: 1-99, linear_interval: minutes 1-2880}}

    Only the block of the chosen type may be given (none for AllAtOnce).  Numbers given as
    strings of digits are accepted.  Errors name the field, the value and the fix.
    """
    if spec is None:
        return None
    code = INVALID_TRAFFIC_ROUTING_CONFIGURATION
    if not isinstance(spec, dict):
        raise DeploymentConfigError(
            "%s: traffic_routing_config must be a mapping like {type: TimeBasedCanary, time_based_canary: "
            "{canary_percentage: 10, canary_interval: 5}}, got %s." % (where, _brief(spec)), code, "traffic_routing_config", spec)
    _check_keys(spec, _TRAFFIC_KEYS, "traffic_routing_config.", where, code)
    kind = spec.get("type")
    canonical = dict((name.lower(), name) for name in TRAFFIC_TYPES)
    kind_text = canonical.get(kind.strip().lower()) if isinstance(kind, str) else None
    if kind_text is None:
        given = "missing" if kind is None else "%s, which is not a traffic routing type" % _brief(kind)
        raise DeploymentConfigError(
            "%s: traffic_routing_config.type is %s. Use AllAtOnce, TimeBasedCanary (one step, then the rest) or "
            "TimeBasedLinear (equal steps)." % (where, given), code, "traffic_routing_config.type", kind)
    for other_kind, (block, _percentage, _interval) in _TRAFFIC_BLOCKS.items():
        if other_kind != kind_text and spec.get(block) is not None:
            fix = ("remove it" if kind_text == TRAFFIC_ALL_AT_ONCE
                   else "remove it and give %s" % _TRAFFIC_BLOCKS[kind_text][0])
            raise DeploymentConfigError(
                "%s: traffic_routing_config has %s, but its type is %s. Set type to %s, or %s."
                % (where, block, kind_text, other_kind, fix), code, "traffic_routing_config.%s" % block, spec.get(block))
    if kind_text == TRAFFIC_ALL_AT_ONCE:
        return TRAFFIC_ALL_AT_ONCE_CONFIG
    block, percentage_key, interval_key = _TRAFFIC_BLOCKS[kind_text]
    settings = spec.get(block)
    example = "{%s: 10, %s: 5}" % (percentage_key, interval_key)
    if settings is None:
        raise DeploymentConfigError(
            "%s: traffic_routing_config.type is %s but %s is missing. Add %s: %s." % (where, kind_text, block, block, example),
            code, "traffic_routing_config.%s" % block, None)
    if not isinstance(settings, dict):
        raise DeploymentConfigError(
            "%s: traffic_routing_config.%s must be a mapping like %s, got %s." % (where, block, example, _brief(settings)),
            code, "traffic_routing_config.%s" % block, settings)
    _check_keys(settings, (percentage_key, interval_key), "traffic_routing_config.%s." % block, where, code)
    percentage = _traffic_number(settings, block, percentage_key, MIN_TRAFFIC_PERCENTAGE, MAX_TRAFFIC_PERCENTAGE,
                                 "percent", where)
    interval = _traffic_number(settings, block, interval_key, MIN_TRAFFIC_INTERVAL, MAX_TRAFFIC_INTERVAL, "minutes", where)
    return TrafficRoutingConfig(kind_text, percentage, interval)


def validate_custom_config(name, spec):
    """Validate one custom config ``{minimum_healthy_hosts, zonal_config?, traffic_routing_config?}``; return a DeploymentConfig.

    ``minimum_healthy_hosts`` may be left out only when ``traffic_routing_config`` is given: the
    in-place part then goes one instance at a time (OneAtATime's rule).
    """
    where = "deployment config %s" % name
    if not isinstance(spec, dict):
        raise DeploymentConfigError(
            "%s must be a mapping like {minimum_healthy_hosts: {type: HOST_COUNT, value: 2}}, got %s." % (where, _brief(spec)),
            INVALID_MINIMUM_HEALTHY_HOST_VALUE, "deployment_configs.%s" % name, spec)
    _check_keys(spec, _CONFIG_KEYS, "", where, INVALID_MINIMUM_HEALTHY_HOST_VALUE)
    platform = spec.get("compute_platform")
    if platform not in (None, "Server"):
        raise DeploymentConfigError(
            "%s: compute_platform is %s; only Server (EC2/on-premises) configs can be used here. Remove compute_platform "
            "or set it to Server." % (where, _brief(platform)), INVALID_COMPUTE_PLATFORM, "compute_platform", platform)
    traffic = validate_traffic_routing_config(spec.get("traffic_routing_config"), where)
    if spec.get("minimum_healthy_hosts") is None:
        if traffic is not None:
            zonal = validate_zonal_config(spec.get("zonal_config"), where)
            return DeploymentConfig(str(name), MOST_CONCURRENCY, 1, zonal, False, traffic)
        raise DeploymentConfigError(
            "%s has no minimum_healthy_hosts. Add minimum_healthy_hosts: {type: HOST_COUNT|FLEET_PERCENT, value: N}."
            % where, INVALID_MINIMUM_HEALTHY_HOST_VALUE, "minimum_healthy_hosts", None)
    rule = validate_minimum_healthy_hosts(spec["minimum_healthy_hosts"], where=where)
    zonal = validate_zonal_config(spec.get("zonal_config"), where)
    return DeploymentConfig(str(name), rule.type, rule.value, zonal, False, traffic)


def resolve_config(name_or_mapping, custom_configs=None):
    """Turn a config name or mapping into a DeploymentConfig.

    ``name_or_mapping`` may be None (the default, CodeDeployDefault.OneAtATime), a predefined
    name, the name of an entry in ``custom_configs`` (the inventory's ``deployment_configs``),
    an inline mapping (``{name?, minimum_healthy_hosts, zonal_config?, traffic_routing_config?}``)
    or a DeploymentConfig (returned as is).  Predefined traffic-shifting configs are named
    ``Rollout.*`` (TRAFFIC_CONFIG_NAMES).  Lambda and ECS names are recognised and refused for
    EC2/on-premises.  A custom config may not reuse a CodeDeployDefault.* or Rollout.* name.
    """
    if isinstance(name_or_mapping, DeploymentConfig):
        return name_or_mapping
    custom_configs = custom_configs or {}
    if not isinstance(custom_configs, dict):
        raise DeploymentConfigError(
            "deployment_configs must be a mapping of config name to settings, got %s." % (_brief(custom_configs),),
            INVALID_DEPLOYMENT_CONFIG_NAME, "deployment_configs", custom_configs)
    if name_or_mapping is None or name_or_mapping == "":
        return PREDEFINED_CONFIGS[DEFAULT_CONFIG_NAME]
    if isinstance(name_or_mapping, dict):
        name = name_or_mapping.get("name") or "<inline>"
        return validate_custom_config(name, name_or_mapping)
    if not isinstance(name_or_mapping, str):
        raise DeploymentConfigError(
            "deployment_config must be a config name or a mapping, got %s." % (_brief(name_or_mapping),),
            INVALID_DEPLOYMENT_CONFIG_NAME, "deployment_config", name_or_mapping)
    name = name_or_mapping.strip()
    if name in PREDEFINED_CONFIGS:
        if name in custom_configs:
            raise DeploymentConfigError(
                "deployment_configs defines %s, but names starting with %s belong to the predefined configs. "
                "Rename the custom config." % (name, PREDEFINED_PREFIX), INVALID_DEPLOYMENT_CONFIG_NAME,
                "deployment_configs.%s" % name, name)
        return PREDEFINED_CONFIGS[name]
    if name.startswith(ROLLOUT_PREFIX) and name in custom_configs:
        raise DeploymentConfigError(
            "deployment_configs defines %s, but names starting with %s are reserved for this collection's predefined "
            "traffic-shifting configs. Rename the custom config." % (name, ROLLOUT_PREFIX), INVALID_DEPLOYMENT_CONFIG_NAME,
            "deployment_configs.%s" % name, name)
    if name in TRAFFIC_CONFIGS:
        return TRAFFIC_CONFIGS[name]
    if name in LAMBDA_CONFIG_NAMES:
        raise _platform_error(name, "Lambda")
    if name in ECS_CONFIG_NAMES:
        raise _platform_error(name, "ECS")
    if name in custom_configs:
        if name.startswith(PREDEFINED_PREFIX):
            raise DeploymentConfigError(
                "deployment_configs defines %s, but names starting with %s are reserved for predefined configs. "
                "Rename the custom config." % (name, PREDEFINED_PREFIX), INVALID_DEPLOYMENT_CONFIG_NAME,
                "deployment_configs.%s" % name, name)
        return validate_custom_config(name, custom_configs[name])
    known = _known_names(custom_configs)
    hint = _suggest(name, known + list(LAMBDA_CONFIG_NAMES + ECS_CONFIG_NAMES))
    if name.startswith(PREDEFINED_PREFIX):
        raise DeploymentConfigError(
            "Unknown predefined deployment config %s. The predefined EC2/on-premises configs are %s.%s"
            % (name, ", ".join(PREDEFINED_NAMES), hint), DEPLOYMENT_CONFIG_DOES_NOT_EXIST, "deployment_config", name)
    if name.startswith(ROLLOUT_PREFIX):
        raise DeploymentConfigError(
            "Unknown predefined traffic-shifting config %s. The predefined ones are %s; define other schedules under "
            "deployment_configs with a traffic_routing_config.%s" % (name, ", ".join(TRAFFIC_CONFIG_NAMES), hint),
            DEPLOYMENT_CONFIG_DOES_NOT_EXIST, "deployment_config", name)
    defined = ", ".join(sorted(str(key) for key in custom_configs)) or "none"
    raise DeploymentConfigError(
        "Unknown deployment config %s: it is not predefined and not defined under deployment_configs (defined: %s).%s "
        "Define it under deployment_configs in the inventory source, or use one of %s."
        % (name, defined, hint, ", ".join(PREDEFINED_NAMES)), DEPLOYMENT_CONFIG_DOES_NOT_EXIST, "deployment_config", name)


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------
def traffic_routing(config, custom_configs=None):
    """The TrafficRoutingConfig of ``config``: a TrafficRoutingConfig, a DeploymentConfig, a mapping in the
    traffic_routing_config shape (has ``type``), or anything resolve_config accepts.  A config without traffic
    routing (the CodeDeployDefault.* ones) moves all traffic at once."""
    if isinstance(config, TrafficRoutingConfig):
        return config
    if isinstance(config, dict) and "type" in config and "minimum_healthy_hosts" not in config:
        return validate_traffic_routing_config(config, "traffic routing")
    resolved = resolve_config(config, custom_configs)
    return resolved.traffic_routing or TRAFFIC_ALL_AT_ONCE_CONFIG


def traffic_steps(config, custom_configs=None):
    """The traffic shift as ``[(green_percent, wait_seconds_after), ...]``, ending with ``(100, 0)``.

    ``config`` is anything traffic_routing() accepts.  AllAtOnce: ``[(100, 0)]``.  Canary 10/5:
    ``[(10, 300), (100, 0)]``.  Linear 10/1: ``[(10, 60), (20, 60), ..., (90, 60), (100, 0)]``;
    a percentage that does not divide 100 ends with a smaller step (linear 30: 30, 60, 90, 100).
    ``wait_seconds_after`` is the bake at that share before the next step (alarms are watched
    meanwhile); the last step has none.
    """
    routing = traffic_routing(config, custom_configs)
    if routing.type == TIME_BASED_CANARY:
        return [(routing.percentage, routing.interval * 60), (100, 0)]
    if routing.type == TIME_BASED_LINEAR:
        steps = [(percent, routing.interval * 60) for percent in range(routing.percentage, 100, routing.percentage)]
        return steps + [(100, 0)]
    return [(100, 0)]


def _ceil_percent(percent, count):
    return -(-percent * count // 100)


def _rule_minimum(rule_type, value, size):
    if size <= 0:
        return 0
    if rule_type == FLEET_PERCENT:
        return _ceil_percent(value, size)
    if rule_type == MOST_CONCURRENCY:
        return max(size - value, 0)
    return value


def minimum_healthy(config, fleet_size):
    """The minimum number of healthy instances, as a count, for a fleet of ``fleet_size``.

    FLEET_PERCENT is converted rounding UP (40 % of 9 -> 4; HalfAtATime on 9 -> 5, on 1 -> 1);
    HOST_COUNT is its value (it may exceed the fleet: the start check refuses that);
    OneAtATime is all instances but one (0 for a single instance); AllAtOnce is 0.
    ``config`` may be anything resolve_config accepts.
    """
    config = resolve_config(config)
    if isinstance(fleet_size, bool) or not isinstance(fleet_size, int) or fleet_size < 0:
        raise ValueError("fleet_size must be a whole number >= 0, got %r" % (fleet_size,))
    return _rule_minimum(config.type, config.value, fleet_size)


def zone_minimum(config, zone_size):
    """The per-zone minimum for a zone of ``zone_size`` instances (0 when the config is not zonal).

    FLEET_PERCENT is a percentage of the instances in that zone, rounded up.
    """
    config = resolve_config(config)
    if config.zonal_config is None:
        return 0
    rule = config.zonal_config.minimum_healthy_hosts_per_zone
    return _rule_minimum(rule.type, rule.value, zone_size)


def required_successes(minimum):
    """How many instances must succeed for the deployment to succeed: ``max(minimum, 1)``."""
    return max(minimum, 1)


def _largest_allowed(config, fleet_size):
    """The fix for a failed start check: the largest value of the same type that would work."""
    limit = fleet_size - 1
    if config.type == FLEET_PERCENT:
        return "FLEET_PERCENT %d or less" % min(99, (100 * limit) // fleet_size)
    return "HOST_COUNT %d or less" % limit


StartCheck = namedtuple("StartCheck", "ok error_code message fleet_size healthy minimum")


def check_start(config, fleet_size, healthy=None, zone_sizes=None):
    """The start check; returns a StartCheck (``ok``, ``error_code``, ``message``, counts).

    Fails with NO_INSTANCES for an empty fleet and with HEALTH_CONSTRAINTS_INVALID when the
    minimum is >= the fleet size, or (zonal configs) when a zone's minimum is >= the zone's
    size.  ``healthy`` (default: all) only shapes the message: when unhealthy instances leave
    the fleet at or below its minimum, the deployment still starts, deploys them first, and
    the message says so.  See the module docstring, rule 2.
    """
    config = resolve_config(config)
    healthy = fleet_size if healthy is None else healthy
    minimum = minimum_healthy(config, fleet_size)
    if fleet_size == 0:
        return StartCheck(False, NO_INSTANCES, "The deployment group has no instances to deploy to (NO_INSTANCES). "
                          "Check the group's tag filters, tag sets and Auto Scaling groups.", 0, 0, minimum)
    if minimum >= fleet_size:
        if config.type == FLEET_PERCENT:
            why = "%d%% of %d instances rounds up to %d" % (config.value, fleet_size, minimum)
        else:
            why = "the minimum is %d" % minimum
        message = ("%s needs at least %d healthy instances (%s) but the deployment has %d instance%s, so not one can be "
                   "taken offline (HEALTH_CONSTRAINTS_INVALID). Use %s, a predefined config such as %s, or add instances."
                   % (config.describe(), minimum, why, fleet_size, "" if fleet_size == 1 else "s",
                      _largest_allowed(config, fleet_size), ONE_AT_A_TIME))
        return StartCheck(False, HEALTH_CONSTRAINTS_INVALID, message, fleet_size, healthy, minimum)
    if config.zonal_config is not None and zone_sizes:
        rule = config.zonal_config.minimum_healthy_hosts_per_zone
        for zone in _sorted_zones(zone_sizes):
            size = zone_sizes[zone]
            per_zone = _rule_minimum(rule.type, rule.value, size)
            if size > 0 and per_zone >= size:
                label = _zone_label(zone)
                message = ("%s: Availability Zone %s has %d instance%s and minimum_healthy_hosts_per_zone %s needs %d "
                           "of them healthy, so none can be taken offline (HEALTH_CONSTRAINTS_INVALID). Lower "
                           "minimum_healthy_hosts_per_zone below %d or add instances to %s."
                           % (config.name, label, size, "" if size == 1 else "s", rule.describe(), per_zone, size, label))
                return StartCheck(False, HEALTH_CONSTRAINTS_INVALID, message, fleet_size, healthy, minimum)
    message = ""
    if healthy <= minimum:
        unhealthy = fleet_size - healthy
        message = ("%d of %d instances are healthy and %s needs %d: the %s go first; if they fail, the deployment stops "
                   "with HEALTH_CONSTRAINTS." % (healthy, fleet_size, config.describe(), minimum, _plural(unhealthy, "unhealthy instance")))
    return StartCheck(True, None, message, fleet_size, healthy, minimum)


def next_batch_size(healthy, minimum, remaining, unhealthy_remaining=0, pace=None):
    """How many instances the next batch may hold.

    ``min(remaining, pace, unhealthy_remaining + max(healthy - minimum, 0))``:

    * healthy instances taken offline may not push the healthy count below ``minimum``
      (CodeDeploy's "healthy - minimum"; 9 instances, HOST_COUNT 6 -> 3);
    * ``unhealthy_remaining`` instances at the front of the queue are not healthy, so deploying
      them costs nothing: they join the batch for free;
    * ``pace`` (the config's nominal batch size, ``fleet_size - minimum``) caps the total, so
      OneAtATime stays one at a time while it repairs unhealthy instances; None means no cap.

    0 means no batch can start: the rollout must stop (HEALTH_CONSTRAINTS).
    """
    if remaining <= 0:
        return 0
    size = min(remaining, unhealthy_remaining + max(healthy - minimum, 0))
    if pace is not None:
        size = min(size, pace)
    return max(size, 0)


# --------------------------------------------------------------------------------------
# After a batch
# --------------------------------------------------------------------------------------
ZoneCounts = namedtuple("ZoneCounts", "zone size healthy minimum pending unhealthy_pending")
ZoneCounts.__doc__ = "Counts for the zone being deployed, given to evaluate() with zonal configs."


class Verdict(namedtuple("Verdict", "status proceed error_code message next_batch_size healthy minimum required "
                                    "succeeded failed pending zone bake_seconds")):
    """What to do after a batch.

    ``status`` is InProgress (``proceed`` True: start another batch of at most
    ``next_batch_size``), Succeeded, or Failed (``error_code`` HEALTH_CONSTRAINTS).  When the
    rollout stops early, the ``pending`` instances are the ones CodeDeploy reports as Skipped.
    ``bake_seconds`` is the wait before the next batch (zonal configs, after a zone).
    """

    __slots__ = ()

    def to_dict(self):
        """Plain data for the ledger or a task result."""
        return dict(self._asdict())


def _plural(number, noun):
    return "%d %s%s" % (number, noun, "" if number == 1 else "s")


def _zone_label(zone):
    return _NO_ZONE_LABEL if zone is NO_ZONE else str(zone)


def evaluate(total, succeeded, failed, pending, minimum, unhealthy_pending=0, pace=None, zone=None, config_name=None):
    """Decide, after a batch, whether the rollout continues, and the final status.

    Counts are for the whole deployment: ``succeeded + failed + pending == total``; a stopped
    or unreachable instance is counted as failed; ``unhealthy_pending`` are pending instances
    that were unhealthy at the start (not counted as healthy until they succeed).
    ``zone`` (a ZoneCounts) adds the per-zone bound for zonal configs.

    * Nothing pending: Succeeded iff ``succeeded >= max(minimum, 1)``, else Failed with
      HEALTH_CONSTRAINTS.  Failures in the final batch are therefore tolerated as long as
      enough instances succeeded (OneAtATime: a failure on the last instance still succeeds;
      a single instance must succeed; AllAtOnce needs one success).
    * Pending instances, but even all of them succeeding could not reach ``max(minimum, 1)``:
      stop, Failed, HEALTH_CONSTRAINTS.
    * Pending instances and next_batch_size() (fleet bound, and zone bound when given) is 0:
      healthy instances have fallen to the minimum, so taking another one offline would go
      below it: stop, Failed, HEALTH_CONSTRAINTS.
    * Otherwise InProgress with the allowed size of the next batch.
    """
    if min(total, succeeded, failed, pending, minimum, unhealthy_pending) < 0:
        raise ValueError("counts must not be negative")
    if succeeded + failed + pending != total:
        raise ValueError("succeeded (%d) + failed (%d) + pending (%d) must equal total (%d)" % (succeeded, failed, pending, total))
    if unhealthy_pending > pending:
        raise ValueError("unhealthy_pending (%d) cannot exceed pending (%d)" % (unhealthy_pending, pending))
    required = required_successes(minimum)
    healthy = succeeded + pending - unhealthy_pending
    label = config_name or "the deployment config"
    zone_name = zone.zone if zone is not None else None

    def verdict(status, proceed, error_code, message, size=0):
        return Verdict(status, proceed, error_code, message, size, healthy, minimum, required, succeeded, failed, pending,
                       zone_name, 0)

    if pending == 0:
        if succeeded >= required:
            return verdict(SUCCEEDED, False, None, "%d of %d instances succeeded (at least %d needed)." % (succeeded, total, required))
        return verdict(FAILED, False, HEALTH_CONSTRAINTS, (
            "Only %d of %d instances succeeded and %s needs at least %d (HEALTH_CONSTRAINTS). Fix what failed on the %d "
            "failed instance%s (see their lifecycle event logs) and redeploy; failed instances are deployed first."
            % (succeeded, total, label, required, failed, "" if failed == 1 else "s")))
    if succeeded + pending < required:
        return verdict(FAILED, False, HEALTH_CONSTRAINTS, (
            "Stopped after %d failed instance%s: even if all %d pending instances succeeded, only %d of the %d needed by %s "
            "would (HEALTH_CONSTRAINTS). The pending instances are skipped. Fix the failures and redeploy."
            % (failed, "" if failed == 1 else "s", pending, succeeded + pending, required, label)))
    # Unhealthy instances ride free only from the front of the queue: for zonal configs that is the current zone's.
    free = unhealthy_pending if zone is None else zone.unhealthy_pending
    size = next_batch_size(healthy, minimum, pending, free, pace)
    if zone is not None and size > 0:
        zone_pace = max(zone.size - zone.minimum, 1)
        size = min(size, zone.pending, next_batch_size(zone.healthy, zone.minimum, zone.pending, zone.unhealthy_pending, zone_pace))
        if size == 0:
            facts = (_zone_label(zone.zone), zone.healthy, zone.size, zone.minimum, _plural(failed, "instance"), pending)
            return verdict(FAILED, False, HEALTH_CONSTRAINTS, (
                "Stopped in Availability Zone %s: %d of its %d instances are healthy and minimum_healthy_hosts_per_zone needs "
                "%d, so no further instance there can be taken offline (HEALTH_CONSTRAINTS). %s failed; %d pending "
                "instances are skipped. Fix the failures and redeploy." % facts))
    if size == 0:
        return verdict(FAILED, False, HEALTH_CONSTRAINTS, (
            "Stopped after %d failed instance%s: %d instances are healthy and %s needs at least %d, so no further instance can "
            "be taken offline (HEALTH_CONSTRAINTS). %d pending instance%s are skipped. Fix the failures and redeploy; failed "
            "instances are deployed first." % (failed, "" if failed == 1 else "s", healthy, label, minimum, pending,
                                               "" if pending == 1 else "s")))
    return verdict(IN_PROGRESS, True, None, "%d succeeded, %d failed, %d pending; next batch up to %d." % (succeeded, failed, pending, size), size)


# --------------------------------------------------------------------------------------
# Hosts and ordering
# --------------------------------------------------------------------------------------
_NAME_KEYS = ("name", "inventory_hostname", "host", "instance_id")


def host_name(record):
    """The name of a host record: the string itself, or its name/inventory_hostname/host/instance_id."""
    if isinstance(record, str):
        return record
    if isinstance(record, dict):
        for key in _NAME_KEYS:
            if record.get(key):
                return str(record[key])
    raise ValueError("host record %r has no name: give a string or a mapping with 'name'" % (record,))


def host_zone(record):
    """The record's Availability Zone (``zone`` or ``availability_zone``), or None."""
    if isinstance(record, dict):
        zone = record.get("zone") or record.get("availability_zone")
        return str(zone) if zone else NO_ZONE
    return NO_ZONE


def classify_host(record, current_revision=None):
    """The host's class: unhealthy, unknown, old or current.

    A record is a host name (class unknown: nothing is known about it) or a mapping with:

    * ``state``: the class itself (one of HOST_CLASSES), which wins over everything else;
    * ``healthy`` (bool) or ``health`` (CodeDeploy's Healthy/Unhealthy): False/Unhealthy means
      the last deployment to the instance failed (or it is stopped) -> unhealthy;
    * ``revision``: the revision installed on the host (empty/None -> unknown).  It is compared
      with ``current_revision``, the revision of the group's last successful deployment
      (CodeDeploy's revision health): equal -> current, different -> old.  Without a
      ``current_revision`` an installed revision counts as old.
    """
    if not isinstance(record, dict):
        host_name(record)
        return UNKNOWN
    state = record.get("state")
    if state:
        text = str(state).strip().lower()
        if text not in _CLASS_RANK:
            raise ValueError("host %s: state %r is not one of %s" % (host_name(record), state, ", ".join(HOST_CLASSES)))
        return text
    if record.get("healthy") is False or str(record.get("health", "")).strip().lower() == "unhealthy":
        return UNHEALTHY
    revision = record.get("revision")
    if revision is None or revision == "" or revision == {}:
        return UNKNOWN
    if current_revision is not None and revision == current_revision:
        return CURRENT
    return OLD


def _entries(hosts, current_revision):
    """[(name, class, zone)] for the records, in deployment order; duplicates are refused."""
    buckets = ([], [], [], [])
    seen = set()
    for record in hosts:
        name = host_name(record)
        if name in seen:
            raise ValueError("host %s is listed twice; each instance may appear once in a deployment" % name)
        seen.add(name)
        klass = classify_host(record, current_revision)
        buckets[_CLASS_RANK[klass]].append((name, klass, host_zone(record)))
    return buckets[0] + buckets[1] + buckets[2] + buckets[3]


def _sorted_zones(zones, repair_zones=()):
    """Zone names in deployment order: zones in ``repair_zones`` (holding unhealthy instances) first,
    then the others; sorted by name inside each part, the group without a zone last in its part."""
    def key(zone):
        return (zone not in repair_zones, zone is NO_ZONE, zone or "")
    return sorted(zones, key=key)


# --------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------
ZonePlan = namedtuple("ZonePlan", "zone hosts size healthy minimum batches bake_seconds")
ZonePlan.__doc__ = "One Availability Zone of a zonal plan: its hosts, minimum, batches and the bake after it."


def compact_serial(batch_sizes):
    """Shortest ``serial`` list that makes Ansible cut the same batches.

    Ansible repeats the last item and the final batch takes whatever is left, so a final
    batch no larger than the one before it and a trailing run of equal sizes can be dropped:
    [4, 4, 1] -> [4]; [1, 1, 1] -> [1]; [2, 3, 3, 1] -> [2, 3].
    """
    sizes = list(batch_sizes)
    if len(sizes) >= 2 and sizes[-2] >= sizes[-1]:
        sizes.pop()
    while len(sizes) >= 2 and sizes[-2] == sizes[-1]:
        sizes.pop()
    return sizes


class DeploymentPlan:
    """A static plan that assumes every instance succeeds.

    Attributes: ``config``, ``fleet_size``, ``healthy``, ``unhealthy``, ``minimum``,
    ``required`` (successes needed), ``pace``, ``hosts`` (names in deployment order),
    ``host_classes`` (name -> class), ``batches`` (lists of names), ``batch_sizes``,
    ``serial`` (compact list for Ansible's ``serial``; the play must list the hosts in
    ``hosts`` order), ``bake_after`` (seconds to wait after each batch), ``zones`` (ZonePlan
    list, empty unless zonal) and ``start`` (the StartCheck).

    When instances fail, CodeDeploy shrinks later batches; a play running the static
    ``serial`` cannot, so each host waits for a slot in the ledger (``try_start_instance``
    with the plan's ``max_unhealthy``): later batches shrink the same way.
    """

    def __init__(self, config, entries, start):
        self.config = config
        self.start = start
        self.entries = entries
        self.fleet_size = len(entries)
        self.unhealthy = sum(1 for entry in entries if entry[1] == UNHEALTHY)
        self.healthy = self.fleet_size - self.unhealthy
        self.minimum = start.minimum
        self.required = required_successes(self.minimum)
        self.pace = self.fleet_size - self.minimum
        self.hosts = [entry[0] for entry in entries]
        self.host_classes = dict((entry[0], entry[1]) for entry in entries)
        rollout = Rollout(self)
        self.batches = []
        self.bake_after = []
        while True:
            batch = rollout.next_batch()
            if not batch:
                break
            self.batches.append(batch)
            verdict = rollout.record(batch)
            self.bake_after.append(verdict.bake_seconds)
        self.batch_sizes = [len(batch) for batch in self.batches]
        self.serial = compact_serial(self.batch_sizes)
        self.zones = self._zone_plans() if config.zonal_config is not None else []

    def _zone_plans(self):
        plans = []
        zones = rollout_zone_order(self.entries)
        batch_index = 0
        for zone in zones:
            names = [entry[0] for entry in self.entries if entry[2] == zone]
            size = len(names)
            batches = []
            covered = 0
            while covered < size and batch_index < len(self.batches):
                batches.append(self.batches[batch_index])
                covered += len(self.batches[batch_index])
                batch_index += 1
            bake = self.bake_after[batch_index - 1] if batches else 0
            healthy = sum(1 for entry in self.entries if entry[2] == zone and entry[1] != UNHEALTHY)
            plans.append(ZonePlan(zone, names, size, healthy, zone_minimum(self.config, size), batches, bake))
        return plans

    def to_dict(self):
        """Plain data (JSON-safe) for set_fact / the ledger."""
        return {
            "deployment_config": self.config.to_dict(),
            "fleet_size": self.fleet_size,
            "healthy": self.healthy,
            "unhealthy": self.unhealthy,
            "minimum_healthy_hosts": self.minimum,
            "required_successes": self.required,
            "hosts": list(self.hosts),
            "host_classes": dict(self.host_classes),
            "batches": [list(batch) for batch in self.batches],
            "batch_sizes": list(self.batch_sizes),
            "serial": list(self.serial),
            "bake_after": list(self.bake_after),
            "zones": [{
                "zone": zone.zone, "hosts": list(zone.hosts), "size": zone.size, "healthy": zone.healthy,
                "minimum_healthy_hosts": zone.minimum, "batches": [list(batch) for batch in zone.batches],
                "bake_seconds": zone.bake_seconds,
            } for zone in self.zones],
            "start_message": self.start.message,
        }


def rollout_zone_order(entries):
    """Zone names in the order the (already grouped) entries visit them."""
    order = []
    seen = set()
    for entry in entries:
        if entry[2] not in seen:
            seen.add(entry[2])
            order.append(entry[2])
    return order


def plan_deployment(config, hosts, custom_configs=None, current_revision=None):
    """Resolve the config, order the hosts, run the start check and cut the static plan.

    ``hosts`` are records as classify_host() reads them.  With a zonal config the hosts are
    grouped per zone (module docstring, rule 6), class order inside each zone.  Raises
    HealthConstraintsInvalid (code HEALTH_CONSTRAINTS_INVALID or NO_INSTANCES) when the
    start check fails, and DeploymentConfigError for a bad config.  Linear in the number of
    hosts (1,000 hosts plan in a few milliseconds).
    """
    config = resolve_config(config, custom_configs)
    entries = _entries(hosts, current_revision)
    zone_sizes = None
    if config.zonal_config is not None:
        grouped = {}
        for entry in entries:
            grouped.setdefault(entry[2], []).append(entry)
        zone_sizes = dict((zone, len(members)) for zone, members in grouped.items())
        repair = set(entry[2] for entry in entries if entry[1] == UNHEALTHY)
        entries = []
        for zone in _sorted_zones(grouped, repair):
            entries.extend(grouped[zone])
    healthy = sum(1 for entry in entries if entry[1] != UNHEALTHY)
    start = check_start(config, len(entries), healthy, zone_sizes)
    if not start.ok:
        raise HealthConstraintsInvalid(start.message, start.error_code, "deployment_config", config.name)
    return DeploymentPlan(config, entries, start)


class Rollout:
    """The dynamic rules while a plan runs: hands out batches and judges each one.

    Use::

        rollout = Rollout(plan)
        batch = rollout.next_batch()          # names, sized by next_batch_size()
        verdict = rollout.record(succeeded)   # every other host of the batch failed

    ``next_batch`` returns [] once the rollout is over (``verdict.status`` then says how).
    Zonal configs: batches never cross a zone; the verdict after a zone's last batch carries
    that zone's ``bake_seconds`` (0 after the final zone).
    """

    def __init__(self, plan):
        self.plan = plan
        self.entries = plan.entries
        self.total = len(self.entries)
        self.minimum = plan.minimum
        self.pace = plan.pace
        self.zonal = plan.config.zonal_config is not None
        self.position = 0
        self.in_flight = []
        self.succeeded = 0
        self.failed = 0
        self.unhealthy_pending = sum(1 for entry in self.entries if entry[1] == UNHEALTHY)
        self.results = {}
        self.zone_stats = {}
        if self.zonal:
            for _name, klass, zone in self.entries:
                stats = self.zone_stats.setdefault(zone, [0, 0, 0, 0])  # size, succeeded, pending, unhealthy pending
                stats[0] += 1
                stats[2] += 1
                if klass == UNHEALTHY:
                    stats[3] += 1
        self.zone_minimums = dict((zone, zone_minimum(plan.config, stats[0])) for zone, stats in self.zone_stats.items())
        self.zones_seen = []
        self.verdict = evaluate(self.total, 0, 0, self.total, self.minimum, self.unhealthy_pending, self.pace,
                                self._zone_counts(), plan.config.name)

    @property
    def pending(self):
        """Instances not deployed yet (including the batch in flight)."""
        return self.total - self.succeeded - self.failed

    @property
    def healthy(self):
        """Healthy instances now: succeeded plus untouched healthy ones (the batch in flight excluded)."""
        flight_healthy = sum(1 for entry in self.in_flight if entry[1] != UNHEALTHY)
        return self.succeeded + (self.pending - self.unhealthy_pending) - flight_healthy

    def _zone_counts(self):
        if not self.zonal or self.position >= self.total:
            return None
        zone = self.entries[self.position][2]
        size, succeeded, pending, unhealthy_pending = self.zone_stats[zone]
        return ZoneCounts(zone, size, succeeded + pending - unhealthy_pending, self.zone_minimums[zone], pending, unhealthy_pending)

    def next_batch(self):
        """Names of the next batch, or [] when the rollout is over."""
        if self.in_flight:
            raise RuntimeError("record() the batch in flight before asking for the next one")
        if not self.verdict.proceed:
            return []
        size = self.verdict.next_batch_size
        batch = self.entries[self.position:self.position + size]
        self.position += len(batch)
        self.in_flight = batch
        return [entry[0] for entry in batch]

    def record(self, succeeded):
        """Record the batch in flight: names in ``succeeded`` succeeded, the rest failed; returns the Verdict."""
        ok = set(succeeded)
        names = set(entry[0] for entry in self.in_flight)
        stray = ok - names
        if stray:
            raise ValueError("not in the batch in flight: %s" % ", ".join(sorted(stray)))
        finished_zone = self.in_flight[-1][2] if self.in_flight else None
        for name, klass, zone in self.in_flight:
            passed = name in ok
            self.results[name] = passed
            if passed:
                self.succeeded += 1
            else:
                self.failed += 1
            if klass == UNHEALTHY:
                self.unhealthy_pending -= 1
            if self.zonal:
                stats = self.zone_stats[zone]
                stats[2] -= 1
                if passed:
                    stats[1] += 1
                if klass == UNHEALTHY:
                    stats[3] -= 1
        self.in_flight = []
        verdict = evaluate(self.total, self.succeeded, self.failed, self.pending, self.minimum, self.unhealthy_pending,
                           self.pace, self._zone_counts(), self.plan.config.name)
        if self.zonal and verdict.proceed and self.zone_stats[finished_zone][2] == 0:
            self.zones_seen.append(finished_zone)
            zonal = self.plan.config.zonal_config
            bake = zonal.first_zone_monitor_duration_in_seconds if len(self.zones_seen) == 1 else zonal.monitor_duration_in_seconds
            verdict = verdict._replace(bake_seconds=bake)
        self.verdict = verdict
        return verdict
