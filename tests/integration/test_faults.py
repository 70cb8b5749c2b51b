"""Faults end in a defined state (docs/reliability.md's fault matrix): each test asserts the deployment's status and
error code, what the hosts run, the load balancer's registrations and the group's lock, then deploys again."""
import glob
import json
import os
import signal
import subprocess
import time

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import heartbeat

from test_deploy import _first_host_done, _slow_revision, _wait_for, deploy, registered, revision, serving

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOKS = os.path.join(paths.REPO, "playbooks")


def _two_groups(world, aws, tmp_path):
    web = world.launch_bound(aws, 2, {"Role": "web"})
    api = world.launch_bound(aws, 1, {"Role": "api"})
    arn = aws.target_group("web-tg")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in web])
    groups = {"web": {"production": {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "load_balancer": {"target_groups": ["web-tg"]},
                                     "file_exists_behavior": "OVERWRITE"}},
              "api": {"production": {"ec2_tag_filters": [{"key": "Role", "value": "api"}], "file_exists_behavior": "OVERWRITE"}}}
    return web, api, arn, world.codedeploy_inventory(str(tmp_path / "apps.codedeploy.yml"), groups)


def _playbook(world, name, inventory, extra):
    return world.ansible(["ansible-playbook", "-i", inventory, os.path.join(PLAYBOOKS, name), "-e", json.dumps(extra)], check=False)


def _deploy_in_background(world, inventory, ledger_path, rev, quiet=False, new_session=False, **extra):
    """``ansible-playbook rollout.codedeploy.deploy`` to web_production, started and left running (stdout+stderr piped unless quiet)."""
    extra_vars = dict({"deployment_group": "web_production", "revision": rev, "codedeploy_ledger": ledger_path}, **extra)
    args = ["ansible-playbook", "-i", inventory, os.path.join(PLAYBOOKS, "deploy.yml"), "-e", json.dumps(extra_vars)]
    output = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else \
        {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    return subprocess.Popen(args, env=world.env(), cwd=paths.REPO, start_new_session=new_session, **output)


def _wait_until_out_of_rotation(ledger_path):
    """The first instance that is InProgress after its BlockTraffic succeeded (its hooks are running)."""
    def check():
        try:
            book = ledgers.open_ledger(ledger_path)
            latest = book.list_deployments(limit=1)
            deployment = book.get_deployment(latest[0]["deployment_id"]) if latest else None
        except ledgers.LedgerError:
            return None
        for instance in (deployment or {}).get("instances") or []:
            blocked = any(e["event"] == "BlockTraffic" and e["status"] == "Succeeded" for e in instance.get("events") or [])
            if instance["status"] == "InProgress" and blocked:
                return instance
        return None
    return _wait_for(check, "a host to be out of rotation and running its hooks")


def test_a_rollback_to_another_groups_deployment_touches_nothing(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inventory, revision(tmp_path, "web1", "1.0.0"), ledger_path, check=True)
    deploy(world, inventory, revision(tmp_path, "api1", "7.0.0"), ledger_path, check=True, deployment_group="api_production")
    book = ledgers.open_ledger(ledger_path)
    api_id = book.list_deployments("api", "production")[0]["deployment_id"]
    before = len(book.list_deployments())

    result = _playbook(world, "rollback.yml", inventory, {"deployment_group": "web_production", "deployment_id": api_id,
                                                          "codedeploy_ledger": ledger_path})
    assert result.returncode != 0
    assert "belongs to api/production, not to web/production" in result.stdout and "Nothing was touched" in result.stdout
    assert len(ledgers.open_ledger(ledger_path).list_deployments()) == before
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_a_killed_controller_is_stopped_without_waiting_for_its_lease(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 3), quiet=True,
                                    new_session=True)
    try:
        orphan = _wait_for(_first_host_done(ledger_path), "the first host to finish")
    finally:
        os.killpg(running.pid, 9)
        running.wait()
    held = ledgers.open_ledger(ledger_path).get_deployment(orphan["deployment_id"], include_instances=False)
    assert held["status"] == "InProgress" and not held["lease_expired"]  # the default 300 s lease still holds the group

    # Its controller was an ansible-playbook process of this machine and is gone: stop settles it without force.
    stopped = _playbook(world, "stop.yml", inventory, {"deployment_id": orphan["deployment_id"], "codedeploy_ledger": ledger_path})
    assert stopped.returncode == 0, stopped.stdout[-3000:]
    assert "is no longer running" in stopped.stdout
    record = ledgers.open_ledger(ledger_path).get_deployment(orphan["deployment_id"], include_instances=False)
    assert record["status"] == "Stopped" and record["error"]["code"] == "MANUAL_STOP"

    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"


