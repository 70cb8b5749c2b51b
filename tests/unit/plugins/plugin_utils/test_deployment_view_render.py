"""The live deployment view's rendering (plugin_utils/deployment_view.py): batch lines, failure blocks, the host by event
table within a width, colour rules, and the state that follows a deployment and its rollback through task results."""
import re

import pytest

from ansible_collections.rollout.codedeploy.plugins.plugin_utils import deployment_view as view

ANSI = re.compile(r"\x1b\[[0-9;]*m")
IN_PLACE = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService")
WITH_TRAFFIC = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic") + IN_PLACE + ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")


def record(event, status="Succeeded", duration=0.25, second=0, **extra):
    base = {"event": event, "status": status, "duration": duration, "error_code": "Success" if status != "Failed" else "ScriptFailed",
            "start": "2026-01-02T03:04:%02d.000Z" % second, "end": "2026-01-02T03:04:%02d.500Z" % second, "message": "", "log_tail": ""}
    base.update(extra)
    return base


def succeeded(events=IN_PLACE):
    return {"changed": True, "status": "Succeeded", "events": [record(e, second=i) for i, e in enumerate(events)]}


def failed_at(event, events=IN_PLACE, script="scripts/validate_service.sh", tail="line one\nline two\nFAIL_VALIDATE is present\n"):
    done = events[:events.index(event)]
    records = [record(e, second=i) for i, e in enumerate(done)]
    records.append(record(event, "Failed", 1.5, second=len(done), script_name=script, log_tail=tail,
                          message="Script at specified location: %s failed with exit code 1" % script))
    return {"changed": True, "failed": True, "status": "Failed", "events": records, "failed_event": event, "error_code": "ScriptFailed",
            "script": script, "log_tail": tail, "msg": "%s failed on web-3 (d-ABCDEFGH1): %s exited 1" % (event, script)}


def strip(lines):
    return [ANSI.sub("", line) for line in lines]


# ------------------------------------------------------------------------------------------------ colour and width
@pytest.mark.parametrize("isatty, nocolor, force, env, expected", [
    (True, False, False, {}, True),
    (False, False, False, {}, False),
    (True, False, False, {"NO_COLOR": "1"}, False),
    (True, False, False, {"NO_COLOR": ""}, True),  # NO_COLOR counts only when not empty
    (True, True, False, {}, False),  # ANSIBLE_NOCOLOR (or NO_COLOR read by Ansible)
    (True, False, False, {"ANSIBLE_NOCOLOR": "yes"}, False),
    (False, False, True, {}, True),  # ANSIBLE_FORCE_COLOR wins, as in Ansible (AWX sets it)
    (False, False, False, {"ANSIBLE_FORCE_COLOR": "true"}, True),
    (True, True, True, {"NO_COLOR": "1"}, True),
])
def test_colour_follows_ansibles_rule(isatty, nocolor, force, env, expected):
    assert view.colour_enabled(isatty, nocolor=nocolor, force=force, env=env) is expected


@pytest.mark.parametrize("option, env, columns, expected", [
    (0, {}, None, view.DEFAULT_WIDTH),
    (100, {"COLUMNS": "60"}, 200, 100),
    (0, {"COLUMNS": "90"}, 200, 90),
    (0, {"COLUMNS": "junk"}, 150, 150),
    (0, {}, 0, view.DEFAULT_WIDTH),
    (10, {}, None, 40),  # never narrower than the host and status columns need
])
def test_width_comes_from_the_option_then_columns_then_the_terminal(option, env, columns, expected):
    assert view.view_width(option, env, columns) == expected


@pytest.mark.parametrize("value, expected", [(0.04, "0.0"), (1.26, "1.3"), (12.4, "12"), (119.6, "120"), (185, "3m05"), (None, "?")])
def test_seconds(value, expected):
    assert view.seconds(value) == expected


def test_paint_is_plain_unless_enabled():
    assert view.paint("ok", "green", False) == "ok"
    assert view.paint("ok", "green", True) == "\x1b[0;32mok\x1b[0m"
    assert view.paint("ok", None, True) == "ok"


