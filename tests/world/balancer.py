"""A real HAProxy on the world's balancer host, and a mirror that makes it follow a target group in moto.

The balancer host is built like a fleet host (``Fleet.start_balancer_host``: index 39 of the
world's block, ``rcd-<world>-lb``) but is no EC2 instance. ``World.balancer`` starts it on first use.
HAProxy runs there as root with two admin sockets: ``/run/haproxy/admin.sock`` (what the
collection reaches over SSH) and TCP ``<address>:9999`` (what the harness uses, ``command``).

Config choices (see docs/development.md, Real traffic in the test world):

- one frontend per backend, on port 8000 + the backend's index in sorted order (``url``);
- ``option http-server-close``: every request gets its own server connection, so a server's
  current sessions (``scur``) are exactly its requests in flight, which is what ALB draining waits
  for; no idle pooled connection keeps a drained server busy;
- ``retries 0`` and no ``option redispatch``: like an ALB, HAProxy answers a request whose
  connection to the server fails with an error (503) instead of trying again; retries would wait a
  second and try the same server, which hides an application that restarts within that second,
  exactly the failure the suite looks for;
- health checks ``GET /health`` expecting ``ok``, every 300 ms, ``fall 2 rise 2``: a dead server
  leaves rotation within about 0.6 s (a production value would be seconds; tests want speed).
"""
import base64
import contextlib
import csv
import io
import os
import re
import socket
import threading
import time

from world import paths
from world.fleet import FleetError

ADMIN_PORT = 9999
FIRST_PORT = 8000
CONFIG_PATH = "/etc/haproxy/world.cfg"
PID_FILE = "/run/haproxy.pid"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# srv_admin_state bits of ``show servers state`` (HAProxy 2.x): forced, inherited and resolver maintenance; forced and inherited drain.
# (0x04, "disabled in the config", stays set after ``set server ... state ready`` and means nothing then.)
ADMIN_MAINT_BITS = 0x01 | 0x02 | 0x20
ADMIN_DRAIN_BITS = 0x08 | 0x10
CHECK = "check inter 300ms fall 2 rise 2"
CONFIG_HEAD = """\
# Written by the rollout.codedeploy test world (tests/world/balancer.py).
global
    maxconn 2000
    stats socket %(admin_socket)s mode 600 level admin
    stats socket ipv4@0.0.0.0:%(admin_port)d level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout check 1s
    option http-server-close
    retries 0
"""
RELOAD_SCRIPT = """\
set -e
mkdir -p /etc/haproxy /run/haproxy
echo %(config)s | base64 -d > %(path)s.new
haproxy -c -q -f %(path)s.new
mv %(path)s.new %(path)s
old=
if [ -s %(pid)s ] && kill -0 "$(cat %(pid)s)" 2>/dev/null; then old=$(cat %(pid)s); fi
if [ -n "$old" ]; then
    haproxy -D -p %(pid)s -f %(path)s -sf $old
else
    haproxy -D -p %(pid)s -f %(path)s
fi
cat %(pid)s
"""


class BalancerError(Exception):
    """HAProxy could not be configured, or it answered something unexpected."""


