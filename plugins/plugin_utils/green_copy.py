# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A blue/green deployment whose green fleet is a copy of the group's Auto Scaling group (COPY_AUTO_SCALING_GROUP),
on the controller.

- ``open_with_copy``: before the deployment is opened, describe the source group (refused, nothing created, when it is
  missing or has no healthy instance), fetch and check the revision, make sure the group is not locked, create the copy
  ``CodeDeploy_<group>_<deployment id>``, wait until its instances are InService and have an address, name them as the
  inventory plugin would (module_utils/ec2_hosts.py, with the source's ``codedeploy_host_naming``), then open the
  deployment with them as the green fleet. Any failure on the way deletes the copy; the blue fleet is never touched.
  In check mode only the first step runs and the preview says what would be created.
- ``terminate_blue``: TERMINATE after the reroute deletes the original Auto Scaling group (with its instances) before the
  blue instances are terminated.
- ``after_settle``: the copy's fate once the deployment is settled (kept when it serves, deleted when the traffic is back
  on blue) and the ledger's swap record (``green_asg``, ``blue_asg``, ``state``).

The AWS calls live in module_utils/green_fleet.py. Controller-only; docs/blue-green.md describes the behaviour."""

from __future__ import annotations

import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import ec2_hosts
from ansible_collections.rollout.codedeploy.plugins.module_utils import green_fleet
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import AwsError, terminate_instances
from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import TERMINAL_STATUSES

#: Seconds the copy's instances have to be InService with an address before the copy is deleted and the deployment fails.
DEFAULT_TIMEOUT = 900
POLL = 2
#: The inventory group the copied instances join (besides no other): group_vars/codedeploy_green.yml applies to them.
GREEN_GROUP = "codedeploy_green"
#: Connection variables a green host takes from the blue hosts when every blue host has the same value.
CONNECTION_VARS = ("ansible_connection", "ansible_user", "ansible_ssh_user", "ansible_port", "ansible_password", "ansible_ssh_pass",
                   "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_ssh_common_args", "ansible_ssh_extra_args",
                   "ansible_ssh_args", "ansible_pipelining", "ansible_ssh_pipelining", "ansible_python_interpreter", "ansible_become",
                   "ansible_become_method", "ansible_become_user", "ansible_become_password", "ansible_remote_tmp", "ansible_shell_type",
                   "ansible_shell_executable", "ansible_timeout", "ansible_ssh_timeout")


class FetchOnce(object):
    """A revision fetcher that fetches each revision once: the copy checks the revision before it creates anything, and the
    deployment service then reuses the same fetch."""

    def __init__(self, fetch):
        self._fetch = fetch
        self._done = {}

    def __call__(self, revision, aws, cache):
        key = repr(revision)
        if key not in self._done:
            self._done[key] = self._fetch(revision, aws, cache)
        return self._done[key]


# ------------------------------------------------------------------------------ what the blue hosts say
def host_naming(blue_names, hostvars):
    """(hostnames, ansible_host_source) of the inventory source the blue hosts came from (``codedeploy_host_naming``), else the
    inventory plugin's defaults."""
    for name in blue_names:
        naming = (hostvars.get(name) or {}).get("codedeploy_host_naming")
        if isinstance(naming, dict):
            sources = [s for s in (ec2_hosts.host_source(s) for s in naming.get("ansible_host_source") or []) if s]
            return list(naming.get("hostnames") or ec2_hosts.DEFAULT_HOSTNAMES), sources or list(ec2_hosts.DEFAULT_HOST_SOURCES)
    return list(ec2_hosts.DEFAULT_HOSTNAMES), list(ec2_hosts.DEFAULT_HOST_SOURCES)


def shared_connection_vars(blue_names, hostvars):
    """The connection variables (CONNECTION_VARS) that every blue host has, with one value: the green hosts get them too."""
    shared = None
    for name in blue_names:
        host_vars = hostvars.get(name) or {}
        mine = {}
        for key in CONNECTION_VARS:
            try:
                value = host_vars.get(key)
            except Exception:  # pylint: disable=broad-except  # a variable that cannot be rendered is simply not shared
                value = None
            if value is not None:
                mine[key] = value
        shared = mine if shared is None else {k: v for k, v in shared.items() if mine.get(k) == v}
    return shared or {}


