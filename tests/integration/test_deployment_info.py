# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout.codedeploy.deployment_info through ansible-playbook on localhost, reading a SQLite and a DynamoDB ledger."""
import json
import os
import sys

import pytest
import yaml

from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import open_ledger

pytestmark = [pytest.mark.aws]

REVISION = {"s3": {"bucket": "releases", "key": "web.tgz", "sha256": "c" * 64}}


@pytest.fixture
def local(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    return str(inventory)


@pytest.fixture(params=["sqlite", "dynamodb"])
def location(request, tmp_path, world, aws):  # pylint: disable=unused-argument  # aws: a fresh moto server
    """The ledger location: a SQLite file, or a DynamoDB table reached through the world's AWS_* environment."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    return "dynamodb://rollout-ledger-info"


def writer(world, location):
    env = world.moto.env()
    return open_ledger(location, aws={"region": env["AWS_REGION"], "endpoint_url": world.moto.endpoint,
                                      "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"]})


def history(ledger):
    """web/production: a failed deployment and its rollback; web/staging: one in progress."""
    failed = ledger.create_deployment("web", "production", "dg-1", REVISION, "CodeDeployDefault.OneAtATime",
                                      [{"instance_id": "i-1", "host": "web-1"}, {"instance_id": "i-2", "host": "web-2"}])
    deployment_id = failed["deployment_id"]
    ledger.update_status(deployment_id, "InProgress")
    ledger.try_start_instance(deployment_id, "i-1", 1)
    ledger.record_events(deployment_id, "i-1", [
        {"event": "BeforeInstall", "status": "Succeeded", "start": "2026-11-22T02:03:04.000Z", "end": "2026-11-22T02:03:05.000Z"},
        {"event": "ApplicationStop", "status": "Succeeded"},
        {"event": "ValidateService", "status": "Failed", "error_code": "ScriptFailed", "message": "scripts/check.sh exited 1",
         "log_tail": "[stderr]connection refused"}])
    ledger.finish_instance(deployment_id, "i-1", "Failed", error_code="HOOK_EXECUTION_FAILURE", message="ValidateService failed")
    ledger.set_instance(deployment_id, "i-2", "Skipped")
    ledger.update_status(deployment_id, "Failed", "HOOK_EXECUTION_FAILURE", "ValidateService failed on web-1")
    rollback = ledger.create_deployment("web", "production", "dg-1", REVISION, None, [{"instance_id": "i-1"}], rollback_of=deployment_id)
    ledger.update_status(rollback["deployment_id"], "Succeeded")
    staging = ledger.create_deployment("web", "staging", "dg-2", REVISION, None, [{"instance_id": "i-9"}])
    return deployment_id, rollback["deployment_id"], staging["deployment_id"]


def run_info(world, tmp_path, local, module_args, options=(), env=None, name="info"):
    """Run deployment_info with ``module_args`` in a playbook; return (result dict, process)."""
    result_file = str(tmp_path / ("%s.json" % name))
    play = [{
        "name": "Read the ledger", "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Read deployments", "rollout.codedeploy.deployment_info": module_args, "register": "found", "ignore_errors": True},
            {"name": "Keep the result", "ansible.builtin.copy": {"content": "{{ found | to_json }}", "dest": result_file, "mode": "0644"},
             "check_mode": False},
        ],
    }]
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = world.ansible_playbook(str(path), local, options=options, env=env)
    with open(result_file, encoding="utf-8") as handle:
        return json.load(handle), proc


def test_get_one_deployment_with_instances_and_events(world, tmp_path, local, location):
    failed_id, rollback_id, _staging = history(writer(world, location))
    result, proc = run_info(world, tmp_path, local, {"deployment_id": failed_id, "ledger": location}, options=["--check"])
    assert result["changed"] is False and not result.get("failed"), result
    assert result["ledger"] == location
    [deployment] = result["deployments"]
    assert deployment["deployment_id"] == failed_id and deployment["status"] == "Failed"
    assert deployment["error"] == {"code": "HOOK_EXECUTION_FAILURE", "message": "ValidateService failed on web-1"}
    assert deployment["revision"] == REVISION and deployment["deployment_config"] == "CodeDeployDefault.OneAtATime"
    assert deployment["overview"]["Failed"] == 1 and deployment["overview"]["Skipped"] == 1
    assert deployment["rollback_info"]["rollback_deployment_id"] == rollback_id
    first, second = deployment["instances"]
    assert (first["host"], first["status"], first["error_code"]) == ("web-1", "Failed", "HOOK_EXECUTION_FAILURE")
    assert [e["event"] for e in first["events"]] == ["ApplicationStop", "BeforeInstall", "ValidateService"]
    assert first["events"][1]["duration"] == 1
    assert first["events"][2]["log_tail"] == "[stderr]connection refused"
    assert second["status"] == "Skipped" and second["events"] == []
    assert "changed:" not in proc.stdout.split("TASK [Read deployments]")[1].split("TASK [")[0]


def test_list_deployments(world, tmp_path, local, location):
    failed_id, rollback_id, staging_id = history(writer(world, location))
    listed, _proc = run_info(world, tmp_path, local, {"ledger": location}, name="all")
    assert [d["deployment_id"] for d in listed["deployments"]] == [staging_id, rollback_id, failed_id]
    assert all("instances" not in d for d in listed["deployments"])
    group, _proc = run_info(world, tmp_path, local, {"ledger": location, "application": "web", "deployment_group": "production",
                                                     "statuses": ["Failed", "Stopped"]}, name="group")
    assert [d["deployment_id"] for d in group["deployments"]] == [failed_id]
    limited, _proc = run_info(world, tmp_path, local, {"ledger": location, "application": "web", "limit": 1}, name="limit")
    assert [d["deployment_id"] for d in limited["deployments"]] == [staging_id]
    assert limited["deployments"][0]["status"] == "Created" and limited["deployments"][0]["lease_expired"] is False


def test_the_ledger_defaults_to_the_environment(world, tmp_path, local):
    path = str(tmp_path / "from-env" / "ledger.sqlite3")
    failed_id, _rollback, _staging = history(open_ledger(path))
    result, _proc = run_info(world, tmp_path, local, {"application": "web", "deployment_group": "production"},
                             env={"CODEDEPLOY_LEDGER": path})
    assert result["ledger"] == path
    assert failed_id in [d["deployment_id"] for d in result["deployments"]]


def test_dynamodb_with_explicit_aws_options(world, aws, tmp_path, local):  # pylint: disable=unused-argument
    failed_id, _rollback, _staging = history(writer(world, "dynamodb://rollout-ledger-opts"))
    env = dict((key, "") for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"))
    result, _proc = run_info(world, tmp_path, local, {"ledger": "dynamodb://rollout-ledger-opts", "deployment_id": failed_id,
                                                      "endpoint_url": world.moto.endpoint, "region": "us-east-1"}, env=env)
    assert result["deployments"][0]["deployment_id"] == failed_id, result


def test_missing_ledger(world, tmp_path, local, location):
    if location.startswith("dynamodb://"):
        location = "dynamodb://rollout-ledger-missing"
    else:
        location = str(tmp_path / "nothing-here" / "ledger.sqlite3")
    listed, _proc = run_info(world, tmp_path, local, {"ledger": location}, name="list")
    assert listed["deployments"] == [] and not listed.get("failed")
    assert any(location.replace("dynamodb://", "") in w for w in listed.get("warnings", [])), listed
    got, proc = run_info(world, tmp_path, local, {"ledger": location, "deployment_id": "d-AAAAAAAAA"}, name="get")
    assert got["failed"] is True
    assert got["msg"].startswith("cannot read deployment d-AAAAAAAAA: there is no")
    assert location.replace("dynamodb://", "") in got["msg"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not os.path.exists(os.path.dirname(location)) or location.startswith("dynamodb://")


def test_unknown_deployment_and_bad_options(world, tmp_path, local, location):
    history(writer(world, location))
    got, _proc = run_info(world, tmp_path, local, {"ledger": location, "deployment_id": "d-ZZZZZZZZZ"}, name="unknown")
    assert got["failed"] is True and got["msg"] == "no deployment d-ZZZZZZZZZ in the ledger %s" % location
    both, _proc = run_info(world, tmp_path, local, {"ledger": location, "deployment_id": "d-ZZZZZZZZZ", "application": "web"}, name="both")
    assert both["failed"] is True and "mutually exclusive" in both["msg"]
    bad, _proc = run_info(world, tmp_path, local, {"ledger": "s3://bucket/ledger"}, name="bad")
    assert bad["failed"] is True and "give a file path (SQLite) or dynamodb://<table>" in bad["msg"]