# ------------------------------------------------------------------------------------------------ task results
@pytest.mark.parametrize("action, result, expected", [
    ("rollout.codedeploy.deploy_host", {"status": "Succeeded"}, "host"),
    ("rollout.codedeploy.deployment", {"plan": {}, "rollout_hosts": [], "deployment_id": "d-1"}, "started"),
    ("rollout.codedeploy.deployment", {"proceed": True, "status": "InProgress"}, "batch"),
    ("rollout.codedeploy.deployment", {"overview": {}, "deployment_id": "d-1", "status": "Succeeded"}, "finished"),
    ("rollout.codedeploy.deployment", {"skipped": True, "skip_reason": "Conditional result was False"}, None),
    ("rollout.codedeploy.deployment", {"deployment_id": "d-1", "status": "Stopped"}, None),  # a stop request
    ("ansible.builtin.debug", {"msg": "hello"}, None),
    ("other.collection.deployment_x", {"proceed": True}, None),
])
def test_classify_tells_the_deployment_steps_apart(action, result, expected):
    assert view.classify(action, result) == expected


@pytest.mark.parametrize("result, outcome, status, event, script", [
    (succeeded(), "ok", "Succeeded", None, None),
    (failed_at("ValidateService"), "failed", "Failed", "ValidateService", "scripts/validate_service.sh"),
    ({"skipped": True, "msg": "web-4 skipped in d-1: a stop was requested"}, "skipped", "Skipped", None, None),
    ({"msg": "ssh: no route"}, "unreachable", "Failed", "the host's first event", None),
    # A result from before the top-level script and log tail: the failed event record has them.
    ({"failed": True, "events": [record("AfterInstall", "Failed", script_name="scripts/after.sh", log_tail="boom")]}, "failed",
     "Failed", "AfterInstall", "scripts/after.sh"),
])
def test_host_outcome(result, outcome, status, event, script):
    got = view.host_outcome(result, outcome)
    assert (got["status"], got["failed_event"], got["script"]) == (status, event, script)


# ------------------------------------------------------------------------------------------------ the batch line
@pytest.mark.parametrize("hosts, after, number, total, expected", [
    ({"web-1": succeeded(), "web-2": succeeded()}, {"proceed": True, "status": "InProgress"}, 1, 2,
     "[d-X] batch 1/2: web-1, web-2 | events done: ApplicationStop..ValidateService (7) each | failures: none"),
    ({"web-1": succeeded(["ApplicationStop"])}, {}, 3, 0,
     "[d-X] batch 3: web-1 | events done: ApplicationStop | failures: none"),
    ({"web-3": failed_at("ValidateService"), "web-4": succeeded()}, {"proceed": False, "status": "InProgress", "error_code": "HEALTH_CONSTRAINTS"}, 2, 2,
     "[d-X] batch 2/2: web-3, web-4 | events done: web-3 ApplicationStop..ApplicationStart (6), web-4 ApplicationStop..ValidateService (7)"
     " | failures: web-3 at ValidateService (ScriptFailed) | deployment stops: HEALTH_CONSTRAINTS"),
    ({"web-5": {"skipped": True, "msg": "web-5 skipped in d-X: a stop was requested"}}, {"proceed": False, "status": "Stopped"}, 3, 3,
     "[d-X] batch 3/3: web-5 | events done: none | failures: web-5 skipped: a stop was requested | deployment stops: Stopped"),
    ({"g-1": succeeded()}, {"proceed": True, "status": "InProgress", "msg": "d-X: continued by ops; rerouting the traffic to the green hosts"}, 1, 1,
     "[d-X] batch 1/1: g-1 | events done: ApplicationStop..ValidateService (7) | failures: none"
     " | d-X: continued by ops; rerouting the traffic to the green hosts"),
])
def test_batch_line(hosts, after, number, total, expected):
    outcomes = dict((h, view.host_outcome(r, "skipped" if r.get("skipped") else "ok")) for h, r in hosts.items())
    assert view.batch_line("d-X", number, total, outcomes, after) == expected
    assert ANSI.search(view.batch_line("d-X", number, total, outcomes, after, colour=True))


# ------------------------------------------------------------------------------------------------ the failure block
@pytest.mark.parametrize("log_lines, tail, expected_tail", [
    (10, "a\n\nb\nc\n", ["  log tail (last 3 of 3 lines):", "    | a", "    | b", "    | c"]),
    (2, "a\nb\nc\n", ["  log tail (last 2 of 3 lines):", "    | b", "    | c"]),
    (0, "a\n", ["  log tail: empty"]),
    (10, "", ["  log tail: empty"]),
    (10, "x\ty\n", ["  log tail (last 1 of 1 lines):", "    | x   y"]),
])
def test_failure_block_names_host_event_script_and_log_tail(log_lines, tail, expected_tail):
    outcome = view.host_outcome(failed_at("ValidateService", tail=tail), "failed")
    lines = view.failure_block("d-X", "web-3", outcome, log_lines)
    assert lines[0] == "FAILED web-3 at ValidateService in d-X (ScriptFailed)"
    assert lines[1] == "  script: scripts/validate_service.sh"
    assert lines[2] == "  message: Script at specified location: scripts/validate_service.sh failed with exit code 1"
    assert lines[3:] == expected_tail


