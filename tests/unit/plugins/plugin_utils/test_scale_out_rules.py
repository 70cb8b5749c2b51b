"""Scale-out rules (plugin_utils/scale_out.py, module_utils/lifecycle_hooks.py) and the EDA rulebook's structure, without AWS.

The planner runs against a real SQLite ledger; the rulebook's conditions are evaluated on real Auto Scaling message samples and its
extra vars rendered with Jinja2 onto the playbook's inputs (ansible-rulebook runs the rulebook in tests/integration/test_scale_out.py)."""
import json
import os
import re

import jinja2
import pytest
import yaml

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks as hooks
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import scale_out as scale

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
RULEBOOK = os.path.join(REPO, "extensions", "eda", "rulebooks", "scale_out.yml")
PLAYBOOK = os.path.join(REPO, "playbooks", "scale_out.yml")
TOKEN = "bcd2f1b8-9a78-44d3-8a7a-4dd07d7cf635"
LAUNCH = {"Origin": "EC2", "LifecycleHookName": "rollout-codedeploy-web_production", "Destination": "AutoScalingGroup",
          "AccountId": "123456789012", "RequestId": "4c1c4dd4-5d9d-4ea4-a3e6-1c0b52b10d6c",
          "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "AutoScalingGroupName": "web-asg", "Service": "AWS Auto Scaling",
          "Time": "2026-11-30T17:00:00.000Z", "EC2InstanceId": "i-0123456789abcdef0", "LifecycleActionToken": TOKEN,
          "NotificationMetadata": hooks.metadata("web_production")}
TEST_NOTIFICATION = {"AccountId": "123456789012", "RequestId": "x", "AutoScalingGroupARN": "arn:aws:autoscaling:...", "AutoScalingGroupName":
                     "web-asg", "Service": "AWS Auto Scaling", "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2026-11-30T17:00:00Z"}
EVENTBRIDGE = {"version": "0", "id": "1", "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
               "account": "123456789012", "region": "us-east-1", "detail": dict(LAUNCH)}
