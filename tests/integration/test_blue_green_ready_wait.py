"""Blue/green deployments with deployment_ready_option STOP_DEPLOYMENT through rollout.codedeploy.deploy: the green fleet
installs, the deployment waits in status Ready with the blue hosts still serving, then rollout.codedeploy.continue reroutes
the traffic, or the wait runs out and the deployment is Stopped with nothing registered. Real fleet hosts behind moto's
target group; codedeploy_ready_wait_seconds keeps the waits short."""
import json
import os
import subprocess
import time

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

from test_blue_green import GREEN, WEB, _last, _registered, _revision, _serving

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOKS = os.path.join(paths.REPO, "playbooks")


def _inventory(world, tmp_path, blue_fleet=None):
    blue_green = {"terminate_blue_instances_on_deployment_success": blue_fleet or {"action": "KEEP_ALIVE"},
                  "deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 1},
                  "green_fleet_provisioning_option": {"action": "DISCOVER_EXISTING"}}
    groups = {
        "seed": dict(WEB, deployment_config="CodeDeployDefault.AllAtOnce"),
        "production": dict(WEB, deployment_config="CodeDeployDefault.OneAtATime", deployment_style={"type": "BLUE_GREEN"},
                           load_balancer={"target_groups": ["web-tg"]}, blue_green=blue_green),
        "green": dict(GREEN, deployment_config="CodeDeployDefault.AllAtOnce"),
    }
    return world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": groups})


def _fleets(world, aws, tmp_path, blue_fleet=None):
    """2 blue hosts serving v1 and registered in web-tg, 2 green hosts with nothing yet."""
    blue = world.launch_bound(aws, 2, {"Role": "web"})
    green = world.launch_bound(aws, 2, {"Role": "green"})
    arn = aws.target_group("web-tg")
    inv = _inventory(world, tmp_path, blue_fleet)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    world.ansible_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inv, extra_vars={
        "deployment_group": "web_seed", "revision": _revision(tmp_path, "v1", "1.0.0"), "codedeploy_ledger": ledger_path})
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in blue])
    return blue, green, arn, inv, ledger_path


