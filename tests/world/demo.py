"""The demo (tools/demo): the embedded world and what the collection does in it.

It builds the world a deployment group needs (EC2 instances tagged and in an Auto Scaling group,
each played by a real SSH host; a target group behind an ALB; a versioned S3 bucket), shows which
hosts the inventory plugin selects and reaches, uploads the sample revision to S3 and deploys it in
place through the target group, then deploys a revision whose ValidateService fails, which is rolled
back automatically, and shows both deployments from the ledger. Each issue that adds a capability
extends this script, so that one command always shows the whole product.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from world import paths  # noqa: E402  (after the sys.path entry)
from world.fleet import FleetError  # noqa: E402
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
    standalone = world.launch_bound(aws, 2, {"Env": "demo", "Role": "web"}, zone="us-east-1b")
    aws.elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": i, "Port": 8080} for i in standalone])
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


WEB_PRODUCTION = {
    "ec2_tag_set": [[{"key": "Env", "value": "demo"}], [{"key": "Role", "value": "web"}]],
    "autoscaling_groups": ["web-asg"],
    "deployment_config": "CodeDeployDefault.OneAtATime",
    "load_balancer": {"target_groups": ["web-tg"]},
    "auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
}


def upload(world, work, name, version, fail_validate=False):
    """Build a variant of the sample revision and upload it with rollout.codedeploy.revision; return its s3:// location."""
    source = os.path.join(work, name)
    shutil.copytree(paths.SAMPLE_APP, source)
    with open(os.path.join(source, "VERSION"), "w", encoding="utf-8") as handle:
        handle.write(version + "\n")
    if fail_validate:
        open(os.path.join(source, "FAIL_VALIDATE"), "w", encoding="utf-8").close()
    out = world.ansible(["ansible", "localhost", "-c", "local", "-o", "-m", "rollout.codedeploy.revision", "-a",
                         "path=%s bucket=%s key=sample-app/%s.tgz dest=%s/" % (source, BUCKET, name, work)]).stdout
    result = json.loads(out.split("=>", 1)[1])
    print("uploaded %s: %s (sha256 %s)" % (name, result["location"], result["sha256"][:16]))
    return "s3://%s/sample-app/%s.tgz" % (BUCKET, name)


def deploy(world, inventory, location, ledger):
    started = time.monotonic()
    proc = world.ansible(["ansible-playbook", "-i", inventory, os.path.join(paths.REPO, "playbooks", "deploy.yml"),
                          "-e", json.dumps({"deployment_group": "web_production", "revision": location, "codedeploy_ledger": ledger})],
                         check=False)
    seen = []
    for line in proc.stdout.splitlines():
        if '"msg": "Deployment d-' in line:
            text = line.strip().split('"msg": "', 1)[1].rstrip('"')
            if text not in seen:
                seen.append(text)
                print(text)
    print("(%.1f s, exit %d)" % (time.monotonic() - started, proc.returncode))
    return proc


def show_ledger(world, ledger):
    out = world.ansible(["ansible", "localhost", "-c", "local", "-o", "-m", "rollout.codedeploy.deployment_info", "-a",
                         "application=web deployment_group=production ledger=%s" % ledger]).stdout
    listed = json.loads(out.split("=>", 1)[1])["deployments"]
    for summary in reversed(listed):
        out = world.ansible(["ansible", "localhost", "-c", "local", "-o", "-m", "rollout.codedeploy.deployment_info", "-a",
                             "deployment_id=%s ledger=%s" % (summary["deployment_id"], ledger)]).stdout
        deployment = json.loads(out.split("=>", 1)[1])["deployments"][0]
        links = deployment.get("rollback_info") or {}
        link = ""
        if links.get("rollback_triggering_deployment_id"):
            link = "  rolls back %s" % links["rollback_triggering_deployment_id"]
        elif links.get("rollback_deployment_id"):
            link = "  rolled back by %s" % links["rollback_deployment_id"]
        location = (deployment.get("revision") or {}).get("location")
        print("%s  %-9s creator=%-8s %s%s" % (deployment["deployment_id"], deployment["status"], deployment["creator"], location, link))
        if deployment.get("error"):
            print("    error %s: %s" % (deployment["error"]["code"], deployment["error"]["message"][:300]))
        for instance in deployment.get("instances") or []:
            failed = [e for e in instance.get("events") or [] if e["status"] == "Failed"]
            note = ", %s failed: %s" % (failed[0]["event"], failed[0]["message"]) if failed else ""
            count = len(instance.get("events") or [])
            print("    %-8s %-20s %-9s %d events%s" % (instance.get("host"), instance["instance_id"], instance["status"], count, note))


def deployments(world):
    """Deploy 1.0.0 through the target group, then a 2.0.0 whose ValidateService fails and is rolled back."""
    work = tempfile.mkdtemp(prefix="rollout-demo-")
    ledger = os.path.join(world.fleet.state, "ledger.sqlite3")
    inventory = world.codedeploy_inventory(os.path.join(world.fleet.state, "demo.codedeploy.yml"), {"web": {"production": WEB_PRODUCTION}})
    try:
        step("The inventory plugin selects deployment group web/production (tag set Env=demo AND Role=web, plus web-asg)")
        print(world.ansible(["ansible-inventory", "-i", inventory, "--graph", "web_production"]).stdout)
        step("Uploading two revisions to s3://%s with rollout.codedeploy.revision" % BUCKET)
        good = upload(world, work, "sample-app-1.0.0", "1.0.0")
        bad = upload(world, work, "sample-app-2.0.0", "2.0.0", fail_validate=True)
        step("Deploying 1.0.0 in place, OneAtATime, each host taken out of web-tg and put back")
        if deploy(world, inventory, good, ledger).returncode != 0:
            raise FleetError("the first deployment should have succeeded")
        step("Deploying 2.0.0, whose ValidateService fails: the deployment stops and rolls back automatically")
        if deploy(world, inventory, bad, ledger).returncode == 0:
            raise FleetError("the second deployment should have failed")
        step("The ledger (rollout.codedeploy.deployment_info): %s" % ledger)
        show_ledger(world, ledger)
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
        deployments(world)
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
