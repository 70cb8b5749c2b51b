"""Auto Scaling scale-out (playbooks/scale_out.yml, the lifecycle_hook module, docs/scale-out.md) against moto and real fleet hosts.

An Auto Scaling group's instances are bound to fleet hosts; the group gets v1; the group scales out and its new instance is bound to a
spare fleet host, as the cloud would give it an address. moto never holds an instance in Pending:Wait, so the run gets what the
launch hook's message would carry (instance, hook, token); the world's moto launcher (world.moto_launch) implements
CompleteLifecycleAction and records each result, and ABANDON terminates the instance as AWS does."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from world import paths

from test_deploy import last_deployment, registered, revision, serving

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOKS = os.path.join(paths.REPO, "playbooks")
ASG = "web-asg"
HOOK = "rollout-codedeploy-web_production"


def _setup(world, aws, tmp_path, failing_spare=False):
    """web-asg (2 bound instances) in web-tg, deployment group web_production deployed with v1; returns (inv, ledger, arn, v1)."""
    arn = aws.target_group("web-tg")
    aws.autoscaling_group(ASG, 2, tags={"Role": "web"}, target_group_arns=[arn])
    world.bind_autoscaling_group(aws, ASG)
    _install_hook(aws)
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": {
        "autoscaling_groups": [ASG], "load_balancer": {"target_groups": ["web-tg"]}, "file_exists_behavior": "OVERWRITE"}}})
    ledger_path = str(tmp_path / "ledger.sqlite3")
    spare = world.free_hosts(aws, 1)[0].name
    v1 = revision(tmp_path, "v1", "1.0.0", failing_hosts=[spare] if failing_spare else None)
    world.ansible_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inv,
                           extra_vars={"deployment_group": "web_production", "revision": v1, "codedeploy_ledger": ledger_path})
    return inv, ledger_path, arn


def _install_hook(aws):
    """The group's launch hook, as rollout.codedeploy.lifecycle_hook installs it (that module has its own test below)."""
    aws.autoscaling.put_lifecycle_hook(AutoScalingGroupName=ASG, **lifecycle_hooks.desired_hook("web_production"))


def _launch(world, aws):
    """Scale web-asg out by one; bind the new instance to a spare fleet host. Returns (instance id, fleet host)."""
    before = set(aws.asg_instances(ASG))
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=ASG, DesiredCapacity=len(before) + 1)
    bound = world.bind_autoscaling_group(aws, ASG)
    (instance, host), = [(i, h) for i, h in bound.items() if i not in before]
    return instance, host


