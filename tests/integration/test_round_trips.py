"""SSH round trips of one host's in-place deployment through rollout.codedeploy.deploy.

The playbook runs with -vvv and every ``<address> SSH: EXEC`` line (remote command, pipelined module
run or file transfer) is counted per host (tests/world/round_trips.py).
"""
import os
import shutil

import pytest

from world import paths
from world.round_trips import per_host, ssh_commands

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")
# Interpreter discovery, BeforeBlockTraffic, the bundle (one command writing it into a new private folder;
# a folder and a file transfer where that is not possible), AfterBlockTraffic through BeforeAllowTraffic,
# AfterAllowTraffic. The pipelined path costs 5.
MAX_SSH_COMMANDS = 6


def setup_group(world, aws, tmp_path, count):
    bound = world.launch_bound(aws, count, {"Role": "web"})
    arn = aws.target_group("web-tg")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in bound])
    group = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": "CodeDeployDefault.AllAtOnce",
             "load_balancer": {"target_groups": ["web-tg"]}, "file_exists_behavior": "OVERWRITE"}
    inventory = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": group}})
    return list(bound.values()), inventory


def deploy(world, inventory, revision, ledger_path):
    extra_vars = {"deployment_group": "web_production", "revision": revision, "codedeploy_ledger": ledger_path}
    result = world.ansible_playbook(PLAYBOOK, inventory, extra_vars=extra_vars, options=["-vvv"])
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(book.list_deployments(limit=1)[0]["deployment_id"])
    return ssh_commands(result.stdout), deployment


def test_sample_app_through_a_target_group(world, aws, fleet_hosts, tmp_path):
    hosts, inventory = setup_group(world, aws, tmp_path, 2)
    counts, deployment = deploy(world, inventory, paths.SAMPLE_APP, str(tmp_path / "ledger.sqlite3"))
    assert deployment["status"] == "Succeeded"
    assert all(len(i["events"]) == 13 and {e["status"] for e in i["events"]} == {"Succeeded"} for i in deployment["instances"])
    commands = per_host(counts, [host.address for host in hosts])
    assert all(0 < n <= MAX_SSH_COMMANDS for n in commands), "SSH commands per host: %s (at most %d)" % (commands, MAX_SSH_COMMANDS)
    for host in hosts:
        # The bundle's private folder went with the module run that took the bundle.
        assert world.fleet.ssh(host, "ls -A ~/.ansible/tmp 2>/dev/null || true").strip() == ""


def test_an_event_without_scripts_costs_no_module_run(world, aws, fleet_hosts, tmp_path):
    """No AfterAllowTraffic script: the host is not asked to run it, the ledger still records it as the module would."""
    hosts, inventory = setup_group(world, aws, tmp_path, 1)
    revision = tmp_path / "no-after-allow"
    shutil.copytree(paths.SAMPLE_APP, str(revision))
    appspec = (revision / "appspec.yml").read_text()
    (revision / "appspec.yml").write_text(appspec.split("  AfterAllowTraffic:")[0])
    counts, deployment = deploy(world, inventory, str(revision), str(tmp_path / "ledger.sqlite3"))
    assert deployment["status"] == "Succeeded"
    events = {e["event"]: e for e in deployment["instances"][0]["events"]}
    assert len(events) == 13
    last = events["AfterAllowTraffic"]
    assert (last["status"], last["error_code"], last["log_tail"]) == ("Skipped", "Success", "")
    assert last["start"] and last["end"]
    assert counts.get(hosts[0].address, 0) <= MAX_SSH_COMMANDS - 1
