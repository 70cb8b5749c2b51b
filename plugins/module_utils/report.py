# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment report: one deployment of the ledger as a JSON-able dict and as one self-contained HTML page.

``report_data(deployment, related)`` turns a ledger record (``get_deployment`` with instances) and the
deployments linked to it (its rollback, or the deployment it rolls back) into the report's data, a
documented and versioned shape (docs/report.md, ``FORMAT`` and ``VERSION``). ``render_html(data)`` renders
that data as one HTML page with inline CSS and an inline SVG Gantt chart (one row per host, one bar per
lifecycle event coloured by its status, the traffic steps marked); the page fetches nothing and needs no
script. Every string from the ledger is escaped: hook log tails, messages and descriptions are untrusted.
``write_report`` writes the files, atomically, and says which ones changed.

Both functions are pure and deterministic (no clock): the same record gives the same bytes, so writing
a report twice changes nothing the second time. Standard library only.
"""

from __future__ import absolute_import, division, print_function

import datetime
import html
import json
import math
import os
import tempfile

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import TRAFFIC_EVENTS

__metaclass__ = type  # pylint: disable=invalid-name

FORMAT = "rollout.codedeploy.report"
#: The version of report_data's shape; a change that removes or renames a key increments it.
VERSION = 1
FORMATS = ("html", "json")
#: Bar colours by event status (also the legend), chosen to stay apart for colour-blind readers.
STATUS_COLOURS = (
    ("Succeeded", "#2e8540"),
    ("Failed", "#d62728"),
    ("InProgress", "#1f77b4"),
    ("Skipped", "#9e9e9e"),
    ("Pending", "#c7c7c7"),
    ("Unknown", "#8c564b"),
)
TRAFFIC_COLOURS = {"BlockTraffic": "#ff7f0e", "AllowTraffic": "#17becf", "weights": "#9467bd"}
#: The chart draws at most this many host rows; the others are in the hosts table and the JSON.
MAX_CHART_ROWS = 300
#: Host labels longer than this are cut in the chart (the whole name is in the row's tooltip and the tables).
LABEL_CHARS = 28
_ROW = 18
_BAR = 12
_LABEL_WIDTH = 210
_PLOT_WIDTH = 900
_TOP = 34
_NICE_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)


class ReportError(Exception):
    def __init__(self, message):
        super(ReportError, self).__init__(message)
        self.message = message


def parse_time(text):
    """The aware UTC datetime of a ledger time string, or None when it is missing or not a time."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return ledgers.parse_time(text)
    except ledgers.LedgerError:
        return None


def _seconds(moment, origin):
    return round((moment - origin).total_seconds(), 3)


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _event_span(event):
    """(start, end) datetimes of an event as far as the record tells them; a missing side comes from the duration."""
    start, end, duration = parse_time(event.get("start")), parse_time(event.get("end")), _number(event.get("duration"))
    if start and end and end < start:
        end = start
    if start and not end and duration is not None:
        end = start + datetime.timedelta(seconds=duration)
    if end and not start and duration is not None:
        start = end - datetime.timedelta(seconds=duration)
    if start and not end:
        end = start
    if end and not start:
        start = end
    return start, end


def _swap_steps(swap):
    """The weight changes of a blue/green swap record, in the order they were set."""
    steps = []
    for item in (swap or {}).get("traffic") or ():
        if isinstance(item, dict):
            steps.append(item)
    return steps


def _related_summary(record):
    keys = ("deployment_id", "status", "creator", "description", "create_time", "start_time", "complete_time")
    summary = dict((key, record.get(key)) for key in keys)
    summary["error"] = record.get("error")
    summary["report_html"] = "%s.html" % record.get("deployment_id")
    return summary