def _scale_out(world, inv, ledger_path, check=True, **extra):
    extra_vars = {"codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(os.path.join(PLAYBOOKS, "scale_out.yml"), inv, extra_vars=extra_vars, check=check)


def _hook_vars(world, instance):
    return {"lifecycle_hook_name": HOOK, "lifecycle_action_token": world.moto.lifecycle_token(instance), "autoscaling_group": ASG}


def _deployments(ledger_path):
    return ledgers.open_ledger(ledger_path).list_deployments(limit=0)


def test_a_new_instance_gets_the_last_good_revision_and_continues(world, aws, fleet_hosts, tmp_path):
    inv, ledger_path, arn = _setup(world, aws, tmp_path)
    first = last_deployment(ledger_path)
    instance, host = _launch(world, aws)
    result = _scale_out(world, inv, ledger_path, deployment_group="web_production", instance_id=instance, **_hook_vars(world, instance))
    deployment = last_deployment(ledger_path)
    assert deployment["creator"] == "autoscaling" and deployment["status"] == "Succeeded", deployment.get("error")
    assert [i["instance_id"] for i in deployment["instances"]] == [instance]
    assert deployment["revision"]["sha256"] == first["revision"]["sha256"]
    events = {e["event"]: e["status"] for e in deployment["instances"][0]["events"]}
    assert events["AllowTraffic"] == "Succeeded" and events["Install"] == "Succeeded"
    assert serving(world, host) == "sample-app 1.0.0"
    assert instance in registered(aws, arn)
    assert world.moto.lifecycle_completions() == [{"hook": HOOK, "auto_scaling_group": ASG, "instance_id": instance, "result": "CONTINUE",
                                                   "token": world.moto.lifecycle_token(instance)}]
    assert "%s: CONTINUE" % instance in result.stdout
    # The message delivered again: the instance already runs the revision, nothing is deployed, the action continues.
    again = _scale_out(world, inv, ledger_path, deployment_group="web_production", instance_id=instance, **_hook_vars(world, instance))
    assert "already run(s)" in again.stdout and len(_deployments(ledger_path)) == 2
    assert [c["result"] for c in world.moto.lifecycle_completions()] == ["CONTINUE", "CONTINUE"]


def test_a_failed_scale_out_abandons_the_instance(world, aws, fleet_hosts, tmp_path):
    inv, ledger_path, _arn = _setup(world, aws, tmp_path, failing_spare=True)
    instance, _host = _launch(world, aws)
    result = _scale_out(world, inv, ledger_path, check=False, deployment_group="web_production", instance_id=instance,
                        **_hook_vars(world, instance))
    assert result.returncode != 0
    deployment = last_deployment(ledger_path)
    assert deployment["creator"] == "autoscaling" and deployment["status"] == "Failed"
    assert [c["result"] for c in world.moto.lifecycle_completions()] == ["ABANDON"]
    assert "%s: ABANDON" % instance in result.stdout and "ValidateService" in result.stdout
    assert instance not in aws.asg_instances(ASG)  # Auto Scaling terminates an abandoned instance


def test_an_instance_outside_the_group_is_refused_and_abandoned_and_the_test_notification_ignored(world, aws, fleet_hosts, tmp_path):
    inv, ledger_path, _arn = _setup(world, aws, tmp_path)
    instance, _host = _launch(world, aws)
    stranger = aws.launch(1, {"Role": "db"})[0]
    message = {"LifecycleHookName": HOOK, "AutoScalingGroupName": ASG, "EC2InstanceId": stranger,
               "LifecycleActionToken": world.moto.lifecycle_token(stranger), "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
               "NotificationMetadata": json.dumps({"collection": "rollout.codedeploy", "deployment_group": "web_production"})}
    result = _scale_out(world, inv, ledger_path, check=False, lifecycle_message=message)
    assert result.returncode != 0 and "are not hosts of deployment group web_production" in result.stdout
    assert "ABANDON" in result.stdout and len(_deployments(ledger_path)) == 1
    test_message = {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": ASG, "Service": "AWS Auto Scaling"}
    ignored = _scale_out(world, inv, ledger_path, lifecycle_message=json.dumps(test_message))
    assert "Nothing to do: Auto Scaling's test notification" in ignored.stdout
    assert world.moto.lifecycle_completions() == [] and instance in aws.asg_instances(ASG)  # the stranger is no ASG member: refused


def test_an_instance_launched_during_a_deployment_gets_its_revision_once_it_ends(world, aws, fleet_hosts, tmp_path):
    inv, ledger_path, _arn = _setup(world, aws, tmp_path)
    instance, host = _launch(world, aws)
    v2 = revision(tmp_path, "v2", "2.0.0")
    args = ["ansible-playbook", "-i", inv, os.path.join(PLAYBOOKS, "deploy.yml"), "-e",
            json.dumps({"deployment_group": "web_production", "revision": v2, "codedeploy_ledger": ledger_path})]
    # The deploy's inventory is read before the instance is a host of the group: limit it to the two original hosts.
    originals = [i for i in aws.asg_instances(ASG) if i != instance]
    names = {d["InstanceId"]: {t["Key"]: t["Value"] for t in d.get("Tags", [])}.get("Name")
             for r in aws.ec2.describe_instances(InstanceIds=originals)["Reservations"] for d in r["Instances"]}
    args += ["--limit", ",".join(sorted(names.values()) + ["localhost"])]
    deploy = subprocess.Popen(args, env=world.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # pylint: disable=consider-using-with
                              cwd=paths.REPO)
    try:
        book = ledgers.open_ledger(ledger_path)
        for _attempt in range(600):
            running = [d for d in book.list_deployments(limit=1) if d["status"] == "InProgress"]
            if running or deploy.poll() is not None:
                break
            time.sleep(0.1)
        assert running, "the v2 deployment never showed as InProgress"
        result = _scale_out(world, inv, ledger_path, deployment_group="web_production", instance_id=instance, **_hook_vars(world, instance))
    finally:
        output = deploy.communicate(timeout=600)[0]
    assert deploy.returncode == 0, output[-3000:]
    assert "after waiting for deployment(s) %s" % running[0]["deployment_id"] in result.stdout
    scale = last_deployment(ledger_path)
    assert scale["creator"] == "autoscaling" and scale["status"] == "Succeeded"
    assert scale["revision"]["sha256"] == book.get_deployment(running[0]["deployment_id"])["revision"]["sha256"]
    assert serving(world, host) == "sample-app 2.0.0"
    assert [c["result"] for c in world.moto.lifecycle_completions()] == ["CONTINUE"]


def test_a_group_never_deployed_lets_the_instance_continue(world, aws, fleet_hosts, tmp_path):
    aws.autoscaling_group(ASG, 1, tags={"Role": "web"})
    world.bind_autoscaling_group(aws, ASG)
    _install_hook(aws)
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": {"autoscaling_groups": [ASG]}}})
    instance = aws.asg_instances(ASG)[0]
    result = _scale_out(world, inv, str(tmp_path / "ledger.sqlite3"), deployment_group="web_production", instance_id=instance,
                        **_hook_vars(world, instance))
    assert "has no successful deployment yet" in result.stdout
    assert [c["result"] for c in world.moto.lifecycle_completions()] == ["CONTINUE"]


def _hook_play(tmp_path, name, tasks):
    path = tmp_path / name
    path.write_text(json.dumps([{"name": "lifecycle hooks", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return str(path)


def test_lifecycle_hook_module_installs_updates_and_removes_the_group_hook(world, aws, tmp_path):
    aws.autoscaling_group(ASG, 0)
    queue = "arn:aws:sqs:us-east-1:123456789012:web-launches"
    role = "arn:aws:iam::123456789012:role/asg-notify"
    present = {"rollout.codedeploy.lifecycle_hook": {"deployment_group": "web_production", "autoscaling_groups": [ASG],
                                                     "notification_target_arn": queue, "role_arn": role, "heartbeat_timeout": 1200},
               "register": "hook"}
    other = {"rollout.codedeploy.lifecycle_hook": {"deployment_group": "web_canary", "autoscaling_groups": [ASG]}}
    play = _hook_play(tmp_path, "present.json", [present, other, {"ansible.builtin.debug": {"var": "hook"}}])
    inv = str(tmp_path / "hosts.ini")
    with open(inv, "w", encoding="utf-8") as handle:
        handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    first = world.ansible_playbook(play, inv, options=["--diff"])
    assert "changed=2" in first.stdout
    hooks = {h["LifecycleHookName"]: h for h in aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=ASG)["LifecycleHooks"]}
    assert set(hooks) == {HOOK, "rollout-codedeploy-web_canary"}
    mine = hooks[HOOK]
    assert mine["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING" and mine["DefaultResult"] == "ABANDON"
    assert mine["HeartbeatTimeout"] == 1200 and mine["NotificationTargetARN"] == queue and mine["RoleARN"] == role
    assert json.loads(mine["NotificationMetadata"])["deployment_group"] == "web_production"
    second = world.ansible_playbook(play, inv)
    assert "changed=0" in second.stdout
    changed = dict(present, **{"rollout.codedeploy.lifecycle_hook": dict(present["rollout.codedeploy.lifecycle_hook"], heartbeat_timeout=600)})
    check = world.ansible_playbook(_hook_play(tmp_path, "check.json", [changed]), inv, options=["--check", "--diff"])
    assert "changed=1" in check.stdout and "600" in check.stdout
    assert aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=ASG, LifecycleHookNames=[HOOK])["LifecycleHooks"][0]["HeartbeatTimeout"] == 1200
    absent = {"rollout.codedeploy.lifecycle_hook": {"deployment_group": "web_production", "autoscaling_groups": [ASG], "state": "absent"}}
    gone = world.ansible_playbook(_hook_play(tmp_path, "absent.json", [absent, absent]), inv)
    assert "changed=1" in gone.stdout
    left = [h["LifecycleHookName"] for h in aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=ASG)["LifecycleHooks"]]
    assert left == ["rollout-codedeploy-web_canary"]
    refused = world.ansible_playbook(_hook_play(tmp_path, "bad.json", [dict(present, **{"rollout.codedeploy.lifecycle_hook": {
        "deployment_group": "web_production", "autoscaling_groups": ["no-such-asg"]}})]), inv, check=False)
    assert refused.returncode != 0 and "no-such-asg do not exist" in refused.stdout


# ------------------------------------------------------------------------------ the EDA rulebook, end to end
EDA_VENV = os.path.join(paths.REPO, ".cache", "eda-venv")
STANDIN = os.path.join(paths.REPO, "tests", "world", "eda_standin")


def _rulebook_env(world):
    """ansible-rulebook from tools/setup's venv (.cache/eda-venv) and Java 17; the stand-in for ansible.eda's SQS source (Galaxy,
    where ansible.eda comes from, is out of reach here; it reads the same queue with the same arguments and event shape)."""
    binary = os.path.join(EDA_VENV, "bin", "ansible-rulebook")
    java = shutil.which("java")
    assert os.access(binary, os.X_OK) and java, "ansible-rulebook or java is missing: run tools/setup"
    return binary, world.env({"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([paths.collections_path(), STANDIN]),
                              "JAVA_HOME": os.path.dirname(os.path.dirname(os.path.realpath(java)))})


def test_the_rulebook_deploys_a_launched_instance_from_its_sqs_message(world, aws, fleet_hosts, tmp_path):
    binary, env = _rulebook_env(world)
    inv, ledger_path, arn = _setup(world, aws, tmp_path)
    sqs = world.moto.client("sqs")
    queue_url = sqs.create_queue(QueueName="web-launches")["QueueUrl"]
    instance, host = _launch(world, aws)
    # What Auto Scaling sends to the hook's SQS target: first its test notification (no rule matches it), then the launch.
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": ASG,
                                                                 "Service": "AWS Auto Scaling"}))
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({
        "Origin": "EC2", "Destination": "AutoScalingGroup", "LifecycleHookName": HOOK, "Service": "AWS Auto Scaling",
        "LifecycleTransition": lifecycle_hooks.LAUNCHING, "AutoScalingGroupName": ASG, "EC2InstanceId": instance,
        "LifecycleActionToken": world.moto.lifecycle_token(instance),
        "NotificationMetadata": lifecycle_hooks.desired_hook("web_production")["NotificationMetadata"]}))
    variables = tmp_path / "vars.yml"
    variables.write_text("sqs_queue_name: web-launches\naws_region: us-east-1\ncodedeploy_ledger: %s\n" % ledger_path)
    rulebook = os.path.join(paths.REPO, "extensions", "eda", "rulebooks", "scale_out.yml")
    log_path = tmp_path / "rulebook.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([binary, "--rulebook", rulebook, "-i", inv, "--vars", str(variables)],  # pylint: disable=consider-using-with
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        try:
            deadline = time.monotonic() + 240
            while not world.moto.lifecycle_completions() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # a second (wrong) playbook run, if any, would complete the action again meanwhile
        finally:
            proc.terminate()
            proc.wait(30)
    output = log_path.read_text()
    completions = world.moto.lifecycle_completions()
    assert [(c["instance_id"], c["result"], c["hook"]) for c in completions] == [(instance, "CONTINUE", HOOK)], output[-4000:]
    assert serving(world, host) == "sample-app 1.0.0"
    assert instance in registered(aws, arn)
    deployments = ledgers.open_ledger(ledger_path).list_deployments(limit=0)
    scaled = [d for d in deployments if d["creator"] == "autoscaling"]
    assert [d["status"] for d in scaled] == ["Succeeded"], [(d["deployment_id"], d["creator"], d["status"]) for d in deployments]
    assert [i["instance_id"] for i in ledgers.open_ledger(ledger_path).get_deployment(scaled[0]["deployment_id"])["instances"]] == [instance]
