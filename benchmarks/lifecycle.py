"""Benchmark: the full in-place lifecycle (rollout.codedeploy.deploy_local) against the hand-written
minimal playbook (benchmarks/playbooks/minimal_deploy.yml) that copies the same bundle, unpacks it and
runs the same scripts.

The revision has no-op hooks for every event, so what is measured is the tools' own overhead.
Both run in the same process, alternating, on the same fleet hosts of the ``bench`` world; the script
prints the medians and their ratio (goal for the full controller, benchmarks/README.md: <= 1.3) and the
per-host overhead beyond the baseline (goal < 2 s).

    tools/setup && .venv/bin/python benchmarks/lifecycle.py [--hosts 1] [--rounds 5]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from world import paths  # noqa: E402  (after the sys.path entry)
from world.world import World  # noqa: E402

EVENTS = ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
APPSPEC = "version: 0.0\nos: linux\nfiles:\n  - source: app/\n    destination: /srv/bench-app\nhooks:\n" + "".join(
    "  %s:\n    - location: scripts/noop.sh\n      timeout: 60\n" % event for event in EVENTS)


def make_revision(root, files=50):
    revision = os.path.join(root, "revision")
    os.makedirs(os.path.join(revision, "app"))
    os.makedirs(os.path.join(revision, "scripts"))
    with open(os.path.join(revision, "appspec.yml"), "w", encoding="utf-8") as handle:
        handle.write(APPSPEC)
    with open(os.path.join(revision, "scripts", "noop.sh"), "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\nexit 0\n")
    os.chmod(os.path.join(revision, "scripts", "noop.sh"), 0o755)
    for number in range(files):
        with open(os.path.join(revision, "app", "file%03d.txt" % number), "w", encoding="utf-8") as handle:
            handle.write("content %d\n" % number * 200)
    return revision


def timed(world, args):
    started = time.monotonic()
    world.ansible(args)
    return time.monotonic() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--world", default="bench", help="the world to run in (default bench)")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="rollout-bench-")
    world = World(args.world).start(args.hosts)
    try:
        revision = make_revision(work)
        hosts = sorted(world.fleet.hosts.values(), key=lambda h: h.index)
        inventory = os.path.join(work, "hosts.ini")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write("[fleet]\n" + "".join("%s ansible_host=%s\n" % (h.name, h.address) for h in hosts))
        minimal = ["ansible-playbook", "-i", inventory, os.path.join(paths.REPO, "benchmarks", "playbooks", "minimal_deploy.yml"),
                   "-e", "minimal_source=%s" % revision,
                   "-e", '{"minimal_files": [{"source": "app/.", "destination": "/srv/bench-app"}]}',
                   "-e", '{"minimal_scripts": {%s}}' % ", ".join('"%s": "scripts/noop.sh"' % e for e in EVENTS)]
        ours = ["ansible-playbook", "-i", inventory, os.path.join(paths.REPO, "playbooks", "deploy_local.yml"),
                "-e", "revision=%s" % revision, "-e", "file_exists_behavior=OVERWRITE"]
        # One warm-up each (SSH masters, Python caches), not counted.
        timed(world, minimal)
        timed(world, ours)
        baseline, collection = [], []
        for _round in range(args.rounds):
            baseline.append(timed(world, minimal))
            collection.append(timed(world, ours))
        base, mine = statistics.median(baseline), statistics.median(collection)
        print("hosts: %d, rounds: %d, revision: 50 files, 5 no-op hooks" % (args.hosts, args.rounds))
        print("minimal playbook (9 remote tasks/host): median %.2f s  %s" % (base, " ".join("%.2f" % t for t in baseline)))
        print("deploy_local (full lifecycle):          median %.2f s  %s" % (mine, " ".join("%.2f" % t for t in collection)))
        print("ratio deploy_local / minimal: %.2f (goal <= 1.3)" % (mine / base))
        print("overhead beyond the baseline per host: %.2f s (goal < 2 s)" % ((mine - base) / args.hosts))
    finally:
        world.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
