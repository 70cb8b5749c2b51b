"""rollout.codedeploy.deploy end to end: the inventory plugin selects hosts from moto, the playbook deploys
the sample revision to real fleet hosts through a target group, and the ledger records everything."""
import json
import os
import shutil
import subprocess
import time

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")


def inventory(world, tmp_path, config="CodeDeployDefault.OneAtATime", load_balancer=True, deployment_configs=None, **settings):
    group = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": config}
    if load_balancer:
        group["load_balancer"] = {"target_groups": ["web-tg"]}
    group.update(settings)
    return world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": group}}, deployment_configs)


def fleet(world, aws, count, load_balancer=True):
    """``count`` instances tagged Role=web, played by fleet hosts, registered in web-tg when asked."""
    bound = world.launch_bound(aws, count, {"Role": "web"})
    arn = None
    if load_balancer:
        arn = aws.target_group("web-tg")
        aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in bound])
    return bound, arn


def revision(tmp_path, name, version="1.0.0", failing_hosts=None):
    target = tmp_path / name
    shutil.copytree(paths.SAMPLE_APP, str(target))
    (target / "VERSION").write_text(version + "\n")
    if failing_hosts is not None:
        (target / "FAIL_VALIDATE").write_text("".join(h + "\n" for h in failing_hosts))
    return str(target)