def test_a_forced_stop_settles_a_deployment_held_elsewhere(world, aws, fleet_hosts, tmp_path):
    web, _api, _arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    book = ledgers.open_ledger(ledger_path)
    held = book.create_deployment("web", "production", "web-production", {"location": "elsewhere"}, "CodeDeployDefault.OneAtATime", [],
                                  owner="ansible-playbook pid 4242 on another-controller (user ci)", lease_seconds=3600)
    asked = _playbook(world, "stop.yml", inventory, {"deployment_id": held["deployment_id"], "codedeploy_ledger": ledger_path})
    assert asked.returncode == 0 and "asked %s to stop" % held["deployment_id"] in asked.stdout
    assert ledgers.open_ledger(ledger_path).get_deployment(held["deployment_id"])["status"] == "Created"

    forced = _playbook(world, "stop.yml", inventory, {"deployment_id": held["deployment_id"], "force": True, "codedeploy_ledger": ledger_path})
    assert forced.returncode == 0, forced.stdout[-3000:]
    record = ledgers.open_ledger(ledger_path).get_deployment(held["deployment_id"])
    assert record["status"] == "Stopped" and record["error"]["code"] == "MANUAL_STOP" and "forced by" in record["error"]["message"]
    result = deploy(world, inventory, revision(tmp_path, "v1", "1.0.0"), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    for host in web.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_a_hook_longer_than_the_lease_keeps_the_group_locked(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    first = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 6), codedeploy_lease_seconds=2)

    def running():
        try:
            latest = ledgers.open_ledger(ledger_path).list_deployments(limit=1)
        except ledgers.LedgerError:
            return None
        return latest[0] if latest and latest[0]["overview"]["InProgress"] else None
    holder = _wait_for(running, "the first deployment to start a host")
    try:
        time.sleep(3)  # longer than the 2 s lease: only the heartbeat keeps it
        second = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
        assert second.returncode != 0
        assert "already has an active deployment" in second.stdout and holder["deployment_id"] in second.stdout
    finally:
        out = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out[-3000:]
    done = ledgers.open_ledger(ledger_path).get_deployment(holder["deployment_id"], include_instances=False)
    assert done["status"] == "Succeeded" and len(ledgers.open_ledger(ledger_path).list_deployments()) == 1
    assert registered(aws, arn) == set(web)


def _killed_mid_hook(world, aws, tmp_path, config):
    """Deploy a slow revision to two web hosts and kill the first host while its ApplicationStart sleeps."""
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 6), deployment_config=config)
    victim_instance = _wait_until_out_of_rotation(ledger_path)
    victim = web[victim_instance["instance_id"]]
    time.sleep(1.5)  # inside the 6 s ApplicationStart
    world.fleet.kill(victim)
    out = running.communicate(timeout=300)[0]
    return web, arn, inventory, ledger_path, victim, victim_instance["instance_id"], running.returncode, out