def report_data(deployment, related=()):
    """The report of ``deployment`` (a ledger record with instances) as a JSON-able dict (docs/report.md).

    ``related`` are the linked deployments (ledger records, with or without instances): the rollback of
    this deployment, or the deployment this one rolls back.
    """
    if not isinstance(deployment, dict) or not deployment.get("deployment_id"):
        raise ReportError("a report needs a deployment record with a deployment_id (what deployment_info returns), got %r"
                          % (type(deployment).__name__,))
    spans, moments = [], []
    for key in ("start_time", "complete_time"):
        moment = parse_time(deployment.get(key))
        if moment:
            moments.append(moment)
    instances = [i for i in deployment.get("instances") or () if isinstance(i, dict)]
    for instance in instances:
        row = []
        for event in instance.get("events") or ():
            if isinstance(event, dict):
                start, end = _event_span(event)
                row.append((event, start, end))
                moments.extend(m for m in (start, end) if m)
        spans.append(row)
    swap = deployment.get("swap") if isinstance(deployment.get("swap"), dict) else None
    weight_steps = _swap_steps(swap)
    moments.extend(m for m in (parse_time(s.get("time")) for s in weight_steps) if m)
    origin = min(moments) if moments else None
    finish = max(moments) if moments else None

    def offset(moment):
        return _seconds(moment, origin) if moment and origin else None

    rows, traffic = [], []
    for instance, row in zip(instances, spans):
        events = []
        for event, start, end in row:
            item = dict((key, event.get(key)) for key in ledgers.EVENT_FIELDS)
            item["offset_start"], item["offset_end"] = offset(start), offset(end)
            events.append(item)
            if item["event"] in TRAFFIC_EVENTS:
                traffic.append({"kind": "host", "action": item["event"], "host": instance.get("host") or instance.get("instance_id"),
                                "instance_id": instance.get("instance_id"), "status": item["status"], "time": item["start"] or item["end"],
                                "offset": item["offset_start"], "message": item["message"]})
        rows.append({"host": instance.get("host") or instance.get("instance_id"), "instance_id": instance.get("instance_id"),
                     "zone": instance.get("zone"), "role": instance.get("role"), "status": instance.get("status"),
                     "start": instance.get("start"), "end": instance.get("end"), "error_code": instance.get("error_code"),
                     "message": instance.get("message"), "events": events})
    for step in weight_steps:
        traffic.append({"kind": "weights", "action": "weights", "step": step.get("step"), "green_percent": step.get("green_percent"),
                        "weights": step.get("weights"), "reason": step.get("reason"), "time": step.get("time"),
                        "offset": offset(parse_time(step.get("time")))})
    traffic.sort(key=lambda item: (item["offset"] is None, item["offset"] or 0))
    rollback_info = deployment.get("rollback_info") or {}
    summary_keys = ("deployment_id", "application", "deployment_group", "deployment_group_id", "status", "creator", "description",
                    "create_time", "start_time", "complete_time", "error", "overview", "owner")
    return {
        "format": FORMAT,
        "version": VERSION,
        "deployment": dict((key, deployment.get(key)) for key in summary_keys),
        "revision": deployment.get("revision"),
        "plan": {"deployment_config": deployment.get("deployment_config"), "options": deployment.get("options"),
                 "hosts": [dict((key, row[key]) for key in ("host", "instance_id", "zone", "role", "status")) for row in rows]},
        "timeline": {"start": _iso(origin), "end": _iso(finish),
                     "seconds": _seconds(finish, origin) if origin else None, "rows": rows},
        "traffic": traffic,
        "swap": swap,
        "rollback": {"rollback_deployment_id": rollback_info.get("rollback_deployment_id"),
                     "rollback_triggering_deployment_id": rollback_info.get("rollback_triggering_deployment_id"),
                     "message": rollback_info.get("rollback_message"),
                     "related": [_related_summary(r) for r in related or () if isinstance(r, dict) and r.get("deployment_id")]},
    }


def _iso(moment):
    return ledgers.format_time(moment) if moment else None


def render_json(data):
    """The report's JSON text (sorted keys, so the same data gives the same bytes)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


# ---------------------------------------------------------------------------------------------------------------------
# HTML

def esc(value):
    """Any value as HTML text, safe in element content and in quoted attributes."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else str(value)
    return html.escape(value, quote=True)


