"""Inventory benchmark: rollout.codedeploy.codedeploy against amazon.aws.aws_ec2 over 2,000 instances in moto.

For each scenario, one inventory source file of each plugin selects the same hosts (checked:
the script fails when the host sets differ). Each file is read with ``ansible-inventory --list``
in a subprocess, alternately, ``--repeat`` times; the figures are the number of AWS API calls
of one run (the same in every run) and the median and best wall time of the command (the machine
may be shared: the best time is the least disturbed one).

AWS calls are counted as HTTP requests: both plugins talk to a counting proxy on loopback that
forwards every request unchanged to the bench world's moto server and records the API action
(``Action=`` of the query protocol, which EC2 and Auto Scaling use). Nothing in either plugin is
patched; the proxy costs both the same per call.

Usage (as root, from the repository root, after tools/setup):
    .venv/bin/python benchmarks/inventory.py [--instances 2000] [--repeat 5] [--json results.json]

The script starts the ``bench`` world (moto and one idle fleet host) and stops it at the end.
"""
import argparse
import collections
import http.client
import http.server
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from world import paths  # noqa: E402  pylint: disable=wrong-import-position
from world.aws import REGION, ZONES  # noqa: E402  pylint: disable=wrong-import-position
from world.world import World  # noqa: E402  pylint: disable=wrong-import-position

ASGS = {"web-asg": (300, {"Env": "prod", "Role": "web"}),
        "api-asg": (150, {"Env": "prod", "Role": "api"}),
        "batch-asg": (100, {"Env": "staging", "Role": "batch"})}
ASG_TAG = "tag:aws:autoscaling:groupName"

# name -> (CodeDeploy deployment groups, aws_ec2 include_filters selecting the same hosts)
SCENARIOS = collections.OrderedDict([
    ("tag set (Env=prod AND Role in web, api)", (
        {"tag-set": {"ec2_tag_set": [[{"key": "Env", "value": "prod"}],
                                     [{"key": "Role", "value": "web"}, {"key": "Role", "value": "api"}]]}},
        [{"tag:Env": "prod", "tag:Role": ["web", "api"]}])),
    ("tag filters on two keys (Role=db OR Team=payments)", (
        {"two-keys": {"ec2_tag_filters": [{"key": "Role", "value": "db"}, {"key": "Team", "value": "payments"}]}},
        [{"tag:Role": "db"}, {"tag:Team": "payments"}])),
    ("Auto Scaling group (web-asg, 300 members)", (
        {"asg": {"autoscaling_groups": ["web-asg"]}},
        [{ASG_TAG: "web-asg"}])),
    ("one file, all three groups", (
        None,  # filled below: the union of the groups above
        [{"tag:Env": "prod", "tag:Role": ["web", "api"]}, {"tag:Role": "db"}, {"tag:Team": "payments"}, {ASG_TAG: "web-asg"}])),
])
groups_of_all = {}
for _groups, _filters in list(SCENARIOS.values())[:3]:
    groups_of_all.update(_groups)
SCENARIOS["one file, all three groups"] = (groups_of_all, SCENARIOS["one file, all three groups"][1])


