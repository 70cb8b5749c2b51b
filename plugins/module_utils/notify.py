# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""Trigger notifications of a deployment group, as CodeDeploy's triggerConfigurations.

A trigger is ``{"name", "target", "events": [...]}`` (at most 10 per deployment group, names
unique).  ``target`` is an SNS topic ARN, or an EventBridge event bus ARN
(``arn:aws:events:<region>:<account>:event-bus/<name>``), or the word ``eventbridge`` for the
Notifier's ``event_bus``.  Only the events a trigger subscribes to are sent to it.

SNS: one message per subscribed trigger, in CodeDeploy's trigger format as CodeDeploy really
sends it (captured messages; the user guide's samples differ in the points marked *):

* Subject: ``<STATUS>: AWS CodeDeploy <deploymentId> in <region> to <applicationName>``
  (ASCII, at most 100 characters as SNS requires), STATUS in CodeDeploy's trigger words
  (CREATED, IN_PROGRESS, SUCCEEDED, FAILED, STOPPED, READY).  Instance events use the same
  subject with the instance's status (decision: the instance subject is not documented).
* Message, compact JSON, deployment events: region, accountId, eventTriggerName,
  applicationName, deploymentId, deploymentGroupName, createTime, completeTime (null until
  the end), deploymentOverview (a JSON *string* ``{"Succeeded":1,"Failed":0,"Skipped":0,
  "InProgress":0,"Pending":0}``, omitted for DeploymentStart), status, errorInformation (a JSON
  string ``{"ErrorCode","ErrorMessage"}``, only with an error) and rollbackInformation (a JSON
  string, ``{}`` or ``{"RollbackDeploymentId"|"RollbackTriggeringDeploymentId", "RollbackMessage"}``,
  for rollback-related deployments and failures/stops).  Times are written like Java's
  ``Date.toString()`` in UTC, ``Thu Oct 13 15:50:45 UTC 2022`` (*the guide shows epoch seconds).
* Instance events: region, accountId, eventTriggerName, deploymentId, instanceId (an ARN:
  ``arn:aws:ec2:<region>:<account>:instance/i-...``, on-premises instances
  ``arn:aws:codedeploy:<region>:<account>:instance/<name>``), lastUpdatedAt, instanceStatus
  (Pending, InProgress, Succeeded, Failed, Skipped, Ready) and lifecycleEvents, a JSON string
  of ``[{"LifecycleEvent", "LifecycleEventStatus", "StartTime", "EndTime"}]`` (decision: a string
  like every other nested value CodeDeploy sends; the guide shows a list).

EventBridge: one PutEvents entry per event bus (several triggers on one bus send one event),
DetailType ``CodeDeploy Deployment State-change Notification`` / ``CodeDeploy Instance
State-change Notification``, Resources = the application, deployment group (and instance)
ARNs, Detail as CodeDeploy's: ``{"region", "deploymentId", "instanceGroupId" (the deployment
group id), "deploymentGroup", "application", "state"}`` plus ``"instanceId"`` for instance
events.  States: START, SUCCESS, FAILURE, STOP, READY, and ROLLBACK for DeploymentRollback (ours:
CodeDeploy has no EventBridge event for it).  Source is ``source`` (default
``rollout.codedeploy``): AWS reserves ``aws.*`` sources for its own services, so rules written
for ``aws.codedeploy`` must match this source instead.

