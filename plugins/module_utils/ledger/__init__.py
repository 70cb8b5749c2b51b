# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger: the record of every deployment (CodeDeploy's GetDeployment / ListDeployments).

One public entry point, ``open_ledger(location, aws)``, and two backends behind the same
``Ledger`` API:

* SQLite (``location`` is a path; default ``~/.ansible/codedeploy/ledger.sqlite3``): one file on
  the controller, safe for Ansible's forks (separate processes) writing at once.
* DynamoDB (``location`` is ``dynamodb://<table>``): one table shared by a team or AWX; the
  table is created on first use.

What every backend guarantees (tests/integration/test_ledger.py runs the same suite on both):

* Deployment ids are ``d-`` + 9 of ``A-Z0-9``; times are UTC ISO 8601 strings with
  milliseconds (``2026-11-22T02:03:04.123Z``), which sort as strings.
* One active deployment per (application, deployment group): ``create_deployment`` refuses a
  second one with ``ActiveDeploymentError`` naming the active one.  The group lock is a lease
  (``lease_expires``): the controller renews it (``renew_lease``) while it works; a deployment
  whose lease expired and that is not finished is an orphan (its controller was killed): the
  next ``create_deployment`` for the group marks it Failed (TIMEOUT, with a message naming the
  expiry and the new deployment), its InProgress instances Unknown and its Pending ones
  Skipped, and proceeds.  A terminal status (Succeeded, Failed, Stopped) releases the lock,
  and can never change afterwards, so a controller that lost its deployment learns it on its
  next write (``update_status`` and ``renew_lease`` refuse).
* Admission for batches bounded by minimum healthy hosts: ``try_start_instance`` atomically
  checks and increments the deployment's ``unhealthy`` counter, which always equals the number
  of its instances that are InProgress or Failed (``unhealthy_delta``).
* Statuses are CodeDeploy's words (``DEPLOYMENT_STATUSES``, ``INSTANCE_STATUSES``,
  ``EVENT_STATUSES``); anything else is refused with a LedgerError.

* No URL credential is stored: the revision record, descriptions, error, instance, event and
  rollback messages pass through ``redaction.redact_url``/``redact_revision`` before they are written
  (the controller redacts them already; this is the safety net).
* ``owner`` names the controller process that holds the lock (``controller_owner``): under Ansible,
  the ``ansible-playbook`` process and host (not the short-lived worker), and the AWX job when given.

This file holds the API, the factory and the pure helpers both backends share (validation,
messages, the shape of returned dicts); ``sqlite.py`` and ``dynamodb.py`` hold the storage.
Standard library only, Python 3.8+ syntax; the DynamoDB backend needs boto3 (controller side).
"""

from __future__ import absolute_import, division, print_function

import datetime
import getpass
import json
import multiprocessing
import os
import random
import re
import secrets
import socket
import time

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import (  # noqa: F401  pylint: disable=unused-import
    DEFAULT_LEASE_SECONDS, LIFECYCLE_ORDER, TERMINAL_STATUSES)
from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_revision, redact_url

__metaclass__ = type  # pylint: disable=invalid-name

DEFAULT_LOCATION = "~/.ansible/codedeploy/ledger.sqlite3"
DYNAMODB_SCHEME = "dynamodb://"

DEPLOYMENT_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready", "Succeeded", "Failed", "Stopped")
INSTANCE_STATUSES = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown", "Ready")
EVENT_STATUSES = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown")
#: Keys of ``overview``: CodeDeploy's deploymentOverview counters, plus Unknown so that they add up.
OVERVIEW_KEYS = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready", "Unknown")
#: Instance statuses that count as unhealthy for admission (``try_start_instance``).
UNHEALTHY_STATUSES = ("InProgress", "Failed")
#: Instance statuses that do not make a record for ``instance_history`` (the instance was not touched).
UNTOUCHED_STATUSES = ("Pending", "Skipped")
#: Statuses from which ``try_start_instance`` may start an instance.
STARTABLE_STATUSES = ("Pending", "Ready", "Unknown", "Skipped")
EVENT_FIELDS = ("event", "status", "start", "end", "duration", "error_code", "message", "log_tail")
INSTANCE_FIELDS = ("instance_id", "host", "zone", "status", "start", "end", "error_code", "message", "out_of_service")
#: Longest log tail kept per event (the end is kept); the agent's own tail is 2048 characters.
MAX_LOG_TAIL = 4096
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ID_PATTERN = re.compile(r"^d-[A-Z0-9]{9}$")
#: How long a write keeps trying while the storage is busy (SQLite's write lock held by another process,
#: DynamoDB throttling or a transaction conflict) before it gives up with LedgerUnavailable.
WRITE_RETRY_SECONDS = 120.0
#: The first pause between attempts; each later one doubles, up to RETRY_MAX_DELAY, with jitter.
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 5.0
STOP_HINT = ("wait for it, stop it with the playbook rollout.codedeploy.stop (-e deployment_id={id}), or, if its "
             "controller is gone, run again after its lease expires at {lease}: the next deployment marks it Failed")


class LedgerError(Exception):
    """A ledger operation failed; ``message`` says what, where and what to do."""

    def __init__(self, message):
        super(LedgerError, self).__init__(message)
        self.message = message


class DeploymentSettledError(LedgerError):
    """A controller wrote to a deployment that was settled elsewhere (forced stop, marked an orphan): it no longer owns it."""


class LedgerMissingError(LedgerError):
    """A read-only open found no ledger at the location (nothing was ever recorded there)."""


class LedgerBusy(LedgerError):
    """A backend's storage was busy for one attempt (a transient condition worth retrying).

    ``reason`` is the backend's own words for it; ``hint`` says what an operator can do when it lasts.
    Raised by the backends, caught by ``RetryPolicy``: callers of the API see LedgerUnavailable instead.
    """

    def __init__(self, reason, hint="", location=None):
        super(LedgerBusy, self).__init__("ledger %s: %s%s" % (location, reason, ". %s" % hint if hint else "") if location else reason)
        self.reason = reason
        self.hint = hint


class LedgerUnavailable(LedgerError):
    """A write still failed after ``RetryPolicy``'s bound: the message says what was written, why, and what to do."""

    def __init__(self, busy, elapsed, attempts, what=None, location=None):
        self.reason, self.hint, self.elapsed, self.attempts, self.what = busy.reason, busy.hint, elapsed, attempts, what
        self.location = location
        message = "the ledger%s could not %s: %s; it kept trying for %.1f s (%d attempts)" % (
            " %s" % location if location else "", "record %s" % what if what else "answer", busy.reason, elapsed, attempts)
        if busy.hint:
            message += ". %s" % busy.hint
        super(LedgerUnavailable, self).__init__(message)

    def about(self, what, location):
        """The same failure, naming what was being written and where."""
        return LedgerUnavailable(LedgerBusy(self.reason, self.hint), self.elapsed, self.attempts, what, location)


