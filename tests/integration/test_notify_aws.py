# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trigger notifications (plugins/module_utils/notify.py) against the moto server.

SNS topics are read back through SQS subscriptions, EventBridge buses through rules with an SQS
target, so every assertion is about what a subscriber really receives.
"""
import json

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import notify as nt

pytestmark = [pytest.mark.aws]

ACCOUNT = "123456789012"  # moto's account


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(sqs, url):
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages") or []
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def wiring(aws, world):
    """Two SNS topics and a custom event bus, each feeding its own SQS queue."""
    assert aws
    sns, sqs, events = world.moto.client("sns"), world.moto.client("sqs"), world.moto.client("events")
    result = {"sns": sns, "sqs": sqs, "events": events, "queues": {}}
    for topic in ("deploys", "failures"):
        arn = sns.create_topic(Name=topic)["TopicArn"]
        url, queue_arn = queue(sqs, "%s-q" % topic)
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        result[topic] = arn
        result["queues"][topic] = url
    bus = events.create_event_bus(Name="deploys")["EventBusArn"]
    url, queue_arn = queue(sqs, "bus-q")
    events.put_rule(Name="codedeploy", EventBusName="deploys", EventPattern=json.dumps({
        "source": ["rollout.codedeploy"],
        "detail-type": ["CodeDeploy Deployment State-change Notification", "CodeDeploy Instance State-change Notification"]}))
    events.put_targets(Rule="codedeploy", EventBusName="deploys", Targets=[{"Id": "queue", "Arn": queue_arn}])
    result["bus"] = bus
    result["queues"]["bus"] = url
    return result


DEPLOYMENT = {
    "deployment_id": "d-4K2ABCDEF", "application": "web", "deployment_group": "production",
    "deployment_group_id": "9fd2fbef-2157-40d8-91e7-6845af69e2d2", "status": "InProgress",
    "create_time": "2026-11-22T03:00:00Z", "complete_time": None, "error": None,
    "overview": {"Pending": 2, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0}, "rollback_info": None,
}


def test_subscribers_receive_codedeploy_messages_and_only_their_events(wiring):
    notify = nt.Notifier(sns=wiring["sns"], events=wiring["events"], region="us-east-1", account_id=ACCOUNT, triggers=[
        {"name": "all-deployment-events", "target": wiring["deploys"], "events": list(nt.DEPLOYMENT_EVENTS)},
        {"name": "failures-only", "target": wiring["failures"], "events": ["DeploymentFailure", "InstanceFailure"]},
        {"name": "bus", "target": wiring["bus"], "events": ["DeploymentStart", "InstanceFailure", "DeploymentFailure"]},
    ])
    instance = {"instance_id": "i-0123456789abcdef0", "host": "web-1", "status": "Failed", "start": "2026-11-22T03:00:05Z",
                "end": "2026-11-22T03:00:09Z", "error_code": "HOOK_EXECUTION_FAILURE", "message": "exit 1",
                "events": [{"name": "ValidateService", "status": "Failed", "start": "2026-11-22T03:00:05Z",
                            "end": "2026-11-22T03:00:09Z"}]}
    failed = dict(DEPLOYMENT, status="Failed", complete_time="2026-11-22T03:00:10Z",
                  error={"code": "HEALTH_CONSTRAINTS", "message": "The overall deployment failed because too many individual "
                                                                  "instances failed deployment"},
                  overview={"Pending": 1, "InProgress": 0, "Succeeded": 0, "Failed": 1, "Skipped": 0})
    assert notify.deployment_event("DeploymentStart", DEPLOYMENT) == []
    assert notify.instance_event("InstanceStart", DEPLOYMENT, dict(instance, status="InProgress")) == []
    assert notify.instance_event("InstanceFailure", DEPLOYMENT, instance) == []
    assert notify.deployment_event("DeploymentFailure", failed) == []

    deploys = drain(wiring["sqs"], wiring["queues"]["deploys"])
    assert [b["Subject"] for b in deploys] == ["IN_PROGRESS: AWS CodeDeploy d-4K2ABCDEF in us-east-1 to web",
                                               "FAILED: AWS CodeDeploy d-4K2ABCDEF in us-east-1 to web"]
    start, end = [json.loads(b["Message"]) for b in deploys]
    assert start == {"region": "us-east-1", "accountId": ACCOUNT, "eventTriggerName": "all-deployment-events",
                     "applicationName": "web", "deploymentId": "d-4K2ABCDEF", "deploymentGroupName": "production",
                     "createTime": "Sun Nov 22 03:00:00 UTC 2026", "completeTime": None, "status": "IN_PROGRESS"}
    assert end["status"] == "FAILED" and end["completeTime"] == "Sun Nov 22 03:00:10 UTC 2026"
    assert json.loads(end["deploymentOverview"]) == {"Succeeded": 0, "Failed": 1, "Skipped": 0, "InProgress": 0, "Pending": 1}
    assert json.loads(end["errorInformation"])["ErrorCode"] == "HEALTH_CONSTRAINTS"

    failures = [json.loads(b["Message"]) for b in drain(wiring["sqs"], wiring["queues"]["failures"])]
    assert [(m["eventTriggerName"], m.get("instanceStatus") or m["status"]) for m in failures] == [
        ("failures-only", "Failed"), ("failures-only", "FAILED")]
    assert failures[0]["instanceId"] == "arn:aws:ec2:us-east-1:%s:instance/i-0123456789abcdef0" % ACCOUNT
    assert json.loads(failures[0]["lifecycleEvents"])[0]["LifecycleEvent"] == "ValidateService"

    events = drain(wiring["sqs"], wiring["queues"]["bus"])
    assert [(e["detail-type"], e["detail"]["state"]) for e in events] == [
        ("CodeDeploy Deployment State-change Notification", "START"),
        ("CodeDeploy Instance State-change Notification", "FAILURE"),
        ("CodeDeploy Deployment State-change Notification", "FAILURE")]
    assert all(e["source"] == "rollout.codedeploy" for e in events)
    assert events[1]["detail"] == {"instanceId": "i-0123456789abcdef0", "region": "us-east-1", "deploymentId": "d-4K2ABCDEF",
                                   "instanceGroupId": DEPLOYMENT["deployment_group_id"], "deploymentGroup": "production",
                                   "application": "web", "state": "FAILURE"}
    assert "arn:aws:codedeploy:us-east-1:%s:application:web" % ACCOUNT in events[0]["resources"]


def test_a_missing_topic_is_a_warning_and_the_other_triggers_still_get_the_event(wiring):
    gone_topic = "arn:aws:sns:us-east-1:%s:deleted-topic" % ACCOUNT
    gone_bus = "arn:aws:events:us-east-1:%s:event-bus/deleted-bus" % ACCOUNT
    notify = nt.Notifier(sns=wiring["sns"], events=wiring["events"], region="us-east-1", account_id=ACCOUNT, triggers=[
        {"name": "gone", "target": gone_topic, "events": ["DeploymentStop"]},
        {"name": "gone-bus", "target": gone_bus, "events": ["DeploymentStop"]},
        {"name": "ok", "target": wiring["deploys"], "events": ["DeploymentStop"]},
    ])
    warnings = notify.deployment_event("DeploymentStop", dict(DEPLOYMENT, status="Stopped",
                                                              error={"code": "ALARM_ACTIVE", "message": "Alarm web-5xx in ALARM"}))
    assert len(warnings) == 2
    assert "Trigger gone could not send DeploymentStop to %s" % gone_topic in warnings[0]
    assert "Trigger gone-bus could not send DeploymentStop to %s" % gone_bus in warnings[1]
    received = drain(wiring["sqs"], wiring["queues"]["deploys"])
    assert [json.loads(b["Message"])["status"] for b in received] == ["STOPPED"]
    assert [d["ok"] for d in notify.deliveries] == [False, True, False]
