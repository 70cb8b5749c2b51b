# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the ledger bookkeeping of one deployment to 1,000 synthetic hosts x 13 lifecycle events (SQLite).

What one deployment writes and reads, with the calls the controller makes: the history for
unhealthy-first ordering, create_deployment, and per host try_start_instance, record_events once
per step (5 steps cover the 13 events), finish_instance; a lease renewal per batch; the final
status; then get_deployment with every instance and event, and a listing.  Every event carries a
log tail (200 characters, 2,048 for failures).

Prints wall time and peak memory (tracemalloc, in a second identical run, since tracing slows
Python down; and the process's maximum RSS).  Goal (benchmarks/README.md): planning and ledger
bookkeeping for 1,000 hosts under 2 s and 100 MB.  ``--reopen`` opens the ledger again for every
call, as action plugins running in forked workers do (one connection per task).

    .venv/bin/python benchmarks/ledger.py [--hosts 1000] [--batch 100] [--reopen]
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from world import paths  # noqa: E402  (after the sys.path entry)

paths.ensure_collection_link()
sys.path.insert(0, paths.COLLECTIONS_ROOT)

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config  # noqa: E402
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledger_api  # noqa: E402

STEPS = (
    ("BeforeBlockTraffic",), ("BlockTraffic",),
    ("AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
     "ValidateService", "BeforeAllowTraffic"),
    ("AllowTraffic",), ("AfterAllowTraffic",),
)


def bookkeeping(location, hosts, batch, reopen):
    """One deployment's ledger traffic; returns the number of ledger calls."""
    current = [ledger_api.open_ledger(location)]

    def ledger():
        if reopen:
            # What a forked worker does: open, call, exit.  Ansible's workers leave with os._exit, so the
            # connection is dropped, not closed (closing the last connection would checkpoint the WAL).
            current[0] = ledger_api.open_ledger(location)
        return current[0]

    instances = [{"instance_id": "i-%08d" % n, "host": "web-%04d" % n, "zone": "us-east-1%s" % "abc"[n % 3]} for n in range(hosts)]
    calls = 1
    history = ledger().instance_history("web", "production", [i["instance_id"] for i in instances])
    # The plan is part of the figure: order (unhealthy first) and batches for 1,000 hosts.
    plan = deployment_config.plan_deployment("CodeDeployDefault.HalfAtATime", [
        {"name": i["host"], "healthy": (history.get(i["instance_id"]) or {}).get("status") != "Failed", "zone": i["zone"]} for i in instances])
    assert sum(plan.batch_sizes) == hosts
    deployment_id = ledger().create_deployment("web", "production", "dg-1", {"s3": {"bucket": "b", "key": "k", "sha256": "a" * 64}},
                                               "CodeDeployDefault.HalfAtATime", instances)["deployment_id"]
    ledger().update_status(deployment_id, "InProgress")
    calls += 2
    stamp = ledger_api.utc_now()
    for first in range(0, hosts, batch):
        ledger().renew_lease(deployment_id)
        calls += 1
        for number in range(first, min(first + batch, hosts)):
            instance_id = instances[number]["instance_id"]
            ledger().try_start_instance(deployment_id, instance_id, hosts)
            failed = number % 97 == 0
            for step in STEPS:
                ledger().record_events(deployment_id, instance_id, [{
                    "event": event, "status": "Failed" if failed and event == "ValidateService" else "Succeeded",
                    "start": stamp, "end": stamp, "error_code": "ScriptFailed" if failed else None,
                    "log_tail": ("x" * 2048) if failed else ("[stdout]%s ok on web-%04d " % (event, number)).ljust(200, ".")}
                    for event in step])
            ledger().finish_instance(deployment_id, instance_id, "Failed" if failed else "Succeeded")
            calls += 2 + len(STEPS)
    ledger().update_status(deployment_id, "Succeeded")
    full = ledger().get_deployment(deployment_id)
    ledger().list_deployments("web", "production")
    calls += 3
    current[0].close()
    assert len(full["instances"]) == hosts and all(len(i["events"]) == 13 for i in full["instances"])
    return calls


def run(hosts, batch, reopen, traced):
    work = tempfile.mkdtemp(prefix="rollout-ledger-bench-")
    try:
        location = os.path.join(work, "ledger.sqlite3")
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        calls = bookkeeping(location, hosts, batch, reopen)
        elapsed = time.perf_counter() - started
        peak = None
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        size = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work))
        return elapsed, peak, calls, size
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="hosts per batch (one lease renewal each)")
    parser.add_argument("--reopen", action="store_true", help="open the ledger for every call, as forked action plugins do")
    args = parser.parse_args(argv)
    elapsed, _peak, calls, size = run(args.hosts, args.batch, args.reopen, traced=False)
    _elapsed, peak, _calls, _size = run(args.hosts, args.batch, args.reopen, traced=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("planning + ledger bookkeeping, SQLite, %d hosts x 13 events, %d ledger calls%s" % (
        args.hosts, calls, " (ledger opened for every call)" if args.reopen else ""))
    print("  wall time          %.2f s   (goal < 2 s with planning; %.2f ms per call)" % (elapsed, 1000.0 * elapsed / calls))
    print("  peak traced memory %.1f MB  (tracemalloc, Python allocations)" % (peak / 1024.0 / 1024.0))
    print("  max RSS            %.1f MB  (whole process, goal < 100 MB)" % rss)
    print("  ledger file        %.1f MB" % (size / 1024.0 / 1024.0))


if __name__ == "__main__":
    main()