def deploy(world, inv, rev, ledger_path, check=False, **extra):
    extra_vars = {"deployment_group": "web_production", "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check)


def last_deployment(ledger_path):
    book = ledgers.open_ledger(ledger_path)
    return book.get_deployment(book.list_deployments(limit=1)[0]["deployment_id"])


def registered(aws, arn):
    return {d["Target"]["Id"] for d in aws.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


def serving(world, host):
    return world.fleet.ssh(host, "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/').read().decode())\"",
                           check=False).strip()


def test_one_at_a_time_through_the_load_balancer(world, aws, fleet_hosts, tmp_path):
    bound, arn = fleet(world, aws, 4)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy(world, inventory(world, tmp_path), revision(tmp_path, "v1"), ledger_path, check=True)
    assert "Succeeded" in result.stdout
    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Succeeded" and deployment["overview"]["Succeeded"] == 4
    assert deployment["revision"]["sha256"] and deployment["deployment_config"]
    expected = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall",
                "Install", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    starts = []
    for instance in deployment["instances"]:
        assert [e["event"] for e in instance["events"]] == expected
        assert all(e["status"] == "Succeeded" and e["start"] and e["end"] for e in instance["events"])
        starts.append((instance["start"], instance["end"]))
    # One at a time: no two hosts were in flight together.
    starts.sort()
    assert all(later[0] >= earlier[1] for earlier, later in zip(starts, starts[1:]))
    assert registered(aws, arn) == set(bound)
    for host in bound.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_half_at_a_time_tolerates_one_failing_host(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 4, load_balancer=False)
    bad = sorted(h.name for h in bound.values())[0]
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy(world, inventory(world, tmp_path, "CodeDeployDefault.HalfAtATime", load_balancer=False),
                    revision(tmp_path, "v1", failing_hosts=[bad]), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Succeeded"
    assert deployment["overview"]["Succeeded"] == 3 and deployment["overview"]["Failed"] == 1
    failed = [i for i in deployment["instances"] if i["status"] == "Failed"]
    assert failed[0]["host"] == bad
    assert "ValidateService failed on %s" % bad in result.stdout


def _make_unhealthy(world, tmp_path, inv, ledger_path, hosts):
    """A first AllAtOnce deployment in which ``hosts`` fail: the next deployment deploys them first."""
    deploy(world, inv, revision(tmp_path, "v0", "0.9.0", failing_hosts=hosts), ledger_path, deployment_config="CodeDeployDefault.AllAtOnce")
    first = last_deployment(ledger_path)
    assert first["status"] == "Succeeded" and first["overview"]["Failed"] == len(hosts)


def test_half_at_a_time_fails_with_two_failing_hosts(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 4, load_balancer=False)
    bad = sorted(h.name for h in bound.values())[:2]
    inv = inventory(world, tmp_path, "CodeDeployDefault.HalfAtATime", load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _make_unhealthy(world, tmp_path, inv, ledger_path, bad)
    result = deploy(world, inv, revision(tmp_path, "v1", failing_hosts=bad), ledger_path)
    assert result.returncode != 0
    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Failed", result.stdout[-5000:]
    assert deployment["error"]["code"] == "HEALTH_CONSTRAINTS"
    # The unhealthy hosts went first, failed, and the minimum (2 of 4) stopped the rest.
    assert sorted(i["host"] for i in deployment["instances"] if i["status"] == "Failed") == bad
    assert deployment["overview"]["Skipped"] == 2
    message = deployment["error"]["message"]
    assert "ValidateService failed on" in message and "validate_service.sh" in message and "FAIL_VALIDATE" in message
    assert "Deployment %s Failed" % deployment["deployment_id"] in result.stdout


def test_one_at_a_time_tolerates_a_failure_on_the_last_instance(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 3, load_balancer=False)
    names = sorted(h.name for h in bound.values())
    inv = inventory(world, tmp_path, "CodeDeployDefault.OneAtATime", load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _make_unhealthy(world, tmp_path, inv, ledger_path, names[:2])  # these two go first next time
    result = deploy(world, inv, revision(tmp_path, "v1", failing_hosts=[names[2]]), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Succeeded"
    order = sorted(deployment["instances"], key=lambda i: i["start"])
    assert [i["host"] for i in order][-1] == names[2] and order[-1]["status"] == "Failed"


def test_a_second_deployment_to_an_active_group_is_refused(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 2, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    book = ledgers.open_ledger(ledger_path)
    group_id = "held-by-another-controller"
    active = book.create_deployment("web", "production", group_id, {"location": "elsewhere"}, "CodeDeployDefault.OneAtATime", [],
                                    owner="someone@else:1", lease_seconds=600)
    result = deploy(world, inv, revision(tmp_path, "v1"), ledger_path)
    assert result.returncode != 0
    assert active["deployment_id"] in result.stdout and "already has an active deployment" in result.stdout
    for host in fleet_hosts[:2]:
        assert world.fleet.ssh(host, "test -e /opt/codedeploy-agent && echo touched || echo untouched").strip() == "untouched"


def test_the_lock_names_the_controller_process_and_the_awx_job(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 1, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inventory(world, tmp_path, load_balancer=False), revision(tmp_path, "v1"), ledger_path, awx_job_id=4711)
    owner = last_deployment(ledger_path)["owner"]
    # The ansible-playbook process that ran the play, not one of its short-lived workers.
    assert owner.startswith("ansible-playbook pid ") and owner.endswith(", AWX job 4711"), owner


def test_an_orphaned_deployment_is_marked_failed_and_the_next_one_proceeds(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 2, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    book = ledgers.open_ledger(ledger_path)
    orphan = book.create_deployment("web", "production", "dead", {"location": "elsewhere"}, "CodeDeployDefault.OneAtATime", [],
                                    owner="killed@controller:1", lease_seconds=0)
    book.update_status(orphan["deployment_id"], "InProgress")
    result = deploy(world, inv, revision(tmp_path, "v1"), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Marked Failed (TIMEOUT) the deployment(s) %s" % orphan["deployment_id"] in result.stdout
    dead = book.get_deployment(orphan["deployment_id"])
    assert dead["status"] == "Failed" and dead["error"]["code"] == "TIMEOUT"
    assert last_deployment(ledger_path)["status"] == "Succeeded"


def test_auto_rollback_restores_the_previous_revision_and_the_load_balancer(world, aws, fleet_hosts, tmp_path):
    bound, arn = fleet(world, aws, 3)
    inv = inventory(world, tmp_path, auto_rollback={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, check=True)
    good = last_deployment(ledger_path)
    result = deploy(world, inv, revision(tmp_path, "v2", "2.0.0", failing_hosts=[]), ledger_path)
    assert result.returncode != 0
    book = ledgers.open_ledger(ledger_path)
    rollback, failed = book.list_deployments(limit=2)
    failed = book.get_deployment(failed["deployment_id"])
    rollback = book.get_deployment(rollback["deployment_id"])
    assert failed["status"] == "Failed" and failed["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert rollback["status"] == "Succeeded" and rollback["creator"] == "rollback"
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == failed["deployment_id"]
    assert rollback["revision"]["sha256"] == good["revision"]["sha256"]
    touched = [i["host"] for i in failed["instances"] if i["status"] == "Failed"]
    assert [i["host"] for i in rollback["instances"]] == touched
    download = next(e for e in rollback["instances"][0]["events"] if e["event"] == "DownloadBundle")
    assert "no download" in download["message"]
    assert registered(aws, arn) == set(bound), "every host is back in the target group"
    for host in bound.values():
        assert serving(world, host) == "sample-app 1.0.0"
    assert "Rollback: Deployment %s Succeeded" % rollback["deployment_id"] in result.stdout


def _slow_revision(tmp_path, name, version, seconds):
    rev = revision(tmp_path, name, version)
    with open(os.path.join(rev, "SLOW_HOOK"), "w") as handle:
        handle.write("%d\n" % seconds)
    return rev


def _start_in_background(world, inv, rev, ledger_path):
    args = ["ansible-playbook", "-i", inv, PLAYBOOK, "-e", json.dumps({"deployment_group": "web_production", "revision": rev,
                                                                       "codedeploy_ledger": ledger_path})]
    return subprocess.Popen(args, env=world.env(), cwd=paths.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, what, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("gave up waiting for %s" % what)


def _first_host_done(ledger_path, previous=None):
    def check():
        try:
            book = ledgers.open_ledger(ledger_path)
            latest = book.list_deployments(limit=1)
        except ledgers.LedgerError:
            return None
        if not latest or latest[0]["deployment_id"] == previous:
            return None
        deployment = book.get_deployment(latest[0]["deployment_id"])
        return deployment if deployment["overview"]["Succeeded"] >= 1 else None
    return check


def test_a_stop_request_from_another_process_stops_after_the_batch(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 3, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _start_in_background(world, inv, _slow_revision(tmp_path, "slow", "1.0.0", 2), ledger_path)
    try:
        deployment = _wait_for(_first_host_done(ledger_path), "the first host to finish")
        stop = world.ansible_playbook(os.path.join(paths.REPO, "playbooks", "stop.yml"), "localhost,",
                                      extra_vars={"deployment_id": deployment["deployment_id"], "codedeploy_ledger": ledger_path},
                                      options=["-c", "local"])
        assert "asked %s to stop after its current batch" % deployment["deployment_id"] in stop.stdout
        output, _unused = running.communicate(timeout=300)
    finally:
        running.kill()
    assert running.returncode != 0
    final = ledgers.open_ledger(ledger_path).get_deployment(deployment["deployment_id"])
    assert final["status"] == "Stopped" and final["error"]["code"] == "MANUAL_STOP", output[-3000:]
    assert final["overview"]["Succeeded"] in (1, 2) and final["overview"]["Skipped"] >= 1


def test_an_alarm_mid_deployment_stops_it_and_rolls_back(world, aws, fleet_hosts, tmp_path):
    bound, arn = fleet(world, aws, 3)
    cloudwatch = world.moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="OK", StateReason="test")
    inv = inventory(world, tmp_path, alarms={"names": ["web-5xx"]}, auto_rollback={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]})
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, check=True)
    good = last_deployment(ledger_path)
    running = _start_in_background(world, inv, _slow_revision(tmp_path, "v2", "2.0.0", 2), ledger_path)
    try:
        deployment = _wait_for(_first_host_done(ledger_path, previous=good["deployment_id"]), "the first host of v2 to finish")
        cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx spike")
        output, _unused = running.communicate(timeout=300)
    finally:
        running.kill()
    book = ledgers.open_ledger(ledger_path)
    stopped = book.get_deployment(deployment["deployment_id"])
    assert stopped["status"] == "Stopped" and stopped["error"]["code"] == "ALARM_ACTIVE", output[-3000:]
    assert "web-5xx" in stopped["error"]["message"]
    rollback = book.get_deployment(stopped["rollback_info"]["rollback_deployment_id"])
    assert rollback["status"] == "Succeeded" and rollback["revision"]["sha256"] == good["revision"]["sha256"]
    assert registered(aws, arn) == set(bound)
    for host in bound.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_check_mode_prints_the_plan_and_changes_nothing(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 3)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = world.ansible_playbook(
        PLAYBOOK, inventory(world, tmp_path, "CodeDeployDefault.HalfAtATime"),
        extra_vars={"deployment_group": "web_production", "revision": revision(tmp_path, "v1"), "codedeploy_ledger": ledger_path},
        options=["--check"])
    assert "Check mode: nothing is recorded or changed" in result.stdout
    assert "batch 1:" in result.stdout and "batch 2:" in result.stdout
    assert "ValidateService (scripts/validate_service.sh)" in result.stdout and "BlockTraffic" in result.stdout
    assert not os.path.exists(ledger_path)
    for host in bound.values():
        assert world.fleet.ssh(host, "test -e /opt/codedeploy-agent && echo touched || echo untouched").strip() == "untouched"


def test_update_outdated_instances_only_deploys_just_the_new_instance(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 2, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    rev = revision(tmp_path, "v1")
    deploy(world, inv, rev, ledger_path, check=True)
    newcomer = world.launch_bound(aws, 1, {"Role": "web"})
    deploy(world, inv, rev, ledger_path, check=True, update_outdated_instances_only=True)
    latest = last_deployment(ledger_path)
    assert [i["instance_id"] for i in latest["instances"]] == list(newcomer)
    again = deploy(world, inv, rev, ledger_path, check=True, update_outdated_instances_only=True)
    assert "Nothing to deploy: every instance of web_production already runs" in again.stdout
    assert last_deployment(ledger_path)["deployment_id"] == latest["deployment_id"]


def test_a_controller_killed_mid_run_leaves_an_orphan_the_next_run_reports(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 3, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    args = ["ansible-playbook", "-i", inv, PLAYBOOK, "-e", json.dumps({
        "deployment_group": "web_production", "revision": _slow_revision(tmp_path, "slow", "1.0.0", 3), "codedeploy_ledger": ledger_path,
        "codedeploy_lease_seconds": 2})]
    running = subprocess.Popen(args, env=world.env(), cwd=paths.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        orphan = _wait_for(_first_host_done(ledger_path), "the first host to finish")
    finally:
        os.killpg(running.pid, 9)
        running.wait()
    # Nothing renews the killed controller's 2 s lease any more (its heartbeat sees the controller gone within a
    # third of the lease): wait until the ledger says it ran out, twice a lease apart.
    for _round in range(2):
        _wait_for(lambda: ledgers.open_ledger(ledger_path).get_deployment(orphan["deployment_id"], include_instances=False)["lease_expired"],
                  "the killed controller's lease to run out", limit=60)
        time.sleep(2.5)
    result = deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Marked Failed (TIMEOUT) the deployment(s) %s" % orphan["deployment_id"] in result.stdout
    dead = ledgers.open_ledger(ledger_path).get_deployment(orphan["deployment_id"])
    assert dead["status"] == "Failed" and dead["error"]["code"] == "TIMEOUT"


def test_the_rollback_playbook_redeploys_an_earlier_revision_from_the_hosts(world, aws, fleet_hosts, tmp_path):
    bound, arn = fleet(world, aws, 2)
    inv = inventory(world, tmp_path)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, check=True)
    first = last_deployment(ledger_path)
    deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, check=True)
    result = world.ansible_playbook(os.path.join(paths.REPO, "playbooks", "rollback.yml"), inv, extra_vars={
        "deployment_group": "web_production", "deployment_id": first["deployment_id"], "codedeploy_ledger": ledger_path})
    rollback = last_deployment(ledger_path)
    assert rollback["creator"] == "rollback" and rollback["status"] == "Succeeded", result.stdout[-2000:]
    assert rollback["revision"]["sha256"] == first["revision"]["sha256"]
    assert all("no download" in next(e for e in i["events"] if e["event"] == "DownloadBundle")["message"] for i in rollback["instances"])
    assert registered(aws, arn) == set(bound)
    for host in bound.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_triggers_publish_codedeploy_notifications(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 2, load_balancer=False)
    sns, sqs = world.moto.client("sns"), world.moto.client("sqs")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    inv = inventory(world, tmp_path, load_balancer=False,
                    triggers=[{"name": "ops", "target": topic, "events": ["DeploymentStart", "DeploymentSuccess", "InstanceSuccess"]}])
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1"), ledger_path, check=True)
    deployment_id = last_deployment(ledger_path)["deployment_id"]
    messages = []
    for _attempt in range(10):
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        messages += [json.loads(m["Body"]) for m in batch]
    assert all(m["eventTriggerName"] == "ops" and m["deploymentId"] == deployment_id for m in messages)
    statuses = sorted(m.get("status") or m.get("instanceStatus") for m in messages)
    assert statuses.count("Succeeded") == len(bound), statuses  # one InstanceSuccess per host
    assert "CREATED" in statuses or "IN_PROGRESS" in statuses, statuses  # DeploymentStart
    assert "SUCCEEDED" in statuses, statuses  # DeploymentSuccess
    assert "FAILED" not in statuses


ZONAL = {"ZoneByZone": {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 0},
                        "zonal_config": {"first_zone_monitor_duration_in_seconds": 6, "monitor_duration_in_seconds": 6,
                                         "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 0}}}}


def test_a_zonal_deployment_bakes_after_each_zone_and_an_alarm_during_the_bake_stops_it(world, aws, fleet_hosts, tmp_path):
    first_zone = world.launch_bound(aws, 2, {"Role": "web"}, zone="us-east-1a")
    second_zone = world.launch_bound(aws, 2, {"Role": "web"}, zone="us-east-1b")
    cloudwatch = world.moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="zone-5xx", MetricName="Errors", Namespace="Test", Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="zone-5xx", StateValue="OK", StateReason="test")
    path = inventory(world, tmp_path, "ZoneByZone", load_balancer=False, deployment_configs=ZONAL, alarms={"names": ["zone-5xx"]})
    ledger_path = str(tmp_path / "ledger.sqlite3")
    running = _start_in_background(world, path, revision(tmp_path, "v1"), ledger_path)
    try:
        def first_zone_done():
            deployment = _first_host_done(ledger_path)()
            return deployment if deployment and deployment["overview"]["Succeeded"] >= 2 else None
        deployment = _wait_for(first_zone_done, "the first zone to finish")
        cloudwatch.set_alarm_state(AlarmName="zone-5xx", StateValue="ALARM", StateReason="errors in the first zone")
        output, _unused = running.communicate(timeout=300)
    finally:
        running.kill()
    final = ledgers.open_ledger(ledger_path).get_deployment(deployment["deployment_id"])
    assert final["status"] == "Stopped" and final["error"]["code"] == "ALARM_ACTIVE", output[-3000:]
    assert "zone-5xx" in final["error"]["message"]
    by_id = {i["instance_id"]: i["status"] for i in final["instances"]}
    assert {by_id[i] for i in first_zone} == {"Succeeded"}
    assert {by_id[i] for i in second_zone} == {"Skipped"}


def test_a_zonal_deployment_waits_the_monitor_duration_between_zones(world, aws, fleet_hosts, tmp_path):
    first_zone = world.launch_bound(aws, 1, {"Role": "web"}, zone="us-east-1a")
    second_zone = world.launch_bound(aws, 1, {"Role": "web"}, zone="us-east-1b")
    path = inventory(world, tmp_path, "ZoneByZone", load_balancer=False, deployment_configs=ZONAL)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, path, revision(tmp_path, "v1"), ledger_path, check=True)
    final = last_deployment(ledger_path)
    by_id = {i["instance_id"]: i for i in final["instances"]}
    (first,), (second,) = [by_id[i] for i in first_zone], [by_id[i] for i in second_zone]
    assert final["status"] == "Succeeded"
    # The ledger's own times: the second zone started only after the first zone's 6 s bake.
    gap = ledgers.parse_time(second["start"]) - ledgers.parse_time(first["end"])
    assert gap.total_seconds() >= 6


def test_triggers_send_eventbridge_events_to_a_bus(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 1, load_balancer=False)
    events, sqs = world.moto.client("events"), world.moto.client("sqs")
    queue = sqs.create_queue(QueueName="bus-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="codedeploy", EventPattern=json.dumps({"source": ["rollout.codedeploy"]}))
    events.put_targets(Rule="codedeploy", Targets=[{"Id": "queue", "Arn": queue_arn}])
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    inv = inventory(world, tmp_path, load_balancer=False, triggers=[{"name": "bus", "target": bus, "events": ["DeploymentSuccess"]}])
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1"), ledger_path, check=True)
    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    assert [e["detail-type"] for e in received] == ["CodeDeploy Deployment State-change Notification"]
    assert received[0]["detail"]["deploymentId"] == last_deployment(ledger_path)["deployment_id"]
    assert received[0]["detail"]["state"] == "SUCCESS"


def test_a_stop_request_with_rollback_restores_the_touched_hosts(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 3, load_balancer=False)
    inv = inventory(world, tmp_path, load_balancer=False)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, check=True)
    good = last_deployment(ledger_path)
    running = _start_in_background(world, inv, _slow_revision(tmp_path, "v2", "2.0.0", 2), ledger_path)
    try:
        deployment = _wait_for(_first_host_done(ledger_path, previous=good["deployment_id"]), "the first host of v2 to finish")
        world.ansible_playbook(os.path.join(paths.REPO, "playbooks", "stop.yml"), "localhost,", options=["-c", "local"],
                               extra_vars={"deployment_id": deployment["deployment_id"], "rollback": True, "codedeploy_ledger": ledger_path})
        output, _unused = running.communicate(timeout=300)
    finally:
        running.kill()
    book = ledgers.open_ledger(ledger_path)
    stopped = book.get_deployment(deployment["deployment_id"])
    assert stopped["status"] == "Stopped" and stopped["error"]["code"] == "MANUAL_STOP", output[-3000:]
    rollback = book.get_deployment(stopped["rollback_info"]["rollback_deployment_id"])
    assert rollback["status"] == "Succeeded" and rollback["revision"]["sha256"] == good["revision"]["sha256"]
    for host in bound.values():
        assert serving(world, host) == "sample-app 1.0.0"


def test_appspec_warnings_show_and_the_deployment_root_can_be_moved(world, aws, fleet_hosts, tmp_path):
    fleet(world, aws, 1, load_balancer=False)
    rev = revision(tmp_path, "v1")
    appspec = os.path.join(rev, "appspec.yml")
    with open(appspec, encoding="utf-8") as handle:
        text = handle.read()
    # A script timeout over the hour CodeDeploy allows one lifecycle event: a warning, not an error.
    text = text.replace("scripts/application_start.sh\n      timeout: 120", "scripts/application_start.sh\n      timeout: 3700")
    with open(appspec, "w", encoding="utf-8") as handle:
        handle.write(text)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    result = deploy(world, inventory(world, tmp_path, load_balancer=False), rev, ledger_path, check=True,
                    deployment_root="/srv/cd-root", max_revisions=1)
    shown = result.stdout + result.stderr
    assert "[WARNING]" in shown and "add up to 3700 seconds" in shown, shown[-3000:]
    (host,) = fleet_hosts[:1]
    deployment_id = last_deployment(ledger_path)["deployment_id"]
    assert world.fleet.ssh(host, "ls -d /srv/cd-root/*/%s/deployment-archive | wc -l" % deployment_id).strip() == "1"
    assert world.fleet.ssh(host, "test -e /opt/codedeploy-agent/deployment-root && echo used || echo unused").strip() == "unused"