class RetryPolicy:
    """The one retry rule of the ledger: repeat an attempt that raised LedgerBusy, with jittered exponential
    backoff, until ``bound`` seconds have passed since the first attempt; then raise LedgerUnavailable.

    Each backend decides what one attempt is (a SQLite transaction, one DynamoDB request), always a unit that
    either happened whole or not at all, so repeating it is safe.  ``sleep``, ``clock`` and ``jitter`` (a
    function returning 0..1) are injectable for tests.  Logic refusals (LedgerError, a failed condition) are
    never retried here.
    """

    def __init__(self, bound=WRITE_RETRY_SECONDS, first_delay=RETRY_FIRST_DELAY, max_delay=RETRY_MAX_DELAY,
                 sleep=time.sleep, clock=time.monotonic, jitter=random.random):
        self.bound, self.first_delay, self.max_delay = float(bound), float(first_delay), float(max_delay)
        self.sleep, self.clock, self.jitter = sleep, clock, jitter

    def delay(self, attempt, first_delay=None, max_delay=None):
        """The pause after failed attempt number ``attempt`` (1, 2, ...): half to all of the exponential step."""
        first = self.first_delay if first_delay is None else first_delay
        step = min(self.max_delay if max_delay is None else max_delay, first * (2 ** min(attempt - 1, 30)))
        return step * (0.5 + 0.5 * self.jitter())

    def run(self, operation, *args, **kwargs):
        """``operation(*args, **kwargs)``, repeated while it raises LedgerBusy and the bound allows."""
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation(*args, **kwargs)
            except LedgerBusy as busy:
                elapsed = self.clock() - started
                remaining = self.bound - elapsed
                if remaining <= 0:
                    raise LedgerUnavailable(busy, elapsed, attempt) from None
            self.sleep(min(self.delay(attempt), remaining))


class ActiveDeploymentError(LedgerError):
    """The deployment group already has an active deployment; ``active`` is its summary dict."""

    def __init__(self, message, active):
        super(ActiveDeploymentError, self).__init__(message)
        self.active = active