Publishing never fails a deployment: every failure (no client, AWS error, a partially failed
PutEvents) becomes a warning string in the returned list; ``deliveries`` keeps every attempt.
"""

from __future__ import absolute_import, division, print_function

import datetime
import difflib
import json
import re

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import error_text
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_url

__metaclass__ = type  # pylint: disable=invalid-name

DEPLOYMENT_EVENTS = ("DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback",
                     "DeploymentReady")
INSTANCE_EVENTS = ("InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady")
TRIGGER_EVENTS = DEPLOYMENT_EVENTS + INSTANCE_EVENTS
MAX_TRIGGERS = 10

DEPLOYMENT_DETAIL_TYPE = "CodeDeploy Deployment State-change Notification"
INSTANCE_DETAIL_TYPE = "CodeDeploy Instance State-change Notification"

# EventBridge ``detail.state`` per trigger event.
EVENT_STATES = {
    "DeploymentStart": "START", "DeploymentSuccess": "SUCCESS", "DeploymentFailure": "FAILURE",
    "DeploymentStop": "STOP", "DeploymentReady": "READY", "DeploymentRollback": "ROLLBACK",
    "InstanceStart": "START", "InstanceSuccess": "SUCCESS", "InstanceFailure": "FAILURE", "InstanceReady": "READY",
}
# The status an event stands for (DeploymentStart and DeploymentRollback take the deployment's own status).
DEPLOYMENT_EVENT_STATUS = {"DeploymentSuccess": "Succeeded", "DeploymentFailure": "Failed", "DeploymentStop": "Stopped",
                           "DeploymentReady": "Ready"}
INSTANCE_EVENT_STATUS = {"InstanceStart": "InProgress", "InstanceSuccess": "Succeeded", "InstanceFailure": "Failed",
                         "InstanceReady": "Ready"}
_DEPLOYMENT_STATUS_EVENT = {"Created": "DeploymentStart", "Queued": "DeploymentStart", "InProgress": "DeploymentStart",
                            "Succeeded": "DeploymentSuccess", "Failed": "DeploymentFailure", "Stopped": "DeploymentStop",
                            "Ready": "DeploymentReady"}
_INSTANCE_STATUS_EVENT = {"InProgress": "InstanceStart", "Succeeded": "InstanceSuccess", "Failed": "InstanceFailure",
                          "Ready": "InstanceReady"}
_OVERVIEW_KEYS = ("Succeeded", "Failed", "Skipped", "InProgress", "Pending")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$")
_BUS_ARN = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9/._-]+$")
_EVENTBRIDGE_WORDS = ("eventbridge", "events")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SUBJECT_MAX = 100
_ERROR_MESSAGE_MAX = 2048


class NotifyError(ValueError):
    """An invalid trigger configuration (raised by the constructor, never while publishing)."""

    def __init__(self, message):
        super(NotifyError, self).__init__(message)
        self.message = message

    def __str__(self):
        return self.message


# ----------------------------------------------------------------------------------------------
# Vocabulary helpers
# ----------------------------------------------------------------------------------------------
def event_for_status(status):
    """The deployment trigger event for a deployment status (``Failed`` -> DeploymentFailure), or None."""
    return _DEPLOYMENT_STATUS_EVENT.get(status)


def instance_event_for_status(status):
    """The instance trigger event for an instance status (``Succeeded`` -> InstanceSuccess), or None (Skipped...)."""
    return _INSTANCE_STATUS_EVENT.get(status)


def trigger_status(status):
    """CodeDeploy's status word in trigger messages: ``InProgress`` -> ``IN_PROGRESS``, ``Succeeded`` -> ``SUCCEEDED``."""
    text = str(status or "unknown")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).upper()


def _partition(region):
    region = region or ""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def instance_arn(instance_id, region, account_id):
    """The ARN CodeDeploy puts in instance messages: EC2 ids as EC2 ARNs, on-premises names as CodeDeploy ARNs."""
    text = str(instance_id or "")
    if text.startswith("arn:"):
        return text
    if re.match(r"^i-[0-9a-f]{8,17}$", text):
        return "arn:%s:ec2:%s:%s:instance/%s" % (_partition(region), region, account_id, text)
    return "arn:%s:codedeploy:%s:%s:instance/%s" % (_partition(region), region, account_id, text)


