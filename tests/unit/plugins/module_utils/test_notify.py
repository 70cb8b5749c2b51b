# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/notify.py: trigger validation, CodeDeploy's message formats, delivery warnings."""

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.rollout.codedeploy.plugins.module_utils import notify as nt

TOPIC = "arn:aws:sns:us-east-1:123456789012:deploys"
TOPIC2 = "arn:aws:sns:us-east-1:123456789012:ops"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/deploys"
ACCOUNT = "123456789012"

DEPLOYMENT = {
    "deployment_id": "d-4K2ABCDEF", "application": "web", "deployment_group": "production",
    "deployment_group_id": "9fd2fbef-2157-40d8-91e7-6845af69e2d2", "status": "Failed",
    "create_time": "2022-10-14T08:38:46Z", "complete_time": "2022-10-14T08:46:18.312Z",
    "error": {"code": "HOOK_EXECUTION_FAILURE", "message": "ValidateService failed on web-3"},
    "overview": {"Succeeded": 1, "Failed": 1, "Skipped": 0, "InProgress": 0, "Pending": 2},
    "rollback_info": None,
}
INSTANCE = {
    "instance_id": "i-0123456789abcdef0", "host": "web-1", "status": "Succeeded",
    "start": "2022-10-14T08:39:00Z", "end": "2022-10-14T08:40:07Z", "error_code": None, "message": None,
    "events": [
        {"name": "ApplicationStop", "status": "Succeeded", "start": "2022-10-14T08:39:00Z", "end": "2022-10-14T08:39:01Z"},
        {"name": "BeforeInstall", "status": "Succeeded", "start": "2022-10-14T08:39:02Z", "end": "2022-10-14T08:39:03Z"},
    ],
}


class FakeSns:
    def __init__(self, failure=None):
        self.published = []
        self.failure = failure

    def publish(self, TopicArn, Message, Subject):
        if self.failure is not None:
            raise self.failure
        self.published.append({"TopicArn": TopicArn, "Subject": Subject, "Message": Message})
        return {"MessageId": "m-%d" % len(self.published)}


class FakeEvents:
    def __init__(self, failure=None, answer=None):
        self.entries = []
        self.failure = failure
        self.answer = answer

    def put_events(self, Entries):
        if self.failure is not None:
            raise self.failure
        self.entries.extend(Entries)
        return self.answer or {"FailedEntryCount": 0, "Entries": [{"EventId": "e-%d" % len(self.entries)}]}


def notifier(triggers, sns=None, events=None, **kwargs):
    return nt.Notifier(sns=sns, events=events, triggers=triggers, region="us-east-1", account_id=ACCOUNT, **kwargs)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("triggers, needles", [
    ([{"name": "ops", "target": TOPIC, "events": ["DeploymentFailed"]}],
     ["Trigger ops", "'DeploymentFailed'", "did you mean DeploymentFailure?", "Valid events: DeploymentStart, "]),
    ([{"name": "ops", "target": TOPIC, "events": ["Whatever"]}], ["Trigger ops", "'Whatever'", "InstanceReady"]),
    ([{"name": "ops", "target": TOPIC, "events": []}], ["Trigger ops subscribes to no event"]),
    ([{"target": TOPIC, "events": ["DeploymentStart"]}], ["Trigger 1 has no name"]),
    ([{"name": "a", "target": TOPIC, "events": ["DeploymentStart"]}] * 2, ["Two triggers are named a"]),
    ([{"name": "ops", "target": "arn:aws:sqs:us-east-1:123456789012:q", "events": ["DeploymentStart"]}],
     ["Trigger ops has target", "neither an SNS topic ARN"]),
    ([{"name": "t%d" % i, "target": TOPIC, "events": ["DeploymentStart"]} for i in range(11)], ["at most 10 triggers"]),
    (["ops"], ["a trigger is a mapping"]),
])
def test_invalid_triggers_are_refused_with_the_trigger_named(triggers, needles):
    with pytest.raises(nt.NotifyError) as caught:
        notifier(triggers)
    for needle in needles:
        assert needle in caught.value.message