def green_hosts(instances, asg_name, region, naming, taken, connection=None, render=None, sanitize=None):
    """The copy's instances as green hosts: ``([{host, instance_id, zone, role}], [add_host entries])``, named and addressed
    like the inventory plugin's hosts; a name already taken (by a host of the inventory or an earlier instance) becomes
    ``<name>_<instance id>``, as the inventory plugin does."""
    hostnames, sources = naming
    hosts, entries, used = [], [], set(taken or ())
    for instance in sorted(instances, key=lambda i: i["InstanceId"]):
        name = ec2_hosts.hostname(instance, hostnames, render=render, sanitize=sanitize)
        if name in used:
            name = "%s_%s" % (name, instance["InstanceId"])
        used.add(name)
        variables = ec2_hosts.ec2_vars(instance, region, {"autoscaling_group": asg_name, "lifecycle_state": "InService"},
                                       ec2_hosts.ansible_host(instance, sources))
        hosts.append({"host": name, "instance_id": instance["InstanceId"], "zone": variables["codedeploy_availability_zone"],
                      "role": "green"})
        entry = dict(connection or {})
        entry.update(variables)
        entry.update(name=name, groups=[GREEN_GROUP])
        entries.append(entry)
    return hosts, entries


# ------------------------------------------------------------------------------ the copy
class Copier(object):
    """One copy of a deployment group's Auto Scaling group: prepare (read-only), create, wait, discard."""

    def __init__(self, aws, settings, naming=None, taken=(), connection=None, render=None, sanitize=None, timeout=DEFAULT_TIMEOUT,
                 sleep=time.sleep, clock=time.monotonic):
        self.aws = aws
        self.settings = settings or {}
        self.naming = naming or (list(ec2_hosts.DEFAULT_HOSTNAMES), list(ec2_hosts.DEFAULT_HOST_SOURCES))
        self.taken = set(taken or ())
        self.connection = dict(connection or {})
        self.render, self.sanitize = render, sanitize
        self.timeout = int(timeout)
        self._sleep, self._clock = sleep, clock
        self.source = None
        self.request = None
        self.record = None
        self.entries = []

    @property
    def name(self):
        return (self.request or {}).get("AutoScalingGroupName")

    def prepare(self, deployment_id):
        """Describe the source, refuse a missing or empty one, build the copy's request. Creates nothing."""
        source_name = green_fleet.source_name(self.settings)
        self.source = green_fleet.describe_group(self.aws, source_name)
        healthy = green_fleet.check_source(self.source, source_name, self.settings.get("region"))
        self.request = green_fleet.copy_request(self.source, green_fleet.copy_name(self.settings.get("name") or "group", deployment_id),
                                                len(healthy))
        return self.request

    def describe(self):
        """The copy, for messages: name, source, size, launch source and subnets, and what is not copied."""
        return ("Auto Scaling group %s, a copy of %s with %d instance(s) (its healthy count): %s, its tags and sizes; not its load "
                "balancers (the green hosts join them at AllowTraffic)" % (
                    self.name, self.source.get("AutoScalingGroupName"), self.request["DesiredCapacity"],
                    green_fleet.launch_summary(self.request)))

    def placeholders(self):
        """Check mode: stand-ins for the instances the copy would launch, so the preview plans their batches."""
        return [{"host": "%s-new-%d" % (self.name, number), "instance_id": "(launched by %s)" % self.name, "zone": None, "role": "green"}
                for number in range(1, self.request["DesiredCapacity"] + 1)]

    def create(self):
        arn = green_fleet.create_group(self.aws, self.request)
        self.record = green_fleet.record(self.source, self.request, arn)
        return self.record

    def wait(self):
        """Wait until the copy has its desired count of InService instances, each with an address (ansible_host_source);
        returns the green hosts (and keeps their add_host entries in ``entries``). AwsError TIMEOUT when they do not come."""
        deadline = self._clock() + self.timeout
        wanted = self.request["DesiredCapacity"]
        ready, members = [], {}
        while True:
            members = green_fleet.in_service(green_fleet.describe_group(self.aws, self.name))
            if len(members) >= wanted:
                instances = green_fleet.describe_instances(self.aws, sorted(members))
                ready = [i for i in instances if ec2_hosts.ansible_host(i, self.naming[1])]
                if len(ready) >= wanted:
                    break
            if self._clock() >= deadline:
                raise AwsError("the %d instance(s) of %s were not all InService with an address (ansible_host_source %s) within %d s: "
                               "%d InService, %d of them with an address" % (
                                   wanted, self.name, ", ".join(self.naming[1]), self.timeout, len(members), len(ready)), "TIMEOUT")
            self._sleep(POLL)
        hosts, self.entries = green_hosts(ready[:wanted], self.name, self.settings.get("region"), self.naming, self.taken,
                                          self.connection, self.render, self.sanitize)
        return hosts

    def discard(self):
        """Delete the copy (force: with its instances). Returns what happened, for messages; never raises."""
        if not self.record:
            return ""
        try:
            green_fleet.delete_group(self.aws, self.name)
        except AwsError as exc:
            self.record["state"] = "delete_failed"
            return "The copied Auto Scaling group %s could not be deleted: %s" % (self.name, exc.message)
        self.record["state"] = "deleted"
        return "The copied Auto Scaling group %s was deleted with its instances" % self.name


