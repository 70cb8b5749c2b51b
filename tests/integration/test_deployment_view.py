"""The live deployment view (callback rollout.codedeploy.deployment_view) on real runs of rollout.codedeploy.deploy: a batch
line per batch naming its hosts, the final host by event table, the deployment id and status, the failure block of a host
whose ValidateService fails, all plain (NO_COLOR, no TTY under pytest)."""
import re

import pytest

from test_deploy import fleet, inventory, last_deployment, revision

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

ANSI = re.compile(r"\x1b\[")
IN_PLACE = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]
VIEW_ENV = {"ANSIBLE_CALLBACKS_ENABLED": "rollout.codedeploy.deployment_view", "NO_COLOR": "1", "CODEDEPLOY_VIEW_WIDTH": "160"}


def deploy_with_view(world, inv, rev, ledger_path, check=True, **extra):
    """``ansible-playbook rollout.codedeploy.deploy`` (the collection's playbook by name) with the view enabled."""
    extra_vars = {"deployment_group": "web_production", "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook("rollout.codedeploy.deploy", inv, extra_vars=extra_vars, env=VIEW_ENV, check=check)


def view_lines(stdout, deployment_id):
    return [line for line in stdout.splitlines() if deployment_id in line or line.startswith(("host ", "FAILED ", "  "))]


def table(stdout):
    """The host by event table: its heading and a row per host (the lines up to the legend)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("host ") and "status" in line)
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith(("ok = ", "events: ")):
            break
        rows.append(line.split())
    return lines[start].split(), rows


def test_the_view_shows_each_batch_the_table_and_the_outcome(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 3, load_balancer=False)
    hosts = sorted(h.name for h in bound.values())
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy_with_view(world, inventory(world, tmp_path, "CodeDeployDefault.OneAtATime", load_balancer=False),
                              revision(tmp_path, "v1"), ledger_path)
    deployment = last_deployment(ledger_path)
    did = deployment["deployment_id"]
    out = result.stdout
    assert not ANSI.search(out)
    # One line per batch, in the order the ledger saw the hosts, naming the host, its events and no failures.
    order = [i["host"] for i in sorted(deployment["instances"], key=lambda i: i["start"])]
    batches = [line for line in out.splitlines() if line.startswith("[%s] batch " % did)]
    assert len(batches) == 3, out[-4000:]
    for number, (line, host) in enumerate(zip(batches, order), 1):
        assert line == "[%s] batch %d/3: %s | events done: ApplicationStop..ValidateService (7) | failures: none" % (did, number, host)
    # The table: a row per host, a column per lifecycle event, every cell ok with seconds.
    headings, rows = table(out)
    assert headings == ["host", "status"] + IN_PLACE + ["total"]
    assert sorted(row[0] for row in rows) == hosts
    for row in rows:
        assert row[1] == "Succeeded"
        cells = row[2:-1]
        assert cells[0::2] == ["ok"] * 7 and all(re.match(r"^\d+(\.\d)?$", c) for c in cells[1::2]), row
    assert "Deployment %s Succeeded (Succeeded 3)" % did in out.splitlines()


def test_the_view_names_the_failing_host_event_script_and_log_tail(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 2, load_balancer=False)
    bad, good = sorted(h.name for h in bound.values())
    ledger_path = str(tmp_path / "ledger.sqlite3")
    inv = inventory(world, tmp_path, "CodeDeployDefault.AllAtOnce", load_balancer=False)
    result = deploy_with_view(world, inv, revision(tmp_path, "v1", failing_hosts=[bad]), ledger_path, check=False)
    deployment = last_deployment(ledger_path)
    did = deployment["deployment_id"]
    out = result.stdout
    assert not ANSI.search(out)
    lines = out.splitlines()
    # AllAtOnce succeeds with one healthy host of two; the batch line says who failed where.
    batch = next(line for line in lines if line.startswith("[%s] batch 1/1: " % did))
    assert "failures: %s at ValidateService (ScriptFailed)" % bad in batch, batch
    assert "%s ApplicationStop..ApplicationStart (6)" % bad in batch and "%s ApplicationStop..ValidateService (7)" % good in batch
    start = lines.index("FAILED %s at ValidateService in %s (ScriptFailed)" % (bad, did))
    block = lines[start:start + 16]
    assert block[1] == "  script: scripts/validate_service.sh"
    assert block[2] == "  message: Script at specified location: scripts/validate_service.sh failed with exit code 1"
    assert block[3].startswith("  log tail (last ")
    tail = [line for line in block[4:] if line.startswith("    | ")]
    assert any("FAIL_VALIDATE is present in the bundle, failing on purpose on %s" % bad in line for line in tail), block
    headings, rows = table(out)
    by_host = dict((row[0], row) for row in rows)
    assert by_host[bad][1] == "Failed" and by_host[good][1] == "Succeeded"
    validate = headings.index("ValidateService")
    # Each cell of an event that ran is two words (status, seconds); the failed host's ValidateService cell is FAIL.
    assert by_host[bad][2:-1][2 * (validate - 2)] == "FAIL"
    status = deployment["status"]
    assert any(line.startswith("Deployment %s %s (" % (did, status)) for line in lines), out[-3000:]