def _colour(status):
    return dict(STATUS_COLOURS).get(status, "#7f7f7f")


def tick_step(seconds, wanted=8):
    """A readable tick spacing (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, ...) giving about ``wanted`` ticks."""
    if seconds <= 0:
        return 1
    for step in _NICE_STEPS:
        if seconds / step <= wanted:
            return step
    return _NICE_STEPS[-1] * math.ceil(seconds / (_NICE_STEPS[-1] * wanted))


def _clock(seconds, step=1, span=0):
    """+m:ss (+h:mm:ss on an axis of an hour or more) for an offset in seconds; +s.s when the ticks are less than a second apart."""
    if step < 1:
        return "+%.1fs" % seconds
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "+%d:%02d:%02d" % (hours, minutes, secs) if span >= 3600 else "+%d:%02d" % (minutes, secs)


def _label(text):
    text = text or "?"
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "\u2026"


def render_svg(data):
    """The Gantt chart: one row per host, one bar per timed lifecycle event, traffic steps marked."""
    timeline = data["timeline"]
    rows = timeline["rows"][:MAX_CHART_ROWS]
    total = timeline["seconds"] or 0
    span = total if total > 0 else 1
    height = _TOP + max(len(rows), 1) * _ROW + 10
    width = _LABEL_WIDTH + _PLOT_WIDTH + 20
    scale = _PLOT_WIDTH / span

    def x(seconds):
        return round(_LABEL_WIDTH + seconds * scale, 2)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
           'aria-label="timeline of each host and lifecycle event">' % (width, height, width, height)]
    out.append('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>' % (_LABEL_WIDTH, _TOP - 4, _PLOT_WIDTH, height - _TOP - 2))
    step = tick_step(span)
    ticks = int(span // step) + 1
    for index in range(ticks):
        seconds = round(index * step, 3)
        out.append('<line x1="%s" y1="%d" x2="%s" y2="%d" class="tick"/>' % (x(seconds), _TOP - 8, x(seconds), height - 6))
        out.append('<text x="%s" y="%d" class="ticklabel">%s</text>' % (x(seconds), _TOP - 12, esc(_clock(seconds, step, span))))
    for number, row in enumerate(rows):
        top = _TOP + number * _ROW
        out.append('<g class="row"><title>%s</title>' % esc("%s (%s) %s" % (row["host"], row["instance_id"], row["status"])))
        out.append('<text x="%d" y="%d" class="hostlabel">%s</text>' % (_LABEL_WIDTH - 6, top + _BAR - 1, esc(_label(row["host"]))))
        for event in row["events"]:
            if event["offset_start"] is None:
                continue
            left = x(event["offset_start"])
            length = (event["offset_end"] - event["offset_start"]) * scale
            # At least 3 px, so a zero-length or very fast event (a script that fails at once) stays visible; a 1 px
            # gap after longer bars tells neighbouring events of the same status apart.
            drawn = round(length - 1, 2) if length >= 5 else max(round(length, 2), 3)
            out.append('<rect x="%s" y="%d" width="%s" height="%d" fill="%s" class="bar" data-status="%s"><title>%s</title></rect>' % (
                left, top, drawn, _BAR, _colour(event["status"]), esc(event["status"]),
                esc("%s %s: %s, %s s" % (row["host"], event["event"], event["status"], event["duration"]))))
            if event["event"] in TRAFFIC_EVENTS:
                out.append(_traffic_marker(left, top, event["event"]))
        out.append('</g>')
    for step_record in data["traffic"]:
        if step_record["kind"] != "weights" or step_record["offset"] is None:
            continue
        left = x(step_record["offset"])
        out.append('<line x1="%s" y1="%d" x2="%s" y2="%d" class="weights"><title>%s</title></line>' % (
            left, _TOP - 4, left, height - 6,
            esc("traffic step %s: green %s%% (%s)" % (step_record["step"], step_record["green_percent"], step_record["reason"]))))
        out.append('<text x="%s" y="%d" class="weightlabel">%s</text>' % (left + 2, height - 8, esc("%s%%" % step_record["green_percent"])))
    if not rows or not any(e["offset_start"] is not None for row in rows for e in row["events"]):
        out.append('<text x="%d" y="%d" class="empty">%s</text>' % (
            _LABEL_WIDTH + 10, _TOP + 12, "no hosts in this deployment" if not rows else "no lifecycle event with a time recorded"))
    out.append('</svg>')
    return "".join(out)


def _traffic_marker(left, top, event):
    """A triangle above the row: pointing down where a host left its load balancers, up where it joined them."""
    colour = TRAFFIC_COLOURS[event]
    if event == "BlockTraffic":
        points = "%s,%s %s,%s %s,%s" % (left - 4, top - 3, left + 4, top - 3, left, top + 3)
    else:
        points = "%s,%s %s,%s %s,%s" % (left - 4, top + 3, left + 4, top + 3, left, top - 3)
    return '<polygon points="%s" fill="%s" class="traffic"/>' % (points, colour)


def _legend():
    items = ['<span class="key"><span class="swatch" style="background:%s"></span>%s</span>' % (colour, esc(status))
             for status, colour in STATUS_COLOURS]
    items.append('<span class="key"><span class="mark" style="color:%s">&#9660;</span>BlockTraffic (left the load balancers)</span>'
                 % TRAFFIC_COLOURS["BlockTraffic"])
    items.append('<span class="key"><span class="mark" style="color:%s">&#9650;</span>AllowTraffic (joined them)</span>'
                 % TRAFFIC_COLOURS["AllowTraffic"])
    items.append('<span class="key"><span class="mark" style="color:%s">&#9474;</span>blue/green weight change</span>'
                 % TRAFFIC_COLOURS["weights"])
    return '<div class="legend">%s</div>' % "".join(items)


def _table(headings, rows):
    out = ['<table><thead><tr>%s</tr></thead><tbody>' % "".join("<th>%s</th>" % esc(h) for h in headings)]
    for row in rows:
        out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % cell for cell in row))
    out.append("</tbody></table>")
    return "".join(out)