def test_failure_block_without_a_script():
    outcome = view.host_outcome({"failed": True, "failed_event": "BlockTraffic", "error_code": "ELB_TIMEOUT", "msg": "no answer",
                                 "script": None, "events": [record("BlockTraffic", "Failed")]}, "failed")
    assert view.failure_block("d-X", "web-1", outcome)[1] == "  script: none (no script ran in this event)"


# ------------------------------------------------------------------------------------------------ the table
def outcomes(**hosts):
    return dict((h.replace("_", "-"), view.host_outcome(r, "failed" if r.get("failed") else "skipped" if r.get("skipped") else "ok"))
                for h, r in hosts.items())


def test_table_with_full_event_names_when_it_fits():
    lines = view.event_table(outcomes(web_1=succeeded(), web_3=failed_at("ValidateService"), web_4={"skipped": True, "msg": "x"}), width=200)
    assert lines[0].split() == ["host", "status", *IN_PLACE, "total"]
    assert lines[2].split() == ["web-1", "Succeeded"] + ["ok", "0.2"] * 7 + ["6.5"]
    assert lines[3].split() == ["web-3", "Failed"] + ["ok", "0.2"] * 6 + ["FAIL", "1.5", "6.5"]
    assert lines[4].split() == ["web-4", "Skipped"] + ["-"] * 7 + ["-"]
    assert lines[-1] == view.LEGEND
    assert all(len(line) <= 200 for line in lines)


@pytest.mark.parametrize("width, events, blocks", [
    (200, WITH_TRAFFIC, 1),
    (120, IN_PLACE, 1),
    (80, IN_PLACE, 2),
    (60, WITH_TRAFFIC, 4),
    (40, WITH_TRAFFIC, 7),
    (120, WITH_TRAFFIC, 2),
])
def test_a_wide_table_abbreviates_then_splits_within_the_width(width, events, blocks):
    hosts = outcomes(**{"web_%d" % i: succeeded(events) for i in range(3)})
    lines = view.event_table(hosts, width=width)
    assert all(len(line) <= width for line in "\n".join(lines).splitlines()), lines
    headings = [line for line in lines if line.startswith("host ")]
    assert len(headings) == blocks
    shown = [word for line in headings for word in line.split()[2:] if word != "total"]
    assert len(shown) == len(events)  # every event has a column, once
    if shown != list(events):
        assert any(line.startswith("events: ") for line in lines)
        assert "Validate = ValidateService" in "\n".join(lines)
    # Every block repeats the hosts; the total is in the last block.
    assert sum(1 for line in lines if line.startswith("web-0 ")) == blocks
    assert headings[-1].split()[-1] == "total"


def test_table_colours_statuses_only_when_asked():
    hosts = outcomes(web_1=succeeded(), web_3=failed_at("ValidateService"))
    plain = view.event_table(hosts, width=200)
    coloured = view.event_table(hosts, width=200, colour=True)
    assert not any(ANSI.search(line) for line in plain)
    assert any("\x1b[0;31mFAIL 1.5" in line for line in coloured)
    assert strip(coloured) == plain  # colour never shifts the columns


def test_table_orders_events_by_the_lifecycle():
    late_first = {"status": "Succeeded", "events": [record("AllowTraffic"), record("BlockTraffic"), record("Install")]}
    assert view.table_events(outcomes(web_1=late_first)) == ["BlockTraffic", "Install", "AllowTraffic"]


@pytest.mark.parametrize("hosts, serial, expected", [
    (4, [1], 4),
    (4, [2], 2),
    (5, [2], 3),
    (7, [1, 2, 3], 4),  # 1, 2, 3, then the last size repeats
    (0, [1], 0),
    (3, [], 1),
    (3, None, 1),
])
def test_batch_count_follows_serial(hosts, serial, expected):
    assert view.batch_count(["h%d" % i for i in range(hosts)], serial) == expected


# ------------------------------------------------------------------------------------------------ following a deployment
def started(deployment_id, batches, reuse=None, reroute=()):
    return {"deployment_id": deployment_id, "plan": {"batches": batches, "reuse_deployment": reuse},
            "rollout_hosts": [h for b in batches for h in b], "rollout_serial": [len(b) for b in batches],
            "rollout_reroute_hosts": [h for b in reroute for h in b], "rollout_reroute_serial": [len(b) for b in reroute] or [1]}