# ----------------------------------------------------------------------------------------------
# Counting proxy
# ----------------------------------------------------------------------------------------------
class CountingProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to ``target`` and counts requests by API action."""

    def __init__(self, target):
        parsed = urllib.parse.urlparse(target)
        self.target = (parsed.hostname, parsed.port)
        self.calls = collections.Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = self.headers.get("X-Amz-Target")
                if not action:
                    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                    fields.update(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query))
                    action = (fields.get("Action") or ["%s %s" % (self.command, self.path)])[0]
                with proxy.lock:
                    proxy.calls[action] += 1
                connection = http.client.HTTPConnection(*proxy.target, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def take(self):
        with self.lock:
            calls = dict(self.calls)
            self.calls.clear()
        return calls


# ----------------------------------------------------------------------------------------------
# The estate
# ----------------------------------------------------------------------------------------------
def build_estate(resources, total, seed=2000):
    """``total`` instances: the three ASGs, then standalone instances in reservations of 1-6 with random tags,
    about 10% stopped and 5% terminated."""
    rng = random.Random(seed)
    for name, (size, tags) in ASGS.items():
        resources.autoscaling_group(name, size, tags=tags)
    launched = sum(size for size, _tags in ASGS.values())
    values = {"Env": ["prod", "staging", "dev", "Prod"], "Role": ["web", "api", "db", "worker", "cache"],
              "Team": ["payments", "search", "web platform"], "Name": None}
    while launched < total:
        count = min(rng.randint(1, 6), total - launched)
        tags = {}
        for key in rng.sample(sorted(values), rng.randint(1, 4)):
            tags[key] = "host-%d" % launched if key == "Name" else rng.choice(values[key])
        state = rng.choices(["running", "stopped", "terminated"], [85, 10, 5])[0]
        resources.launch(count, tags, zone=rng.choice(ZONES), state=state)
        launched += count
    return launched


def write_sources(directory, endpoint, groups, include_filters):
    codedeploy = os.path.join(directory, "bench.codedeploy.yml")
    with open(codedeploy, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "rollout.codedeploy.codedeploy", "regions": [REGION], "endpoint_url": endpoint,
                        "applications": {"bench": {"deployment_groups": groups}}}, handle, sort_keys=False)
    aws_ec2 = os.path.join(directory, "bench.aws_ec2.yml")
    with open(aws_ec2, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"plugin": "amazon.aws.aws_ec2", "regions": [REGION], "endpoint_url": endpoint,
                        "include_filters": [dict(f, **{"instance-state-name": "running"}) for f in include_filters],
                        "hostnames": ["instance-id"], "compose": {"ansible_host": "private_ip_address"}},
                       handle, sort_keys=False)
    return codedeploy, aws_ec2


def run_inventory(world, source):
    start = time.monotonic()
    proc = subprocess.run(["ansible-inventory", "-i", source, "--list"], env=world.env({"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}),
                          capture_output=True, text=True, check=False, cwd=paths.REPO)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory -i %s failed:\n%s" % (source, proc.stderr[-3000:]))
    hosts = set(json.loads(proc.stdout)["_meta"]["hostvars"])
    return elapsed, hosts


def measure(world, proxy, groups, include_filters, repeat):
    with tempfile.TemporaryDirectory(prefix="rollout-bench-inventory-") as directory:
        sources = dict(zip(("codedeploy", "aws_ec2"), write_sources(directory, proxy.endpoint, groups, include_filters)))
        times = {name: [] for name in sources}
        calls = {}
        hosts = {}
        for _round in range(repeat):
            for name, source in sources.items():
                proxy.take()
                elapsed, hosts[name] = run_inventory(world, source)
                calls[name] = proxy.take()
                times[name].append(elapsed)
    if hosts["codedeploy"] != hosts["aws_ec2"]:
        raise SystemExit("the two inventories select different hosts: %d only in codedeploy, %d only in aws_ec2" % (
            len(hosts["codedeploy"] - hosts["aws_ec2"]), len(hosts["aws_ec2"] - hosts["codedeploy"])))
    return {
        "hosts": len(hosts["codedeploy"]),
        "calls": {name: sum(c.values()) for name, c in calls.items()},
        "calls_by_action": calls,
        "seconds": {name: round(statistics.median(t), 2) for name, t in times.items()},
        "best_seconds": {name: round(min(t), 2) for name, t in times.items()},
        "all_seconds": {name: [round(x, 2) for x in t] for name, t in times.items()},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    paths.ensure_collection_link()
    world = World("bench")
    # One (unused) fleet host: the bridge that carries moto's address is removed when no world has hosts left,
    # which another world stopping during the run would otherwise do.
    world.start(1)
    try:
        started = time.monotonic()
        total = build_estate(world.resources(), args.instances)
        print("bench world: %d instances in moto (%s), built in %.0f s" % (total, world.moto.endpoint, time.monotonic() - started))
        results = collections.OrderedDict()
        with CountingProxy(world.moto.endpoint) as proxy:
            for name, (groups, include_filters) in SCENARIOS.items():
                results[name] = measure(world, proxy, groups, include_filters, args.repeat)
    finally:
        world.stop()

    header = "%-52s %5s | %-13s | %-19s | %-19s | %s" % (
        "scenario", "hosts", "calls cd/ec2", "median s cd/ec2", "best s cd/ec2", "ratios: calls, median, best")
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        calls, median, best = result["calls"], result["seconds"], result["best_seconds"]
        print("%-52s %5d | %5d / %-5d | %7.2f / %-9.2f | %7.2f / %-9.2f | %.2f, %.2f, %.2f" % (
            name, result["hosts"], calls["codedeploy"], calls["aws_ec2"], median["codedeploy"], median["aws_ec2"],
            best["codedeploy"], best["aws_ec2"], calls["codedeploy"] / calls["aws_ec2"],
            median["codedeploy"] / median["aws_ec2"], best["codedeploy"] / best["aws_ec2"]))
    print("\ncalls by action (one run):")
    for name, result in results.items():
        print("  %s: codedeploy %s; aws_ec2 %s" % (name, result["calls_by_action"]["codedeploy"], result["calls_by_action"]["aws_ec2"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"instances": total, "repeat": args.repeat, "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
