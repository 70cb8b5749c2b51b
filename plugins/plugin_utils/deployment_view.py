# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live deployment view of the callback ``rollout.codedeploy.deployment_view``, as pure functions over task results.

``DeploymentView`` is fed the results of the deployment's own tasks (``rollout.codedeploy.deployment`` with state
started, batch and finished; ``rollout.codedeploy.deploy_host`` per host) and returns the lines to print: one line
per batch, a failure block per failed host, and at the end a table of each host against each lifecycle event, the
deployment id and its status. It reads only what those tasks return (their RETURN docs); it never opens the ledger.
Colour is ANSI escapes added only when ``colour`` is true (``colour_enabled`` decides it). Controller-only; see
docs/operator-view.md."""

from __future__ import annotations

import datetime

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import LIFECYCLE_ORDER

#: Short column headings for a table that does not fit with the full event names (explained in a legend line).
ABBREVIATIONS = {
    "BeforeBlockTraffic": "BfBlock", "BlockTraffic": "Block", "AfterBlockTraffic": "AfBlock",
    "ApplicationStop": "AppStop", "DownloadBundle": "Download", "BeforeInstall": "BfInstall", "Install": "Install",
    "AfterInstall": "AfInstall", "ApplicationStart": "AppStart", "ValidateService": "Validate",
    "BeforeAllowTraffic": "BfAllow", "AllowTraffic": "Allow", "AfterAllowTraffic": "AfAllow",
}
#: The table's cell words for the event statuses (CodeDeploy's words are in the host's status column and the legend).
CELL_WORDS = {"Succeeded": "ok", "Failed": "FAIL", "Skipped": "skip", "Pending": "pend", "InProgress": "run"}
LEGEND = "ok = Succeeded, FAIL = Failed, skip = Skipped (no script to run), - = not run, durations in seconds"

#: ANSI colours, the ones Ansible uses for the same meanings (ok green, failed red, skipped cyan, changed yellow).
COLOURS = {"green": "0;32", "red": "0;31", "cyan": "0;36", "yellow": "0;33", "bold": "1"}
STATUS_COLOURS = {"Succeeded": "green", "ok": "green", "Failed": "red", "FAIL": "red", "Stopped": "red",
                  "Skipped": "cyan", "skip": "cyan", "Ready": "yellow", "InProgress": "yellow"}

DEFAULT_WIDTH = 120
DEFAULT_LOG_LINES = 10
PREFIX = "codedeploy"

_TRUE = ("1", "true", "yes", "on", "y", "t")


def colour_enabled(isatty, nocolor=False, force=False, env=None):
    """Whether to colour the view, by Ansible's rule: forced colour wins; then ``nocolor`` (ANSIBLE_NOCOLOR, or NO_COLOR,
    which Ansible reads into the same setting) or a non-empty NO_COLOR in ``env`` turn it off; otherwise only on a TTY."""
    env = env or {}
    if force or str(env.get("ANSIBLE_FORCE_COLOR", "")).strip().lower() in _TRUE:
        return True
    if nocolor or env.get("NO_COLOR") or str(env.get("ANSIBLE_NOCOLOR", "")).strip().lower() in _TRUE:
        return False
    return bool(isatty)


def view_width(option=None, env=None, terminal_columns=None):
    """The width the table keeps within: the ``width`` option, else COLUMNS, else the terminal's, else DEFAULT_WIDTH."""
    for value in (option, (env or {}).get("COLUMNS"), terminal_columns):
        try:
            width = int(value)
        except (TypeError, ValueError):
            continue
        if width > 0:
            return max(width, 40)
    return DEFAULT_WIDTH


def paint(text, colour, enabled):
    """``text`` in ``colour`` (a COLOURS name) when ``enabled``; plain otherwise or for an unknown colour."""
    code = COLOURS.get(colour)
    if not enabled or not code or not text:
        return text
    return "\033[%sm%s\033[0m" % (code, text)


