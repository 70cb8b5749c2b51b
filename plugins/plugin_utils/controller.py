# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side plumbing shared by the deployment action plugins: AWS clients, the ledger,
notifications and load-balancer steps, built from the plan that ``deployment`` (state=started) returns."""

from __future__ import annotations

import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils.hooks import utc_timestamp as utc_now

_ACCESS = {}


def _access(aws):
    """One AwsAccess per AWS settings and process, so a host task builds each client once."""
    settings = aws_access.settings_from(aws or {})
    key = tuple(sorted((k, str(v)) for k, v in settings.items()))
    if key not in _ACCESS:
        _ACCESS[key] = aws_access.AwsAccess(settings)
    return _ACCESS[key]


def aws_client(service_name, aws=None):
    """A client of the one AWS access path (module_utils/aws.py) for the plan's AWS settings."""
    return _access(aws).client(service_name)


def account_id(aws=None):
    return _access(aws).account_id()


def ledger(plan):
    return ledgers.open_ledger(plan.get("ledger"), aws=plan.get("aws"))


def notifier(plan):
    """A Notifier for the group's triggers, or None when it has none."""
    triggers = plan.get("triggers") or []
    if not triggers:
        return None
    from ansible_collections.rollout.codedeploy.plugins.module_utils.notify import Notifier
    aws = plan.get("aws")
    return Notifier(sns=aws_client("sns", aws), events=aws_client("events", aws), triggers=triggers,
                    region=(aws or {}).get("region") or "us-east-1", account_id=plan.get("account_id") or "000000000000")


def notify_deployment(notes, deployment, name):
    if notes is None:
        return []
    return notes.deployment_event(name, deployment)


def notify_instance(notes, book, plan, instance_id, name):
    if notes is None:
        return []
    deployment = book.get_deployment(plan["deployment_id"], include_instances=True)
    instance = next((i for i in deployment.get("instances") or [] if i["instance_id"] == instance_id), {"instance_id": instance_id})
    return notes.instance_event(name, deployment, instance)


def balancers(plan):
    """The group's load balancers, or None when the deployment does not control traffic."""
    if not plan.get("target_groups") and not plan.get("classic_elbs"):
        return None
    from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import LoadBalancers
    aws = plan.get("aws")
    return LoadBalancers(elbv2=aws_client("elbv2", aws) if plan.get("target_groups") else None,
                         elb=aws_client("elb", aws) if plan.get("classic_elbs") else None,
                         target_groups=plan.get("target_groups") or (), classic_elbs=plan.get("classic_elbs") or ())


def traffic_step(lbs, step, instance_id, timeout=300):
    """Run BlockTraffic / AllowTraffic for one instance; return (ledger event record, error message or None)."""
    from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import TrafficError
    started, clock = utc_now(), time.monotonic()
    record = {"event": step, "status": "Succeeded", "start": started, "error_code": "Success", "message": "", "log_tail": ""}
    error = None
    try:
        done = lbs.block(instance_id, timeout=timeout) if step == "BlockTraffic" else lbs.allow(instance_id, timeout=timeout)
        record["message"] = _describe_traffic(step, done)
    except TrafficError as exc:
        record.update(status="Failed", error_code=exc.code, message=exc.message)
        error = exc.message
    record.update(end=utc_now(), duration=round(time.monotonic() - clock, 3))
    return record, error


def _describe_traffic(step, done):
    names = sorted(list((done.get("target_groups") or {}).keys()) + list((done.get("classic_elbs") or {}).keys()))
    verb = "deregistered from" if step == "BlockTraffic" else "registered and healthy in"
    return "%s %s" % (verb, ", ".join(names) or "no load balancer")