def _to_datetime(value):
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
    text = str(value).strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^([^.]*\.\d{1,6})\d*(\+\d\d:\d\d|-\d\d:\d\d)?$", text)
    if match:  # Python 3.8's fromisoformat wants 3 or 6 fraction digits
        whole, fraction = match.group(1).split(".")
        text = "%s.%s%s" % (whole, fraction.ljust(6, "0"), match.group(2) or "")
    try:
        return _to_datetime(datetime.datetime.fromisoformat(text))
    except ValueError:
        return None


def java_time(value):
    """A time as CodeDeploy writes it in trigger messages (Java's Date.toString in UTC), or None.

    Accepts ISO 8601 strings (``Z`` or offsets), datetimes (naive = UTC) and epoch seconds.
    A value that cannot be read is returned unchanged (as text).
    """
    if value is None or value == "":
        return None
    moment = _to_datetime(value)
    if moment is None:
        return str(value)
    return "%s %s %02d %02d:%02d:%02d UTC %d" % (_DAYS[moment.weekday()], _MONTHS[moment.month - 1], moment.day,
                                                 moment.hour, moment.minute, moment.second, moment.year)


def subject(status, deployment_id, region, application):
    """The SNS subject: ASCII, one line, at most 100 characters (SNS refuses longer ones)."""
    text = "%s: AWS CodeDeploy %s in %s to %s" % (trigger_status(status), deployment_id, region, application or "")
    text = re.sub(r"[\r\n\t]+", " ", text)
    text = text.encode("ascii", "replace").decode("ascii").strip()
    return text[:_SUBJECT_MAX]


def _dumps(value):
    return json.dumps(value, separators=(",", ":"), default=str)


def _error(deployment):
    error = deployment.get("error")
    code = deployment.get("error_code")
    message = deployment.get("error_message")
    if isinstance(error, dict):
        code = error.get("code") or error.get("error_code") or error.get("ErrorCode") or code
        message = error.get("message") or error.get("error_message") or error.get("ErrorMessage") or message
    elif error:
        message = str(error)
    if not code and not message:
        return None
    message = redact_url(str(message or ""))  # an error may quote the revision's URL: never its credentials
    if len(message) > _ERROR_MESSAGE_MAX:
        message = message[:_ERROR_MESSAGE_MAX - 3] + "..."
    return {"ErrorCode": code or "", "ErrorMessage": message}


def _overview(deployment):
    overview = deployment.get("overview") or deployment.get("deployment_overview")
    if not isinstance(overview, dict):
        return None
    lowered = dict((str(k).replace("_", "").lower(), v) for k, v in overview.items())
    result = {}
    for key in _OVERVIEW_KEYS + ("Ready",):
        value = lowered.get(key.lower())
        if value is None and key == "Ready":
            continue
        try:
            result[key] = int(value or 0)
        except (TypeError, ValueError):
            result[key] = 0
    return result


def _rollback(deployment):
    info = deployment.get("rollback_info")
    if not isinstance(info, dict):
        return None
    result = {}
    for ours, theirs in (("rollback_deployment_id", "RollbackDeploymentId"),
                         ("rollback_triggering_deployment_id", "RollbackTriggeringDeploymentId"),
                         ("rollback_message", "RollbackMessage")):
        value = info.get(ours) or info.get(theirs)
        if value:
            result[theirs] = redact_url(value)
    return result


def _deployment_status(name, deployment):
    status = DEPLOYMENT_EVENT_STATUS.get(name)
    if status:
        return status
    status = deployment.get("status")
    if name == "DeploymentStart" and status not in ("Created", "Queued", "InProgress"):
        return "Created"
    return status or "Created"