def seconds(value):
    """A duration for a table cell: 0.4, 12, 3m05."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "?"
    if value < 10:
        return "%.1f" % value
    if value < 120:
        return "%d" % round(value)
    minutes, rest = divmod(int(round(value)), 60)
    return "%dm%02d" % (minutes, rest)


def _when(stamp):
    """A ledger timestamp (UTC ISO 8601 with a Z) as a datetime, or None."""
    if not stamp:
        return None
    try:
        return datetime.datetime.strptime(str(stamp).replace("Z", ""), "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        try:
            return datetime.datetime.strptime(str(stamp).replace("Z", ""), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None


def host_duration(events):
    """Seconds from the host's first event start to its last event end; the sum of the event durations without times."""
    starts = [_when(e.get("start")) for e in events]
    ends = [_when(e.get("end")) for e in events]
    starts, ends = [s for s in starts if s], [e for e in ends if e]
    if starts and ends:
        return max((max(ends) - min(starts)).total_seconds(), 0.0)
    total = 0.0
    for event in events:
        try:
            total += float(event.get("duration") or 0)
        except (TypeError, ValueError):
            pass
    return total


# ---------------------------------------------------------------------------------------------- one host's outcome
def host_outcome(result, outcome="ok"):
    """What the view keeps of a deploy_host task result; ``outcome`` is the callback's word (ok, failed, skipped, unreachable)."""
    result = result or {}
    events = [e for e in result.get("events") or [] if isinstance(e, dict) and e.get("event")]
    status = result.get("status")
    if outcome == "unreachable":
        status = "Failed"
    elif outcome == "skipped" or result.get("skipped"):
        status = "Skipped"
    elif not status:
        status = "Failed" if outcome == "failed" or result.get("failed") else "Succeeded"
    failed_record = next((e for e in reversed(events) if e.get("status") == "Failed"), {})
    failed_event = result.get("failed_event") or failed_record.get("event")
    if status == "Failed" and not failed_event:
        failed_event = "the host's first event"
    return {
        "status": status,
        "events": events,
        "failed_event": failed_event if status == "Failed" else None,
        "error_code": (result.get("error_code") or failed_record.get("error_code")) if status == "Failed" else None,
        "script": result.get("script") or failed_record.get("script_name") or None,
        "log_tail": result.get("log_tail") or failed_record.get("log_tail") or "",
        "msg": str(result.get("msg") or ""),
        # The failed event's own words (the task's msg repeats the log tail after them).
        "message": str(failed_record.get("message") or result.get("msg") or "") if status == "Failed" else "",
    }


def events_done(events):
    """The events a host completed (Succeeded, or Skipped for want of a script), in order."""
    return [e["event"] for e in events if e.get("status") in ("Succeeded", "Skipped")]


def _span(names):
    if not names:
        return "none"
    if len(names) == 1:
        return names[0]
    return "%s..%s (%d)" % (names[0], names[-1], len(names))