def test_valid_triggers_are_normalized():
    result = nt.validate_triggers([
        {"name": "sns", "target": TOPIC, "events": "DeploymentStart"},
        {"name": "bus", "target": BUS, "events": ["InstanceFailure", "InstanceFailure"]},
        {"name": "default-bus", "target": "eventbridge", "events": ["DeploymentStop"]},
    ], event_bus="mine")
    assert [(t["service"], t["bus"], t["events"]) for t in result] == [
        ("sns", None, ["DeploymentStart"]), ("events", BUS, ["InstanceFailure"]), ("events", "mine", ["DeploymentStop"])]


# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, expected", [
    ("InProgress", "IN_PROGRESS"), ("Succeeded", "SUCCEEDED"), ("Failed", "FAILED"), ("Stopped", "STOPPED"),
    ("Created", "CREATED"), ("Ready", "READY"), (None, "UNKNOWN"),
])
def test_trigger_status(status, expected):
    assert nt.trigger_status(status) == expected


@pytest.mark.parametrize("status, deployment_event, instance_event", [
    ("Created", "DeploymentStart", None), ("InProgress", "DeploymentStart", "InstanceStart"),
    ("Succeeded", "DeploymentSuccess", "InstanceSuccess"), ("Failed", "DeploymentFailure", "InstanceFailure"),
    ("Stopped", "DeploymentStop", None), ("Ready", "DeploymentReady", "InstanceReady"), ("Skipped", None, None),
])
def test_events_for_statuses(status, deployment_event, instance_event):
    assert nt.event_for_status(status) == deployment_event
    assert nt.instance_event_for_status(status) == instance_event


@pytest.mark.parametrize("value, expected", [
    ("2022-10-13T15:50:45Z", "Thu Oct 13 15:50:45 UTC 2022"),
    ("2022-10-13T15:50:45.123456Z", "Thu Oct 13 15:50:45 UTC 2022"),
    ("2022-10-13T15:50:45.1234567+02:00", "Thu Oct 13 13:50:45 UTC 2022"),
    ("2026-11-02T03:04:05", "Mon Nov 02 03:04:05 UTC 2026"),
    (0, "Thu Jan 01 00:00:00 UTC 1970"),
    (None, None),
    ("not a time", "not a time"),
])
def test_java_time(value, expected):
    assert nt.java_time(value) == expected


def test_subject_is_ascii_one_line_and_at_most_100_characters():
    text = nt.subject("Succeeded", "d-4K2ABCDEF", "us-east-1", "w\u00e9b\n" + "x" * 200)
    assert text.startswith("SUCCEEDED: AWS CodeDeploy d-4K2ABCDEF in us-east-1 to w?b ")
    assert len(text) == 100
    text.encode("ascii")