def deployment_message(trigger_name, name, deployment, region, account_id):
    """The SNS message (a dict, in CodeDeploy's key order) for a deployment event."""
    status = _deployment_status(name, deployment)
    message = {
        "region": region,
        "accountId": account_id,
        "eventTriggerName": trigger_name,
        "applicationName": deployment.get("application"),
        "deploymentId": deployment.get("deployment_id"),
        "deploymentGroupName": deployment.get("deployment_group"),
        "createTime": java_time(deployment.get("create_time")),
        "completeTime": java_time(deployment.get("complete_time")),
    }
    overview = _overview(deployment)
    if name != "DeploymentStart" and overview is not None:
        message["deploymentOverview"] = _dumps(overview)
    message["status"] = trigger_status(status)
    error = _error(deployment)
    if error and name != "DeploymentStart":
        message["errorInformation"] = _dumps(error)
    rollback = _rollback(deployment)
    if rollback or name in ("DeploymentFailure", "DeploymentStop", "DeploymentRollback"):
        message["rollbackInformation"] = _dumps(rollback or {})
    return message


def _lifecycle_events(instance):
    events = []
    for event in instance.get("events") or instance.get("lifecycle_events") or ():
        if not isinstance(event, dict):
            continue
        events.append({
            "LifecycleEvent": event.get("name") or event.get("event") or event.get("lifecycle_event"),
            "LifecycleEventStatus": event.get("status"),
            "StartTime": java_time(event.get("start") or event.get("start_time")),
            "EndTime": java_time(event.get("end") or event.get("end_time")),
        })
    return events


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def instance_message(trigger_name, name, deployment, instance, region, account_id):
    """The SNS message (a dict, in CodeDeploy's key order) for an instance event."""
    status = INSTANCE_EVENT_STATUS.get(name) or instance.get("status")
    return {
        "region": region,
        "accountId": account_id,
        "eventTriggerName": trigger_name,
        "deploymentId": deployment.get("deployment_id"),
        "instanceId": instance_arn(instance.get("instance_id") or instance.get("host"), region, account_id),
        "lastUpdatedAt": java_time(instance.get("end") or instance.get("start") or _now()),
        "instanceStatus": status,
        "lifecycleEvents": _dumps(_lifecycle_events(instance)),
    }


def _resources(deployment, region, account_id, instance=None):
    partition = _partition(region)
    application = deployment.get("application")
    resources = []
    if instance is not None:
        resources.append(instance_arn(instance.get("instance_id") or instance.get("host"), region, account_id))
    resources.append("arn:%s:codedeploy:%s:%s:deploymentgroup:%s/%s" % (partition, region, account_id, application,
                                                                        deployment.get("deployment_group")))
    resources.append("arn:%s:codedeploy:%s:%s:application:%s" % (partition, region, account_id, application))
    return resources


def event_detail(name, deployment, region, instance=None):
    """The EventBridge ``detail`` for an event, in CodeDeploy's shape."""
    detail = {}
    if instance is not None:
        detail["instanceId"] = instance.get("instance_id") or instance.get("host")
    detail.update({
        "region": region,
        "deploymentId": deployment.get("deployment_id"),
        "instanceGroupId": deployment.get("deployment_group_id"),
        "deploymentGroup": deployment.get("deployment_group"),
        "application": deployment.get("application"),
        "state": EVENT_STATES[name],
    })
    return detail


# ----------------------------------------------------------------------------------------------
# Trigger validation
# ----------------------------------------------------------------------------------------------
def _bad_event(trigger, event):
    close = difflib.get_close_matches(str(event), TRIGGER_EVENTS, n=1, cutoff=0.6)
    hint = " (did you mean %s?)" % close[0] if close else ""
    return NotifyError("Trigger %s subscribes to %r, which is not a CodeDeploy trigger event%s. Valid events: %s."
                       % (trigger, event, hint, ", ".join(TRIGGER_EVENTS)))


