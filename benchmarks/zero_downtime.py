"""Benchmark: rollouts of the sample app under real traffic, and the requests they lose.

In the ``bench`` world, four fleet hosts serve the sample app behind the world's HAProxy while a bounded
load generator (tests/world/load.py: 4 workers, a new connection per request, at most 240 s per rollout)
sends requests to the HAProxy frontend. The rollouts (tests/world/rollouts.py), first with HAProxy driven by
the collection (``load_balancer.haproxy_backends``), then with a moto target group that the harness mirrors
into HAProxy with ALB-like draining:

    v2 OneAtATime, v3 HalfAtATime, a manual rollback to v2, v4 failing ValidateService on one host with
    automatic rollback.

The baseline, measured in the same run: the same OneAtATime rollout with traffic control switched off
(``deployment_style.traffic_control: false``), where HAProxy learns that a host went away only from its
own health checks.

Printed for each rollout: requests, failed requests, p50 and p99 latency, and how long each host was out of
rotation (BlockTraffic's start to AllowTraffic's end, from the ledger). The last line is
``failed requests: F of N`` over every rollout with traffic control (the baseline is not counted).

    tools/setup && .venv/bin/python benchmarks/zero_downtime.py [--hosts 4] [--json results.json]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from world import paths  # noqa: E402  (after the sys.path entry)

paths.ensure_collection_link()
if paths.COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, paths.COLLECTIONS_ROOT)

from world.rollouts import Stage  # noqa: E402
from world.world import World  # noqa: E402


def story(stage):
    """The rollouts of one stage, each a Run; v1 is deployed first without load."""
    first = stage.deploy("1.0.0", load=False, name="v1 (setup, no load)", extra={"deployment_config": "CodeDeployDefault.AllAtOnce"})
    if first.proc.returncode != 0:
        raise SystemExit("the setup deployment failed:\n%s" % first.proc.stdout[-3000:])
    stage.all_serving()
    runs = [stage.deploy("2.0.0", name="v2 OneAtATime")]
    good = runs[-1].deployment
    runs.append(stage.deploy("3.0.0", name="v3 HalfAtATime", extra={"deployment_config": "CodeDeployDefault.HalfAtATime"}))
    runs.append(stage.rollback(good["deployment_id"], name="manual rollback to v2"))
    runs.append(stage.deploy("4.0.0", failing_hosts=[], name="v4 failing ValidateService, automatic rollback", extra={"auto_rollback": True}))
    return runs


def line(via, run):
    summary = run.summary()
    out = list(summary["out_of_rotation_s"].values())
    rotation = "out of rotation per host: min %.1f s, median %.1f s, max %.1f s" % (
        min(out), statistics.median(out), max(out)) if out else "no host left rotation"
    return "%-13s %-46s %-26s requests %6d  failed %4d  p50 %6.1f ms  p99 %7.1f ms  %s" % (
        via, summary["rollout"], summary["status"], summary["requests"], summary["failed"], summary["p50_ms"] or 0.0,
        summary["p99_ms"] or 0.0, rotation)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--world", default="bench")
    parser.add_argument("--json", help="write every rollout's figures to this file")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="rollout-bench-")
    world = World(args.world).start(args.hosts)
    results, counted = [], []
    try:
        print("hosts: %d behind HAProxy %s; load: 4 workers, new connection per request" % (args.hosts, world.balancer.address))
        for via in ("haproxy", "target_group"):
            aws = world.resources()
            world.moto.reset()
            world.fleet.restart(sorted(world.fleet.hosts.values(), key=lambda h: h.index))
            folder = os.path.join(work, via)
            os.makedirs(folder)
            with Stage(world, aws, folder, hosts=args.hosts, via=via) as stage:
                for run in story(stage):
                    print(line(via, run), flush=True)
                    results.append(dict(run.summary(), via=via))
                    counted.append(run)
        world.moto.reset()
        world.fleet.restart(sorted(world.fleet.hosts.values(), key=lambda h: h.index))
        folder = os.path.join(work, "baseline")
        os.makedirs(folder)
        aws = world.resources()
        with Stage(world, aws, folder, hosts=args.hosts, via="haproxy", traffic_control=False) as stage:
            stage.deploy("1.0.0", load=False, name="v1 (setup, no load)")
            run = stage.deploy("2.0.0", name="baseline: v2 OneAtATime, no traffic control")
            print(line("no control", run), flush=True)
            results.append(dict(run.summary(), via="baseline"))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(results, handle, indent=2)
        failed = sum(run.load.failed for run in counted)
        total = sum(run.load.count for run in counted)
        print("baseline without traffic control: %d of %d requests failed" % (results[-1]["failed"], results[-1]["requests"]))
        print("failed requests: %d of %d" % (failed, total))
    finally:
        world.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
