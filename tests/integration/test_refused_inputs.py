"""Bad input to rollout.codedeploy.deploy, rollback and stop, run as a user would with ansible-playbook:
each is refused before anything starts, with a message naming the input, the value and what is accepted,
no ledger row, no lock, no host touched and no Python exception name."""
import json
import os
import re
import shutil

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOKS = os.path.join(paths.REPO, "playbooks")
EXCEPTION_NAMES = re.compile(r"\b(Traceback|[A-Z][A-Za-z]*(Error|Exception)\b:)|failed unexpectedly")


def _revision(tmp_path):
    target = tmp_path / "rev"
    if not target.exists():
        shutil.copytree(paths.SAMPLE_APP, str(target))
    return str(target)


def _junk(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _cases(tmp_path):
    rev = _revision(tmp_path)
    return [
        # (extra vars as -e words, words the message must hold)
        (["deployment_group=all"], ["deployment_group='all'", "not a deployment group", "api_production, web_production"]),
        (["deployment_group=ungrouped"], ["deployment_group='ungrouped'", "web_production"]),
        (["deployment_group=web"], ["deployment_group='web'", "not a group of this inventory"]),
        (["file_exists_behavior=BOGUS"], ["file_exists_behavior='BOGUS'", "DISALLOW, OVERWRITE, RETAIN"]),
        (["auto_rollback=sometimes"], ["auto_rollback='sometimes'", "true, false, or a mapping"]),
        (["alarms=foo"], ["alarms='foo'", "a list of alarm names"]),
        (["codedeploy_lease_seconds=abc"], ["lease_seconds='abc'", "a whole number"]),
        (["deployment_config=CodeDeployDefault.Fastest"], ["deployment_config='CodeDeployDefault.Fastest'", "CodeDeployDefault.OneAtATime"]),
        (["revision=" + _junk(tmp_path, "x.zip", os.urandom(4096))], ["x.zip", "not a zip, tar or tgz"]),
        (["revision=" + _junk(tmp_path, "x.tgz", b"just some text\n" * 20)], ["x.tgz", "not a zip, tar or tgz"]),
        (["revision=" + os.path.join(rev, "appspec.yml")], ["appspec.yml", "pass its directory"]),
        (["revision=" + str(tmp_path / "missing")], ["missing"]),
    ]


def _inventory(world, tmp_path):
    web = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "load_balancer": {"target_groups": ["web-tg"]}}
    api = {"ec2_tag_filters": [{"key": "Role", "value": "api"}]}
    return world.codedeploy_inventory(str(tmp_path / "apps.codedeploy.yml"), {"web": {"production": web}, "api": {"production": api}})


def _untouched(world, hosts):
    return all(world.fleet.ssh(h, "test -e /opt/codedeploy-agent && echo touched || echo untouched").strip() == "untouched"
               for h in hosts)


def _run(world, playbook, inventory, words, ledger_path):
    args = ["ansible-playbook", "-i", inventory, os.path.join(PLAYBOOKS, playbook), "-e", json.dumps({"codedeploy_ledger": ledger_path})]
    for word in words:
        args += ["-e", word]
    return world.ansible(args, check=False)


def test_every_refused_input_leaves_nothing_behind(world, aws, fleet_hosts, tmp_path):
    web = world.launch_bound(aws, 2, {"Role": "web"})
    api = world.launch_bound(aws, 1, {"Role": "api"})
    arn = aws.target_group("web-tg")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in web])
    inventory = _inventory(world, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    rev = _revision(tmp_path)
    for words, expected in _cases(tmp_path):
        words = (["deployment_group=web_production"] if not any(w.startswith("deployment_group=") for w in words) else []) + \
            (["revision=" + rev] if not any(w.startswith("revision=") for w in words) else []) + words
        result = _run(world, "deploy.yml", inventory, words, ledger_path)
        output = result.stdout + result.stderr
        assert result.returncode != 0, words
        for word in expected:
            assert word in output, (words, word, output[-3000:])
        assert not EXCEPTION_NAMES.search(output), (words, EXCEPTION_NAMES.search(output).group(0), output[-3000:])
        assert not os.path.exists(ledger_path) or not ledgers.open_ledger(ledger_path).list_deployments(), words
    assert _untouched(world, list(web.values()) + list(api.values()))
    registered = {d["Target"]["Id"] for d in aws.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
    assert registered == set(web)
    # Nothing holds the group: a good deployment goes through at once.
    words = ["deployment_group=web_production", "revision=" + rev, "file_exists_behavior=OVERWRITE", "auto_rollback=yes"]
    good = _run(world, "deploy.yml", inventory, words, ledger_path)
    assert good.returncode == 0, good.stdout[-3000:]
    (deployment,) = ledgers.open_ledger(ledger_path).list_deployments()
    assert deployment["status"] == "Succeeded"


def test_rollback_and_stop_refuse_bad_ids(world, aws, fleet_hosts, tmp_path):
    world.launch_bound(aws, 1, {"Role": "web"})
    aws.target_group("web-tg")
    inventory = _inventory(world, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    cases = [
        ("rollback.yml", ["deployment_group=web_production"], ["a rollback needs the deployment to roll back to"]),
        ("rollback.yml", ["deployment_group=web_production", "deployment_id=12"], ["reuse_deployment='12'", "d-XXXXXXXXX"]),
        ("rollback.yml", ["deployment_group=all", "deployment_id=d-ABCDEFGH1"], ["deployment_group='all'"]),
        ("stop.yml", [], ["no deployment_id given"]),
        ("stop.yml", ["deployment_id=latest"], ["deployment_id='latest'"]),
        ("stop.yml", ["deployment_id=d-ABCDEFGH1", "rollback=perhaps"], ["rollback='perhaps'", "a boolean"]),
    ]
    for playbook, words, expected in cases:
        result = _run(world, playbook, inventory, words, ledger_path)
        output = result.stdout + result.stderr
        assert result.returncode != 0, (playbook, words)
        for word in expected:
            assert word in output, (playbook, words, word, output[-3000:])
        assert not EXCEPTION_NAMES.search(output), (playbook, words, output[-3000:])
    assert not os.path.exists(ledger_path) or not ledgers.open_ledger(ledger_path).list_deployments()
