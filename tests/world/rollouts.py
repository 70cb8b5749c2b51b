"""Rollouts of the sample app under real traffic: the scenarios of the zero-downtime suite and benchmark.

A ``Stage`` is one deployment group of ``hosts`` fleet hosts behind the world's HAProxy, reached in one
of two ways:

- ``via="haproxy"``: the group's ``load_balancer.haproxy_backends`` names the HAProxy backend, and the
  collection drives HAProxy itself, over its stats socket on the balancer host (through that host's
  Ansible connection) or over the TCP admin socket (``runtime="tcp"``);
- ``via="target_group"``: the group names a moto target group, and the harness's mirror
  (``Balancer.mirror_target_group``) makes HAProxy follow that target group the way an ALB treats its
  targets, with draining.

``Stage.deploy`` runs ``ansible-playbook rollout.codedeploy.deploy`` (or ``rollback``) while a bounded
load generator sends requests to the HAProxy frontend, and returns a ``Run``: the playbook's outcome,
every response, and how long each host was out of rotation (from the ledger: BlockTraffic's start to
AllowTraffic's end). Used by tests/integration/test_zero_downtime.py and benchmarks/zero_downtime.py.
"""
import datetime
import json
import os
import shutil

from world import paths
from world.load import Load

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

BACKEND = "web"
PLAYBOOKS = os.path.join(paths.REPO, "playbooks")
BODY = "sample-app %s"


def _seconds(start, end):
    def parse(text):
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


class Run:
    """One rollout under load: ``proc`` (the playbook), ``load`` (LoadResult), ``deployment`` (the ledger's record)."""

    def __init__(self, name, proc, load, deployment):
        self.name = name
        self.proc = proc
        self.load = load
        self.deployment = deployment

    def out_of_rotation(self):
        """{host: seconds from BlockTraffic's start to AllowTraffic's end} for the hosts that left rotation."""
        times = {}
        for instance in (self.deployment or {}).get("instances") or ():
            events = {e["event"]: e for e in instance.get("events") or ()}
            block, allow = events.get("BlockTraffic"), events.get("AllowTraffic")
            if block and allow and block.get("start") and allow.get("end"):
                times[instance.get("host") or instance["instance_id"]] = round(_seconds(block["start"], allow["end"]), 2)
        return times

    def summary(self):
        out = self.out_of_rotation()
        status = (self.deployment or {}).get("status")
        if (self.deployment or {}).get("creator") == "rollback" and self.proc.returncode != 0:
            status = "Failed, rollback %s" % status  # the playbook's own deployment failed and was rolled back
        return {"rollout": self.name, "status": status, "requests": self.load.count,
                "failed": self.load.failed, "p50_ms": self.load.p50, "p99_ms": self.load.p99,
                "out_of_rotation_s": out, "bodies": dict(self.load.bodies)}