@pytest.mark.parametrize("config, status", [("CodeDeployDefault.OneAtATime", "Failed"), ("CodeDeployDefault.AllAtOnce", "Succeeded")])
def test_a_host_that_dies_mid_hook_is_a_failed_instance(world, aws, fleet_hosts, tmp_path, config, status):
    web, arn, inventory, ledger_path, victim, victim_id, returncode, out = _killed_mid_hook(world, aws, tmp_path, config)
    # Ansible's own verdict would be "UNREACHABLE!" and end the play before the deployment is settled.
    assert "unreachable=1" not in out and "UNREACHABLE!" not in out, out[-3000:]
    assert returncode == (0 if status == "Succeeded" else 2), out[-3000:]
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(book.list_deployments(limit=1)[0]["deployment_id"])
    assert deployment["status"] == status, deployment
    assert not deployment["lease_expires"] or deployment["status"] in ("Succeeded", "Failed")
    statuses = {i["instance_id"]: i["status"] for i in deployment["instances"]}
    assert statuses[victim_id] == "Failed" and "InProgress" not in statuses.values() and "Pending" not in statuses.values()
    failed = next(i for i in deployment["instances"] if i["instance_id"] == victim_id)
    assert "unreachable at AfterBlockTraffic" in failed["message"] and failed["out_of_service"]
    others = [i for i in web if i != victim_id]
    assert registered(aws, arn) == set(others)  # the dead host stays out of rotation, the others serve
    # The host comes back; a normal deploy puts it back in rotation with no manual cleanup.
    world.fleet.restart([victim])
    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"


def _drop_archive(world, host, deployment_id):
    world.fleet.ssh(host, "rm -rf /opt/codedeploy-agent/deployment-root/*/%s/deployment-archive" % deployment_id)


def _ids(ledger_path):
    return [d["deployment_id"] for d in reversed(ledgers.open_ledger(ledger_path).list_deployments())]


def test_a_rollback_to_a_pruned_archive_uses_the_cached_bundle(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inventory, revision(tmp_path, "v1", "1.0.0"), ledger_path, check=True)
    deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path, check=True)
    first = _ids(ledger_path)[0]
    pruned = sorted(web.values(), key=lambda h: h.name)[0]
    _drop_archive(world, pruned, first)

    result = _playbook(world, "rollback.yml", inventory, {"deployment_group": "web_production", "deployment_id": first,
                                                          "codedeploy_ledger": ledger_path})
    assert result.returncode == 0, result.stdout[-3000:]
    rollback = ledgers.open_ledger(ledger_path).get_deployment(_ids(ledger_path)[-1])
    assert rollback["status"] == "Succeeded"
    downloads = {i["instance_id"]: next(e for e in i["events"] if e["event"] == "DownloadBundle")["message"] for i in rollback["instances"]}
    for instance_id, host in web.items():
        assert ("unpacked" in downloads[instance_id]) is (host is pruned), downloads
        assert serving(world, host) == "sample-app 1.0.0"
    assert registered(aws, arn) == set(web)


def test_a_rollback_without_archive_or_source_touches_nothing(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    bundle = str(tmp_path / "v1.tgz")
    subprocess.run(["tar", "-czf", bundle, "-C", revision(tmp_path, "v1", "1.0.0"), "."], check=True)
    deploy(world, inventory, bundle, ledger_path, check=True)
    deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path, check=True)
    first = _ids(ledger_path)[0]
    os.unlink(bundle)  # the recorded source is gone; a local bundle file is not copied into the cache
    for host in web.values():
        _drop_archive(world, host, first)

    result = _playbook(world, "rollback.yml", inventory, {"deployment_group": "web_production", "deployment_id": first,
                                                          "codedeploy_ledger": ledger_path})
    assert result.returncode != 0
    rollback = ledgers.open_ledger(ledger_path).get_deployment(_ids(ledger_path)[-1])
    assert rollback["status"] == "Failed"
    failed = [i for i in rollback["instances"] if i["status"] == "Failed"]
    assert len(failed) == 1 and all(i["status"] == "Skipped" for i in rollback["instances"] if i not in failed)
    assert "is not on this host" in failed[0]["message"] and "cannot be fetched" in failed[0]["message"]
    assert [e["event"] for e in failed[0]["events"]] == ["BeforeBlockTraffic"]  # refused before any script or deregistration
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"
        assert world.fleet.ssh(host, "ls -d /opt/codedeploy-agent/deployment-root/*/%s 2>/dev/null | wc -l" % rollback["deployment_id"]).strip() == "0"


