# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale-out: the group's last good revision for new Auto Scaling instances (playbooks/scale_out.yml, docs/scale-out.md).

``plan_scale_out`` decides, before anything is touched, what one scale-out run does:

1. the instances must be hosts of the deployment group (as the inventory selects them now), else the run is refused;
2. while another deployment of the group is active, it waits for it (bounded by ``wait_seconds``), so an instance launched
   during a deployment gets that deployment's revision once it ends - CodeDeploy's outdated-instances UPDATE, done by
   waiting instead of by a second deployment (the new instance is not serving yet: it waits in Pending:Wait);
3. the revision is the group's last successful deployment read AFTER the wait; a group with none has nothing to deploy
   (the lifecycle continues, as CodeDeploy lets instances of a never-deployed group through);
4. instances that already run that revision (a message delivered twice) are not deployed again.

``lifecycle_results`` turns the outcome into CONTINUE / ABANDON per instance. Controller-only; the ledger and the clock
are passed in so that unit tests drive it without AWS."""

from __future__ import annotations

import time

ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")
DEFAULT_WAIT = 1800
WAIT_RANGE = (0, 7200)
POLL_SECONDS = 5.0
CREATOR = "autoscaling"
#: A scale-out deploys each new instance on its own: a failure on one new instance never holds back another, and the
#: serving fleet is not part of the deployment.
DEPLOYMENT_CONFIG = "CodeDeployDefault.AllAtOnce"


class ScaleOutError(Exception):
    """The run is refused; ``code`` is CodeDeploy's error code where one fits, ``message`` says what to do."""

    def __init__(self, message, code="INVALID_INPUT"):
        super(ScaleOutError, self).__init__(message)
        self.message = message
        self.code = code


def instance_ids(instance_id=None, ids=None):
    """The instance ids of ``-e instance_id=`` / ``-e instance_ids=[...]``, checked (a list of ``i-...``)."""
    given = []
    if instance_id not in (None, ""):
        given.append(instance_id)
    if ids not in (None, "", []):
        if isinstance(ids, str):
            ids = [part.strip() for part in ids.split(",") if part.strip()]
        if not isinstance(ids, (list, tuple)):
            raise ScaleOutError("instance_ids=%r is not accepted: give a list of EC2 instance ids, such as [i-0abc...]" % (ids,),
                                "instance_ids")
        given.extend(ids)
    if not given:
        raise ScaleOutError("no instance given: pass -e instance_id=i-... (or -e instance_ids=[i-..., ...]), the new instance(s) "
                            "of the deployment group's Auto Scaling group", "instance_id")
    for value in given:
        if not isinstance(value, str) or not value.startswith(("i-", "mi-")):
            raise ScaleOutError("instance id %r is not accepted: an EC2 instance id looks like i-0123456789abcdef0" % (value,),
                                "instance_id")
    return list(dict.fromkeys(given))


def targets(ids, group, hosts):
    """{instance id: inventory host} for ``ids``, from the group's hosts ([{host, instance_id}]); refused, naming the instance,
    when one is not a host of the group."""
    by_instance = {h["instance_id"]: h["host"] for h in hosts}
    missing = [i for i in ids if i not in by_instance]
    if missing:
        raise ScaleOutError(
            "instance(s) %s are not hosts of deployment group %s in this inventory (it selects %d instance(s)). A new instance waiting "
            "on the launch hook is in lifecycle state Pending:Wait: add it to the inventory source's autoscaling_lifecycle_states "
            "([InService, Pending:Wait]), and check that the instance belongs to one of the group's Auto Scaling groups and has an "
            "address" % (", ".join(missing), group, len(by_instance)), "NOT_IN_GROUP")
    return {i: by_instance[i] for i in ids}


def active_deployment(book, application, group):
    """The group's active deployment whose lease still holds (a summary), or None: one whose controller is gone (lease run
    out) is not waited for; opening the scale-out deployment settles it (TIMEOUT), as any new deployment does."""
    for summary in book.list_deployments(application, group, statuses=list(ACTIVE_STATUSES), limit=0):
        if not summary.get("lease_expired"):
            return summary
    return None


