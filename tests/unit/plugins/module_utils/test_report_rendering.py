# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/report.py: the report's data, its HTML and SVG chart, hostile ledger strings, files."""

import json
import os
import re
import stat
from html.parser import HTMLParser

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import report

HOSTILE = '<script>alert("x")</script>'


def event(name, start, end, status="Succeeded", **extra):
    record = {"event": name, "status": status, "start": start, "end": end, "duration": None, "error_code": None, "message": None,
              "log_tail": None}
    record.update(extra)
    return record


def at(seconds):
    minutes, secs = divmod(seconds, 60)
    return "2026-11-30T17:%02d:%06.3fZ" % (minutes, secs)


def instance(host, events, status="Succeeded", **extra):
    record = {"instance_id": "i-" + host[:8], "host": host, "zone": "us-east-1a", "status": status, "start": None, "end": None,
              "error_code": None, "message": None, "events": events}
    record.update(extra)
    return record


def deployment(instances, **extra):
    record = {"deployment_id": "d-ABCDEFGHJ", "application": "web", "deployment_group": "production", "status": "Succeeded",
              "creator": "user", "description": None, "create_time": at(0), "start_time": None, "complete_time": None,
              "error": None, "overview": {"Succeeded": len(instances)}, "revision": {"location": "s3://releases/web.tgz", "sha256": "a" * 64},
              "deployment_config": "CodeDeployDefault.OneAtATime", "options": {"file_exists_behavior": "DISALLOW"},
              "rollback_info": None, "swap": None, "instances": instances}
    record.update(extra)
    return record


def in_place(host, offset, failed=False):
    return instance(host, [
        event("BlockTraffic", at(offset), at(offset + 1)),
        event("ApplicationStop", at(offset + 1), at(offset + 2)),
        event("Install", at(offset + 2), at(offset + 4)),
        event("ValidateService", at(offset + 4), at(offset + 5), "Failed" if failed else "Succeeded",
              error_code="ScriptFailed" if failed else None, log_tail=HOSTILE if failed else None),
        event("AllowTraffic", at(offset + 5), at(offset + 6), "Skipped" if failed else "Succeeded"),
    ], status="Failed" if failed else "Succeeded")