# ---------------------------------------------------------------------------------------------- the batch line
def batch_line(deployment_id, number, total, hosts, after=None, colour=False):
    """One line for a finished batch: its hosts, the events done, the failures, and what the check after it decided.

    ``hosts``: inventory host -> ``host_outcome``, in the order they reported. ``after``: the ``state=batch`` result."""
    count = ("%d/%d" % (number, total)) if total and number <= total else "%d" % number
    names = list(hosts)
    parts = ["[%s] batch %s: %s" % (deployment_id or "?", count, ", ".join(names) or "no host")]
    done = dict((host, events_done(o["events"])) for host, o in hosts.items())
    ran = [h for h in names if hosts[h]["status"] != "Skipped"]
    spans = set(tuple(done[h]) for h in ran)
    if not ran:
        parts.append("events done: none")
    elif len(spans) == 1:
        only = done[ran[0]]
        parts.append("events done: %s%s" % (_span(only), " each" if len(ran) > 1 and only else ""))
    else:
        parts.append("events done: " + ", ".join("%s %s" % (h, _span(done[h])) for h in ran))
    failures = []
    for host in names:
        outcome = hosts[host]
        if outcome["status"] == "Failed":
            failures.append("%s at %s (%s)" % (host, outcome["failed_event"], outcome["error_code"] or "failed"))
        elif outcome["status"] == "Skipped":
            failures.append("%s skipped%s" % (host, (": " + _skip_reason(outcome["msg"])) if outcome["msg"] else ""))
    if failures:
        parts.append(paint("failures: " + "; ".join(failures), "red", colour))
    else:
        parts.append(paint("failures: none", "green", colour))
    after = after or {}
    if after.get("error_code") or after.get("proceed") is False:
        why = after.get("error_code") or after.get("status") or "stopped"
        parts.append(paint("deployment stops: %s" % why, "red", colour))
    elif after.get("msg"):
        parts.append(" ".join(str(after["msg"]).split()))  # e.g. a blue/green deployment continued after its ready wait
    return " | ".join(parts)


def _skip_reason(msg):
    """The reason part of a skipped host's message ("web-1 skipped in d-X: <reason>")."""
    head, sep, reason = msg.partition(": ")
    return reason if sep and " skipped" in head else msg


# ---------------------------------------------------------------------------------------------- the failure block
def failure_block(deployment_id, host, outcome, log_lines=DEFAULT_LOG_LINES, colour=False):
    """The lines that say where a host failed: host, event, script, error code, message and the log tail's last lines."""
    title = "FAILED %s at %s in %s (%s)" % (host, outcome.get("failed_event"), deployment_id or "?", outcome.get("error_code") or "failed")
    lines = [paint(title, "red", colour),
             "  script: %s" % (outcome.get("script") or "none (no script ran in this event)")]
    message = " ".join(str(outcome.get("message") or outcome.get("msg") or "").split())
    if message:
        lines.append("  message: %s" % message)
    tail = [line.expandtabs(4).rstrip() for line in str(outcome.get("log_tail") or "").splitlines() if line.strip()]
    if log_lines and tail:
        shown = tail[-log_lines:]
        lines.append("  log tail (last %d of %d lines):" % (len(shown), len(tail)))
        lines.extend("    | " + line for line in shown)
    else:
        lines.append("  log tail: empty")
    return lines


# ---------------------------------------------------------------------------------------------- the final table
def table_events(hosts):
    """The lifecycle events any host has a record of, in lifecycle order (unknown names last, as met)."""
    seen = []
    for outcome in hosts.values():
        for record in outcome["events"]:
            if record["event"] not in seen:
                seen.append(record["event"])
    order = dict((name, i) for i, name in enumerate(LIFECYCLE_ORDER))
    return sorted(seen, key=lambda name: (order.get(name, len(order)), seen.index(name)))


def _cell(record):
    if not record:
        return "-"
    word = CELL_WORDS.get(record.get("status"), str(record.get("status") or "?"))
    if record.get("status") == "Skipped":
        return word
    return "%s %s" % (word, seconds(record.get("duration")))


def _row(host, outcome, events):
    records = dict((r["event"], r) for r in outcome["events"])
    total = seconds(host_duration(outcome["events"])) if outcome["events"] else "-"
    return [host, outcome["status"]] + [_cell(records.get(name)) for name in events] + [total]


