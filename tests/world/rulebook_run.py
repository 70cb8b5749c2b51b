"""Run extensions/eda/rulebooks/scale_out.yml with ansible-rulebook against a world, end to end (by hand; see docs/scale-out.md).

    python tests/world/cli.py --world dev3 start --hosts 4
    ROLLOUT_RULEBOOK=/path/to/venv/bin/ansible-rulebook JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \\
        python tests/world/rulebook_run.py dev3

ansible-rulebook (pip install ansible-rulebook boto3, in a venv of its own) needs Java 17. The rulebook's source
ansible.eda.aws_sqs_queue comes from Galaxy, which this machine cannot reach: tests/world/eda_standin holds a stand-in with
the same arguments and event shape that reads the world's moto queue. The script deploys v1 to an Auto Scaling group's
instances, installs the launch hook with an SQS target, scales out, binds the new instance to a spare fleet host, sends the
test notification and the launch message Auto Scaling would send, runs ansible-rulebook until the lifecycle action is
completed, and prints the completion, what the new host serves and the ledger's deployments. Not part of tools/test
(ansible-rulebook and Java are not test requirements)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from world import paths  # noqa: E402  (after the sys.path entry)
from world.world import World  # noqa: E402

paths.ensure_collection_link()
sys.path.insert(0, paths.COLLECTIONS_ROOT)

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers  # noqa: E402
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks  # noqa: E402

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eda_standin")
ASG = "web-asg"


def main(name):
    rulebook_bin = os.environ.get("ROLLOUT_RULEBOOK", "ansible-rulebook")
    world = World.attach(name)
    world.moto.reset()
    aws = world.resources()
    tmp = tempfile.mkdtemp(prefix="rulebook-run-")
    arn = aws.target_group("web-tg")
    aws.autoscaling_group(ASG, 2, tags={"Role": "web"}, target_group_arns=[arn])
    world.bind_autoscaling_group(aws, ASG)
    inv = world.codedeploy_inventory(os.path.join(tmp, "web.codedeploy.yml"), {"web": {"production": {
        "autoscaling_groups": [ASG], "load_balancer": {"target_groups": ["web-tg"]}}}})
    ledger = os.path.join(tmp, "ledger.sqlite3")
    rev = os.path.join(tmp, "v1")
    shutil.copytree(paths.SAMPLE_APP, rev)
    with open(os.path.join(rev, "VERSION"), "w", encoding="utf-8") as handle:
        handle.write("1.0.0\n")
    world.ansible_playbook(os.path.join(paths.REPO, "playbooks", "deploy.yml"), inv,
                           extra_vars={"deployment_group": "web_production", "revision": rev, "codedeploy_ledger": ledger})
    sqs = world.moto.client("sqs")
    queue_url = sqs.create_queue(QueueName="web-launches")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    hook = lifecycle_hooks.desired_hook("web_production", 900, "ABANDON", queue_arn, "arn:aws:iam::123456789012:role/asg-notify")
    aws.autoscaling.put_lifecycle_hook(AutoScalingGroupName=ASG, **hook)
    before = set(aws.asg_instances(ASG))
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=ASG, DesiredCapacity=len(before) + 1)
    (new, host), = [(i, h) for i, h in world.bind_autoscaling_group(aws, ASG).items() if i not in before]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": ASG,
                                                                 "Service": "AWS Auto Scaling"}))
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({
        "Origin": "EC2", "Destination": "AutoScalingGroup", "LifecycleHookName": hook["LifecycleHookName"], "Service": "AWS Auto Scaling",
        "LifecycleTransition": lifecycle_hooks.LAUNCHING, "AutoScalingGroupName": ASG, "EC2InstanceId": new,
        "LifecycleActionToken": world.moto.lifecycle_token(new), "NotificationMetadata": hook["NotificationMetadata"]}))
    variables = os.path.join(tmp, "vars.yml")
    with open(variables, "w", encoding="utf-8") as handle:
        handle.write("sqs_queue_name: web-launches\naws_region: us-east-1\ncodedeploy_ledger: %s\n" % ledger)
    env = world.env({"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([paths.COLLECTIONS_ROOT, STANDIN])})
    started = time.monotonic()
    with open(os.path.join(tmp, "rulebook.log"), "w", encoding="utf-8") as log:
        rulebook = os.path.join(paths.REPO, "extensions", "eda", "rulebooks", "scale_out.yml")
        proc = subprocess.Popen([rulebook_bin, "--rulebook", rulebook,  # pylint: disable=consider-using-with
                                 "-i", inv, "--vars", variables, "--print-events"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            while not world.moto.lifecycle_completions() and proc.poll() is None and time.monotonic() - started < 300:
                time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(30)
    print("completions after %.1f s: %s" % (time.monotonic() - started, world.moto.lifecycle_completions()))
    print("%s (%s) serves: %s" % (new, host.name, world.fleet.ssh(
        host, "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/').read().decode())\"", check=False).strip()))
    listed = ledgers.open_ledger(ledger).list_deployments(limit=0)
    print("deployments: %s" % [(d["deployment_id"], d["creator"], d["status"]) for d in listed])
    print("log: %s" % os.path.join(tmp, "rulebook.log"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo")