def test_aws_that_stops_answering_fails_the_host_within_the_timeout(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 4),
                                    codedeploy_aws_read_timeout=2, codedeploy_aws_connect_timeout=2)
    victim = _wait_until_out_of_rotation(ledger_path)
    world.moto.pause()
    started = time.monotonic()
    try:
        out = running.communicate(timeout=240)[0]
    finally:
        world.moto.resume()
    waited = time.monotonic() - started
    assert running.returncode == 2, out[-3000:]
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(book.list_deployments(limit=1)[0]["deployment_id"])
    assert deployment["status"] == "Failed", deployment
    failed = next(i for i in deployment["instances"] if i["instance_id"] == victim["instance_id"])
    assert failed["status"] == "Failed" and failed["out_of_service"]
    allow = next(e for e in failed["events"] if e["event"] == "AllowTraffic")
    assert allow["status"] == "Failed" and "could not be reached (Read timeout" in allow["message"], allow
    assert "Error:" not in allow["message"] and "Traceback" not in out
    assert not [i for i in deployment["instances"] if i["status"] in ("InProgress", "Pending")]
    assert waited < 120, "the AWS timeouts bound the wait (%.0f s)" % waited
    # AWS answers again: the next deployment puts the host back into rotation.
    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)


def test_a_failed_deregistration_stops_the_host_before_anything_is_installed(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    v1 = revision(tmp_path, "v1", "1.0.0")
    with open(os.path.join(v1, "scripts", "before_block_traffic.sh"), "a", encoding="utf-8") as handle:
        handle.write("sleep 4\n")  # BeforeBlockTraffic runs the previous revision's script: v1's, during the next deployment
    deploy(world, inventory, v1, ledger_path, check=True)
    running = _deploy_in_background(world, inventory, ledger_path, revision(tmp_path, "v2", "2.0.0"),
                                    codedeploy_aws_read_timeout=2, codedeploy_aws_connect_timeout=2)

    def second_started():
        try:
            latest = ledgers.open_ledger(ledger_path).list_deployments(limit=1)
        except ledgers.LedgerError:
            return None
        return latest[0] if len(_ids(ledger_path)) == 2 and latest[0]["overview"]["InProgress"] else None
    _wait_for(second_started, "the second deployment to start a host")
    world.moto.pause()  # the deregistration that follows BeforeBlockTraffic gets no answer
    try:
        out = running.communicate(timeout=240)[0]
    finally:
        world.moto.resume()
    assert running.returncode == 2, out[-3000:]
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(_ids(ledger_path)[-1])
    assert deployment["status"] == "Failed"
    failed = [i for i in deployment["instances"] if i["status"] == "Failed"]
    assert len(failed) == 1 and [e["event"] for e in failed[0]["events"]][-1] == "BlockTraffic"
    assert "web-tg" in failed[0]["message"] and failed[0]["out_of_service"]
    assert not [i for i in deployment["instances"] if i["status"] in ("InProgress", "Pending")]
    for host in web.values():
        assert serving(world, host) == "sample-app 1.0.0"  # nothing was installed
    again = deploy(world, inventory, revision(tmp_path, "v3", "3.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)


def test_a_full_disk_fails_the_host_with_a_plain_message(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    full = sorted(web.values(), key=lambda h: h.name)[0]
    world.fleet.ssh(full, "mkdir -p /opt/codedeploy-agent && mount -t tmpfs -o size=256k tmpfs /opt/codedeploy-agent && "
                          "dd if=/dev/zero of=/opt/codedeploy-agent/filler bs=4k count=64 2>/dev/null; df -k /opt/codedeploy-agent")
    result = deploy(world, inventory, revision(tmp_path, "v1", "1.0.0"), ledger_path)
    book = ledgers.open_ledger(ledger_path)
    deployment = book.get_deployment(_ids(ledger_path)[-1])
    # OneAtATime tolerates a failure on the last instance: the outcome depends on which host went first.
    assert result.returncode == (0 if deployment["status"] == "Succeeded" else 2), result.stdout[-3000:]
    failed = next(i for i in deployment["instances"] if i["instance_id"] == next(k for k, v in web.items() if v is full))
    assert failed["status"] == "Failed" and "No space left on device" in failed["message"], failed["message"]
    assert "Error:" not in failed["message"] and "Traceback" not in result.stdout
    assert not [i for i in deployment["instances"] if i["status"] in ("InProgress", "Pending")]
    # Space is freed: the next deployment succeeds everywhere and every host is back in rotation.
    world.fleet.ssh(full, "rm -f /opt/codedeploy-agent/filler")
    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"


def _children(pid):
    """The child processes of ``pid`` (Ansible's forked workers)."""
    found = set()
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path, encoding="utf-8") as handle:
                found.update(int(child) for child in handle.read().split())
        except OSError:
            pass
    return found


def _processes_with(needle, where="cmdline"):
    """The live processes whose /proc/<pid>/<where> contains ``needle`` (zombies are gone)."""
    found = set()
    for path in glob.glob("/proc/[0-9]*/%s" % where):
        pid = int(path.split("/")[2])
        try:
            with open(path, "rb") as handle:
                if needle.encode() in handle.read() and heartbeat.alive(pid):
                    found.add(pid)
        except OSError:
            pass
    return found


def test_a_killed_main_process_leaves_no_worker_deploying(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _deploy_in_background(world, inventory, ledger_path, _slow_revision(tmp_path, "slow", "1.0.0", 6), quiet=True)
    victim = _wait_until_out_of_rotation(ledger_path)
    workers = _children(running.pid)
    deployment_id = ledgers.open_ledger(ledger_path).list_deployments(limit=1)[0]["deployment_id"]
    beating = _processes_with(deployment_id, "environ") & _processes_with("heartbeat.py")
    assert workers and len(beating) == 1, (workers, beating)
    os.kill(running.pid, signal.SIGKILL)  # the main process only: its workers run in sessions of their own and live on
    running.wait()
    assert _processes_with(inventory), "the worker deploying the first host outlives its controller"
    _wait_for(lambda: not {p for p in beating if heartbeat.alive(p)}, "the heartbeat to see its controller gone", limit=5)
    lease = ledgers.open_ledger(ledger_path).get_deployment(deployment_id, include_instances=False)["lease_expires"]

    # The worker finishes its current module run, sees its controller gone and stops before AllowTraffic.
    _wait_for(lambda: not {p for p in workers if heartbeat.alive(p)} and not _processes_with(inventory),
              "the workers of the killed controller to exit", limit=60)
    held = ledgers.open_ledger(ledger_path).get_deployment(deployment_id)
    assert held["status"] == "InProgress" and not held["lease_expired"], held  # its lease still holds the group...
    assert held["lease_expires"] == lease  # ...but nothing renews it any more
    instances = {i["instance_id"]: i for i in held["instances"]}
    gone = instances[victim["instance_id"]]
    assert gone["status"] == "Failed" and gone["error_code"] == "CONTROLLER_GONE" and gone["out_of_service"], gone
    assert [e["event"] for e in gone["events"]][-2:] == ["BeforeAllowTraffic", "AllowTraffic"], gone["events"]
    assert gone["events"][-1]["status"] == "Failed" and "stopped before AllowTraffic" in gone["events"][-1]["message"]
    others = [i for i in web if i != victim["instance_id"]]
    assert [instances[i]["status"] for i in others] == ["Pending"]  # no other host was started
    assert registered(aws, arn) == set(others)  # the first host was not registered again
    assert serving(world, web[victim["instance_id"]]) == "sample-app 1.0.0" and serving(world, web[others[0]]) == ""
    lock = "/opt/codedeploy-agent/deployment-root/.rollout-host.lock"
    assert world.fleet.ssh(web[victim["instance_id"]], "cat %s" % lock).strip() == "", "the stopped worker freed the host"

    stopped = _playbook(world, "stop.yml", inventory, {"deployment_id": deployment_id, "codedeploy_ledger": ledger_path})
    assert stopped.returncode == 0 and "is no longer running" in stopped.stdout, stopped.stdout[-3000:]
    record = ledgers.open_ledger(ledger_path).get_deployment(deployment_id)
    assert record["status"] == "Stopped" and record["error"]["code"] == "MANUAL_STOP" and not record["lease_expires"], record
    assert {i["instance_id"]: i["status"] for i in record["instances"]} == dict({victim["instance_id"]: "Failed"}, **{i: "Skipped" for i in others})

    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert ledgers.open_ledger(ledger_path).get_deployment(_ids(ledger_path)[-1], include_instances=False)["status"] == "Succeeded"
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"


def _delete_every_version(aws, bucket, key):
    versions = aws.s3.list_object_versions(Bucket=bucket, Prefix=key)
    for version in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        aws.s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    assert not {k for k in ("Versions", "DeleteMarkers") if aws.s3.list_object_versions(Bucket=bucket, Prefix=key).get(k)}


def test_an_s3_object_removed_after_planning_does_not_matter(world, aws, fleet_hosts, tmp_path):
    web, _api, arn, inventory = _two_groups(world, aws, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    bucket, key, bundle = aws.bucket("releases"), "sample-app/slow.tgz", str(tmp_path / "slow.tgz")
    subprocess.run(["tar", "-czf", bundle, "-C", _slow_revision(tmp_path, "slow", "1.0.0", 4), "."], check=True)
    with open(bundle, "rb") as handle:
        aws.s3.put_object(Bucket=bucket, Key=key, Body=handle.read())
    running = _deploy_in_background(world, inventory, ledger_path, "s3://%s/%s" % (bucket, key))
    first = _wait_until_out_of_rotation(ledger_path)
    _delete_every_version(aws, bucket, key)  # while the first host runs its hooks; the second has not downloaded anything yet
    gone_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    out = running.communicate(timeout=300)[0]
    assert running.returncode == 0, out[-3000:]

    deployment = ledgers.open_ledger(ledger_path).get_deployment(_ids(ledger_path)[-1])
    assert deployment["status"] == "Succeeded" and not deployment["error"] and not deployment["lease_expires"], deployment
    assert deployment["revision"]["location"].startswith("s3://releases/sample-app/slow.tgz")
    assert {i["instance_id"]: i["status"] for i in deployment["instances"]} == {i: "Succeeded" for i in web}
    for instance in deployment["instances"]:
        download = next(e for e in instance["events"] if e["event"] == "DownloadBundle")
        assert download["status"] == "Succeeded" and "unpacked" in download["message"], download
        assert not instance["out_of_service"]
    later = next(i for i in deployment["instances"] if i["instance_id"] != first["instance_id"])
    # The second host got the bundle after the object was gone: from the controller's cache, S3 was not read again.
    assert next(e for e in later["events"] if e["event"] == "DownloadBundle")["start"] >= gone_at
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 1.0.0"
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=bucket)

    again = deploy(world, inventory, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert registered(aws, arn) == set(web)
    for host in web.values():
        assert serving(world, host) == "sample-app 2.0.0"