def wait_for_group(book, application, group, wait_seconds, sleep=time.sleep, clock=time.monotonic, heartbeat=None,
                   poll=POLL_SECONDS):
    """Wait while the group has an active deployment; returns the ids waited for (oldest first). ``heartbeat`` is called at each
    poll (it keeps the instance's lifecycle action alive). Refused with TIMEOUT when one is still active after ``wait_seconds``."""
    waited = []
    deadline = clock() + wait_seconds
    while True:
        active = active_deployment(book, application, group)
        if active is None:
            return waited
        if active["deployment_id"] not in waited:
            waited.append(active["deployment_id"])
        left = deadline - clock()
        if left <= 0:
            raise ScaleOutError(
                "deployment %s of %s/%s is still %s after waiting %d s (codedeploy_scale_out_wait): the new instance gets nothing "
                "now. Run the scale-out again once it ends, or raise codedeploy_scale_out_wait (keep it below the lifecycle hook's "
                "heartbeat_timeout)" % (active["deployment_id"], application, group, active.get("status"), wait_seconds), "TIMEOUT")
        if heartbeat is not None:
            heartbeat()
        sleep(min(poll, max(left, 0.0)))


def plan_scale_out(book, application, group, instances, wait_seconds=DEFAULT_WAIT, sleep=time.sleep, clock=time.monotonic,
                   heartbeat=None):
    """What to deploy where: ``{deploy, reuse_deployment, location, only_hosts, current, waited_for, msg}``.

    ``instances``: {instance id: host} (``targets``). ``book`` may be None (no ledger yet: nothing was ever deployed)."""
    waited = wait_for_group(book, application, group, wait_seconds, sleep, clock, heartbeat) if book is not None else []
    last = book.last_successful(application, group) if book is not None else None
    after = (" after waiting for deployment(s) %s" % ", ".join(waited)) if waited else ""
    base = {"deploy": False, "reuse_deployment": None, "location": None, "only_hosts": [], "current": [], "waited_for": waited}
    if last is None:
        return dict(base, msg="Nothing to deploy to %s: deployment group %s/%s has no successful deployment yet%s. The lifecycle "
                              "continues (CONTINUE)" % (", ".join(instances), application, group, after))
    sha256 = (last.get("revision") or {}).get("sha256")
    location = (last.get("revision") or {}).get("location")
    history = book.instance_history(application, group, list(instances))
    current = [i for i in instances if _runs(history.get(i), sha256)]
    todo = [i for i in instances if i not in current]
    plan = dict(base, reuse_deployment=last["deployment_id"], location=location, current=current,
                only_hosts=[instances[i] for i in todo], deploy=bool(todo))
    if not todo:
        plan["msg"] = "%s already run(s) %s of %s (deployment %s): nothing to deploy%s. The lifecycle continues (CONTINUE)" % (
            ", ".join(current), location, group, last["deployment_id"], after)
    else:
        plan["msg"] = "Scale-out of %s: %s (the revision of %s, the last successful deployment of %s/%s) to %s%s%s" % (
            group, location, last["deployment_id"], application, group, ", ".join("%s (%s)" % (instances[i], i) for i in todo), after,
            "; %s already run(s) it" % ", ".join(current) if current else "")
    return plan


def _runs(record, sha256):
    return bool(record) and record.get("status") == "Succeeded" and bool(sha256) and record.get("revision_sha256") == sha256


def lifecycle_results(instances, plan, deployment=None, refused=None):
    """{instance id: (CONTINUE | ABANDON, why)}: CONTINUE for an instance whose deployment succeeded or that had nothing to get,
    ABANDON for one whose deployment did not succeed or when the run was refused."""
    if refused:
        return {i: ("ABANDON", refused) for i in instances}
    plan = plan or {}
    statuses = {}
    for row in (deployment or {}).get("instances") or ():
        statuses[row["instance_id"]] = row.get("status")
    results = {}
    for instance in instances:
        if instance in (plan.get("current") or ()) or not plan.get("deploy"):
            results[instance] = ("CONTINUE", "nothing to deploy")
        elif statuses.get(instance) == "Succeeded":
            results[instance] = ("CONTINUE", "deployment %s succeeded on it" % deployment["deployment_id"])
        elif deployment:
            results[instance] = ("ABANDON", "deployment %s is %s on it" % (deployment["deployment_id"], statuses.get(instance) or "missing"))
        else:
            results[instance] = ("ABANDON", "the scale-out deployment could not be opened")
    return results