def validate_triggers(triggers, event_bus="default"):
    """Check and normalize triggers; raise NotifyError naming the trigger and what is wrong.

    Returns ``[{"name", "target", "events", "service": "sns" | "events", "bus"}]``.
    """
    triggers = list(triggers or ())
    if len(triggers) > MAX_TRIGGERS:
        raise NotifyError("A deployment group has at most %d triggers; this one has %d (%s)."
                          % (MAX_TRIGGERS, len(triggers), ", ".join(str((t or {}).get("name")) for t in triggers
                                                                    if isinstance(t, dict))))
    result = []
    names = set()
    for index, trigger in enumerate(triggers):
        if not isinstance(trigger, dict):
            raise NotifyError("Trigger %d is %r; a trigger is a mapping with name, target and events." % (index + 1, trigger))
        name = str(trigger.get("name") or "").strip()
        if not name:
            raise NotifyError("Trigger %d has no name; every trigger needs a unique name." % (index + 1))
        if name in names:
            raise NotifyError("Two triggers are named %s; trigger names must be unique in a deployment group." % name)
        names.add(name)
        target = str(trigger.get("target") or "").strip()
        if _SNS_ARN.match(target):
            service, bus = "sns", None
        elif _BUS_ARN.match(target):
            service, bus = "events", target
        elif target.lower() in _EVENTBRIDGE_WORDS:
            service, bus = "events", event_bus
        else:
            raise NotifyError("Trigger %s has target %r, which is neither an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>) "
                              "nor an EventBridge event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>) "
                              "nor the word eventbridge." % (name, target))
        events = trigger.get("events")
        if isinstance(events, str):
            events = [events]
        if not events:
            raise NotifyError("Trigger %s subscribes to no event. Valid events: %s." % (name, ", ".join(TRIGGER_EVENTS)))
        normalized = []
        for event in events:
            if event not in TRIGGER_EVENTS:
                raise _bad_event(name, event)
            if event not in normalized:
                normalized.append(event)
        result.append({"name": name, "target": target, "events": normalized, "service": service, "bus": bus})
    return result


