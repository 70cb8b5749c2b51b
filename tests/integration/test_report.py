"""The deployment report (docs/report.md) on a real run: rollout.codedeploy.deploy writes it when asked
(codedeploy_report_dir), headless Chromium (Debian's chromium, installed by tools/setup) renders it, and the
screenshot's pixels show the chart's bars; a report of a deployment with no events is the control that makes
the same pixel check fail. deployment_info writes the report of a past deployment, and nothing in check mode."""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from test_deploy import PLAYBOOK, deploy, fleet, inventory, revision
from test_deployment_info import run_info

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import report

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

WINDOW = (1280, 640)  # the chart is near the top; a smaller shot decodes faster
#: The chart's plot area is filled with this colour and nothing else on the page is.
PLOT_BACKGROUND = (0xfa, 0xfa, 0xfa)
STATUS_RGB = dict((status, tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))) for status, colour in report.STATUS_COLOURS)
#: A few bars' worth (12 px high): the two hosts' bars of a real run fill about 1,500 pixels, an empty chart none.
ENOUGH_BAR_PIXELS = 400


def screenshot(html_path, png_path):
    """Open ``html_path`` in headless Chromium and save a screenshot of the window."""
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is missing: run tools/setup"
    profile = os.path.join(os.path.dirname(png_path), "chromium-profile")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + profile,
                           "--window-size=%d,%d" % WINDOW, "--screenshot=" + png_path, "file://" + html_path],
                          capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0 and os.path.exists(png_path), proc.stderr[-2000:]
    return png_path


def decode_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _compression, _filter, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xff
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xff
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xff
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = previous[i], previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def chart_pixels(png_path):
    """Status colour -> how many pixels of it lie inside the chart's plot area (found by its background colour)."""
    _width, _height, rows = decode_png(png_path)
    # Rows holding a long stretch of the background; anti-aliased text has a few such pixels, never hundreds in a row.
    lines = [y for y, row in enumerate(rows) if row.count(PLOT_BACKGROUND) >= 200]
    assert lines, "no chart plot area in the screenshot"
    top, bottom = min(lines), max(lines)
    spots = [x for y in lines for x, pixel in enumerate(rows[y]) if pixel == PLOT_BACKGROUND]
    left, right = min(spots), max(spots)
    wanted = dict((rgb, status) for status, rgb in STATUS_RGB.items())
    counts = dict((status, 0) for status in STATUS_RGB)
    for row in rows[top:bottom + 1]:
        for pixel in row[left:right + 1]:
            if pixel in wanted:
                counts[wanted[pixel]] += 1
    return counts


def chart_shows_bars(png_path):
    """The check the browser test makes: enough pixels of the status colours inside the chart."""
    counts = chart_pixels(png_path)
    return sum(counts.values()) >= ENOUGH_BAR_PIXELS, counts


def test_the_deploy_playbook_writes_reports_whose_chart_chromium_draws(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 2)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    reports = str(tmp_path / "reports")
    inv = inventory(world, tmp_path, "CodeDeployDefault.OneAtATime", auto_rollback={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    extra_vars = {"deployment_group": "web_production", "revision": revision(tmp_path, "v1"), "codedeploy_ledger": ledger_path,
                  "codedeploy_report_dir": reports}
    result = world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    book = ledgers.open_ledger(ledger_path)
    good_id = book.list_deployments(limit=1)[0]["deployment_id"]
    assert sorted(os.listdir(reports)) == [good_id + ".html", good_id + ".json"], result.stdout[-3000:]
    assert '"codedeploy_report": "%s"' % os.path.join(reports, good_id + ".html") in result.stdout  # the set_stats artifact
    with open(os.path.join(reports, good_id + ".json"), encoding="utf-8") as handle:
        data = json.load(handle)
    assert (data["format"], data["version"], data["deployment"]["status"]) == (report.FORMAT, report.VERSION, "Succeeded")
    assert sorted(r["host"] for r in data["timeline"]["rows"]) == sorted(h.name for h in bound.values())
    assert all(e["offset_start"] is not None for r in data["timeline"]["rows"] for e in r["events"])
    actions = [(t["host"], t["action"]) for t in data["traffic"]]
    for host in bound.values():
        assert actions.index((host.name, "BlockTraffic")) < actions.index((host.name, "AllowTraffic")), actions
    assert data["revision"]["sha256"] == book.get_deployment(good_id)["revision"]["sha256"]
    shot = screenshot(os.path.join(reports, good_id + ".html"), str(tmp_path / "deployment.png"))
    shows, counts = chart_shows_bars(shot)
    assert shows and counts["Succeeded"] >= ENOUGH_BAR_PIXELS and counts["Failed"] == 0, counts
    # A failed deployment and its automatic rollback: a report each, linked to each other.
    failed = deploy(world, inv, revision(tmp_path, "v2", "2.0.0", failing_hosts=[]), ledger_path, check=False,
                    codedeploy_report_dir=reports)
    assert failed.returncode != 0
    rollback_id, failed_id = [d["deployment_id"] for d in book.list_deployments(limit=2)]
    assert sorted(os.listdir(reports)) == sorted(i + ext for i in (good_id, failed_id, rollback_id) for ext in (".html", ".json"))
    with open(os.path.join(reports, failed_id + ".json"), encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["deployment"]["status"] == "Failed" and data["rollback"]["rollback_deployment_id"] == rollback_id
    assert data["rollback"]["related"][0]["status"] == "Succeeded"
    with open(os.path.join(reports, rollback_id + ".html"), encoding="utf-8") as handle:
        assert 'rolls back <a href="%s.html">' % failed_id in handle.read()
    counts = chart_pixels(screenshot(os.path.join(reports, failed_id + ".html"), str(tmp_path / "failed.png")))
    assert counts["Failed"] >= 12 * 2 and counts["Succeeded"] >= ENOUGH_BAR_PIXELS / 4, counts
    # The control: a deployment that recorded no event gets a report whose chart is empty, and the same check says so.
    empty = book.create_deployment("web", "staging", "dg-staging", {"location": "s3://releases/web.tgz", "sha256": "b" * 64},
                                   "CodeDeployDefault.AllAtOnce", [{"instance_id": "i-0123456789abcdef0", "host": "web-idle"}])
    book.update_status(empty["deployment_id"], "Stopped", "MANUAL_STOP", "stopped before any host started")
    local = tmp_path / "local.ini"
    local.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    args = {"deployment_id": empty["deployment_id"], "ledger": ledger_path, "report": {"path": str(tmp_path / "empty"), "format": ["html"]}}
    checked, _proc = run_info(world, tmp_path, str(local), args, options=["--check"], name="check")
    assert checked["changed"] is True and checked["report"]["changed"] == ["html"] and not os.path.exists(str(tmp_path / "empty"))
    written, _proc = run_info(world, tmp_path, str(local), args, name="write")
    assert written["changed"] is True and written["report"] == {"html": str(tmp_path / "empty" / (empty["deployment_id"] + ".html")),
                                                                "changed": ["html"]}
    refused, proc = run_info(world, tmp_path, str(local), dict(args, report={"path": written["report"]["html"]}), name="refused")
    assert refused["failed"] is True and "Traceback" not in proc.stdout + proc.stderr
    assert refused["msg"] == ("cannot write the report of %s: report path %s is not a directory: give a directory for <deployment id>.html "
                              "and .json" % (empty["deployment_id"], written["report"]["html"]))
    shows, counts = chart_shows_bars(screenshot(written["report"]["html"], str(tmp_path / "empty.png")))
    assert not shows and sum(counts.values()) < 40, counts  # a few anti-aliased pixels of the "no event" note at most