class Collect(HTMLParser):
    """Tags, and the text inside script or style elements, of an HTML page."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.tags = []
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls.extend(value for name, value in attrs if name in ("src", "href", "xlink:href") and value)


def bars(page):
    return re.findall(r'<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]{6})" class="bar"', page)


def test_a_deployment_becomes_rows_bars_and_traffic_steps():
    data = report.report_data(deployment([in_place("web-1", 0), in_place("web-2", 6, failed=True)]))
    assert (data["format"], data["version"]) == ("rollout.codedeploy.report", 1)
    timeline = data["timeline"]
    assert (timeline["start"], timeline["end"], timeline["seconds"]) == (at(0), at(12), 12)
    assert [r["host"] for r in timeline["rows"]] == ["web-1", "web-2"]
    assert [(e["event"], e["offset_start"], e["offset_end"]) for e in timeline["rows"][1]["events"]][3] == ("ValidateService", 10, 11)
    assert [(t["host"], t["action"], t["status"]) for t in data["traffic"]] == [
        ("web-1", "BlockTraffic", "Succeeded"), ("web-1", "AllowTraffic", "Succeeded"),
        ("web-2", "BlockTraffic", "Succeeded"), ("web-2", "AllowTraffic", "Skipped")]
    assert data["plan"]["hosts"][1] == {"host": "web-2", "instance_id": "i-web-2", "zone": "us-east-1a", "role": None, "status": "Failed"}
    json.dumps(data)  # JSON-able as it is
    page = report.render_html(data)
    drawn = bars(page)
    assert len(drawn) == 10
    colours = dict(report.STATUS_COLOURS)
    assert sorted(set(c for _x, _y, _w, c in drawn)) == sorted({colours["Succeeded"], colours["Failed"], colours["Skipped"]})
    assert page.count('class="traffic"') == 4
    # Bars of later events start further right; the first starts at the plot's left edge.
    lefts = [float(x) for x, _y, _w, _c in drawn]
    assert lefts == sorted(lefts) and lefts[0] == 210


@pytest.mark.parametrize("case, instances, extra, expect_bars", [
    ("no events", [instance("web-1", []), instance("web-2", [])], {"complete_time": at(3)}, 0),
    ("no instances", [], {}, 0),
    ("missing times", [instance("web-1", [event("Install", None, None), event("ApplicationStart", at(3), None)])], {}, 1),
    ("only an end and a duration", [instance("web-1", [event("Install", None, at(5), duration=2.0)])], {}, 1),
    ("zero duration", [instance("web-1", [event("Install", at(2), at(2)), event("ApplicationStart", at(2), at(2))])], {}, 2),
    ("end before start", [instance("web-1", [event("Install", at(4), at(2))])], {}, 1),
    ("times that are not times", [instance("web-1", [event("Install", "yesterday", "soon")])], {}, 0),
    ("very long host name", [instance("h" * 5000, [event("Install", at(0), at(9))])], {"description": "d" * 20000}, 1),
    ("hostile strings", [instance(HOSTILE, [event(HOSTILE, at(0), at(1), message=HOSTILE, log_tail=HOSTILE, error_code=HOSTILE)],
                                  message=HOSTILE, zone=HOSTILE, role=HOSTILE)],
     {"description": HOSTILE, "error": {"code": HOSTILE, "message": HOSTILE}, "deployment_config": HOSTILE,
      "options": {HOSTILE: HOSTILE}, "revision": {"location": HOSTILE, "appspec": {"hooks": HOSTILE}},
      "rollback_info": {"rollback_deployment_id": '"><script>x()</script>', "rollback_message": HOSTILE},
      "swap": {"state": HOSTILE, "traffic": [{"step": HOSTILE, "green_percent": HOSTILE, "time": at(0), "reason": HOSTILE,
                                              "weights": {HOSTILE: {HOSTILE: 1}}}]},
      "application": HOSTILE}, 1),
])
def test_odd_records_render_safely(case, instances, extra, expect_bars):
    data = report.report_data(deployment(instances, **extra))
    json.loads(report.render_json(data))
    page = report.render_html(data)
    assert len(bars(page)) == expect_bars, case
    collected = Collect()
    collected.feed(page)
    assert "script" not in collected.tags, case
    assert "<script" not in page.lower() and "javascript:" not in page.lower(), case
    assert all(":" not in u and u.endswith(".html") for u in collected.urls), case  # only relative links to other reports
    assert page.count("<svg") == 1 and page.count("</svg>") == 1, case
    if not expect_bars:
        assert "no lifecycle event with a time recorded" in page or "no hosts in this deployment" in page, case
    if case == "very long host name":
        assert "h" * report.LABEL_CHARS not in re.findall(r'class="hostlabel">([^<]*)<', page)[0]
    for _x, _y, w, _c in bars(page):
        assert float(w) >= 3, case  # a zero-length event still shows


def test_times_outside_the_events_and_weight_changes_widen_the_axis():
    swap = {"state": "rerouted", "traffic": [{"step": 1, "green_percent": 10, "time": at(20), "reason": "step 1", "weights": {}},
                                             {"step": 0, "green_percent": 0, "time": at(8), "reason": "start", "weights": {}}]}
    data = report.report_data(deployment([in_place("web-1", 10)], start_time=at(5), complete_time=at(30), swap=swap))
    assert (data["timeline"]["start"], data["timeline"]["seconds"]) == (at(5), 25)
    weights = [t for t in data["traffic"] if t["kind"] == "weights"]
    assert [(w["step"], w["offset"]) for w in weights] == [(0, 3), (1, 15)]
    page = report.render_html(data)
    assert page.count('class="weights"') == 2 and ">10%<" in page


def test_sixty_hosts_each_get_a_row_and_very_many_are_capped():
    data = report.report_data(deployment([in_place("web-%03d" % n, n * 6) for n in range(64)]))
    page = report.render_html(data)
    assert len(re.findall(r'class="hostlabel">', page)) == 64 and len(bars(page)) == 64 * 5
    assert "the chart shows the first" not in page
    many = report.report_data(deployment([in_place("web-%04d" % n, n) for n in range(report.MAX_CHART_ROWS + 5)]))
    page = report.render_html(many)
    assert len(re.findall(r'class="hostlabel">', page)) == report.MAX_CHART_ROWS
    assert "the chart shows the first %d of %d hosts" % (report.MAX_CHART_ROWS, report.MAX_CHART_ROWS + 5) in page
    assert page.count('<details class="host"') == report.MAX_CHART_ROWS + 5  # every host is still in the table


@pytest.mark.parametrize("seconds, step", [(0, 1), (0.5, 0.1), (7, 1), (12, 2), (40, 5), (75, 10), (300, 60), (3000, 600),
                                           (10 ** 6, 172800)])
def test_tick_steps_are_readable(seconds, step):
    assert report.tick_step(seconds) == step


@pytest.mark.parametrize("seconds, end, labels", [
    (3.5, at(3.5), ["+0.0s", "+0.5s", "+1.0s", "+1.5s", "+2.0s", "+2.5s", "+3.0s", "+3.5s"]),
    (40, at(40), ["+0:00", "+0:05", "+0:10", "+0:15", "+0:20", "+0:25", "+0:30", "+0:35", "+0:40"]),
    (7300, "2026-11-30T19:01:40.000Z", ["+0:00:00", "+0:30:00", "+1:00:00", "+1:30:00", "+2:00:00"]),
])
def test_tick_labels_share_one_format(seconds, end, labels):
    data = report.report_data(deployment([instance("web-1", [event("Install", at(0), end)])]))
    assert data["timeline"]["seconds"] == seconds
    assert re.findall(r'class="ticklabel">([^<]*)<', report.render_html(data)) == labels


def test_rollback_links_both_ways():
    failed = report.report_data(deployment([in_place("web-1", 0, failed=True)], status="Failed",
                                           rollback_info={"rollback_deployment_id": "d-ROLLBACK1", "rollback_message": "rolls back"}),
                                related=[{"deployment_id": "d-ROLLBACK1", "status": "Succeeded", "creator": "rollback"}])
    assert failed["rollback"]["rollback_deployment_id"] == "d-ROLLBACK1"
    assert failed["rollback"]["related"][0]["report_html"] == "d-ROLLBACK1.html"
    page = report.render_html(failed)
    assert 'was rolled back by <a href="d-ROLLBACK1.html">d-ROLLBACK1</a>' in page
    back = report.render_html(report.report_data(deployment([], creator="rollback",
                                                            rollback_info={"rollback_triggering_deployment_id": "d-ABCDEFGHJ"})))
    assert 'rolls back <a href="d-ABCDEFGHJ.html">' in back
    assert "no rollback is linked" in report.render_html(report.report_data(deployment([])))


@pytest.mark.parametrize("record", [None, {}, {"status": "Succeeded"}, "d-ABCDEFGHJ"])
def test_a_record_that_is_not_a_deployment_is_refused(record):
    with pytest.raises(report.ReportError, match="needs a deployment record with a deployment_id"):
        report.report_data(record)


def test_write_report_writes_once_and_check_mode_writes_nothing(tmp_path):
    data = report.report_data(deployment([in_place("web-1", 0)]))
    target = str(tmp_path / "reports")
    paths, changed = report.write_report(data, target, check=True)
    assert changed == ["html", "json"] and not os.path.exists(target)
    paths, changed = report.write_report(data, target)
    assert paths == {"html": os.path.join(target, "d-ABCDEFGHJ.html"), "json": os.path.join(target, "d-ABCDEFGHJ.json")}
    assert changed == ["html", "json"]
    assert stat.S_IMODE(os.stat(paths["html"]).st_mode) == 0o600 and stat.S_IMODE(os.stat(target).st_mode) == 0o700
    assert json.load(open(paths["json"], encoding="utf-8")) == json.loads(report.render_json(data))
    assert report.write_report(data, target) == (paths, [])
    assert report.write_report(report.report_data(deployment([in_place("web-1", 0, failed=True)])), target, ["html"])[1] == ["html"]
    assert sorted(os.listdir(target)) == ["d-ABCDEFGHJ.html", "d-ABCDEFGHJ.json"]  # no temporary files left


def test_write_report_refuses_a_file_and_an_unknown_format(tmp_path):
    data = report.report_data(deployment([]))
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(report.ReportError, match="is not a directory"):
        report.write_report(data, str(afile))
    with pytest.raises(report.ReportError, match="report format pdf is not one of html, json"):
        report.write_report(data, str(tmp_path), ["html", "pdf"])