class Stage:
    """A deployment group behind the world's HAProxy (see the module docstring)."""

    def __init__(self, world, aws, tmp_path, hosts=4, via="haproxy", runtime="ssh", config="CodeDeployDefault.OneAtATime",
                 auto_rollback=False, traffic_control=True):
        self.world, self.aws, self.tmp = world, aws, str(tmp_path)
        self.via = via
        self.bound = world.launch_bound(aws, hosts, {"Role": "web"})  # {instance id: fleet host}
        self.names = {instance: host.name for instance, host in self.bound.items()}
        self.balancer = world.balancer
        # Without traffic control nothing would ever make a server ready: HAProxy's own checks decide alone.
        self.balancer.configure({BACKEND: [(host.name, host.address, 8080) for host in self.bound.values()]},
                                initial_state="maint" if traffic_control else "ready")
        self.ledger = os.path.join(self.tmp, "ledger.sqlite3")
        group = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": config, "file_exists_behavior": "OVERWRITE"}
        if not traffic_control:
            group["deployment_style"] = {"type": "IN_PLACE", "traffic_control": False}
        if auto_rollback:
            group["auto_rollback"] = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
        self.inventories = []
        self.target_group = None
        if via == "haproxy":
            if runtime == "tcp":
                api = self.balancer.admin_address
            else:
                api = {"host": "haproxy-lb", "socket": "/run/haproxy/admin.sock"}
                lb_inventory = os.path.join(self.tmp, "lb.ini")
                with open(lb_inventory, "w", encoding="utf-8") as handle:
                    handle.write("[balancers]\nhaproxy-lb ansible_host=%s\n" % self.balancer.address)
                self.inventories.append(lb_inventory)
            group["load_balancer"] = {"haproxy_backends": [{"backend": BACKEND, "runtime_api": api, "drain_timeout": 30, "up_timeout": 60}]}
        elif via == "target_group":
            self.target_group = aws.target_group("web-tg")
            group["load_balancer"] = {"target_groups": ["web-tg"]}
        else:
            raise ValueError("via must be haproxy or target_group, not %r" % (via,))
        self.inventories.insert(0, world.codedeploy_inventory(os.path.join(self.tmp, "web.codedeploy.yml"), {"web": {"production": group}}))
        self.mirror = None
        self.mirror_events = []

    # ------------------------------------------------------------------ context: the mirror runs for the stage's life
    def __enter__(self):
        if self.via == "target_group":
            self.mirror = self.balancer.mirror_target_group(self.aws, self.target_group, BACKEND, self.names)
            self.mirror.__enter__()
        return self

    def __exit__(self, exc_type, exc, traceback):
        if self.mirror is not None:
            mirror, self.mirror = self.mirror, None
            try:
                return mirror.__exit__(exc_type, exc, traceback)
            finally:
                self.mirror_events = list(mirror.events)
        return False

    # ------------------------------------------------------------------ revisions and runs
    def revision(self, version, failing_hosts=None):
        target = os.path.join(self.tmp, "rev-%s" % version)
        if not os.path.isdir(target):
            shutil.copytree(paths.SAMPLE_APP, target)
            with open(os.path.join(target, "VERSION"), "w", encoding="utf-8") as handle:
                handle.write(version + "\n")
            if failing_hosts is not None:
                with open(os.path.join(target, "FAIL_VALIDATE"), "w", encoding="utf-8") as handle:
                    handle.write("".join(h + "\n" for h in failing_hosts))
        return target

    def _playbook(self, name, extra):
        args = ["ansible-playbook"]
        for inventory in self.inventories:
            args += ["-i", inventory]
        variables = dict({"deployment_group": "web_production", "codedeploy_ledger": self.ledger}, **extra)
        args += [os.path.join(PLAYBOOKS, name), "-e", json.dumps(variables)]
        return self.world.ansible(args, check=False)

    def deploy(self, version, failing_hosts=None, load=True, name=None, max_seconds=240, extra=None):
        """Deploy ``version`` (ValidateService failing on ``failing_hosts``), under load unless ``load`` is False;
        ``extra``: more extra vars (deployment_config, auto_rollback, ...)."""
        variables = dict({"revision": self.revision(version, failing_hosts)}, **(extra or {}))
        return self._run(name or "deploy %s" % version, "deploy.yml", variables, load, max_seconds)

    def rollback(self, deployment_id, load=True, name=None, max_seconds=240):
        return self._run(name or "rollback to %s" % deployment_id, "rollback.yml", {"deployment_id": deployment_id}, load, max_seconds)

    def _run(self, name, playbook, extra, load, max_seconds):
        generator = None
        if load:
            # Four workers, each pausing 10 ms between requests: steady traffic that leaves the controller CPU to deploy.
            generator = Load(self.balancer.url(BACKEND), max_requests=200000, max_seconds=max_seconds, concurrency=4, interval=0.01)
            generator.start()
        try:
            proc = self._playbook(playbook, extra)
        finally:
            result = generator.stop() if generator is not None else None
        return Run(name, proc, result, self.last_deployment())

    # ------------------------------------------------------------------ what is true now
    def last_deployment(self, skip=0):
        book = ledgers.open_ledger(self.ledger)
        listed = book.list_deployments(limit=skip + 1)
        return book.get_deployment(listed[skip]["deployment_id"]) if len(listed) > skip else None

    def all_serving(self, timeout=20.0):
        """Wait until HAProxy has every server of the backend UP; return the servers' states."""
        self.balancer.wait_up(BACKEND, timeout=timeout)
        return self.balancer.servers(BACKEND)