def check_group_free(ledger, application, group):
    """Refuse (ActiveDeploymentError, nothing created) when the group has an unfinished deployment whose lease holds."""
    if ledger is None:
        return
    now = ledgers.utc_now()
    active = [s for s in ledgers.DEPLOYMENT_STATUSES if s not in TERMINAL_STATUSES]
    for summary in ledger.list_deployments(application, group, statuses=active, limit=0):
        if not ledgers.lease_expired(summary.get("lease_expires"), now):
            raise ledgers.ActiveDeploymentError(ledgers.active_message(summary, now) + " No Auto Scaling group was created.", summary)


def open_with_copy(service, request, hosts, settings, copier, fetch, check_mode=False):
    """Open a COPY_AUTO_SCALING_GROUP deployment (see the module docstring). ``fetch`` is the service's revision fetcher
    (a FetchOnce). Returns the service's Opening; its plan's ``green_asg`` names the copy. On a failure the copy is deleted
    and the error, its message completed, propagates; when the copy's instances did not come, the deployment is recorded
    Failed (its blue instances Skipped)."""
    from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import ServiceError, group_names
    deployment_id = ledgers.new_deployment_id()
    copier.prepare(deployment_id)
    if check_mode:
        opening = service.open(dict(request, green_fleet=copier.placeholders()), hosts, settings, check_mode=True)
        opening.message += "\nthe green fleet would be created first: %s" % copier.describe()
        return opening
    # The revision and the lock are checked before anything is created: a bad revision or a busy group costs no instance.
    fetch(request["revision"], service.aws, service.bundle_cache)
    application, group, _group_id = group_names(settings, request["deployment_group"])
    check_group_free(service.ledger, application, group)
    copier.create()
    opened = False
    try:
        green = copier.wait()
        opened = True
        opening = service.open(dict(request, green_fleet=green, deployment_id=deployment_id, green_asg=copier.record), hosts, settings)
    except (AwsError, ServiceError, ledgers.LedgerError) as exc:
        note = copier.discard()
        exc.message = "%s. %s; the blue hosts were not touched." % (exc.message.rstrip("."), note)
        if not opened:
            _record_failed(service, request, hosts, settings, deployment_id, exc, fetch)
        _record_swap(service.ledger, deployment_id, {"state": "rolled_back", "green_asg": dict(copier.record, time=ledgers.utc_now())})
        raise
    except BaseException:
        copier.discard()
        raise
    opening.message += ". Green fleet: %s" % copier.describe()
    _record_swap(service.ledger, deployment_id, {"state": "installing", "green_asg": copier.record})
    return opening