@pytest.mark.parametrize("instance_id, expected", [
    ("i-0123456789abcdef0", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"),
    ("rack1-web1", "arn:aws:codedeploy:us-east-1:123456789012:instance/rack1-web1"),
])
def test_instance_arn(instance_id, expected):
    assert nt.instance_arn(instance_id, "us-east-1", ACCOUNT) == expected


# ----------------------------------------------------------------------------------------------
# SNS messages
# ----------------------------------------------------------------------------------------------
def test_deployment_failure_message_in_codedeploy_format():
    sns = FakeSns()
    warnings = notifier([{"name": "ops", "target": TOPIC, "events": ["DeploymentFailure"]}], sns=sns).deployment_event(
        "DeploymentFailure", DEPLOYMENT)
    assert warnings == []
    (sent,) = sns.published
    assert sent["TopicArn"] == TOPIC
    assert sent["Subject"] == "FAILED: AWS CodeDeploy d-4K2ABCDEF in us-east-1 to web"
    message = json.loads(sent["Message"])
    assert list(message) == ["region", "accountId", "eventTriggerName", "applicationName", "deploymentId", "deploymentGroupName",
                             "createTime", "completeTime", "deploymentOverview", "status", "errorInformation",
                             "rollbackInformation"]
    assert message["eventTriggerName"] == "ops"
    assert message["createTime"] == "Fri Oct 14 08:38:46 UTC 2022"
    assert message["completeTime"] == "Fri Oct 14 08:46:18 UTC 2022"
    assert message["status"] == "FAILED"
    assert isinstance(message["deploymentOverview"], str)
    assert json.loads(message["deploymentOverview"]) == {"Succeeded": 1, "Failed": 1, "Skipped": 0, "InProgress": 0, "Pending": 2}
    assert json.loads(message["errorInformation"]) == {"ErrorCode": "HOOK_EXECUTION_FAILURE",
                                                       "ErrorMessage": "ValidateService failed on web-3"}
    assert message["rollbackInformation"] == "{}"
    assert sent["Message"] == json.dumps(message, separators=(",", ":"))  # compact, like CodeDeploy's


def test_deployment_start_message_has_no_overview_and_a_null_complete_time():
    sns = FakeSns()
    started = dict(DEPLOYMENT, status="Created", complete_time=None, error=None, overview={"Pending": 4})
    notifier([{"name": "ops", "target": TOPIC, "events": ["DeploymentStart"]}], sns=sns).deployment_event("DeploymentStart", started)
    message = json.loads(sns.published[0]["Message"])
    assert message["status"] == "CREATED" and message["completeTime"] is None
    assert "deploymentOverview" not in message and "errorInformation" not in message and "rollbackInformation" not in message
    assert sns.published[0]["Subject"].startswith("CREATED: ")


def test_rollback_information_names_the_deployments():
    sns = FakeSns()
    rolled = dict(DEPLOYMENT, rollback_info={"rollback_deployment_id": "d-ROLLBACK1", "rollback_message": "rolled back"})
    notifier([{"name": "ops", "target": TOPIC, "events": ["DeploymentRollback"]}], sns=sns).deployment_event("DeploymentRollback", rolled)
    message = json.loads(sns.published[0]["Message"])
    assert json.loads(message["rollbackInformation"]) == {"RollbackDeploymentId": "d-ROLLBACK1", "RollbackMessage": "rolled back"}
    assert message["status"] == "FAILED"


def test_instance_message_in_codedeploy_format():
    sns = FakeSns()
    notifier([{"name": "hosts", "target": TOPIC, "events": ["InstanceSuccess"]}], sns=sns).instance_event(
        "InstanceSuccess", DEPLOYMENT, INSTANCE)
    (sent,) = sns.published
    assert sent["Subject"] == "SUCCEEDED: AWS CodeDeploy d-4K2ABCDEF in us-east-1 to web"
    message = json.loads(sent["Message"])
    assert message == {
        "region": "us-east-1", "accountId": ACCOUNT, "eventTriggerName": "hosts", "deploymentId": "d-4K2ABCDEF",
        "instanceId": "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
        "lastUpdatedAt": "Fri Oct 14 08:40:07 UTC 2022", "instanceStatus": "Succeeded",
        "lifecycleEvents": message["lifecycleEvents"],
    }
    assert json.loads(message["lifecycleEvents"]) == [
        {"LifecycleEvent": "ApplicationStop", "LifecycleEventStatus": "Succeeded",
         "StartTime": "Fri Oct 14 08:39:00 UTC 2022", "EndTime": "Fri Oct 14 08:39:01 UTC 2022"},
        {"LifecycleEvent": "BeforeInstall", "LifecycleEventStatus": "Succeeded",
         "StartTime": "Fri Oct 14 08:39:02 UTC 2022", "EndTime": "Fri Oct 14 08:39:03 UTC 2022"}]


@pytest.mark.parametrize("event, status", [
    ("InstanceStart", "InProgress"), ("InstanceSuccess", "Succeeded"), ("InstanceFailure", "Failed"), ("InstanceReady", "Ready"),
])
def test_instance_status_follows_the_event(event, status):
    sns = FakeSns()
    notifier([{"name": "hosts", "target": TOPIC, "events": [event]}], sns=sns).instance_event(event, DEPLOYMENT, dict(INSTANCE, status="Pending"))
    assert json.loads(sns.published[0]["Message"])["instanceStatus"] == status


def test_only_subscribed_triggers_receive_an_event():
    sns = FakeSns()
    events = FakeEvents()
    triggers = [
        {"name": "failures", "target": TOPIC, "events": ["DeploymentFailure", "InstanceFailure"]},
        {"name": "everything", "target": TOPIC2, "events": list(nt.TRIGGER_EVENTS)},
        {"name": "bus", "target": BUS, "events": ["DeploymentSuccess"]},
    ]
    notify = notifier(triggers, sns=sns, events=events)
    sent = {}
    for name in nt.DEPLOYMENT_EVENTS:
        before = (len(sns.published), len(events.entries))
        assert notify.deployment_event(name, DEPLOYMENT) == []
        sent[name] = (len(sns.published) - before[0], len(events.entries) - before[1])
    for name in nt.INSTANCE_EVENTS:
        before = (len(sns.published), len(events.entries))
        assert notify.instance_event(name, DEPLOYMENT, INSTANCE) == []
        sent[name] = (len(sns.published) - before[0], len(events.entries) - before[1])
    assert sent == {"DeploymentStart": (1, 0), "DeploymentSuccess": (1, 1), "DeploymentFailure": (2, 0), "DeploymentStop": (1, 0),
                    "DeploymentRollback": (1, 0), "DeploymentReady": (1, 0), "InstanceStart": (1, 0), "InstanceSuccess": (1, 0),
                    "InstanceFailure": (2, 0), "InstanceReady": (1, 0)}
    failures = [json.loads(p["Message"])["eventTriggerName"] for p in sns.published if p["Subject"].startswith("FAILED")]
    # DeploymentFailure, DeploymentRollback (of a failed deployment) and InstanceFailure are FAILED
    assert sorted(failures) == ["everything", "everything", "everything", "failures", "failures"]
    assert len(notify.deliveries) == 13 and all(d["ok"] for d in notify.deliveries)


# ----------------------------------------------------------------------------------------------
# EventBridge events
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("event, state", sorted(nt.EVENT_STATES.items()))
def test_eventbridge_event_in_codedeploy_shape(event, state):
    events = FakeEvents()
    notify = notifier([{"name": "bus", "target": BUS, "events": [event]}], events=events)
    if event in nt.DEPLOYMENT_EVENTS:
        notify.deployment_event(event, DEPLOYMENT)
    else:
        notify.instance_event(event, DEPLOYMENT, INSTANCE)
    (entry,) = events.entries
    assert entry["Source"] == "rollout.codedeploy" and entry["EventBusName"] == BUS
    detail = json.loads(entry["Detail"])
    expected = {"region": "us-east-1", "deploymentId": "d-4K2ABCDEF", "instanceGroupId": DEPLOYMENT["deployment_group_id"],
                "deploymentGroup": "production", "application": "web", "state": state}
    group_arns = ["arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:web/production",
                  "arn:aws:codedeploy:us-east-1:123456789012:application:web"]
    if event in nt.INSTANCE_EVENTS:
        expected["instanceId"] = "i-0123456789abcdef0"
        assert entry["DetailType"] == "CodeDeploy Instance State-change Notification"
        assert entry["Resources"] == ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"] + group_arns
    else:
        assert entry["DetailType"] == "CodeDeploy Deployment State-change Notification"
        assert entry["Resources"] == group_arns
    assert detail == expected


def test_one_event_per_bus_and_the_default_bus_word():
    events = FakeEvents()
    notify = notifier([{"name": "a", "target": BUS, "events": ["DeploymentStart"]},
                       {"name": "b", "target": BUS, "events": ["DeploymentStart"]},
                       {"name": "c", "target": "eventbridge", "events": ["DeploymentStart"]}],
                      events=events, source="my.deploys", event_bus="ops-bus")
    notify.deployment_event("DeploymentStart", DEPLOYMENT)
    assert [(e["EventBusName"], e["Source"]) for e in events.entries] == [(BUS, "my.deploys"), ("ops-bus", "my.deploys")]


# ----------------------------------------------------------------------------------------------
# Failures are warnings
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sns, events, needles", [
    (FakeSns(ClientError({"Error": {"Code": "NotFound", "Message": "Topic does not exist"}}, "Publish")), FakeEvents(),
     ["Trigger sns could not send DeploymentFailure to %s: NotFound: Topic does not exist" % TOPIC, "sns:Publish"]),
    (FakeSns(EndpointConnectionError(endpoint_url="http://10.213.0.1:1")), FakeEvents(),
     ['Could not connect to the endpoint URL: "http://10.213.0.1:1"']),
    (FakeSns(RuntimeError("broken client")), FakeEvents(), ["the client failed unexpectedly (broken client)"]),
    (None, FakeEvents(), ["no SNS client"]),
    (FakeSns(), FakeEvents(ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "Event bus x does not exist."}},
                                       "PutEvents")), ["Trigger bus could not send DeploymentFailure to %s" % BUS, "events:PutEvents"]),
    (FakeSns(), FakeEvents(answer={"FailedEntryCount": 1, "Entries": [{"ErrorCode": "NotAuthorizedForSourceException",
                                                                      "ErrorMessage": "Not authorized for the source."}]}),
     ["NotAuthorizedForSourceException: Not authorized for the source."]),
    (FakeSns(), None, ["no EventBridge client"]),
])
def test_publishing_failures_become_warnings_and_never_raise(sns, events, needles):
    notify = notifier([{"name": "sns", "target": TOPIC, "events": ["DeploymentFailure"]},
                       {"name": "bus", "target": BUS, "events": ["DeploymentFailure"]}], sns=sns, events=events)
    warnings = notify.deployment_event("DeploymentFailure", DEPLOYMENT)
    assert len(warnings) == 1
    for needle in needles:
        assert needle in warnings[0]
    assert "The deployment goes on" in warnings[0]
    assert "Error:" not in warnings[0] and "RuntimeError" not in warnings[0]  # no Python exception names
    assert [d["ok"] for d in notify.deliveries].count(False) == 1


