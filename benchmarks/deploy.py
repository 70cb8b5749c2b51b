"""Benchmark: a full in-place deployment (rollout.codedeploy.deploy: inventory plugin, ledger, plan,
every lifecycle event, target-group deregistration and registration) of the sample revision against
the hand-written minimal playbook (benchmarks/playbooks/minimal_deploy.yml) that copies the same
bundle, unpacks it and runs the same scripts; and a rollback from the archives on the hosts against
one forward batch.

Both run in one process, alternating, on the same fleet hosts of the ``bench`` world, AllAtOnce.
Printed: medians, the ratio (goal <= 1.3, benchmarks/README.md), the per-host overhead beyond the
baseline (goal < 2 s) and the rollback / forward-batch ratio (goal <= 1).

Round trips: one more deployment and one one-task ``ansible.builtin.ping`` play on the same hosts run
with ``-vvv``, untimed; every ``<address> SSH: EXEC`` line of their output (a remote command, a
pipelined module run or a file transfer) counts as one SSH command of that host
(tests/world/round_trips.py). Printed: SSH commands per host for the deployment and for ping, their
ratio (goal <= 2.5), and the ratio of wall times of the deployment and the ping play (timed each round).

    tools/setup && .venv/bin/python benchmarks/deploy.py [--hosts 8] [--rounds 3]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from world import paths  # noqa: E402  (after the sys.path entry)
from world.round_trips import per_host, ssh_commands  # noqa: E402
from world.world import World  # noqa: E402

WEB_PRODUCTION = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": "CodeDeployDefault.AllAtOnce",
                  "load_balancer": {"target_groups": ["web-tg"]}, "file_exists_behavior": "OVERWRITE"}


def timed(world, args):
    started = time.monotonic()
    world.ansible(args)
    return time.monotonic() - started


PING_PLAY = """- name: Reach every host once
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def commands_per_host(world, args, addresses):
    """SSH commands per host of one untimed -vvv run of ``args``, in the order of ``addresses``."""
    return per_host(ssh_commands(world.ansible(args + ["-vvv"]).stdout), addresses)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--world", default="bench")
    args = parser.parse_args(argv)

    paths.ensure_collection_link()
    work = tempfile.mkdtemp(prefix="rollout-bench-")
    world = World(args.world).start(args.hosts)
    try:
        aws = world.resources()
        bound = world.launch_bound(aws, args.hosts, {"Role": "web"})
        arn = aws.target_group("web-tg")
        aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in bound])
        inventory = world.codedeploy_inventory(os.path.join(work, "web.codedeploy.yml"), {"web": {"production": WEB_PRODUCTION}})
        ledger = os.path.join(work, "ledger.sqlite3")
        static = os.path.join(work, "hosts.ini")
        with open(static, "w", encoding="utf-8") as handle:
            handle.write("[fleet]\n" + "".join("%s ansible_host=%s\n" % (h.name, h.address) for h in bound.values()))
        minimal = ["ansible-playbook", "-i", static, os.path.join(paths.REPO, "benchmarks", "playbooks", "minimal_deploy.yml")]
        ours = ["ansible-playbook", "-i", inventory, os.path.join(paths.REPO, "playbooks", "deploy.yml"),
                "-e", json.dumps({"deployment_group": "web_production", "revision": paths.SAMPLE_APP, "codedeploy_ledger": ledger})]
        ping = os.path.join(work, "ping.yml")
        with open(ping, "w", encoding="utf-8") as handle:
            handle.write(PING_PLAY)
        ping = ["ansible-playbook", "-i", static, ping]
        addresses = [h.address for h in bound.values()]
        timed(world, ours)  # warm-up; also leaves a good revision for the first rollback
        ours_commands, ping_commands = commands_per_host(world, ours, addresses), commands_per_host(world, ping, addresses)
        baseline, collection, rollbacks, pings = [], [], [], []
        for _round in range(args.rounds):
            baseline.append(timed(world, minimal))
            collection.append(timed(world, ours))
            pings.append(timed(world, ping))
            # Roll back to the deployment before the one just made (its archive is still on every host).
            listed = json.loads(world.ansible(["ansible", "localhost", "-c", "local", "-o", "-m", "rollout.codedeploy.deployment_info", "-a",
                                               "application=web deployment_group=production statuses=Succeeded limit=2 ledger=%s" % ledger]
                                              ).stdout.split("=>", 1)[1])["deployments"]
            rollbacks.append(timed(world, ["ansible-playbook", "-i", inventory, os.path.join(paths.REPO, "playbooks", "rollback.yml"),
                                           "-e", json.dumps({"deployment_group": "web_production", "deployment_id": listed[1]["deployment_id"],
                                                             "codedeploy_ledger": ledger})]))
        rollback = statistics.median(rollbacks)
        base, mine = statistics.median(baseline), statistics.median(collection)
        print("hosts: %d, rounds: %d, sample revision, AllAtOnce, target group web-tg" % (args.hosts, args.rounds))
        print("minimal playbook (no LB, no ledger): median %.2f s  %s" % (base, " ".join("%.2f" % t for t in baseline)))
        print("rollout.codedeploy.deploy (all events): median %.2f s  %s" % (mine, " ".join("%.2f" % t for t in collection)))
        print("ratio deploy / minimal: %.2f (goal <= 1.3)" % (mine / base))
        print("overhead beyond the baseline per host: %.2f s (goal < 2 s)" % ((mine - base) / args.hosts))
        print("rollback from archives on the hosts: median %.2f s  %s = %.2f x one forward batch (goal <= 1)" % (
            rollback, " ".join("%.2f" % t for t in rollbacks), rollback / mine))
        mean_ours, mean_ping = statistics.mean(ours_commands), statistics.mean(ping_commands)
        print("SSH commands per host: deploy %s (min %d, max %d), ping %s; ratio deploy / ping: %.2f (goal <= 2.5)" % (
            "%.1f" % mean_ours, min(ours_commands), max(ours_commands), "%.1f" % mean_ping, mean_ours / mean_ping))
        ping_time = statistics.median(pings)
        print("one-task ping play: median %.2f s  %s; wall time deploy / ping: %.2f" % (
            ping_time, " ".join("%.2f" % t for t in pings), mine / ping_time))
    finally:
        world.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