# ------------------------------------------------------------------------------------------ time and ids
def format_time(moment):
    """``2026-11-22T02:03:04.123Z`` for an aware or naive-UTC datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def parse_time(text):
    """The aware UTC datetime of a ledger time string (also accepts ``+00:00`` and no fraction)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise LedgerError("%r is not an ISO 8601 time (expected e.g. 2026-11-22T02:03:04.123Z)" % text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def utc_now():
    return format_time(datetime.datetime.now(datetime.timezone.utc))


def lease_expiry(now, seconds):
    """The time string ``seconds`` after the time string ``now``."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise LedgerError("lease_seconds must be a number of seconds, got %r" % (seconds,)) from None
    if seconds < 0:
        raise LedgerError("lease_seconds must not be negative, got %s" % seconds)
    return format_time(parse_time(now) + datetime.timedelta(seconds=seconds))


def lease_expired(lease_expires, now):
    """True when a lease ending at ``lease_expires`` no longer holds at ``now`` (no lease: expired)."""
    return not lease_expires or now >= lease_expires


def new_deployment_id():
    """``d-`` followed by 9 random upper-case letters and digits, like CodeDeploy's ids."""
    return "d-" + "".join(secrets.choice(ID_ALPHABET) for _position in range(9))


def _user():
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except  # no user name in a container without passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _program(pid):
    """The program a process runs, from its command line (``ansible-playbook`` for ``python .../ansible-playbook``), or None."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            words = [os.path.basename(w.decode("utf-8", "replace")) for w in handle.read().split(b"\0") if w]
    except (OSError, ValueError):
        return None
    for word in words[:3]:
        if word.startswith("ansible"):
            return word
    return words[0] if words else None


def worker_parent_pid():
    """The pid of the process that started this one with multiprocessing (an Ansible worker's parent), or None."""
    try:
        parent = multiprocessing.parent_process()
    except Exception:  # pylint: disable=broad-except  # multiprocessing unusable here: not a worker
        return None
    return parent.pid if parent is not None and parent.pid else None


#: The job variables AWX (awx_*) and Automation Controller/Tower (tower_*) pass as extra vars: the job and its launcher.
AWX_JOB_VARIABLES = {"awx_job_id": ("awx_job_id", "tower_job_id"), "awx_user": ("awx_user_name", "tower_user_name")}
OWNER_PATTERN = re.compile(r"^(?P<controller>.*?)(?:, AWX job (?P<awx_job_id>\S+?)(?: launched by (?P<awx_user>.+))?)?$")
PROCESS_PATTERN = re.compile(r"^(?P<program>\S+) pid (?P<pid>\d+) on (?P<host>\S+) \(user (?P<user>[^)]*)\)$|"
                             r"^(?P<user2>[^@ ]+)@(?P<host2>\S+) pid (?P<pid2>\d+)$")


def awx_job(variables):
    """The AWX job that runs this play and the user who launched it, from the job variables AWX sets as extra vars.

    Returns ``{"awx_job_id": ..., "awx_user": ...}`` (None where absent: outside AWX, or no user for a scheduled or
    callback job); ``awx_*`` wins over the older ``tower_*`` names.  The keys are ``controller_owner``'s arguments.
    """
    variables = variables or {}
    found = {}
    for key, names in AWX_JOB_VARIABLES.items():
        values = [variables.get(name) for name in names if variables.get(name) not in (None, "")]
        found[key] = str(values[0]) if values else None
    return found


def controller_owner(awx_job_id=None, parent_pid=None, awx_user=None):
    """Who holds a deployment's lock: the controller process, not the short-lived worker running this code.

    In an Ansible worker (a multiprocessing child of ``ansible-playbook``) that is the parent:
    ``ansible-playbook pid N on host (user U)``; elsewhere ``user@host pid N`` of this process.
    ``awx_job_id`` (the ``awx_job_id`` or ``tower_job_id`` variable under AWX/Tower) adds
    ``, AWX job J``, and ``awx_user`` (``awx_user_name``: who launched the job) `` launched by NAME``
    (``awx_job`` reads both from the play's variables). ``parent_pid`` overrides the detected parent (for tests).
    """
    parent = parent_pid if parent_pid is not None else worker_parent_pid()
    host = socket.gethostname()
    if parent:
        owner = "%s pid %d on %s (user %s)" % (_program(parent) or "ansible-playbook", parent, host, _user())
    else:
        owner = "%s@%s pid %d" % (_user(), host, os.getpid())
    if awx_job_id not in (None, ""):
        owner += ", AWX job %s" % awx_job_id
        if awx_user not in (None, ""):
            owner += " launched by %s" % awx_user
    return owner


def default_owner(awx_job_id=None):
    """Who runs this controller (the default owner of a deployment's lock and of stop requests); see ``controller_owner``."""
    return controller_owner(awx_job_id)


def owner_actor(owner):
    """The parts of an ``owner`` string (``controller_owner``'s format) as a mapping, or None for no owner.

    ``controller`` (the whole process part), ``program``, ``pid``, ``host``, ``user`` (the OS user of the
    controller), ``awx_job_id`` and ``awx_user`` (who launched the AWX job); a part the string does not
    have is None (an owner written by other code keeps only ``controller``).
    """
    if not owner:
        return None
    found = OWNER_PATTERN.match(owner).groupdict()
    process = PROCESS_PATTERN.match(found["controller"])
    parts = process.groupdict() if process else {}
    return {"controller": found["controller"], "program": parts.get("program"),
            "pid": int(parts.get("pid") or parts.get("pid2")) if (parts.get("pid") or parts.get("pid2")) else None,
            "host": parts.get("host") or parts.get("host2"), "user": parts.get("user") or parts.get("user2"),
            "awx_job_id": found["awx_job_id"], "awx_user": found["awx_user"]}


# ------------------------------------------------------------------------------------------ validation
def check_status(status, allowed, what):
    if status not in allowed:
        raise LedgerError("%r is not a %s status; use one of: %s" % (status, what, ", ".join(allowed)))
    return status


def is_terminal(status):
    return status in TERMINAL_STATUSES


def unhealthy_delta(old, new):
    """How an instance going from status ``old`` to ``new`` changes the deployment's ``unhealthy`` counter.

    ``unhealthy`` counts the instances that are InProgress or Failed: starting one adds 1, a
    success releases it, a failure keeps it; Pending -> Skipped/Unknown changes nothing, and
    Pending -> Failed (an instance that failed before starting, e.g. unreachable) adds 1.
    """
    return int(new in UNHEALTHY_STATUSES) - int(old in UNHEALTHY_STATUSES)


def normalize_instances(instances):
    """Validate the instances of a new deployment: a list of dicts with ``instance_id`` (unique), ``host``, ``zone``.

    Returns a list of dicts (instance_id, host, zone, extra) in the given order; ``host``
    defaults to the instance id; other keys go to ``extra`` and come back with the instance.
    """
    result = []
    seen = set()
    for index, item in enumerate(instances or ()):
        if isinstance(item, str):
            item = {"instance_id": item}
        if not isinstance(item, dict) or not item.get("instance_id"):
            raise LedgerError("instance %d of the deployment has no instance_id: %r; give a list of "
                              "{instance_id, host, zone}" % (index + 1, item))
        instance_id = str(item["instance_id"])
        if instance_id in seen:
            raise LedgerError("instance %s is listed twice in the deployment; list each instance once" % instance_id)
        seen.add(instance_id)
        extra = dict((k, v) for k, v in item.items() if k not in ("instance_id", "host", "zone"))
        result.append({"instance_id": instance_id, "host": item.get("host") or instance_id,
                       "zone": item.get("zone"), "extra": extra})
    return result


def _duration(start, end):
    try:
        return round((parse_time(end) - parse_time(start)).total_seconds(), 3)
    except LedgerError:
        return None


def normalize_events(events):
    """Validate lifecycle event records; return them as dicts with exactly ``EVENT_FIELDS``.

    ``duration`` (seconds) is computed from ``start`` and ``end`` when not given; ``log_tail``
    keeps its last ``MAX_LOG_TAIL`` characters.  A name given twice keeps the last record.
    """
    if isinstance(events, dict):
        events = [events]
    by_name = {}
    for item in events or ():
        if not isinstance(item, dict) or not item.get("event"):
            raise LedgerError("a lifecycle event record needs at least 'event' and 'status': %r" % (item,))
        record = dict((key, item.get(key)) for key in EVENT_FIELDS)
        record["event"] = str(record["event"])
        check_status(record["status"], EVENT_STATUSES, "lifecycle event")
        if record["duration"] is None and record["start"] and record["end"]:
            record["duration"] = _duration(record["start"], record["end"])
        elif record["duration"] is not None:
            record["duration"] = float(record["duration"])
        record["message"] = redact_url(record["message"])
        tail = record["log_tail"]
        if tail is not None:
            record["log_tail"] = redact_url(str(tail)[-MAX_LOG_TAIL:])
        by_name[record["event"]] = record
    return list(by_name.values())


def event_sort_key(name, first_seen=0):
    """Lifecycle order for known events; others after them, in the order they were first recorded."""
    try:
        return (0, LIFECYCLE_ORDER.index(name), "")
    except ValueError:
        return (1, first_seen, name)


def sort_events(events):
    """Event dicts in lifecycle order (unknown names last, keeping their order)."""
    indexed = list(enumerate(events))
    indexed.sort(key=lambda pair: event_sort_key(pair[1]["event"], pair[0]))
    return [pair[1] for pair in indexed]


def revision_sha256(revision):
    """The sha256 of a revision dict (``sha256`` at the top or in a nested mapping such as ``s3``/``bundle``), or None."""
    if not isinstance(revision, dict):
        return None
    if revision.get("sha256"):
        return revision["sha256"]
    for value in revision.values():
        if isinstance(value, dict) and value.get("sha256"):
            return value["sha256"]
    return None


def group_name(application, deployment_group):
    return "%s/%s" % (application, deployment_group)


def parse_location(location):
    """``("dynamodb", table)`` or ``("sqlite", absolute path)`` for a ledger location (None: the default)."""
    if location is None or str(location).strip() == "":
        location = DEFAULT_LOCATION
    location = str(location).strip()
    if location.startswith(DYNAMODB_SCHEME):
        table = location[len(DYNAMODB_SCHEME):].strip("/")
        if not re.match(r"^[A-Za-z0-9_.-]{3,255}$", table):
            raise LedgerError("%r is not a DynamoDB ledger location: use dynamodb://<table>, where the table name is "
                              "3 to 255 letters, digits, '_', '-' or '.'" % location)
        return "dynamodb", table
    if "://" in location:
        raise LedgerError("unknown ledger location %r: give a file path (SQLite) or dynamodb://<table>" % location)
    return "sqlite", os.path.abspath(os.path.expanduser(location))


# ------------------------------------------------------------------------------------------ messages
def active_message(summary, now=None):
    """The message of ActiveDeploymentError for the active deployment ``summary``."""
    since = summary.get("start_time") or summary.get("create_time")
    return ("deployment group %s already has an active deployment %s (%s since %s, started by %s, lease expires %s); %s."
            % (group_name(summary["application"], summary["deployment_group"]), summary["deployment_id"],
               summary["status"], since, summary.get("owner") or "an unknown controller", summary.get("lease_expires"),
               STOP_HINT.format(id=summary["deployment_id"], lease=summary.get("lease_expires"))))


def orphan_message(summary, new_deployment_id, now):
    """The error message an orphaned deployment gets when ``new_deployment_id`` takes its group over at ``now``."""
    return ("The controller running this deployment (%s) stopped renewing its lease, which expired at %s; deployment %s "
            "found it %s at %s and marked it Failed. Hosts that were in progress may be half-deployed: their status is "
            "Unknown; check their events and redeploy."
            % (summary.get("owner") or "unknown", summary.get("lease_expires") or "an unknown time", new_deployment_id,
               summary.get("status"), now))


ORPHAN_INSTANCE_MESSAGE = "The deployment's controller stopped while this instance was in progress (see the deployment's error)."
ORPHAN_SKIPPED_MESSAGE = "Not deployed: the deployment's controller stopped before this instance's turn."


def missing_message(deployment_id, location):
    hint = "" if ID_PATTERN.match(str(deployment_id)) else " (deployment ids look like d-XXXXXXXXX)"
    return "no deployment %s in the ledger %s%s" % (deployment_id, location, hint)


# ------------------------------------------------------------------------------------------ shapes
def empty_overview():
    return dict((key, 0) for key in OVERVIEW_KEYS)


def overview_from_counts(counts):
    """``overview`` from a mapping status -> count (statuses outside OVERVIEW_KEYS are ignored)."""
    overview = empty_overview()
    for status, count in (counts or {}).items():
        if status in overview:
            overview[status] += int(count or 0)
    return overview


def load_json(text, default=None):
    if text is None or text == "":
        return default
    if not isinstance(text, str):
        return text
    return json.loads(text)


def dump_json(value):
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def shape_instance(row, events=None):
    """The public instance dict from a backend's instance row (keys of INSTANCE_FIELDS, ``extra``, ``events``)."""
    result = dict((key, row.get(key)) for key in INSTANCE_FIELDS)
    result["out_of_service"] = bool(row.get("out_of_service"))
    for key, value in (load_json(row.get("extra"), {}) or {}).items():
        result.setdefault(key, value)
    result["events"] = sort_events([dict((key, event.get(key)) for key in EVENT_FIELDS) for event in events or ()])
    return result


def shape_deployment(row, overview, instances=None, now=None):
    """The public deployment dict (see ``Ledger.get_deployment``) from a backend's deployment row."""
    now = now or utc_now()
    error = None
    if row.get("error_code") or row.get("error_message"):
        error = {"code": row.get("error_code"), "message": row.get("error_message")}
    rollback = None
    if row.get("rollback_deployment_id") or row.get("rollback_triggering_deployment_id"):
        rollback = {"rollback_deployment_id": row.get("rollback_deployment_id"),
                    "rollback_triggering_deployment_id": row.get("rollback_triggering_deployment_id"),
                    "rollback_message": row.get("rollback_message")}
    stop = None
    if row.get("stop_requested_at"):
        stop = {"rollback": bool(row.get("stop_rollback")), "requested_at": row.get("stop_requested_at"),
                "requested_by": row.get("stop_requested_by")}
    proceed = None
    if row.get("continue_requested_at"):
        proceed = {"requested_at": row.get("continue_requested_at"), "requested_by": row.get("continue_requested_by")}
    result = {
        "deployment_id": row["deployment_id"],
        "application": row["application"],
        "deployment_group": row["deployment_group"],
        "deployment_group_id": row.get("deployment_group_id"),
        "status": row["status"],
        "creator": row.get("creator"),
        "description": row.get("description"),
        "create_time": row.get("create_time"),
        "start_time": row.get("start_time"),
        "complete_time": row.get("complete_time"),
        "error": error,
        "revision": load_json(row.get("revision")),
        "deployment_config": load_json(row.get("deployment_config")),
        "options": load_json(row.get("options"), {}),
        "overview": overview,
        "rollback_info": rollback,
        "lease_expires": row.get("lease_expires"),
        "lease_expired": (not is_terminal(row["status"])) and lease_expired(row.get("lease_expires"), now),
        "owner": row.get("owner"),
        "unhealthy": int(row.get("unhealthy") or 0),
        "stop_request": stop,
        "continue_request": proceed,
        "swap": load_json(row.get("swap")),
    }
    if instances is not None:
        result["instances"] = instances
    return result


def new_record(application, deployment_group, deployment_group_id, revision, deployment_config, creator, options,
               description, owner, now, lease_seconds, deployment_id):
    """The stored row of a new deployment (status Created, lock lease from ``now``)."""
    if not application or not deployment_group:
        raise LedgerError("a deployment needs an application and a deployment group (got %r and %r)"
                          % (application, deployment_group))
    if deployment_id is not None and not ID_PATTERN.match(deployment_id):
        raise LedgerError("%r is not a deployment id: ids are d- followed by 9 of A-Z and 0-9" % (deployment_id,))
    return {
        "deployment_id": deployment_id,
        "application": str(application),
        "deployment_group": str(deployment_group),
        "deployment_group_id": deployment_group_id,
        "status": "Created",
        "creator": creator or "user",
        "description": redact_url(description),
        "create_time": now,
        "start_time": None,
        "complete_time": None,
        "error_code": None,
        "error_message": None,
        # A safety net: whatever the caller passed, no URL credential (presigned query, user:password@) is stored.
        "revision": dump_json(redact_revision(revision)),
        "deployment_config": dump_json(deployment_config),
        "options": dump_json(options or {}),
        "rollback_deployment_id": None,
        "rollback_triggering_deployment_id": None,
        "rollback_message": None,
        "owner": owner or default_owner(),
        "lease_expires": lease_expiry(now, lease_seconds),
        "unhealthy": 0,
        "stop_requested_at": None,
        "stop_rollback": None,
        "stop_requested_by": None,
        "continue_requested_at": None,
        "continue_requested_by": None,
        "swap": None,
    }


def merge_swap(current, fields=None, append=None):
    """A deployment's new swap record (blue/green: state, copied Auto Scaling group, traffic weights...): ``fields`` merged
    in at the top level (a value None removes the key), then each item of ``append`` (key -> item) added to the list under
    its key. ``current`` (the stored mapping or None) is not changed."""
    if fields is not None and not isinstance(fields, dict):
        raise LedgerError("swap fields must be a mapping, got %r" % (fields,))
    if append is not None and not isinstance(append, dict):
        raise LedgerError("swap appends must be a mapping of key -> item, got %r" % (append,))
    swap = dict(current or {})
    for key, value in (fields or {}).items():
        if value is None:
            swap.pop(key, None)
        else:
            swap[key] = value
    for key, item in (append or {}).items():
        existing = swap.get(key)
        if existing is not None and not isinstance(existing, list):
            raise LedgerError("swap key %s holds %r, not a list, so nothing can be appended to it" % (key, existing))
        swap[key] = list(existing or []) + [item]
    return swap


def status_changes(current, status, error_code, error_message, now):
    """The fields ``update_status`` writes, or None for a no-op; raises LedgerError for a finished deployment.

    ``current`` is the stored row.  A terminal deployment never changes again (setting the
    same status again is a no-op), so a controller whose deployment was marked an orphan and
    Failed by another run learns it here.
    """
    check_status(status, DEPLOYMENT_STATUSES, "deployment")
    if is_terminal(current["status"]):
        if current["status"] == status:
            return None
        detail = ""
        if current.get("error_code") or current.get("error_message"):
            detail = " (%s: %s)" % (current.get("error_code"), current.get("error_message"))
        raise LedgerError("deployment %s is already %s%s; a finished deployment cannot become %s"
                          % (current["deployment_id"], current["status"], detail, status))
    changes = {"status": status}
    if status == "InProgress" and not current.get("start_time"):
        changes["start_time"] = now
    if error_code is not None:
        changes["error_code"] = error_code
    if error_message is not None:
        changes["error_message"] = redact_url(error_message)
    if is_terminal(status):
        changes["complete_time"] = now
        changes["lease_expires"] = None
        if not current.get("start_time"):
            changes["start_time"] = current.get("create_time")
    return changes


def instance_changes(status, fields, now, finishing):
    """Stored instance fields for ``finish_instance`` (``finishing``) or ``set_instance``; unknown keys go to ``extra``."""
    check_status(status, INSTANCE_STATUSES, "instance")
    changes = {"status": status}
    extra = {}
    for key, value in fields.items():
        if key == "message":
            changes[key] = redact_url(value)
        elif key in ("start", "end", "error_code", "host", "zone"):
            changes[key] = value
        elif key == "out_of_service":
            changes[key] = bool(value)
        elif key in ("instance_id", "status", "events"):
            raise LedgerError("%s cannot be set on an instance record this way" % key)
        else:
            extra[key] = value
    if finishing and "end" not in changes:
        changes["end"] = now
    if status == "InProgress" and "start" not in changes:
        changes["start"] = now
    return changes, extra


def continue_refusal(deployment_id, status):
    """Why a continue request is refused: only a deployment that waits in status Ready can be continued."""
    return ("deployment %s is %s, not Ready: only a blue/green deployment whose green fleet is installed and waits for a continue "
            "(deployment_ready_option STOP_DEPLOYMENT) can be continued" % (deployment_id, status))


def stop_hint_owner(requested_by):
    return requested_by or default_owner()


# ------------------------------------------------------------------------------------------ the API
class Ledger:
    """The ledger API; ``open_ledger`` returns a backend (SQLiteLedger or DynamoDBLedger).

    Every method raises LedgerError (with a message for humans) on bad input, an unknown
    deployment or a storage problem.  Objects are cheap to create; create one per process
    (a SQLite ledger reconnects by itself after a fork).
    """

    location = None
    #: How writes are retried while the storage is busy (see RetryPolicy); replace it on an instance to change the bound.
    retry = RetryPolicy()

    def _retrying(self, what, operation, *args):
        """Run one backend write under the retry policy; a write that still fails names ``what`` it was writing."""
        try:
            return self.retry.run(operation, *args)
        except LedgerUnavailable as exc:
            raise exc.about(what, self.location) from None

    # -- deployments
    def create_deployment(self, application, deployment_group, deployment_group_id, revision, deployment_config, instances,
                          creator="user", options=None, description=None, rollback_of=None, owner=None,
                          lease_seconds=DEFAULT_LEASE_SECONDS, deployment_id=None):
        """Open a deployment (status Created, every instance Pending) and take the group's lock.

        Raises ActiveDeploymentError when the group has another unfinished deployment whose
        lease holds.  Unfinished deployments whose lease expired are marked Failed (TIMEOUT)
        and listed in the result's ``orphaned``.  With ``rollback_of``, the two deployments
        are linked both ways and ``creator`` defaults to ``rollback``.  Returns the summary
        (``get_deployment`` without instances) plus ``orphaned``.
        """
        if rollback_of and (creator is None or creator == "user"):
            creator = "rollback"
        now = utc_now()
        record = new_record(application, deployment_group, deployment_group_id, revision, deployment_config, creator,
                            options, description, owner, now, lease_seconds, deployment_id)
        rows = normalize_instances(instances)
        if rollback_of:
            self._require(rollback_of)
        summary, orphaned = self._retrying("a new deployment of %s" % group_name(application, deployment_group),
                                           self._create, record, rows, deployment_id is not None, now)
        if rollback_of:
            self.link_rollback(rollback_of, summary["deployment_id"], "%s rolls back %s" % (summary["deployment_id"], rollback_of))
            summary = self.get_deployment(summary["deployment_id"], include_instances=False)
        summary["orphaned"] = orphaned
        return summary

    def renew_lease(self, deployment_id, owner=None, lease_seconds=DEFAULT_LEASE_SECONDS):
        """Extend the group lock of an unfinished deployment; returns the new ``lease_expires``."""
        now = utc_now()
        return self._retrying("the lease of deployment %s" % deployment_id, self._renew, deployment_id, owner,
                              lease_expiry(now, lease_seconds), now)

    def update_status(self, deployment_id, status, error_code=None, error_message=None):
        """Set the deployment's status (and error); a terminal one releases the lock and sets complete_time."""
        check_status(status, DEPLOYMENT_STATUSES, "deployment")
        return self._retrying("status %s of deployment %s" % (status, deployment_id), self._update_status, deployment_id, status,
                              error_code, error_message, utc_now())

    def request_stop(self, deployment_id, rollback=False, requested_by=None):
        """Ask the controller running an unfinished deployment to stop it (and roll back with ``rollback``)."""
        self._retrying("a stop request for deployment %s" % deployment_id, self._request_stop, deployment_id, {
            "stop_requested_at": utc_now(), "stop_rollback": bool(rollback), "stop_requested_by": stop_hint_owner(requested_by)})

    def request_continue(self, deployment_id, requested_by=None):
        """Let a blue/green deployment that waits in status Ready reroute its traffic (CodeDeploy's continue-deployment).
        Refused with a LedgerError naming the status when the deployment is not Ready."""
        self._retrying("a continue request for deployment %s" % deployment_id, self._request_continue, deployment_id, {
            "continue_requested_at": utc_now(), "continue_requested_by": stop_hint_owner(requested_by)})

    def update_swap(self, deployment_id, fields=None, append=None):
        """Change the swap record of a (blue/green) deployment, settled or not (it is an audit trail): see ``merge_swap``.
        Returns the new record. ``get_deployment(...)["swap"]`` reads it (None when nothing was recorded)."""
        merge_swap(None, fields, append)  # refuse malformed input before any write
        return self._retrying("the swap record of deployment %s" % deployment_id, self._update_swap, deployment_id, fields, append)

    def stop_request(self, deployment_id):
        """None, or ``{"rollback", "requested_at", "requested_by"}`` when a stop was requested."""
        return self.get_deployment(deployment_id, include_instances=False)["stop_request"]

    def link_rollback(self, triggering_id, rollback_id, message):
        """Record that ``rollback_id`` rolls back ``triggering_id`` (rollback_info on both)."""
        self._require(triggering_id)
        self._require(rollback_id)
        self._retrying("the rollback link between deployments %s and %s" % (triggering_id, rollback_id), self._link,
                       triggering_id, rollback_id, redact_url(message))

    def last_successful(self, application, deployment_group):
        """The newest Succeeded deployment of the group (a summary), or None."""
        found = self.list_deployments(application, deployment_group, statuses=["Succeeded"], limit=1)
        return found[0] if found else None

    def list_deployments(self, application=None, deployment_group=None, statuses=None, limit=50):
        """Summaries (no instances), newest first; ``limit`` None or 0 lists all."""
        if deployment_group and not application:
            raise LedgerError("listing by deployment group needs the application too (group names are per application)")
        statuses = list(statuses or [])
        for status in statuses:
            check_status(status, DEPLOYMENT_STATUSES, "deployment")
        if limit is not None and int(limit) < 0:
            raise LedgerError("limit must be 0 (all) or more, got %s" % limit)
        return self._list(application, deployment_group, statuses, int(limit or 0), utc_now())

    def abandon(self, deployment_id, status, error_code, message):
        """Settle a deployment whose controller is gone or failed: the status and error, its in-progress instances Unknown and
        its pending ones Skipped (a finished deployment keeps no instance in progress). False when it had finished already."""
        check_status(status, TERMINAL_STATUSES, "final deployment")
        return self._retrying("the end of deployment %s" % deployment_id, self._abandon, deployment_id, status, error_code,
                              redact_url(message), utc_now())

    def _require_unsettled(self, deployment_id, what):
        status, error_code = self._status(deployment_id)
        if is_terminal(status):
            raise DeploymentSettledError(
                "deployment %s was settled elsewhere (%s%s), so this controller no longer owns it: %s was not recorded" % (
                    deployment_id, status, ": %s" % error_code if error_code else "", what))

    def _status(self, deployment_id):
        """(status, error code) of a deployment; backends read just these two fields."""
        current = self.get_deployment(deployment_id, include_instances=False)
        return current["status"], (current.get("error") or {}).get("code")

    # -- instances and events
    def try_start_instance(self, deployment_id, instance_id, max_unhealthy):
        """Atomically admit an instance: True (now InProgress) when ``unhealthy < max_unhealthy``, else False.

        Starting an instance that is already InProgress returns True without counting it again;
        a finished one (Succeeded/Failed) raises LedgerError, as does a finished deployment.
        """
        return self._retrying("the start of instance %s in deployment %s" % (instance_id, deployment_id), self._try_start,
                              deployment_id, instance_id, int(max_unhealthy), utc_now())

    def finish_instance(self, deployment_id, instance_id, status, error_code=None, message=None, out_of_service=False, **extra):
        """End an instance: Succeeded releases its ``unhealthy`` slot, Failed keeps it; Skipped/Unknown/Ready as given.

        Raises DeploymentSettledError when the deployment was settled meanwhile (its controller lost it)."""
        self._require_unsettled(deployment_id, "the end of instance %s" % instance_id)
        fields = dict(extra, error_code=error_code, message=message, out_of_service=out_of_service)
        changes, more = instance_changes(status, fields, utc_now(), finishing=True)
        self._retrying("the end of instance %s in deployment %s (%s)" % (instance_id, deployment_id, status), self._change_instance,
                       deployment_id, instance_id, changes, more)

    def set_instance(self, deployment_id, instance_id, status, **fields):
        """Plain update of an instance's status and fields (the ``unhealthy`` counter follows the status)."""
        changes, more = instance_changes(status, fields, utc_now(), finishing=False)
        self._retrying("status %s of instance %s in deployment %s" % (status, instance_id, deployment_id), self._change_instance,
                       deployment_id, instance_id, changes, more)

    def record_events(self, deployment_id, instance_id, events):
        """Insert or replace lifecycle event records of one instance (by event name), in one write."""
        self._require_unsettled(deployment_id, "the events of instance %s" % instance_id)
        records = normalize_events(events)
        if records:
            self._retrying("event%s %s of instance %s in deployment %s" % (
                "s" if len(records) > 1 else "", ", ".join(r["event"] for r in records), instance_id, deployment_id),
                self._record_events, deployment_id, instance_id, records)

    def instance_history(self, application, deployment_group, instance_ids):
        """``{instance_id: {deployment_id, status, revision_sha256}}``: each instance's latest touched record in the group.

        Records where the instance stayed Pending or was Skipped do not count, so the deployment
        being planned does not hide the previous one.  Instances never deployed are absent.
        """
        ids = list(dict.fromkeys(str(i) for i in instance_ids or ()))
        if not ids:
            return {}
        return self._instance_history(application, deployment_group, ids)

    # -- reading
    def get_deployment(self, deployment_id, include_instances=True):
        """The deployment dict (see the module docstring of deployment_info for every key)."""
        raise NotImplementedError

    def close(self):
        """Release connections (a closed ledger reconnects on next use)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- backend hooks
    def _require(self, deployment_id):
        self.get_deployment(deployment_id, include_instances=False)

    def _create(self, record, instances, explicit_id, now):
        raise NotImplementedError

    def _renew(self, deployment_id, owner, lease_expires, now):
        raise NotImplementedError

    def _update_status(self, deployment_id, status, error_code, error_message, now):
        raise NotImplementedError

    def _request_stop(self, deployment_id, fields):
        raise NotImplementedError

    def _request_continue(self, deployment_id, fields):
        raise NotImplementedError

    def _update_swap(self, deployment_id, fields, append):
        raise NotImplementedError

    def _link(self, triggering_id, rollback_id, message):
        raise NotImplementedError

    def _list(self, application, deployment_group, statuses, limit, now):
        raise NotImplementedError

    def _try_start(self, deployment_id, instance_id, max_unhealthy, now):
        raise NotImplementedError

    def _abandon(self, deployment_id, status, error_code, message, now):
        raise NotImplementedError

    def _change_instance(self, deployment_id, instance_id, changes, extra):
        raise NotImplementedError

    def _record_events(self, deployment_id, instance_id, records):
        raise NotImplementedError

    def _instance_history(self, application, deployment_group, instance_ids):
        raise NotImplementedError


def start_refusal(deployment_id, instance_id, instance_status, deployment_status):
    """The LedgerError message when ``try_start_instance`` cannot start an instance, or None when it may."""
    if is_terminal(deployment_status):
        return ("deployment %s is already %s; instance %s cannot start (did another run mark this deployment an orphan?)"
                % (deployment_id, deployment_status, instance_id))
    if instance_status not in STARTABLE_STATUSES and instance_status != "InProgress":
        return ("instance %s of deployment %s is already %s; it cannot start again in the same deployment"
                % (instance_id, deployment_id, instance_status))
    return None


def open_ledger(location=None, aws=None, readonly=False, retry=None):
    """The Ledger at ``location``: a path (SQLite; ``~`` expanded, parent directories created) or ``dynamodb://<table>``.

    ``aws`` (DynamoDB only): dict with any of region, endpoint_url, access_key, secret_key,
    session_token, profile, verify; unset keys come from boto3's usual sources (AWS_* environment,
    profiles, instance roles).  ``readonly``: create nothing (no file, directory or table) and
    raise LedgerMissingError when there is no ledger yet; used by deployment_info.  ``retry``: a
    RetryPolicy instead of the default one (a bound of ``WRITE_RETRY_SECONDS``).
    """
    kind, target = parse_location(location)
    if kind == "dynamodb":
        from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import dynamodb  # pylint: disable=import-outside-toplevel
        return dynamodb.DynamoDBLedger(target, aws or {}, readonly=readonly, retry=retry)
    from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import sqlite  # pylint: disable=import-outside-toplevel
    return sqlite.SQLiteLedger(target, readonly=readonly, retry=retry)