@pytest.mark.parametrize("call", [
    lambda n: n.deployment_event("InstanceStart", DEPLOYMENT),
    lambda n: n.instance_event("DeploymentStart", DEPLOYMENT, INSTANCE),
    lambda n: n.subscribers("Nope"),
])
def test_unknown_event_names_are_programming_errors(call):
    with pytest.raises(nt.NotifyError):
        call(notifier([]))


def test_no_triggers_sends_nothing():
    sns, events = FakeSns(), FakeEvents()
    notify = notifier([], sns=sns, events=events)
    assert notify.deployment_event("DeploymentStart", DEPLOYMENT) == []
    assert sns.published == [] and events.entries == []


PRESIGNED = "https://b.s3.amazonaws.com/app.tgz?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2Fx&X-Amz-Signature=deadbeefdeadbeef"


def test_messages_and_events_never_carry_url_credentials():
    deployment = dict(DEPLOYMENT, error={"code": "REVISION_MISSING", "message": "revision %s could not be downloaded" % PRESIGNED},
                      rollback_info={"rollback_deployment_id": "d-ROLLBACK1", "rollback_message": "rolls back " + PRESIGNED})
    sns = FakeSns()
    events = FakeEvents()
    notify = notifier([{"name": "sns", "target": TOPIC, "events": ["DeploymentFailure"]},
                       {"name": "bus", "target": BUS, "events": ["DeploymentFailure"]}], sns=sns, events=events)
    assert notify.deployment_event("DeploymentFailure", deployment) == []
    sent = repr((sns.__dict__, events.__dict__, notify.deliveries))
    assert "AKIAIOSFODNN7EXAMPLE" not in sent and "deadbeefdeadbeef" not in sent
    assert "X-Amz-Signature=REDACTED" in sent
    message = nt.deployment_message("t", "DeploymentFailure", deployment, "us-east-1", "123456789012")
    assert json.loads(message["errorInformation"])["ErrorMessage"].endswith("X-Amz-Signature=REDACTED could not be downloaded")
    assert json.loads(message["rollbackInformation"])["RollbackMessage"] == "rolls back " + nt.redact_url(PRESIGNED)


def test_failure_warnings_never_carry_url_credentials():
    failing = FakeSns(ClientError({"Error": {"Code": "InvalidParameter", "Message": "bad " + PRESIGNED}}, "Publish"))
    notify = notifier([{"name": "sns", "target": TOPIC, "events": ["DeploymentFailure"]}], sns=failing, events=FakeEvents())
    warnings = notify.deployment_event("DeploymentFailure", DEPLOYMENT)
    assert "deadbeef" not in repr((warnings, notify.deliveries)) and "REDACTED" in warnings[0]