TERMINATING = dict(LAUNCH, LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING")


# ------------------------------------------------------------------------------ hook names and specs
def test_hook_names_identify_the_collection_and_the_group_and_stay_valid():
    assert hooks.hook_name("web_production") == "rollout-codedeploy-web_production"
    assert hooks.hook_name("web_production") != hooks.hook_name("web_canary")
    odd = hooks.hook_name("shop.eu west")
    assert re.match(r"^[A-Za-z0-9_/-]+$", odd)
    long_a, long_b = hooks.hook_name("a" * 300 + "x"), hooks.hook_name("a" * 300 + "y")
    assert len(long_a) == 255 and long_a != long_b
    with pytest.raises(hooks.HookError, match="deployment_group"):
        hooks.hook_name("  ")


def test_desired_hook_checks_its_inputs():
    hook = hooks.desired_hook("web_production", 600, "ABANDON", "arn:aws:sqs:us-east-1:1:q", "arn:aws:iam::1:role/r")
    assert hook["LifecycleTransition"] == hooks.LAUNCHING and hook["HeartbeatTimeout"] == 600
    assert json.loads(hook["NotificationMetadata"]) == {"collection": "rollout.codedeploy", "deployment_group": "web_production"}
    assert "NotificationTargetARN" not in hooks.desired_hook("web_production")
    for kwargs, word in (({"heartbeat_timeout": 10}, "heartbeat_timeout=10"), ({"default_result": "KEEP"}, "default_result"),
                         ({"notification_target_arn": "arn:aws:sqs:us-east-1:1:q"}, "role_arn"), ({"role_arn": "arn:aws:iam::1:role/r"}, "go together"),
                         ({"notification_target_arn": "web-queue", "role_arn": "r"}, "ARN of an SQS queue")):
        with pytest.raises(hooks.HookError, match=word):
            hooks.desired_hook("web_production", **kwargs)


def test_hook_changes_are_idempotent_and_name_what_differs():
    desired = hooks.desired_hook("web_production")
    described = dict(desired, AutoScalingGroupName="web-asg", GlobalTimeout=172800)
    assert hooks.hook_changes(described, desired)[0] is None
    action, before, after = hooks.hook_changes(dict(described, HeartbeatTimeout=300), desired)
    assert action == "put" and before["HeartbeatTimeout"] == 300 and after["HeartbeatTimeout"] == hooks.DEFAULT_HEARTBEAT
    assert hooks.hook_changes(None, desired)[0] == "put"
    assert hooks.hook_changes(described, None)[0] == "delete" and hooks.hook_changes(None, None)[0] is None


# ------------------------------------------------------------------------------ lifecycle messages
@pytest.mark.parametrize("message", [LAUNCH, json.dumps(LAUNCH), EVENTBRIDGE,
                                     {"Type": "Notification", "Message": json.dumps(LAUNCH)}], ids=["sqs", "text", "eventbridge", "sns"])
def test_launch_messages_in_every_envelope(message):
    fields = hooks.parse_message(message)
    assert fields == {"kind": "launch", "transition": hooks.LAUNCHING, "instance_id": "i-0123456789abcdef0", "auto_scaling_group": "web-asg",
                      "hook_name": "rollout-codedeploy-web_production", "token": TOKEN, "deployment_group": "web_production"}


def test_the_test_notification_and_other_transitions_are_told_apart_and_junk_is_refused():
    assert hooks.parse_message(TEST_NOTIFICATION)["kind"] == "test"
    assert hooks.parse_message(TERMINATING)["kind"] == "other"
    assert hooks.parse_message(dict(LAUNCH, NotificationMetadata="not json"))["deployment_group"] is None
    # ansible-rulebook hands JSON text it renders on as a mapping.
    assert hooks.deployment_group_of(json.loads(hooks.metadata("web_production"))) == "web_production"
    with pytest.raises(hooks.HookError, match="no LifecycleTransition"):
        hooks.parse_message({"hello": 1})
    with pytest.raises(hooks.HookError, match="not JSON"):
        hooks.parse_message("{oops")


# ------------------------------------------------------------------------------ the planner, on a real ledger
def _deploy(book, instances, status="Succeeded", sha="a" * 64, finish=True):
    summary = book.create_deployment("web", "production", "g-1", {"location": "s3://b/web-%s.tgz" % sha[:4], "sha256": sha},
                                     "CodeDeployDefault.OneAtATime", [{"instance_id": i, "host": i} for i in instances])
    deployment_id = summary["deployment_id"]
    if finish:
        book.update_status(deployment_id, "InProgress")
        for instance in instances:
            book.try_start_instance(deployment_id, instance, 1)
            book.finish_instance(deployment_id, instance, status)
        book.update_status(deployment_id, status)
    return deployment_id


@pytest.fixture
def book(tmp_path):
    return ledgers.open_ledger(str(tmp_path / "ledger.sqlite3"))


def test_the_new_instance_gets_the_last_good_revision(book):
    good = _deploy(book, ["i-1", "i-2"])
    _deploy(book, ["i-1"], status="Failed", sha="b" * 64)
    plan = scale.plan_scale_out(book, "web", "production", {"i-9": "web-9"}, wait_seconds=0)
    assert plan["deploy"] and plan["reuse_deployment"] == good and plan["only_hosts"] == ["web-9"] and plan["current"] == []
    assert "web-9 (i-9)" in plan["msg"] and good in plan["msg"]


def test_an_instance_that_already_runs_it_is_not_deployed_again(book):
    _deploy(book, ["i-1", "i-9"])
    plan = scale.plan_scale_out(book, "web", "production", {"i-9": "web-9"}, wait_seconds=0)
    assert not plan["deploy"] and plan["current"] == ["i-9"] and "already run(s)" in plan["msg"]
    assert scale.lifecycle_results(["i-9"], plan) == {"i-9": ("CONTINUE", "nothing to deploy")}


def test_a_group_without_a_successful_deployment_has_nothing_to_deploy(book):
    _deploy(book, ["i-1"], status="Failed")
    plan = scale.plan_scale_out(book, "web", "production", {"i-9": "web-9"}, wait_seconds=0)
    assert not plan["deploy"] and "no successful deployment yet" in plan["msg"] and "CONTINUE" in plan["msg"]
    assert not scale.plan_scale_out(None, "web", "production", {"i-9": "web-9"})["deploy"]


def test_the_planner_waits_for_an_active_deployment_then_takes_its_revision(book):
    _deploy(book, ["i-1"])
    running = _deploy(book, ["i-1"], sha="c" * 64, finish=False)
    clock = [0.0]
    beats = []

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] >= 12:  # the running deployment ends while the scale-out waits
            book.update_status(running, "InProgress")
            book.try_start_instance(running, "i-1", 1)
            book.finish_instance(running, "i-1", "Succeeded")
            book.update_status(running, "Succeeded")
    plan = scale.plan_scale_out(book, "web", "production", {"i-9": "web-9"}, wait_seconds=60, sleep=sleep, clock=lambda: clock[0],
                                heartbeat=lambda: beats.append(clock[0]))
    assert plan["waited_for"] == [running] and plan["reuse_deployment"] == running and plan["deploy"]
    assert "after waiting for deployment(s) %s" % running in plan["msg"] and len(beats) >= 2