def _pairs(mapping):
    """A definition list of a mapping, values as compact JSON when they are not text."""
    if not isinstance(mapping, dict) or not mapping:
        return '<p class="none">none recorded</p>'
    return "<dl>%s</dl>" % "".join("<dt>%s</dt><dd>%s</dd>" % (esc(k), esc(v)) for k, v in sorted(mapping.items(), key=lambda kv: str(kv[0])))


def _status(status):
    return '<span class="status" style="border-color:%s">%s</span>' % (_colour(status), esc(status))


def _revision_section(revision):
    if not isinstance(revision, dict):
        return _pairs({"revision": revision} if revision else None)
    shown = dict((key, revision.get(key)) for key in ("location", "sha256", "bundle_type", "source") if revision.get(key) is not None)
    for key, value in revision.items():
        if key not in ("location", "sha256", "bundle_type", "source", "env", "appspec"):
            shown[key] = value
    out = _pairs(shown)
    if revision.get("appspec"):
        out += "<details><summary>appspec (normalized)</summary><pre>%s</pre></details>" % esc(
            json.dumps(revision["appspec"], indent=2, sort_keys=True, default=str))
    return out


def _traffic_section(data):
    if not data["traffic"]:
        return '<p class="none">no load-balancer actions recorded (the group has no load balancers, or nothing reached them)</p>'
    rows = []
    for item in data["traffic"]:
        if item["kind"] == "host":
            what = "%s %s" % (item["action"], "(left the load balancers)" if item["action"] == "BlockTraffic" else "(joined them)")
            rows.append([esc(item["time"]), esc(item["host"]), esc(what), _status(item["status"]), esc(item["message"])])
        else:
            rows.append([esc(item["time"]), "(all)", esc("weights, step %s: green %s%%" % (item["step"], item["green_percent"])), "",
                         esc("%s %s" % (item["reason"] or "", json.dumps(item["weights"], sort_keys=True) if item["weights"] else ""))])
    return _table(["time", "host", "action", "status", "details"], rows)