# ----------------------------------------------------------------------------------------------
# The notifier
# ----------------------------------------------------------------------------------------------
class Notifier(object):
    """Send a deployment group's trigger notifications to SNS and EventBridge.

    ``deployment_event``/``instance_event`` return a list of warnings (empty when everything
    was sent); ``deliveries`` records every attempt as ``{"trigger", "event", "service",
    "target", "ok", "id", "error"}``.
    """

    def __init__(self, sns=None, events=None, triggers=(), region="us-east-1", account_id="000000000000",
                 source="rollout.codedeploy", event_bus="default"):
        self.sns = sns
        self.events = events
        self.region = region
        self.account_id = str(account_id)
        self.source = source
        self.event_bus = event_bus
        self.triggers = validate_triggers(triggers, event_bus)
        self.deliveries = []

    def subscribers(self, name):
        """The triggers subscribed to event ``name``."""
        if name not in TRIGGER_EVENTS:
            raise NotifyError("%r is not a CodeDeploy trigger event. Valid events: %s." % (name, ", ".join(TRIGGER_EVENTS)))
        return [trigger for trigger in self.triggers if name in trigger["events"]]

    def deployment_event(self, name, deployment):
        """Send deployment event ``name`` (DeploymentStart ... DeploymentReady) about ``deployment`` (the ledger's dict)."""
        if name not in DEPLOYMENT_EVENTS:
            raise NotifyError("%r is not a deployment event. Deployment events: %s." % (name, ", ".join(DEPLOYMENT_EVENTS)))
        deployment = deployment or {}
        status = _deployment_status(name, deployment)
        return self._send(name, deployment, None, status,
                          lambda trigger: deployment_message(trigger, name, deployment, self.region, self.account_id))

    def instance_event(self, name, deployment, instance):
        """Send instance event ``name`` (InstanceStart ... InstanceReady) about ``instance`` of ``deployment``."""
        if name not in INSTANCE_EVENTS:
            raise NotifyError("%r is not an instance event. Instance events: %s." % (name, ", ".join(INSTANCE_EVENTS)))
        deployment = deployment or {}
        instance = instance or {}
        status = INSTANCE_EVENT_STATUS.get(name)
        return self._send(name, deployment, instance, status,
                          lambda trigger: instance_message(trigger, name, deployment, instance, self.region, self.account_id))

    # ------------------------------------------------------------------ publishing
    def _send(self, name, deployment, instance, status, build):
        warnings = []
        buses = []
        for trigger in self.subscribers(name):
            if trigger["service"] == "sns":
                warning = self._publish_sns(trigger, name, deployment, status, build(trigger["name"]))
                if warning:
                    warnings.append(warning)
            elif trigger["bus"] not in [bus for bus, _trigger in buses]:
                buses.append((trigger["bus"], trigger))
        for bus, trigger in buses:
            warning = self._put_event(trigger, bus, name, deployment, instance)
            if warning:
                warnings.append(warning)
        return warnings

    def _record(self, trigger, name, service, target, ok, ident=None, error=None):
        self.deliveries.append({"trigger": trigger["name"], "event": name, "service": service, "target": target,
                                "ok": ok, "id": ident, "error": redact_url(error)})

    def _warning(self, trigger, name, target, error, what):
        return ("Trigger %s could not send %s to %s: %s. The deployment goes on; %s"
                % (trigger["name"], name, target, redact_url(error), what))

    def _publish_sns(self, trigger, name, deployment, status, message):
        target = trigger["target"]
        if self.sns is None:
            error = "no SNS client was given to the notifier"
            self._record(trigger, name, "sns", target, False, error=error)
            return self._warning(trigger, name, target, error, "this is a bug in the caller.")
        try:
            answer = self.sns.publish(TopicArn=target, Subject=subject(status, deployment.get("deployment_id"), self.region,
                                                                       deployment.get("application")),
                                      Message=_dumps(message))
        except (ClientError, BotoCoreError) as exc:
            error = error_text(exc)
            self._record(trigger, name, "sns", target, False, error=error)
            return self._warning(trigger, name, target, error,
                                 "check that the topic exists and that the controller may publish to it (sns:Publish).")
        except Exception as exc:  # pylint: disable=broad-except
            error = "the client failed unexpectedly (%s)" % (str(exc) or "no detail given")
            self._record(trigger, name, "sns", target, False, error=error)
            return self._warning(trigger, name, target, error, "check the SNS client given to the notifier.")
        self._record(trigger, name, "sns", target, True, ident=(answer or {}).get("MessageId"))
        return None

    def _put_event(self, trigger, bus, name, deployment, instance):
        if self.events is None:
            error = "no EventBridge client was given to the notifier"
            self._record(trigger, name, "events", bus, False, error=error)
            return self._warning(trigger, name, bus, error, "this is a bug in the caller.")
        entry = {
            "Source": self.source,
            "DetailType": INSTANCE_DETAIL_TYPE if instance is not None else DEPLOYMENT_DETAIL_TYPE,
            "Resources": _resources(deployment, self.region, self.account_id, instance),
            "Detail": _dumps(event_detail(name, deployment, self.region, instance)),
            "EventBusName": bus,
        }
        try:
            answer = self.events.put_events(Entries=[entry]) or {}
        except (ClientError, BotoCoreError) as exc:
            error = error_text(exc)
            self._record(trigger, name, "events", bus, False, error=error)
            return self._warning(trigger, name, bus, error,
                                 "check that the event bus exists and that the controller may put events on it (events:PutEvents).")
        except Exception as exc:  # pylint: disable=broad-except
            error = "the client failed unexpectedly (%s)" % (str(exc) or "no detail given")
            self._record(trigger, name, "events", bus, False, error=error)
            return self._warning(trigger, name, bus, error, "check the EventBridge client given to the notifier.")
        results = answer.get("Entries") or [{}]
        if answer.get("FailedEntryCount") or results[0].get("ErrorCode"):
            error = "%s: %s" % (results[0].get("ErrorCode") or "Failed", results[0].get("ErrorMessage") or "PutEvents refused the event")
            self._record(trigger, name, "events", bus, False, error=error)
            return self._warning(trigger, name, bus, error, "check the event source %s and the bus policy." % self.source)
        self._record(trigger, name, "events", bus, True, ident=results[0].get("EventId"))
        return None