class Balancer:
    """HAProxy on the world's balancer host. ``World.balancer`` makes one; ``stop`` ends it."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.host = fleet.start_balancer_host()
        self.address = self.host.address
        self.admin_address = "%s:%d" % (self.address, ADMIN_PORT)
        self.backends = {}
        self.pid = None

    # ----------------------------------------------------------------- configuration
    def render(self, backends, initial_state="ready"):
        """The HAProxy configuration for ``backends`` ({backend: [(server, address, port), ...]})."""
        if initial_state not in ("ready", "maint"):
            raise ValueError("initial_state must be 'ready' or 'maint', not %r" % (initial_state,))
        lines = [CONFIG_HEAD % {"admin_socket": ADMIN_SOCKET, "admin_port": ADMIN_PORT}]
        for index, name in enumerate(sorted(backends)):
            _check_name(name)
            lines.append("frontend fe_%s\n    bind 0.0.0.0:%d\n    default_backend %s\n" % (name, FIRST_PORT + index, name))
            lines.append("backend %s\n    balance roundrobin\n    option httpchk GET /health\n    http-check expect string ok" % name)
            for server, address, port in backends[name]:
                _check_name(server)
                lines.append("    server %s %s:%d %s%s" % (server, address, int(port), CHECK, " disabled" if initial_state == "maint" else ""))
            lines.append("")
        return "\n".join(lines) + "\n"

    def configure(self, backends, initial_state="ready"):
        """Write the config and (re)start HAProxy: a soft reload (``-sf``) when it runs already.

        Server states set through the runtime API are not kept across a reload: each call starts
        every server in ``initial_state``. Returns once the new process answers on the admin socket.
        """
        config = self.render(backends, initial_state)
        script = RELOAD_SCRIPT % {"config": base64.b64encode(config.encode()).decode(), "path": CONFIG_PATH, "pid": PID_FILE}
        out = self.fleet.ssh(self.host, script)
        self.pid = int(out.split()[-1])
        self.backends = {name: list(servers) for name, servers in backends.items()}
        deadline = time.monotonic() + 5
        while True:
            try:
                if ("Pid: %d" % self.pid) in self.command("show info"):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BalancerError("HAProxy (pid %d) did not answer on %s after reconfiguring" % (self.pid, self.admin_address))
            time.sleep(0.02)

    def url(self, backend, path="/"):
        """Where to send requests for ``backend`` (its frontend's port follows the sorted backend names)."""
        if backend not in self.backends:
            raise KeyError("backend %r is not configured (known: %s)" % (backend, ", ".join(sorted(self.backends))))
        return "http://%s:%d%s" % (self.address, FIRST_PORT + sorted(self.backends).index(backend), path)

    def stop(self):
        """Stop HAProxy and take the balancer host down."""
        if self.fleet.balancer_host is not None:
            self.fleet.ssh(self.host, "[ -s %s ] && kill $(cat %s) || true" % (PID_FILE, PID_FILE), check=False)
            self.fleet.stop_balancer_host()
        self.pid = None
        self.backends = {}

    # ----------------------------------------------------------------- runtime API
    def command(self, text, timeout=3.0):
        """Send one runtime API command to the TCP admin socket; return HAProxy's reply."""
        with socket.create_connection((self.address, ADMIN_PORT), timeout=timeout) as conn:
            conn.sendall(text.encode() + b"\n")
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def set_state(self, backend, server, state):
        """``set server <backend>/<server> state ready|drain|maint``; raises when HAProxy objects."""
        if state not in ("ready", "drain", "maint"):
            raise ValueError("state must be ready, drain or maint, not %r" % (state,))
        reply = self.command("set server %s/%s state %s" % (backend, server, state)).strip()
        if reply:
            raise BalancerError("set server %s/%s state %s: %s" % (backend, server, state, reply))

    def servers(self, backend):
        """{server: {"admin", "status", "scur", "stot", "check_status"}} of one backend.

        ``admin`` is ready/drain/maint (``show servers state``); ``status`` is HAProxy's status
        column (``UP``, ``DOWN``, ``MAINT``, ``DRAIN``, ``no check``, ``UP 1/2`` ...); ``scur`` the
        sessions in flight; ``stot`` the sessions so far; ``check_status`` the last check's result.
        """
        stat = self.command("show stat")
        rows = list(csv.reader(io.StringIO(stat.lstrip("# "))))
        if not rows or "pxname" not in rows[0]:
            raise BalancerError("unexpected reply to show stat: %r" % stat[:200])
        header = rows[0]
        result = {}
        for row in rows[1:]:
            if len(row) < len(header):
                continue
            item = dict(zip(header, row))
            if item["pxname"] != backend or item["svname"] in ("FRONTEND", "BACKEND"):
                continue
            result[item["svname"]] = {"status": item["status"], "scur": int(item["scur"] or 0), "stot": int(item["stot"] or 0),
                                      "check_status": item["check_status"], "admin": None}
        for server, admin in self._admin_states(backend).items():
            if server in result:
                result[server]["admin"] = admin
        return result

    def _admin_states(self, backend):
        reply = self.command("show servers state %s" % backend)
        lines = [line for line in reply.splitlines() if line.strip()]
        header = next((line.lstrip("# ").split() for line in lines if line.startswith("#")), None)
        if not header:
            raise BalancerError("unexpected reply to show servers state %s: %r" % (backend, reply[:200]))
        states = {}
        for line in lines:
            if line.startswith("#") or len(line.split()) < len(header):
                continue
            item = dict(zip(header, line.split()))
            bits = int(item["srv_admin_state"])
            states[item["srv_name"]] = "maint" if bits & ADMIN_MAINT_BITS else "drain" if bits & ADMIN_DRAIN_BITS else "ready"
        return states

    def wait_servers(self, backend, predicate, timeout=10.0, what="the expected state"):
        """Poll ``servers(backend)`` until ``predicate(servers)`` holds; return the servers. Bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.servers(backend)
            if predicate(current):
                return current
            if time.monotonic() > deadline:
                raise BalancerError("backend %s did not reach %s within %.1f s: %r" % (backend, what, timeout, current))
            time.sleep(0.05)

    def wait_up(self, backend, servers=None, timeout=10.0):
        """Wait until ``servers`` (default: all of the backend) are ready and pass their health checks."""
        def all_up(current):
            names = servers if servers is not None else list(current)
            return all(name in current and current[name]["admin"] == "ready" and current[name]["status"] == "UP" for name in names)
        return self.wait_servers(backend, all_up, timeout, "UP")

    # ----------------------------------------------------------------- following moto
    def mirror_target_group(self, moto_or_resources, target_group_arn, backend, server_for_instance, interval=0.1):
        """A context manager that makes ``backend`` follow the target group's health in moto (see ``TargetGroupMirror``)."""
        return TargetGroupMirror(self, moto_or_resources, target_group_arn, backend, server_for_instance, interval)


class MirrorError(Exception):
    """The mirror's thread failed, or did not stop."""


class TargetGroupMirror:
    """Makes a HAProxy backend follow a target group in moto, as an ALB would treat its targets.

    Every ``interval`` seconds it reads DescribeTargetHealth and, for each instance of
    ``server_for_instance`` ({instance id: HAProxy server name}):

    - ``healthy`` (or ``initial``/``unhealthy``: HAProxy's own checks judge those) -> ``ready``;
    - ``draining`` -> ``drain`` (no new requests), then, once ``scur`` is 0, ``maint`` and a release
      marker, after which moto reports the target ``unused``;
    - not in the group, or ``unused``/``unavailable`` -> ``maint``.

    On enter it writes the group's watch marker (moto then drains deregistered targets instead of
    dropping them) and applies the first poll; on exit it stops the thread (bounded), removes the
    marker and raises ``MirrorError`` when the thread failed. ``events`` lists what it did:
    {"time": time.monotonic(), "instance", "server", "action": ready|drain|maint|release, "state"}.
    """

    def __init__(self, balancer, moto_or_resources, target_group_arn, backend, server_for_instance, interval=0.1):
        self.balancer = balancer
        self.moto = getattr(moto_or_resources, "moto", moto_or_resources)
        self.arn = target_group_arn
        self.backend = backend
        self.server_for_instance = dict(server_for_instance)
        self.interval = interval
        self.events = []
        self.applied = {}
        self.released = set()
        self.error = None
        self.polls = 0
        self._elbv2 = self.moto.client("elbv2")
        self._name = self._elbv2.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"][0]["TargetGroupName"]
        self._stop = threading.Event()
        self._first = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def __enter__(self):
        self.moto.watch(self._name)
        self._thread = threading.Thread(target=self._run, name="mirror-%s" % self._name, daemon=True)
        self._thread.start()
        if not self._first.wait(10) or self.error:
            self._finish()
            raise MirrorError("the mirror of %s did not complete its first poll: %r" % (self._name, self.error)) from self.error
        return self

    def __exit__(self, exc_type, exc, traceback):
        self._finish()
        if self.error is not None and exc_type is None:
            raise MirrorError("the mirror of %s failed: %r" % (self._name, self.error)) from self.error
        return False

    def _finish(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.moto.unwatch(self._name)
        if self._thread is not None and self._thread.is_alive():
            raise MirrorError("the mirror thread of %s did not stop within 10 s" % self._name)

    def events_for(self, instance, action=None):
        with self._lock:
            return [e for e in self.events if e["instance"] == instance and (action is None or e["action"] == action)]

    def _log(self, instance, action, state):
        with self._lock:
            self.events.append({"time": time.monotonic(), "instance": instance, "server": self.server_for_instance[instance],
                                "action": action, "state": state})

    def _run(self):
        try:
            while True:
                self._poll()
                self.polls += 1
                self._first.set()
                if self._stop.wait(self.interval):
                    return
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc  # raised in the test's thread on exit
            self._first.set()

    def _poll(self):
        health = self._elbv2.describe_target_health(TargetGroupArn=self.arn)["TargetHealthDescriptions"]
        states = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health}
        sessions = None
        for instance, server in self.server_for_instance.items():
            state = states.get(instance, "unused")
            current = self.applied.get(instance)
            if state in ("healthy", "initial", "unhealthy"):
                self.released.discard(instance)
                if current != "ready":
                    self._apply(instance, server, "ready", state)
            elif state == "draining":
                if instance in self.released:
                    continue
                if current == "ready":
                    self._apply(instance, server, "drain", state)
                if sessions is None:
                    sessions = self.balancer.servers(self.backend)
                if sessions.get(server, {}).get("scur", 0) == 0:
                    if self.applied.get(instance) != "maint":
                        self._apply(instance, server, "maint", state)
                    self.moto.release(self._name, instance)
                    self.released.add(instance)
                    self._log(instance, "release", state)
            elif current != "maint":
                self._apply(instance, server, "maint", state)

    def _apply(self, instance, server, action, state):
        self.balancer.set_state(self.backend, server, action)
        self.applied[instance] = action
        self._log(instance, action, state)


# --------------------------------------------------------------------- the sample app on fleet hosts
APP_DIR = "/opt/lbworld-app"
APP_PIDFILE = "/run/lbworld-app.pid"
APP_LOG = "/var/log/lbworld-app.log"


APP_WRAPPER = """\
# Written by the rollout.codedeploy test world: the sample app, with GET / slowed down by LBWORLD_APP_DELAY_MS.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server  # noqa: E402

DELAY = float(os.environ.get("LBWORLD_APP_DELAY_MS", "0")) / 1000.0
PLAIN_GET = server.Handler.do_GET


def slow_get(self):
    if DELAY and self.path.split("?", 1)[0] == "/":
        time.sleep(DELAY)
    PLAIN_GET(self)


server.Handler.do_GET = slow_get
sys.exit(server.main())
"""


def start_app(fleet, host, version, port=8080, delay_ms=0):
    """Run the sample app (examples/sample-app/app/server.py) on a fleet host; ``GET /`` answers ``sample-app <version>``.

    Started detached over SSH, as the sample revision's ApplicationStart hook does; returns its pid.
    ``delay_ms`` makes every ``GET /`` take that long (``/health`` stays fast), so requests are in
    flight long enough for a drain that does not wait for them to lose them.
    """
    with open(os.path.join(paths.SAMPLE_APP, "app", "server.py"), "rb") as handle:
        source = base64.b64encode(handle.read()).decode()
    script = "\n".join([
        "set -e",
        "mkdir -p %s" % APP_DIR,
        "echo %s | base64 -d > %s/server.py" % (source, APP_DIR),
        "echo %s | base64 -d > %s/slow.py" % (base64.b64encode(APP_WRAPPER.encode()).decode(), APP_DIR),
        "echo %s > %s/VERSION" % (_shell_word(version), APP_DIR),
        "rm -f %s" % APP_PIDFILE,
        "cd / && SAMPLE_APP_PORT=%d SAMPLE_APP_PIDFILE=%s LBWORLD_APP_DELAY_MS=%d setsid -f python3 %s/slow.py </dev/null >>%s 2>&1"
        % (int(port), APP_PIDFILE, int(delay_ms), APP_DIR, APP_LOG),
        "n=0",
        "until [ -s %s ]; do n=$((n + 1)); [ $n -lt 100 ] || { tail -n 20 %s >&2; exit 1; }; sleep 0.05; done" % (APP_PIDFILE, APP_LOG),
        "cat %s" % APP_PIDFILE,
    ])
    return int(fleet.ssh(host, script).split()[-1])


def stop_app(fleet, host):
    """Stop the sample app on a host (SIGTERM, then wait until it is gone; bounded to about 5 s)."""
    script = ("[ -s {pid} ] || exit 0; p=$(cat {pid}); kill $p 2>/dev/null || exit 0; n=0; "
              "while kill -0 $p 2>/dev/null; do n=$((n + 1)); [ $n -lt 100 ] || {{ kill -9 $p; exit 0; }}; sleep 0.05; done").format(pid=APP_PIDFILE)
    fleet.ssh(host, script)


def _check_name(name):
    if not NAME_RE.match(name):
        raise ValueError("%r is not a usable HAProxy name (letters, digits, _ . : -)" % (name,))


def _shell_word(text):
    if not re.match(r"^[A-Za-z0-9_.:+-]+$", text):
        raise ValueError("version %r: use letters, digits and _.:+- only" % (text,))
    return text


@contextlib.contextmanager
def serving(fleet, hosts, versions=None, port=8080, delay_ms=0):
    """Run the sample app on ``hosts`` for a block (version = host name unless ``versions`` says); stop it after."""
    try:
        for host in hosts:
            start_app(fleet, host, (versions or {}).get(host.name, host.name), port, delay_ms)
        yield
    finally:
        for host in hosts:
            try:
                stop_app(fleet, host)
            except FleetError:
                pass  # the host may have been restarted or killed by the test
