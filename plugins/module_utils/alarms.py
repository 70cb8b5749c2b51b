# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""CloudWatch alarm gates of a deployment group, as CodeDeploy's alarmConfiguration.

The controller checks the group's alarms before the first batch, after every batch and during
zonal bake times (``watch_alarms``).  Rules, as implemented:

* An alarm in state ``ALARM`` stops the deployment: status Stopped, error code ALARM_ACTIVE,
  the message names every alarm in ALARM with CloudWatch's state reason.  This holds whatever
  ``ignore_poll_alarm_failure`` says.  ``OK`` and ``INSUFFICIENT_DATA`` let it go on.
* Metric alarms and composite alarms are both read (one paginated DescribeAlarms call with
  ``AlarmTypes`` = both, for up to 100 names per call).
* Polling failed (any ClientError such as AccessDenied or throttling after botocore's own
  retries, or a BotoCoreError such as EndpointConnectionError): CodeDeploy's
  ``ignorePollAlarmFailure``. false (the default): the deployment stops with ALARM_ACTIVE and a
  message saying that the poll failed; true: the check is ok and the failure is kept in
  ``error`` so that the caller can warn.
* An alarm that does not exist: CodeDeploy requires the alarms to exist when they are added to
  a deployment group and documents ``ignorePollAlarmFailure`` as "whether a deployment should
  continue if information about the current state of alarms cannot be retrieved from CloudWatch".
  The state of a deleted or misspelled alarm cannot be retrieved, so it is treated exactly like a
  failed poll: stop with ALARM_ACTIVE unless ``ignore_poll_alarm_failure``.  The names are listed
  in ``missing`` either way.
* No alarm names: ok, no call.

Everything here is standard library; botocore is only needed for the exception classes.
"""

from __future__ import absolute_import, division, print_function

import time
from collections import namedtuple

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import error_text

__metaclass__ = type  # pylint: disable=invalid-name

ALARM_ACTIVE = "ALARM_ACTIVE"
ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
MAX_NAMES_PER_CALL = 100

AlarmCheck = namedtuple("AlarmCheck", ["ok", "alarming", "missing", "error", "error_code", "message"])
AlarmCheck.__doc__ = """The outcome of one alarm check.

``ok``: the deployment may go on.  ``alarming``: names of alarms in ALARM.  ``missing``: names
CloudWatch does not know.  ``error``: why the alarm states could not be read (None when they
could), also when ``ignore_poll_alarm_failure`` made the check ok.  ``error_code``:
``ALARM_ACTIVE`` when the deployment must stop, else None.  ``message``: one human sentence.
"""

_STOP_HINT = ("Fix the cause or wait until the alarm is back to OK, then redeploy; to deploy anyway, override the "
              "alarms for one deployment with the extra var alarms: {enabled: false}.")


def alarm_names(names):
    """Alarm names from a list of strings or CodeDeploy Alarm objects ({name} / {Name}), de-duplicated in order."""
    result = []
    for item in names or ():
        if isinstance(item, dict):
            item = item.get("name") or item.get("Name")
        item = str(item or "").strip()
        if item and item not in result:
            result.append(item)
    return result


def describe_states(cloudwatch, names):
    """``{name: (state, reason)}`` for the named metric and composite alarms that exist (may raise botocore errors)."""
    states = {}
    for first in range(0, len(names), MAX_NAMES_PER_CALL):
        kwargs = {"AlarmNames": names[first:first + MAX_NAMES_PER_CALL], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
        while True:
            page = cloudwatch.describe_alarms(**kwargs)
            for key in ("MetricAlarms", "CompositeAlarms"):
                for alarm in page.get(key) or []:
                    states[alarm.get("AlarmName")] = (alarm.get("StateValue"), alarm.get("StateReason"))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return states


def check_alarms(cloudwatch, names, ignore_poll_alarm_failure=False):
    """Check the alarms once; see the module docstring for the rules.  Never raises for AWS errors."""
    names = alarm_names(names)
    if not names:
        return AlarmCheck(True, [], [], None, None, "No alarms to check.")
    try:
        states = describe_states(cloudwatch, names)
    except (ClientError, BotoCoreError) as exc:
        error = "Could not read the state of the alarms %s from CloudWatch (%s)." % (", ".join(names), error_text(exc))
        return _poll_failure(error, [], ignore_poll_alarm_failure)
    alarming = [name for name in names if name in states and states[name][0] == ALARM]
    missing = [name for name in names if name not in states]
    if alarming:
        reasons = "; ".join("%s (%s)" % (name, states[name][1] or "no reason given") for name in alarming)
        message = "%s in ALARM: %s. The deployment stops (ALARM_ACTIVE). %s" % (
            "Alarm" if len(alarming) == 1 else "Alarms", reasons, _STOP_HINT)
        if missing:
            message += " Also, CloudWatch does not know the alarm%s %s." % ("" if len(missing) == 1 else "s", ", ".join(missing))
        return AlarmCheck(False, alarming, missing, None, ALARM_ACTIVE, message)
    if missing:
        error = ("CloudWatch does not know the alarm%s %s, so %s state cannot be retrieved (deleted, misspelled, or in "
                 "another region or account)." % ("" if len(missing) == 1 else "s", ", ".join(missing),
                                                  "its" if len(missing) == 1 else "their"))
        return _poll_failure(error, missing, ignore_poll_alarm_failure)
    summary = ", ".join("%s (%s)" % (name, states[name][0]) for name in names)
    return AlarmCheck(True, [], [], None, None, "No alarm in ALARM: %s." % summary)


def _poll_failure(error, missing, ignore_poll_alarm_failure):
    if ignore_poll_alarm_failure:
        return AlarmCheck(True, [], missing, error, None,
                          "%s The deployment goes on because ignore_poll_alarm_failure is true." % error)
    return AlarmCheck(False, [], missing, error, ALARM_ACTIVE,
                      "%s The deployment stops (ALARM_ACTIVE) because the alarm states could not be polled and "
                      "ignore_poll_alarm_failure is false. Fix the alarm names or the controller's CloudWatch access "
                      "(cloudwatch:DescribeAlarms), or set ignore_poll_alarm_failure: true." % error)


def watch_alarms(cloudwatch, names, seconds, ignore_poll_alarm_failure=False, interval=10.0, sleep=time.sleep,
                 clock=time.monotonic):
    """Check the alarms repeatedly for ``seconds`` (a bake time); return the first check that is not ok, else the last.

    The first check happens at once and the last one at the end of the period, so a bake of 0 s
    is one check.  ``sleep`` and ``clock`` are injectable for tests.
    """
    deadline = clock() + max(float(seconds), 0.0)
    while True:
        result = check_alarms(cloudwatch, names, ignore_poll_alarm_failure)
        if not result.ok or not alarm_names(names):
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            return result
        sleep(min(float(interval), remaining))
