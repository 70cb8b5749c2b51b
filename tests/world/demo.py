"""The demo (tools/demo): the embedded world and what the collection can do in it.

Today it builds the world a deployment group needs (EC2 instances tagged and in an Auto Scaling
group, each played by a real SSH host; a target group behind an ALB; a versioned S3 bucket)
and shows which hosts Ansible reaches. Each issue that adds a capability extends this script,
so that one command always shows the whole product.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from world.fleet import FleetError  # noqa: E402  (after the sys.path entry)
from world.world import World  # noqa: E402

BUCKET = "rollout-demo-revisions"


def step(message):
    print("\n==> %s" % message, flush=True)


def build(world):
    aws = world.resources()
    step("AWS (moto server at %s): VPC, target group web-tg behind an ALB, bucket %s" % (world.moto.endpoint, BUCKET))
    target_group = aws.target_group("web-tg")
    aws.bucket(BUCKET)
    step("EC2: Auto Scaling group web-asg (3 instances, registered in web-tg) and tagged standalone instances")
    asg = aws.autoscaling_group("web-asg", 3, tags={"Env": "demo", "Role": "web"}, target_group_arns=[target_group])
    world.bind_autoscaling_group(aws, "web-asg")
    world.launch_bound(aws, 2, {"Env": "demo", "Role": "web"}, zone="us-east-1b")
    world.launch_bound(aws, 1, {"Env": "demo", "Role": "api"}, zone="us-east-1c")
    aws.launch(1, {"Env": "demo", "Role": "web"}, state="stopped")
    print("web-asg members: %s" % ", ".join(asg))
    return aws


def plain(value):
    """ansible-inventory --list marks template-unsafe strings as {"__ansible_unsafe": ...}: unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def show_reach(world):
    inventory = world.aws_ec2_inventory(os.path.join(world.fleet.state, "demo.aws_ec2.yml"), filters={"tag:Env": "demo"})
    step("Inventory from moto (amazon.aws.aws_ec2, running instances tagged Env=demo): %s" % inventory)
    print(world.ansible(["ansible-inventory", "-i", inventory, "--graph"]).stdout)
    hostvars = plain(json.loads(world.ansible(["ansible-inventory", "-i", inventory, "--list"]).stdout)["_meta"]["hostvars"])
    step("Reaching every selected host over SSH (ansible -m command -a hostname, pipelining)")
    started = time.monotonic()
    ping = world.ansible(["ansible", "-i", inventory, "all", "-m", "ansible.builtin.command", "-a", "hostname", "-o"], check=False)
    elapsed = time.monotonic() - started
    answers = {}
    for line in ping.stdout.splitlines():
        name, _sep, rest = line.partition(" | ")
        answers[name.strip()] = rest
    print("%-8s %-21s %-13s %-11s %-10s %s" % ("host", "instance", "address", "zone", "asg", "answer"))
    reached = 0
    for name in sorted(hostvars):
        var = hostvars[name]
        asg = var.get("tags", {}).get("aws:autoscaling:groupName", "-")
        answer = answers.get(name, "no answer")
        ok = answer.startswith("CHANGED") or answer.startswith("SUCCESS")
        reached += ok
        shown = answer.split("(stdout)")[-1].strip() if ok else answer
        zone = var.get("placement", {}).get("availability_zone")
        print("%-8s %-21s %-13s %-11s %-10s %s" % (name, var.get("instance_id"), var.get("ansible_host"), zone, asg, shown))
    print("%d of %d hosts reached in %.1f s" % (reached, len(hostvars), elapsed))
    if reached != len(hostvars) or not hostvars:
        raise FleetError("not every selected host answered:\n%s\n%s" % (ping.stdout, ping.stderr))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the world running (stop it with tools/world stop)")
    parser.add_argument("--hosts", type=int, default=6, help="fleet hosts to start (default 6)")
    args = parser.parse_args(argv)
    step("Starting the demo world: moto server and %d SSH hosts in network namespaces" % args.hosts)
    world = World("demo").start(args.hosts)
    try:
        build(world)
        show_reach(world)
    except FleetError as exc:
        print("demo failed: %s" % exc, file=sys.stderr)
        world.stop()
        return 1
    except BaseException:
        world.stop()
        raise
    if args.keep:
        step("The world keeps running: source %s, then use ansible-playbook or aws --endpoint-url; "
             "tools/world stop ends it" % os.path.join(world.fleet.state, "env.sh"))
    else:
        world.stop()
        step("Demo finished; the world is stopped (run with --keep to explore it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
