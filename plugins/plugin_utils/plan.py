# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of one deployment: what the controller decided when it opened the deployment, carried
from the prepare play to every host task and to the settle play.

``Plan`` is the only code that knows the plan's fields. Between plays the plan travels as the plain
mapping ``Plan.to_dict()`` returns (Ansible facts must be JSON); every reader turns it back with
``Plan.from_dict()``, which refuses a mapping that is not a plan. Controller-only."""

from __future__ import annotations

from ansible_collections.rollout.codedeploy.plugins.module_utils.haproxy import longest_wait
from ansible_collections.rollout.codedeploy.plugins.module_utils.lifecycle import needs_host

FORMAT = 1

#: How long a host stays held for a deployment between two of its lifecycle runs: the longest traffic step
#: (plugin_utils/host_run.py waits up to 300 s for a load balancer) and the ledger's writes, with room to spare.
HOST_LOCK_HOLD = 600

# name -> (default, meaning). The order is the order of docs/design.md's table.
FIELDS = (
    ("deployment_id", None, "the ledger id, d-XXXXXXXXX; None when nothing is deployed (check mode, nothing outdated)"),
    ("strategy", "in_place", "the deployment strategy that rolls the plan out"),
    ("application", None, "the application name"),
    ("deployment_group", None, "the deployment group name"),
    ("deployment_group_id", None, "the group's id (names its folders on the hosts)"),
    ("inventory_group", None, "the inventory group the hosts came from"),
    ("hosts", (), "the inventory hosts, in rollout order"),
    ("serial", (1,), "batch sizes for the play's serial keyword"),
    ("batches", (), "the batches, as lists of hosts"),
    ("bake_after", (), "seconds to bake after each batch (zonal configs)"),
    ("instances", None, "inventory host -> instance id"),
    ("zones", None, "inventory host -> Availability Zone"),
    ("minimum", 0, "minimum healthy hosts"),
    ("max_unhealthy", 0, "how many hosts may be unhealthy at once"),
    ("bundle", None, "the bundle in the controller's cache (None for a rollback from host archives)"),
    ("sha256", None, "the bundle's sha256"),
    ("bundle_type", None, "zip, tar or tgz"),
    ("source", None, "the revision's source, normalized (credentials redacted)"),
    ("location", None, "the revision as people read it (credentials redacted)"),
    ("appspec", None, "the normalized appspec"),
    ("revision_env", None, "the BUNDLE_* source given to hook scripts"),
    ("reuse_deployment", None, "for a rollback: the earlier deployment whose archives the hosts reuse"),
    ("fallback", None, "for a rollback: where ``bundle`` came from for hosts without the archive, or why there is none"),
    ("options", None, "the effective deployment options (config, file_exists_behavior, alarms, auto_rollback, ...)"),
    ("steps", (), "each host's lifecycle: lists of host events and the controller's traffic steps"),
    ("roles", None, "blue/green: inventory host -> its role, green (gets the revision) or blue (leaves the load balancers); empty in place"),
    ("steps_by_role", None, "blue/green: role -> that role's lifecycle, in the form of steps; empty in place (every host runs steps)"),
    ("blue_green", None, "blue/green: the group's blue_green settings (termination action and wait); None in place"),
    ("green_asg", None, "blue/green COPY_AUTO_SCALING_GROUP: the copied Auto Scaling group {name, arn, source_name, source_arn, desired}"),
    ("ready_wait", None, "blue/green STOP_DEPLOYMENT: seconds the installed green fleet waits in status Ready for a continue; None otherwise"),
    ("reroute_hosts", (), "blue/green with a ready wait: the hosts of the reroute play (green, then blue); empty otherwise"),
    ("reroute_serial", (), "blue/green with a ready wait: batch sizes of the reroute play"),
    ("reroute", None, "blue/green with weighted rerouting (a target group pair, or canary/linear steps): the steps, the pair and "
                      "which side serves, the alarm interval (plugin_utils/reroute.py); None when traffic moves all at once"),
    ("phase", None, "which part of their steps the hosts run in this play: None or install (up to the ready wait), or reroute"),
    ("target_groups", (), "target groups that traffic control uses"),
    ("classic_elbs", (), "classic load balancers that traffic control uses"),
    ("haproxy_backends", (), "HAProxy backends that traffic control uses (normalized settings)"),
    ("triggers", (), "the group's triggers"),
    ("account_id", None, "the AWS account, for trigger messages"),
    ("aws", None, "AWS settings without secrets (region, endpoint_url, profile, timeouts)"),
    ("ledger", None, "the ledger location"),
    ("lease_seconds", 300, "how long the deployment holds its group without a sign of life"),
    ("owner", None, "who holds the deployment's lock"),
    ("deployment_root", None, "the agent's deployment root on the hosts (None: the default)"),
    ("max_revisions", None, "how many revisions each host keeps (None: the default)"),
    ("note", None, "why nothing is deployed, when deployment_id is None"),
)
NAMES = tuple(name for name, _default, _meaning in FIELDS)
_DEFAULTS = {name: default for name, default, _meaning in FIELDS}
_LISTS = ("hosts", "serial", "batches", "bake_after", "steps", "target_groups", "classic_elbs", "haproxy_backends", "triggers",
          "reroute_hosts", "reroute_serial")
#: The first event of a green host after the ready wait: its steps are split there when the plan waits.
REROUTE_FROM = "BeforeAllowTraffic"
PHASES = ("install", "reroute")


class PlanError(Exception):
    def __init__(self, message):
        super(PlanError, self).__init__(message)
        self.message = message


class Plan(object):
    """A deployment plan. Attributes are the names of ``FIELDS``; nothing else is stored."""

    __slots__ = NAMES

    def __init__(self, **fields):
        unknown = sorted(set(fields) - set(NAMES))
        if unknown:
            raise PlanError("a plan has no field %s (fields: %s)" % (", ".join(unknown), ", ".join(NAMES)))
        for name in NAMES:
            value = fields.get(name, _DEFAULTS[name])
            if name in _LISTS:
                value = [list(item) if isinstance(item, (list, tuple)) else item for item in (value or ())]
            elif isinstance(value, dict):
                value = dict(value)
            object.__setattr__(self, name, value)
        for name in ("instances", "zones", "roles", "steps_by_role"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, {})
        if self.options is None:
            object.__setattr__(self, "options", {})
        if self.aws is None:
            object.__setattr__(self, "aws", {})

    def __setattr__(self, name, value):
        if name not in NAMES:
            raise PlanError("a plan has no field %s" % name)
        object.__setattr__(self, name, value)

    def __eq__(self, other):
        return isinstance(other, Plan) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Plan(%s, %d hosts)" % (self.deployment_id, len(self.hosts))

    # ------------------------------------------------------------------ facts
    def to_dict(self):
        """The plan as JSON-ready data, for ``register`` and the next play."""
        data = {name: getattr(self, name) for name in NAMES}
        data["format"] = FORMAT
        return data

    @classmethod
    def from_dict(cls, data, what="deployment"):
        """The plan from ``to_dict()``'s mapping; PlanError (naming ``what``) for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PlanError("%s must be the plan that rollout.codedeploy.deployment (state=started) returned, as "
                            "'{{ codedeploy_deployment.plan }}'; got %s" % (what, _shape(data)))
        fields = {key: value for key, value in data.items() if key != "format"}
        return cls(**fields)

    # ------------------------------------------------------------------ questions
    @property
    def deploys(self):
        """False when nothing is deployed (check mode, or every instance already up to date)."""
        return bool(self.deployment_id)

    @property
    def controls_traffic(self):
        return bool(self.target_groups or self.classic_elbs or self.haproxy_backends)

    @property
    def is_rollback_from_archives(self):
        return bool(self.reuse_deployment)

    def instance_of(self, host):
        return self.instances.get(host)

    def role_of(self, host):
        """green or blue in a blue/green plan; None in place."""
        return self.roles.get(host)

    def hosts_in_role(self, role):
        """The plan's hosts of ``role``, in rollout order."""
        return [host for host in self.hosts if self.roles.get(host) == role]

    def steps_for(self, host):
        """The steps ``host`` runs: its role's in a blue/green plan, else ``steps``. A green host of a plan with a ready wait
        runs the part of its steps before BeforeAllowTraffic in the install phase and the rest in the reroute phase."""
        role = self.roles.get(host)
        if role is None:
            return self.steps
        if role not in self.steps_by_role:
            raise PlanError("the plan gives %s the role %s, which has no steps (roles with steps: %s)" % (
                host, role, ", ".join(sorted(self.steps_by_role)) or "none"))
        steps = self.steps_by_role[role]
        if not self.waits_for_green(host) or self.phase is None:
            return steps
        install, reroute = split_steps(steps, REROUTE_FROM)
        return reroute if self.phase == "reroute" else install

    @property
    def waits_ready(self):
        """True for a blue/green plan whose installed green fleet waits in status Ready (STOP_DEPLOYMENT)."""
        return bool(self.ready_wait) and bool(self.roles)

    def waits_for_green(self, host):
        """True when ``host`` is a green host whose steps are split by the ready wait."""
        return self.waits_ready and self.roles.get(host) == "green"

    def first_play_hosts(self):
        """The hosts of the first rollout play: every host, or with a ready wait only the green ones (the install phase)."""
        return self.hosts_in_role("green") if self.waits_ready else list(self.hosts)

    def alarm_names(self):
        """The alarms to watch, or () when alarm monitoring is off."""
        alarms = self.options.get("alarms") or {}
        return tuple(alarms.get("names") or ()) if alarms.get("enabled") else ()

    def ignore_poll_alarm_failure(self):
        return bool((self.options.get("alarms") or {}).get("ignore_poll_alarm_failure"))

    def bake_seconds(self, batch_hosts):
        """The bake time after the batch that holds ``batch_hosts`` (0 outside zonal configs)."""
        batch_hosts = set(batch_hosts or ())
        for index, batch in enumerate(self.batches):
            if batch_hosts & set(batch):
                return int(self.bake_after[index] if index < len(self.bake_after) else 0)
        return 0

    def host_arguments(self, events, from_bundle=False, host=None):
        """The arguments of a lifecycle module run of ``events`` on ``host`` of this plan; ``from_bundle``: a rollback host
        without the earlier archive gets the fallback bundle instead."""
        args = {
            "deployment_id": self.deployment_id, "deployment_group_id": self.deployment_group_id,
            "application_name": self.application, "deployment_group_name": self.deployment_group,
            "events": list(events), "appspec": self.appspec, "revision": self.revision_env or {},
            "file_exists_behavior": self.options.get("file_exists_behavior") or "DISALLOW",
            "ignore_application_stop_failures": bool(self.options.get("ignore_application_stop_failures")),
            "bundle_sha256": self.sha256,
        }
        if self.reuse_deployment and not from_bundle:
            args["reuse_deployment"] = self.reuse_deployment
        else:
            args["bundle_src"] = self.bundle
        for option in ("deployment_root", "max_revisions"):
            if getattr(self, option) is not None:
                args[option] = getattr(self, option)
        last = self.last_host_slice(host)
        args["release_host_lock"] = last is None or list(events) == last
        if not args["release_host_lock"]:
            # The hold covers the controller's traffic step between two runs: HAProxy waits may be longer than 300 s.
            args["host_lock_hold"] = max(HOST_LOCK_HOLD, int(longest_wait(self.haproxy_backends)) + 300)
        return args

    def last_host_slice(self, host=None):
        """The last list of host events in ``host``'s steps that has work on the host: its run releases the host lock."""
        slices = [step for step in self.steps_for(host) if isinstance(step, list) and needs_host(step, self.appspec)]
        return slices[-1] if slices else None

    def host_events(self, host=None):
        """Every event ``host`` (by default: a host without a role) runs, in order (host events and traffic steps flattened)."""
        events = []
        for step in self.steps_for(host):
            events.extend(step if isinstance(step, list) else [step])
        return events


def split_steps(steps, event):
    """(the steps before ``event``, the steps from it on): a list of host events that holds ``event`` is cut in two."""
    before, after = [], []
    for step in steps:
        if after:
            after.append(list(step) if isinstance(step, list) else step)
        elif isinstance(step, list) and event in step:
            index = step.index(event)
            if step[:index]:
                before.append(step[:index])
            after.append(step[index:])
        elif step == event:
            after.append(step)
        else:
            before.append(list(step) if isinstance(step, list) else step)
    return before, after


def _shape(data):
    if isinstance(data, dict):
        return "a mapping with keys %s" % (", ".join(sorted(str(k) for k in data)[:8]) or "none")
    if data is None:
        return "nothing"
    return "%r" % (str(data)[:60],)


def empty(note):
    """The plan of a deployment that deploys nothing, with the reason."""
    return Plan(note=note)