def _render(headings, rows, colour):
    widths = [max(len(str(row[i])) for row in [headings] + rows) for i in range(len(headings))]
    lines = ["  ".join(str(text).ljust(width) for text, width in zip(headings, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        cells = []
        for i, (text, width) in enumerate(zip(row, widths)):
            padded = str(text).ljust(width)
            word = str(text).split(" ", maxsplit=1)[0]
            cells.append(paint(padded, STATUS_COLOURS.get(word), colour) if i > 0 else padded)
        lines.append("  ".join(cells).rstrip())
    return lines


def event_table(hosts, width=DEFAULT_WIDTH, colour=False):
    """Each host against each lifecycle event: a cell ``ok 1.2`` / ``FAIL 0.3`` / ``skip`` / ``-`` per event, the host's status
    and total seconds. Within ``width``: full event names when they fit, else short names with a legend, and when even that is
    too wide the events are split over several blocks that each repeat the host and status columns."""
    if not hosts:
        return []
    events = table_events(hosts)
    rows = [_row(host, outcome, events) for host, outcome in hosts.items()]
    full = ["host", "status"] + events + ["total"]
    lines = _render(full, rows, colour)
    if len(_render(full, rows, False)[1]) <= width:
        return lines + [_wrap(LEGEND, width)]
    short = [ABBREVIATIONS.get(name, name) for name in events]
    legend = "events: " + ", ".join("%s = %s" % (s, n) for s, n in zip(short, events) if s != n)
    head = [max(len(r[i]) for r in rows + [full]) for i in (0, 1)]
    columns = [max(len(s), max(len(r[2 + i]) for r in rows)) for i, s in enumerate(short)]
    total = max(len(r[-1]) for r in rows + [full])

    def fits(block, last):
        widths = head + [columns[i] for i in block] + ([total] if last else [])
        return sum(widths) + 2 * (len(widths) - 1) <= width

    blocks = [[]]
    for i in range(len(columns)):
        if blocks[-1] and not fits(blocks[-1] + [i], i == len(columns) - 1):
            blocks.append([])
        blocks[-1].append(i)
    out = []
    for number, block in enumerate(blocks):
        last = number == len(blocks) - 1
        headings = ["host", "status"] + [short[i] for i in block] + (["total"] if last else [])
        block_rows = [[r[0], r[1]] + [r[2 + i] for i in block] + ([r[-1]] if last else []) for r in rows]
        if number:
            out.append("")
        out.extend(_render(headings, block_rows, colour))
    return out + [_wrap(legend, width), _wrap(LEGEND, width)]


def _wrap(text, width):
    """A legend folded at commas to stay within ``width``."""
    lines, line = [], ""
    for piece in text.split(", "):
        candidate = piece if not line else line + ", " + piece
        if line and len(candidate) > width:
            lines.append(line + ",")
            line = "  " + piece
        else:
            line = candidate
    lines.append(line)
    return "\n".join(lines)


def status_line(result, rollback=False, colour=False):
    """The deployment's id and final status (with its error code and message) from the ``state=finished`` result."""
    status = result.get("status") or "unknown"
    overview = result.get("overview") or {}
    counts = ", ".join("%s %d" % (k, v) for k, v in sorted(overview.items()) if v)
    line = "%s %s %s%s" % ("Rollback deployment" if rollback else "Deployment", result.get("deployment_id") or "?",
                           paint(status, STATUS_COLOURS.get(status, "bold"), colour), (" (%s)" % counts) if counts else "")
    error = result.get("error") or {}
    if error:
        line += ": %s: %s" % (error.get("code"), " ".join(str(error.get("message") or "").split()))
    return line


# ---------------------------------------------------------------------------------------------- the state the callback feeds
def classify(action, result):
    """Which deployment step a task result is: ``started``, ``batch``, ``finished``, ``host`` or None (not ours).

    ``action``: the task's resolved action name. The deployment module's states are told apart by what they return
    (its RETURN doc): started returns the plan, batch the decision to proceed, finished the instance overview."""
    name = str(action or "")
    if name in ("rollout.codedeploy.deploy_host", "deploy_host"):
        return "host"
    if name not in ("rollout.codedeploy.deployment", "deployment") or not isinstance(result, dict):
        return None
    if "plan" in result and "rollout_hosts" in result:
        return "started"
    if "proceed" in result:
        return "batch"
    if "overview" in result and "deployment_id" in result:
        return "finished"
    return None


class DeploymentView(object):
    """Follows one playbook run (a deployment, then its rollback if any) and says what to print as the results arrive."""

    def __init__(self, show_table=True, width=DEFAULT_WIDTH, log_lines=DEFAULT_LOG_LINES, colour=False):
        self.show_table = show_table
        self.width = width
        self.log_lines = log_lines
        self.colour = colour
        self._reset(None, None)

    def _reset(self, deployment_id, opened=None, rollback=False):
        self.deployment_id = deployment_id
        self.rollback = rollback
        opened = opened or {}
        self.total_batches = batch_count(opened.get("rollout_hosts"), opened.get("rollout_serial")) + batch_count(
            opened.get("rollout_reroute_hosts"), opened.get("rollout_reroute_serial"))
        self.batch_number = 0
        self.pending = {}  # host -> outcome, of the batch in flight
        self.hosts = {}  # host -> outcome, every host of the deployment so far

    def feed(self, kind, host, result, outcome="ok"):
        """Take one task result (``kind`` from ``classify``); return the lines to print now."""
        result = result or {}
        if kind == "started":
            lines = self._close("not settled")
            if not result.get("deployment_id"):
                return lines  # check mode or nothing to deploy: the task's own message says so
            self._reset(result["deployment_id"], result, rollback=_is_rollback(result))
            label = "Rollback deployment" if self.rollback else "Deployment"
            hosts = set(result.get("rollout_hosts") or []) | set(result.get("rollout_reroute_hosts") or [])
            return lines + ["[%s] %s opened: %d host(s) in %d batch(es)" % (self.deployment_id, label, len(hosts), self.total_batches)]
        if not self.deployment_id:
            return []
        if kind == "host":
            current = host_outcome(result, outcome)
            self.pending[host] = current
            earlier = self.hosts.get(host)
            if earlier:
                # A blue/green green host runs twice (install, then reroute once continued): its row keeps both runs' events.
                again = set(r["event"] for r in current["events"])
                current = dict(current, events=[r for r in earlier["events"] if r["event"] not in again] + current["events"])
            self.hosts[host] = current
            return []
        if kind == "batch":
            return self._batch(result)
        if kind == "finished":
            return self._finish(result)
        return []

    def _batch(self, after=None):
        if not self.pending:
            return []
        self.batch_number += 1
        lines = [batch_line(self.deployment_id, self.batch_number, self.total_batches, self.pending, after, self.colour)]
        for host, outcome in self.pending.items():
            if outcome["status"] == "Failed":
                lines.extend(failure_block(self.deployment_id, host, outcome, self.log_lines, self.colour))
        self.pending = {}
        return lines

    def _finish(self, result):
        if result.get("deployment_id") and result.get("deployment_id") != self.deployment_id:
            return []
        lines = self._batch()
        if self.show_table and self.hosts:
            lines.append("[%s] hosts and lifecycle events:" % self.deployment_id)
            lines.extend(event_table(self.hosts, self.width, self.colour))
        lines.append(status_line(result, self.rollback, self.colour))
        self._reset(None, None)
        return lines

    def _close(self, why):
        """What is left of a deployment that was never settled in this run (the play ended or another one started)."""
        if not self.deployment_id:
            return []
        return self._finish({"deployment_id": self.deployment_id, "status": why})

    def close(self):
        """At the end of the playbook run."""
        return self._close("not settled in this run")


def batch_count(hosts, serial):
    """How many batches Ansible makes of ``hosts`` with the play keyword ``serial`` (a list of sizes, the last one repeating)."""
    left = len(hosts or [])
    sizes = [s for s in (serial or []) if isinstance(s, int) and not isinstance(s, bool) and s > 0] or [left or 1]
    count = 0
    while left > 0:
        left -= sizes[min(count, len(sizes) - 1)]
        count += 1
    return count


def _is_rollback(result):
    plan = result.get("plan")
    return bool(isinstance(plan, dict) and plan.get("reuse_deployment"))