def _record_failed(service, request, hosts, settings, deployment_id, exc, fetch):
    """The copy's instances never came: record the deployment Failed with its blue instances Skipped, so the ledger shows
    the attempt (and the swap record the deleted copy). Nothing is recorded when the group became busy meanwhile."""
    from ansible_collections.rollout.codedeploy.plugins.plugin_utils.service import effective_options, group_names
    fetched, spec, _warnings = fetch(request["revision"], service.aws, service.bundle_cache)
    application, group, group_id = group_names(settings, request["deployment_group"])
    options = effective_options(settings, request)
    revision = {"location": fetched.get("location"), "sha256": fetched.get("sha256"), "bundle_type": fetched.get("bundle_type"),
                "source": fetched.get("source"), "env": fetched.get("env") or {}, "appspec": spec}
    instances = [{"instance_id": h["instance_id"], "host": h["host"], "zone": h.get("zone"), "role": "blue"} for h in hosts]
    try:
        service.ledger.create_deployment(application, group, group_id, revision, options["deployment_config"], instances,
                                         creator=request.get("creator") or "user", options=options, description=request.get("description"),
                                         owner=service.owner, deployment_id=deployment_id)
        service.ledger.abandon(deployment_id, "Failed", getattr(exc, "code", None) or "AUTO_SCALING_CONFIGURATION", exc.message)
    except ledgers.LedgerError:
        return
    exc.message = "%s failed before any host was touched: %s" % (deployment_id, exc.message)


def _record_swap(ledger, deployment_id, fields):
    """Write the swap record; a deployment that was never opened has none (the error message then says it all)."""
    try:
        ledger.update_swap(deployment_id, fields=fields)
    except ledgers.LedgerError:
        pass


# ------------------------------------------------------------------------------ after the reroute, after settling
def terminate_blue(aws, ledger, plan, instance_ids):
    """TERMINATE after the termination wait: delete the original Auto Scaling group (with its instances) when the green
    fleet is its copy, then terminate the blue instances (those the group did not hold too). ``{instance id: state}``."""
    source = (plan.green_asg or {}).get("source_name")
    if source:
        try:
            green_fleet.delete_group(aws, source)
        except AwsError as exc:
            _record_swap(ledger, plan.deployment_id, {"blue_asg": {"name": source, "action": "delete_failed", "time": ledgers.utc_now()}})
            raise AwsError("the original Auto Scaling group %s was not deleted, so its instances were not terminated: %s" % (
                source, exc.message), "TERMINATE_FAILED")
        _record_swap(ledger, plan.deployment_id, {"blue_asg": {"name": source, "action": "deleted", "time": ledgers.utc_now()}})
    return terminate_instances(aws, instance_ids)


def after_settle(aws, ledger, plan, deployment, blue_green):
    """Once a COPY_AUTO_SCALING_GROUP deployment is settled: keep the copy when it serves (and say how to adopt it), delete it
    when the traffic is on the blue hosts; record it in the swap record. Returns ``blue_green`` with ``green_asg``."""
    record = dict(plan.green_asg or {})
    if not record or blue_green is None:
        return blue_green
    result = dict(blue_green)
    phase = result.get("phase")
    fields = {}
    if phase == "rerouted":
        fields["state"] = "rerouted"
        if result.get("action") == "KEEP_ALIVE":
            fields["blue_asg"] = {"name": record.get("source_name"), "action": "kept", "time": ledgers.utc_now()}
        note = ("The green fleet is the Auto Scaling group %s (%s); adopt it in your infrastructure code and name it in the inventory "
                "source's autoscaling_groups (docs/blue-green.md)" % (record["name"], record.get("arn")))
        if result.get("action") == "KEEP_ALIVE":
            note += "; the original group %s is kept" % record.get("source_name")
        record["state"] = "serving"
    elif phase == "before_reroute" or (phase == "after_reroute" and result.get("deregistered_green") and not result.get("errors")):
        fields["state"] = "rolled_back" if deployment.get("status") == "Failed" else "stopped"
        try:
            green_fleet.delete_group(aws, record["name"])
            record["state"] = "deleted"
            note = "The copied Auto Scaling group %s was deleted with its instances" % record["name"]
        except AwsError as exc:
            record["state"] = "delete_failed"
            note = "The copied Auto Scaling group %s could not be deleted: %s" % (record["name"], exc.message)
    else:
        note = "The copied Auto Scaling group %s is kept: green hosts still serve" % record["name"]
        record["state"] = "serving"
    fields["green_asg"] = dict(record, time=ledgers.utc_now())
    _record_swap(ledger, plan.deployment_id, fields)
    result["green_asg"] = record
    result["msg"] = "%s. %s" % (result.get("msg") or "", note) if result.get("msg") else note
    return result