def test_view_follows_a_deployment_and_its_rollback():
    live = view.DeploymentView(width=300)
    said = []
    said += live.feed("started", "localhost", started("d-ONE", [["web-1"], ["web-2"]]))
    said += live.feed("host", "web-1", succeeded())
    said += live.feed("batch", "web-1", {"proceed": True, "status": "InProgress"})
    said += live.feed("host", "web-2", failed_at("ValidateService"), "failed")
    said += live.feed("batch", "web-2", {"proceed": True, "status": "InProgress"})
    settled = {"deployment_id": "d-ONE", "status": "Failed", "overview": {"Succeeded": 1, "Failed": 1},
               "error": {"code": "HEALTH_CONSTRAINTS", "message": "too few healthy"}}
    said += live.feed("finished", "localhost", settled)
    said += live.feed("started", "localhost", started("d-TWO", [["web-1", "web-2"]], reuse="d-ZERO"))
    said += live.feed("host", "web-1", succeeded())
    said += live.feed("host", "web-2", succeeded())
    said += live.feed("batch", "web-1", {"proceed": True, "status": "InProgress"})
    said += live.feed("finished", "localhost", {"deployment_id": "d-TWO", "status": "Succeeded", "overview": {"Succeeded": 2}})
    said += live.close()
    text = "\n".join(said)
    assert said[0] == "[d-ONE] Deployment opened: 2 host(s) in 2 batch(es)"
    assert said[1].startswith("[d-ONE] batch 1/2: web-1 |")
    assert said[2].startswith("[d-ONE] batch 2/2: web-2 |") and "failures: web-2 at ValidateService" in said[2]
    assert said[3] == "FAILED web-2 at ValidateService in d-ONE (ScriptFailed)"
    assert "Deployment d-ONE Failed (Failed 1, Succeeded 1): HEALTH_CONSTRAINTS: too few healthy" in said
    assert "[d-TWO] Rollback deployment opened: 2 host(s) in 1 batch(es)" in said
    assert "Rollback deployment d-TWO Succeeded (Succeeded 2)" == said[-1]
    assert text.count("hosts and lifecycle events:") == 2
    assert not ANSI.search(text)


def test_an_unsettled_deployment_is_reported_at_the_end_and_results_outside_one_are_ignored():
    live = view.DeploymentView()
    assert live.feed("host", "web-1", succeeded()) == []  # no deployment opened yet
    assert live.feed("started", "localhost", {"deployment_id": None, "plan": {"note": "check mode"}, "rollout_hosts": []}) == []
    live.feed("started", "localhost", started("d-ONE", [["web-1"]]))
    live.feed("host", "web-1", succeeded())
    said = live.close()
    assert said[0].startswith("[d-ONE] batch 1/1: web-1")
    assert said[-1] == "Deployment d-ONE not settled in this run"
    assert live.close() == []


def test_a_green_host_keeps_its_install_and_reroute_events_in_one_row():
    live = view.DeploymentView(width=300)
    # A ready wait: the first play installs the green host, the second reroutes it, then the blue host leaves.
    assert live.feed("started", "localhost", started("d-BG", [["g-1"]], reroute=[["g-1"], ["b-1"]])) == [
        "[d-BG] Deployment opened: 2 host(s) in 3 batch(es)"]
    live.feed("host", "g-1", dict(succeeded(IN_PLACE), status="Ready"))
    assert "events done: ApplicationStop..ValidateService" in live.feed("batch", "g-1", {"proceed": True, "status": "Ready"})[0]
    live.feed("host", "g-1", succeeded(["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]))
    said = live.feed("batch", "g-1", {"proceed": True, "status": "InProgress"})
    assert "events done: BeforeAllowTraffic..AfterAllowTraffic (3)" in said[0]
    said = live.feed("finished", "localhost", {"deployment_id": "d-BG", "status": "Succeeded", "overview": {"Succeeded": 1}})
    assert said[1].split()[2:] == [*IN_PLACE, "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "total"]


def test_hiding_the_table():
    live = view.DeploymentView(show_table=False)
    live.feed("started", "localhost", started("d-ONE", [["web-1"]]))
    live.feed("host", "web-1", succeeded())
    said = live.feed("finished", "localhost", {"deployment_id": "d-ONE", "status": "Succeeded", "overview": {"Succeeded": 1}})
    assert len(said) == 2 and said[-1] == "Deployment d-ONE Succeeded (Succeeded 1)"
