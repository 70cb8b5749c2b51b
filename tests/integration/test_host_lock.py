"""One deployment at a time per host: two deployment groups of two applications select the same fleet host, and their
deployments, started together, run on it one after the other (module_utils/host_lock.py)."""
import json
import subprocess

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

from test_deploy import PLAYBOOK, _slow_revision, deploy, registered, revision

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

ROOT = "/opt/codedeploy-agent/deployment-root"
DEPLOYMENTS_LOG = ROOT + "/deployment-logs/codedeploy-agent-deployments.log"
LOCK = ROOT + "/.rollout-host.lock"


def _shared_host(world, aws, tmp_path):
    """One instance that both web/production (through a target group) and api/production (no load balancer) select."""
    bound = world.launch_bound(aws, 1, {"Role": "shared"})
    arn = aws.target_group("web-tg")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in bound])
    select = [{"key": "Role", "value": "shared"}]
    groups = {"web": {"production": {"ec2_tag_filters": select, "load_balancer": {"target_groups": ["web-tg"]},
                                     "file_exists_behavior": "OVERWRITE"}},
              "api": {"production": {"ec2_tag_filters": select, "file_exists_behavior": "OVERWRITE"}}}
    return bound, arn, world.codedeploy_inventory(str(tmp_path / "shared.codedeploy.yml"), groups)


def _events_on(world, host):
    """(deployment id, event) in the order the host ran them, from the agent's deployments log."""
    text = world.fleet.ssh(host, "cat %s" % DEPLOYMENTS_LOG)
    return [tuple(line.split("] ", 1)[1].split()[:2]) for line in text.splitlines() if "] d-" in line]


def test_two_groups_that_share_a_host_take_turns_on_it(world, aws, fleet_hosts, tmp_path):
    bound, arn, inventory = _shared_host(world, aws, tmp_path)
    host = next(iter(bound.values()))
    ledger_path = str(tmp_path / "ledger.sqlite3")
    runs = []
    for group, name in (("web_production", "web-slow"), ("api_production", "api-slow")):
        extra = {"deployment_group": group, "revision": _slow_revision(tmp_path, name, "1.0.0", 3), "codedeploy_ledger": ledger_path}
        runs.append(subprocess.Popen(["ansible-playbook", "-i", inventory, PLAYBOOK, "-e", json.dumps(extra)], env=world.env(),
                                     cwd=paths.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, out in zip(runs, outputs):
        assert run.returncode == 0, out[-4000:]

    book = ledgers.open_ledger(ledger_path)
    deployments = book.list_deployments()
    assert sorted(d["application"] for d in deployments) == ["api", "web"]
    assert all(d["status"] == "Succeeded" for d in deployments), deployments
    # Both were open at once (the later one opened before the earlier one completed), so the host really had to choose.
    earlier, later = sorted(deployments, key=lambda d: d["create_time"])
    assert later["create_time"] < earlier["complete_time"], deployments
    order = _events_on(world, host)
    ids = [deployment_id for deployment_id, _event in order]
    first = ids[0]
    switch = ids.index(next(i for i in ids if i != first))
    assert set(ids[:switch]) == {first} and first not in ids[switch:], "the deployments' events interleave on the host: %s" % order
    assert len(set(ids)) == 2
    # The web deployment's events span three module runs (the load balancer in between) and still come as one block.
    web_id = next(d["deployment_id"] for d in deployments if d["application"] == "web")
    assert [e for i, e in order if i == web_id][0] == "BeforeBlockTraffic" and [e for i, e in order if i == web_id][-1] == "AfterAllowTraffic"
    assert world.fleet.ssh(host, "cat %s" % LOCK).strip() == "", "the last run released the host"
    assert registered(aws, arn) == set(bound)


def test_a_stale_host_lock_is_taken_over(world, aws, fleet_hosts, tmp_path):
    bound, arn, inventory = _shared_host(world, aws, tmp_path)
    host = next(iter(bound.values()))
    stale = {"deployment_id": "d-GONE00001", "application": "api", "deployment_group": "production", "deployment_group_id": "g-gone",
             "acquired": "2020-01-01T00:00:00Z", "renewed": "2020-01-01T00:00:00Z", "expires": 1577837400,
             "expires_at": "2020-01-01T00:10:00Z", "pid": None, "process": None}
    world.fleet.ssh(host, "mkdir -p %s && echo '%s' > %s" % (ROOT, json.dumps(stale), LOCK))
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy(world, inventory, revision(tmp_path, "v1", "1.0.0"), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "took over the host lock of d-GONE00001 (api/production): it expired at 2020-01-01T00:10:00Z" in result.stderr
    assert world.fleet.ssh(host, "cat %s" % LOCK).strip() == ""
    assert registered(aws, arn) == set(bound)


def test_a_live_host_lock_of_another_deployment_fails_the_host_after_the_wait(world, aws, fleet_hosts, tmp_path):
    bound, _arn, inventory = _shared_host(world, aws, tmp_path)
    host = next(iter(bound.values()))
    # Held between two runs of a deployment whose controller is still working elsewhere, for the next hour.
    held = {"deployment_id": "d-BUSY00001", "application": "api", "deployment_group": "production", "deployment_group_id": "g-busy",
            "acquired": "2030-01-01T00:00:00Z", "renewed": "2030-01-01T00:00:00Z", "expires": 4102444800,
            "expires_at": "2100-01-01T00:00:00Z", "pid": None, "process": None}
    world.fleet.ssh(host, "mkdir -p %s && echo '%s' > %s" % (ROOT, json.dumps(held), LOCK))
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy(world, inventory, revision(tmp_path, "v1", "1.0.0"), ledger_path, deployment_group="api_production",
                    codedeploy_host_lock_wait=0)
    assert result.returncode != 0
    assert "the host is busy with another deployment: d-BUSY00001 of application api, deployment group production" in result.stdout
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(book.list_deployments(limit=1)[0]["deployment_id"])
    assert deployment["status"] == "Failed" and deployment["instances"][0]["error_code"] == "HostLocked"
    assert json.loads(world.fleet.ssh(host, "cat %s" % LOCK))["deployment_id"] == "d-BUSY00001", "the holder's lock stays"