def _rollback_section(data):
    rollback = data["rollback"]
    related = dict((r["deployment_id"], r) for r in rollback["related"])
    parts = []
    for key, words in (("rollback_deployment_id", "was rolled back by"), ("rollback_triggering_deployment_id", "rolls back")):
        other = rollback.get(key)
        if not other:
            continue
        record = related.get(other, {})
        status = " " + _status(record["status"]) if record.get("status") else ""
        parts.append('<p>This deployment %s <a href="%s.html">%s</a>%s %s</p>' % (
            esc(words), esc(other), esc(other), status, esc(record.get("description") or "")))
    if rollback.get("message"):
        parts.append("<p>%s</p>" % esc(rollback["message"]))
    return "".join(parts) or '<p class="none">no rollback is linked to this deployment</p>'


def _hosts_section(rows):
    out = []
    for row in rows:
        events = []
        for event in row["events"]:
            detail = ""
            if event["error_code"] or event["message"]:
                detail += "<div>%s %s</div>" % (esc(event["error_code"]), esc(event["message"]))
            if event["log_tail"]:
                detail += "<details><summary>log tail</summary><pre>%s</pre></details>" % esc(event["log_tail"])
            events.append([esc(event["event"]), _status(event["status"]), esc(event["start"]), esc(event["end"]),
                           esc(event["duration"]), detail])
        body = _table(["event", "status", "start", "end", "seconds", "error, message, log tail"], events) if events else \
            '<p class="none">no lifecycle events recorded</p>'
        open_attr = " open" if row["status"] == "Failed" else ""
        out.append('<details class="host"%s><summary>%s %s %s</summary>%s%s</details>' % (
            open_attr, esc(row["host"]), _status(row["status"]), esc(row["message"] or ""),
            _pairs(dict((k, row[k]) for k in ("instance_id", "zone", "role", "start", "end", "error_code") if row[k] is not None)), body))
    return "".join(out) or '<p class="none">no hosts</p>'


CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px 24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #ddd}
.sub{color:#555}.none{color:#777;font-style:italic}
.status{border-left:6px solid #999;padding:0 4px;margin:0 4px;white-space:nowrap}
.chart{max-height:80vh;overflow:auto;border:1px solid #ddd}
.gantt .plot{fill:#fafafa;stroke:#ddd}.gantt .tick{stroke:#e3e3e3}.gantt .ticklabel{font-size:10px;fill:#555;text-anchor:middle}
.gantt .hostlabel{font-size:11px;fill:#222;text-anchor:end;font-family:ui-monospace,monospace}
.gantt .weights{stroke:#9467bd;stroke-width:2;stroke-dasharray:4 3}.gantt .weightlabel{font-size:10px;fill:#9467bd}
.gantt .empty{font-size:12px;fill:#777}
.legend{margin:6px 0}.key{margin-right:14px;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}.mark{margin-right:3px}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
td,dd,pre,summary{overflow-wrap:anywhere;word-break:break-word}pre{white-space:pre-wrap;max-height:24em;overflow:auto;background:#f6f6f6;padding:4px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:4px 0}dt{font-weight:600}dd{margin:0}
details.host{margin:2px 0}details.host>summary{cursor:pointer}
"""


def render_html(data):
    """The report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)."""
    deployment = data["deployment"]
    timeline = data["timeline"]
    rows = timeline["rows"]
    error = deployment.get("error") or {}
    title = "%s %s" % (deployment["deployment_id"], deployment.get("status") or "")
    capped = ""
    if len(rows) > MAX_CHART_ROWS:
        capped = '<p class="none">the chart shows the first %d of %d hosts; every host is in the table below and in the JSON</p>' % (
            MAX_CHART_ROWS, len(rows))
    overview = ", ".join("%s %s" % (k, v) for k, v in sorted((deployment.get("overview") or {}).items()) if v)
    head = "<p class=\"sub\">%s/%s &middot; created by %s &middot; %s &rarr; %s%s</p>" % (
        esc(deployment.get("application")), esc(deployment.get("deployment_group")), esc(deployment.get("creator")),
        esc(deployment.get("start_time") or deployment.get("create_time")), esc(deployment.get("complete_time") or "not finished"),
        " &middot; " + esc(overview) if overview else "")
    if deployment.get("description"):
        head += "<p>%s</p>" % esc(deployment["description"])
    if error:
        head += "<p><b>%s</b> %s</p>" % (esc(error.get("code")), esc(error.get("message")))
    plan = data["plan"]
    plan_html = _pairs({"deployment_config": plan["deployment_config"]}) + "<details><summary>options</summary>%s</details>" % _pairs(
        plan["options"])
    plan_html += "<p>%d host(s), in rollout order: %s</p>" % (len(plan["hosts"]), esc(", ".join(str(h["host"]) for h in plan["hosts"])))
    swap = ""
    if data["swap"]:
        swap = "<h2>Blue/green swap</h2>%s" % _pairs(dict((k, v) for k, v in data["swap"].items() if k != "traffic"))
    timing = "from %s to %s (%s s)" % (esc(timeline["start"]), esc(timeline["end"]), esc(timeline["seconds"])) if timeline["start"] \
        else "no times recorded"
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        "<title>%s</title><style>%s</style></head><body>" % (esc("Deployment " + title), CSS),
        "<h1>Deployment %s %s</h1>" % (esc(deployment["deployment_id"]), _status(deployment.get("status"))),
        head,
        "<h2>Timeline</h2><p class=\"sub\">%s</p>" % timing,
        _legend(), capped, '<div class="chart">%s</div>' % render_svg(data),
        "<h2>Rollback</h2>", _rollback_section(data),
        "<h2>Revision</h2>", _revision_section(data["revision"]),
        "<h2>Plan</h2>", plan_html,
        "<h2>Load-balancer actions</h2>", _traffic_section(data), swap,
        "<h2>Hosts</h2>", _hosts_section(rows),
        "<p class=\"sub\">%s version %d</p></body></html>\n" % (esc(data["format"]), data["version"]),
    ])


# ---------------------------------------------------------------------------------------------------------------------
# Files

def report_paths(directory, deployment_id, formats=FORMATS):
    """format -> the file a report of ``deployment_id`` goes to in ``directory``: ``<id>.html``, ``<id>.json``."""
    return dict((fmt, os.path.join(directory, "%s.%s" % (deployment_id, fmt))) for fmt in formats)


def _same(path, text):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read() == text
    except (IOError, OSError, UnicodeDecodeError):
        return False


def write_report(data, directory, formats=FORMATS, check=False):
    """Write the report of ``data`` into ``directory``; return (paths by format, the formats whose file changed).

    Files are written atomically with mode 0600 (log tails may hold secrets), the directory is created with
    mode 0700 when missing. With ``check``, nothing is written: the result says what would change.
    """
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ReportError("report format %s is not one of %s" % (", ".join(map(str, unknown)), ", ".join(FORMATS)))
    directory = os.path.abspath(os.path.expanduser(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ReportError("report path %s is not a directory: give a directory for <deployment id>.html and .json" % directory)
    paths = report_paths(directory, data["deployment"]["deployment_id"], formats)
    texts = {"html": render_html, "json": render_json}
    changed = []
    for fmt in formats:
        text = texts[fmt](data)
        if _same(paths[fmt], text):
            continue
        changed.append(fmt)
        if check:
            continue
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(paths[fmt]))
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(text)
                os.chmod(temporary, 0o600)
                os.replace(temporary, paths[fmt])
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except (IOError, OSError) as exc:
            raise ReportError("cannot write the report %s: %s; give a report path the controller's user can write" % (
                paths[fmt], exc.strerror or exc))
    return paths, changed
