# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side plumbing shared by the deployment action plugins: AWS clients, the ledger,
notifications and load-balancer steps, built from the plan that ``deployment`` (state=started) returns."""

from __future__ import annotations

import os
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils.hooks import utc_timestamp as utc_now

try:
    import boto3
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False


def aws_client(service_name, aws=None):
    """A boto3 client for the deployment's region; the endpoint and credentials come from the usual AWS_* settings."""
    if not HAS_BOTO3:
        raise RuntimeError("boto3 is needed on the controller for AWS features (pip install boto3)")
    aws = aws or {}
    kwargs = {"region_name": aws.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if aws.get("endpoint_url"):
        kwargs["endpoint_url"] = aws["endpoint_url"]
    session = boto3.session.Session(profile_name=aws["profile"]) if aws.get("profile") else boto3
    return session.client(service_name, **kwargs)


def account_id(aws=None):
    """The AWS account the credentials belong to (for trigger messages); 000000000000 when it cannot be read."""
    try:
        return aws_client("sts", aws).get_caller_identity()["Account"]
    except Exception:  # pylint: disable=broad-except
        return "000000000000"


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