def _in_background(world, inv, ledger_path, rev, **extra):
    extra_vars = dict({"deployment_group": "web_production", "revision": rev, "codedeploy_ledger": ledger_path,
                       "green_hosts": "web_green"}, **extra)
    args = ["ansible-playbook", "-i", inv, os.path.join(PLAYBOOKS, "deploy.yml"), "-e", json.dumps(extra_vars)]
    return subprocess.Popen(args, env=world.env(), cwd=paths.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_ready(ledger_path, running, limit=180):
    """The deployment once it is Ready (its green fleet installed); fails when the playbook ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert running.poll() is None, running.communicate()[0][-3000:]
        try:
            book = ledgers.open_ledger(ledger_path)
            latest = [d for d in book.list_deployments(limit=1) if d["deployment_group"] == "production"]
        except ledgers.LedgerError:
            latest = []
        if latest and latest[0]["status"] == "Ready":
            return book.get_deployment(latest[0]["deployment_id"])
        time.sleep(0.5)
    raise AssertionError("the deployment never became Ready")


def _continue(world, deployment_id, ledger_path, check=True):
    return world.ansible_playbook(os.path.join(PLAYBOOKS, "continue.yml"), "localhost,", options=["-c", "local"], check=check,
                                  extra_vars={"deployment_id": deployment_id, "codedeploy_ledger": ledger_path})


def _wait_swap_state(ledger_path, deployment_id, state, running, limit=180):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert running.poll() is None, running.communicate()[0][-3000:]
        if (ledgers.open_ledger(ledger_path).get_deployment(deployment_id, include_instances=False).get("swap") or {}).get("state") == state:
            return
        time.sleep(0.5)
    raise AssertionError("deployment %s never reached swap state %s" % (deployment_id, state))


def test_a_continue_reroutes_the_green_fleet_that_waited_ready(world, aws, fleet_hosts, tmp_path):
    # TERMINATE after an hour: the second continue ends that wait (CodeDeploy's continue-deployment for the termination wait).
    blue, green, arn, inv, ledger_path = _fleets(world, aws, tmp_path, {"action": "TERMINATE", "termination_wait_time_in_minutes": 60})
    running = _in_background(world, inv, ledger_path, _revision(tmp_path, "v2", "2.0.0"), codedeploy_ready_wait_seconds=60)
    try:
        waiting = _wait_ready(ledger_path, running)
        # Ready: green installed and serving v2 on its own, not registered; blue untouched and serving v1.
        assert _registered(aws, arn) == set(blue)
        assert {i["status"] for i in waiting["instances"] if i["role"] == "green"} == {"Ready"}
        assert {i["status"] for i in waiting["instances"] if i["role"] == "blue"} == {"Pending"}
        for host in green.values():
            assert _serving(world, host) == "sample-app 2.0.0"
        assert waiting["lease_expired"] is False
        # As an AWX approval node would: by the deployment group, whose deployment's id it does not know yet.
        done = world.ansible_playbook(os.path.join(PLAYBOOKS, "continue.yml"), inv,
                                      extra_vars={"deployment_group": "web_production", "codedeploy_ledger": ledger_path})
        assert "asked %s to reroute the traffic" % waiting["deployment_id"] in done.stdout
        _wait_swap_state(ledger_path, waiting["deployment_id"], "termination_wait", running)
        # Rerouted, blue out of the target group but still running while the hour passes.
        assert _registered(aws, arn) == set(green)
        for host in blue.values():
            assert _serving(world, host) == "sample-app 1.0.0"
        done = world.ansible_playbook(os.path.join(PLAYBOOKS, "continue.yml"), inv,
                                      extra_vars={"deployment_group": "web_production", "codedeploy_ledger": ledger_path})
        assert "asked %s to end its termination wait" % waiting["deployment_id"] in done.stdout
        output, _unused = running.communicate(timeout=120)
    finally:
        running.kill()
    assert running.returncode == 0, output[-3000:]
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded", deployment.get("error")
    assert deployment["continue_request"]["requested_at"]
    assert _registered(aws, arn) == set(green)
    assert "ended the termination wait after" in output and "were terminated when" in output
    states = aws.ec2.describe_instances(InstanceIds=list(blue))["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} <= {"shutting-down", "terminated"}
    assert deployment["swap"]["termination_continue"]["requested_at"] and deployment["swap"]["state"] == "rerouted"
    for instance in deployment["instances"]:
        events = [e["event"] for e in instance["events"]]
        if instance["role"] == "green":
            assert instance["status"] == "Succeeded"
            assert events.index("ValidateService") < events.index("BeforeAllowTraffic") < events.index("AllowTraffic")
        else:
            assert events == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    # Continuing a deployment that is not Ready is refused, naming its status, without a traceback.
    again = _continue(world, deployment["deployment_id"], ledger_path, check=False)
    assert again.returncode != 0 and "already Succeeded; there is nothing to continue" in again.stdout
    assert "Traceback" not in again.stdout + again.stderr
    by_group = world.ansible_playbook(os.path.join(PLAYBOOKS, "continue.yml"), inv, check=False,
                                      extra_vars={"deployment_group": "web_production", "codedeploy_ledger": ledger_path})
    # The blue fleet was terminated, so the group now selects nothing: said plainly.
    assert by_group.returncode != 0 and "deployment group web_production has no instances in this inventory" in by_group.stdout
    unknown = _continue(world, "d-AAAAAAAAA", ledger_path, check=False)
    assert unknown.returncode != 0 and "d-AAAAAAAAA" in unknown.stdout and "Traceback" not in unknown.stdout + unknown.stderr


def test_a_ready_wait_that_runs_out_stops_and_registers_nothing(world, aws, fleet_hosts, tmp_path):
    blue, green, arn, inv, ledger_path = _fleets(world, aws, tmp_path)
    running = _in_background(world, inv, ledger_path, _revision(tmp_path, "v2", "2.0.0"), codedeploy_ready_wait_seconds=3)
    try:
        output, _unused = running.communicate(timeout=300)
    finally:
        running.kill()
    assert running.returncode != 0
    deployment = _last(ledger_path)
    assert deployment["status"] == "Stopped" and deployment["error"]["code"] == "TIMEOUT", deployment["error"]
    by_group = world.ansible_playbook(os.path.join(PLAYBOOKS, "continue.yml"), inv, check=False,
                                      extra_vars={"deployment_group": "web_production", "codedeploy_ledger": ledger_path})
    assert by_group.returncode != 0
    assert "has no deployment waiting in status Ready or in its termination wait: it has no active deployment" in by_group.stdout
    assert "waited 3 s in status Ready" in deployment["error"]["message"]
    assert deployment["lease_expires"] is None  # the group is unlocked
    assert _registered(aws, arn) == set(blue)
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    for instance in deployment["instances"]:
        events = [e["event"] for e in instance["events"]]
        assert "AllowTraffic" not in events and "BlockTraffic" not in events
        if instance["role"] == "green":
            assert "ValidateService" in events and instance["status"] == "Skipped"
        else:
            assert instance["status"] == "Skipped"
    # The group is free: the next deployment opens (check mode is enough to prove the lock is gone).
    assert "Traffic stays on the blue hosts" in output