def test_the_wait_is_bounded(book):
    running = _deploy(book, ["i-1"], finish=False)
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
    with pytest.raises(scale.ScaleOutError, match="%s of web/production is still Created after waiting 30 s" % running) as caught:
        scale.plan_scale_out(book, "web", "production", {"i-9": "web-9"}, wait_seconds=30, sleep=sleep, clock=lambda: clock[0])
    assert caught.value.code == "TIMEOUT"


def test_instances_must_be_hosts_of_the_group_and_ids_must_look_like_ids():
    hosts = [{"host": "web-1", "instance_id": "i-1"}, {"host": "web-9", "instance_id": "i-9"}]
    assert scale.targets(["i-9"], "web_production", hosts) == {"i-9": "web-9"}
    with pytest.raises(scale.ScaleOutError, match="i-7 are not hosts of deployment group web_production.*Pending:Wait"):
        scale.targets(["i-9", "i-7"], "web_production", hosts)
    assert scale.instance_ids("i-1", ["i-2", "i-1"]) == ["i-1", "i-2"] and scale.instance_ids(None, "i-3,i-4") == ["i-3", "i-4"]
    for bad in ((None, None), ("web-1", None), (None, {"a": 1})):
        with pytest.raises(scale.ScaleOutError):
            scale.instance_ids(*bad)


def test_lifecycle_results_continue_on_success_and_abandon_otherwise():
    plan = {"deploy": True, "current": []}
    rows = [{"instance_id": "i-1", "status": "Succeeded"}, {"instance_id": "i-2", "status": "Failed"}]
    deployment = {"deployment_id": "d-AAAAAAAAA", "instances": rows}
    results = scale.lifecycle_results(["i-1", "i-2"], plan, deployment)
    assert results["i-1"][0] == "CONTINUE" and results["i-2"] == ("ABANDON", "deployment d-AAAAAAAAA is Failed on it")
    assert scale.lifecycle_results(["i-1"], plan)["i-1"][0] == "ABANDON"
    assert scale.lifecycle_results(["i-1"], plan, refused="not in group") == {"i-1": ("ABANDON", "not in group")}


# ------------------------------------------------------------------------------ the rulebook
def _rules():
    with open(RULEBOOK, encoding="utf-8") as handle:
        rulebook = yaml.safe_load(handle)
    assert len(rulebook) == 1 and list(rulebook[0]["sources"][0])[1] == "ansible.eda.aws_sqs_queue"
    return rulebook[0]["rules"]


def _matches(condition, event):
    """Evaluate the rulebook's condition form ``event.<path> == "<text>"`` on an event."""
    found = re.match(r'^event\.([\w.]+) == "([^"]+)"$', condition)
    assert found, "the test understands only path == \"text\" conditions: %s" % condition
    value = event
    for part in found.group(1).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value == found.group(2)


def _playbook_inputs():
    """The extra vars the scale-out playbook reads (``<name> | default(omit)``)."""
    with open(PLAYBOOK, encoding="utf-8") as handle:
        return set(re.findall(r"\{\{ (\w+) \| default\(omit(?:, true)?\) \}\}", handle.read()))


@pytest.mark.parametrize("body, rule_index", [(LAUNCH, 0), (EVENTBRIDGE, 1)], ids=["sqs", "eventbridge"])
def test_the_rulebook_runs_the_scale_out_playbook_for_a_launch(body, rule_index):
    event = {"body": body, "meta": {"MessageId": "m-1"}}
    rules = _rules()
    matching = [index for index, rule in enumerate(rules) if _matches(rule["condition"], event)]
    assert matching == [rule_index]
    action = rules[rule_index]["action"]["run_playbook"]
    assert action["name"] == "rollout.codedeploy.scale_out"
    rendered = {key: jinja2.Template(value).render(event=event) for key, value in action["extra_vars"].items()}
    assert set(rendered) <= _playbook_inputs()
    assert rendered["instance_id"] == "i-0123456789abcdef0" and rendered["lifecycle_action_token"] == TOKEN
    assert rendered["autoscaling_group"] == "web-asg" and rendered["lifecycle_hook_name"] == "rollout-codedeploy-web_production"
    assert hooks.deployment_group_of(rendered["lifecycle_notification_metadata"]) == "web_production"


@pytest.mark.parametrize("body", [TEST_NOTIFICATION, TERMINATING, {"detail-type": "EC2 Instance Launch Successful", "detail": {}}],
                         ids=["test-notification", "terminating", "other-eventbridge"])
def test_the_rulebook_ignores_other_messages(body):
    event = {"body": body, "meta": {}}
    assert not [rule for rule in _rules() if _matches(rule["condition"], event)]
