# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""HAProxy as a load balancer of a deployment group: its settings, its runtime API replies, and
the BlockTraffic / AllowTraffic rules for one server of one backend.

The controller speaks HAProxy's runtime API (the text protocol of the ``stats socket``) through a
*runtime*: any object with ``send(command) -> reply text`` that raises ``HaproxyError`` when the
socket cannot be reached (plugins/plugin_utils/haproxy_runtime.py has the TCP socket, the
controller's own UNIX socket, and a UNIX socket on an inventory host reached through that host's
Ansible connection).  Everything here is pure and tested without HAProxy; docs/load-balancers.md
describes the behaviour for users.

BlockTraffic, per backend
    ``set server B/S state drain`` (no new connections; the ones in flight go on), then poll
    ``show stat`` until the server has no current session and nothing queued, or until the
    backend's ``drain_timeout`` passes (a warning, not a failure), then
    ``set server B/S state maint``.  A server already in maintenance is left as it is.

AllowTraffic, per backend
    HAProxy keeps a server's last health-check result through maintenance, so a server that left
    rotation healthy would be UP the moment it is made ready, before any check has seen the new
    application.  The driver therefore moves the server from maint to drain (still no traffic),
    forces its health to DOWN (``set server B/S health down``), and only then sets it ready: it
    receives traffic after ``rise`` fresh checks pass.  It then waits for the status ``UP`` up to
    ``up_timeout``; a server that never comes UP fails with TIMEOUT naming the backend, the server
    and the last check.  A server without health checks (``no check``) counts as up at once, with
    a warning.
"""

from __future__ import absolute_import, division, print_function

import re

__metaclass__ = type  # pylint: disable=invalid-name

ELASTIC_LOAD_BALANCING_INVALID = "ELASTIC_LOAD_BALANCING_INVALID"
TIMEOUT = "TIMEOUT"

DEFAULT_DRAIN_TIMEOUT = 300
DEFAULT_UP_TIMEOUT = 300
MAX_TIMEOUT = 3600
MAX_BACKENDS = 10
MAX_WEIGHT = 256  # the largest server weight HAProxy accepts

# HAProxy proxy and server names: letters, digits and - _ . : (HAProxy refuses anything else).
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_HOST_PORT_RE = re.compile(r"^(?:ipv4@|tcp://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_BACKEND_KEYS = ("backend", "runtime_api", "servers", "drain_timeout", "up_timeout")
_RUNTIME_KEYS = ("address", "socket", "host")

# Replies of the runtime API that mean the command was refused.
_REFUSALS = (
    ("No such backend", "HAProxy has no backend of that name"),
    ("No such proxy", "HAProxy has no backend of that name"),
    ("No such server", "the backend has no server of that name"),
    ("Permission denied", "the runtime API refused the command: the stats socket needs 'level admin'"),
    ("Unknown command", "this HAProxy does not know the command (HAProxy 1.8 or later is needed)"),
    ("Require 'backend/server'", "the command named no backend/server"),
)


class HaproxyError(Exception):
    """A runtime API or HAProxy traffic failure; ``code`` is CodeDeploy's word for it.

    ``transient`` marks a runtime API that could not be reached (HAProxy reloading, a network hiccup):
    a wait polls again until its timeout instead of failing at once."""

    def __init__(self, message, code=ELASTIC_LOAD_BALANCING_INVALID, backend=None, server=None, status=None, check=None,
                 transient=False):
        super(HaproxyError, self).__init__(message)
        self.transient = transient
        self.message = message
        self.code = code
        self.backend = backend
        self.server = server
        self.status = status
        self.check = check

    def __str__(self):
        return self.message


class SettingError(ValueError):
    """A ``load_balancer.haproxy_backends`` setting that cannot work: ``path``, ``problem`` and ``value``."""

    def __init__(self, path, problem, *value):
        super(SettingError, self).__init__(problem)
        self.path = path
        self.problem = problem
        self.value = value  # () when the problem is not about a value (an unknown key), else (value,)


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------
def _name(value, path, what):
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise SettingError(path, "must be %s: 1 to 128 letters, digits, '-', '_', '.' or ':'" % what, value)
    return value


def _seconds(value, path, default):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_TIMEOUT:
        raise SettingError(path, "must be a number of seconds from 1 to %d" % MAX_TIMEOUT, value)
    return value


def _address(text, path):
    match = _HOST_PORT_RE.match(text.strip())
    if not match or not 1 <= int(match.group("port")) <= 65535:
        raise SettingError(path, "must be HOST:PORT of HAProxy's TCP admin socket (stats socket ipv4@ADDRESS:PORT level admin), "
                           "like 10.0.0.5:9999", text)
    return {"kind": "tcp", "address": match.group("host").strip("[]"), "port": int(match.group("port")), "host": None, "socket": None}


def _socket_path(value, path):
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or "\n" in value:
        raise SettingError(path, "must be the absolute path of HAProxy's stats socket, like /run/haproxy/admin.sock", value)
    return value


def normalize_runtime_api(spec, path="runtime_api"):
    """The runtime API of one HAProxy as ``{kind: tcp|unix, address, port, socket, host}``.

    Accepted: ``HOST:PORT`` / ``tcp://HOST:PORT`` (TCP admin socket), an absolute socket path or
    ``unix:///path`` (a socket on the controller), or a mapping with ``address``, or ``socket``
    and optionally ``host`` (an inventory host whose Ansible connection reaches the socket).
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("unix://"):
            return {"kind": "unix", "socket": _socket_path(text[len("unix://"):], path), "host": None, "address": None, "port": None}
        if text.startswith("/"):
            return {"kind": "unix", "socket": _socket_path(text, path), "host": None, "address": None, "port": None}
        return _address(text, path)
    if not isinstance(spec, dict):
        raise SettingError(path, "must be HOST:PORT, a socket path, or a mapping like {host: lb1, socket: /run/haproxy/admin.sock}", spec)
    for key in spec:
        if key not in _RUNTIME_KEYS:
            raise SettingError("%s.%s" % (path, key), "unknown key. Allowed keys: %s" % ", ".join(_RUNTIME_KEYS))
    if spec.get("address") is not None:
        if spec.get("socket") is not None or spec.get("host") is not None:
            raise SettingError(path, "give either address (a TCP admin socket) or socket (with an optional host), not both", spec)
        if not isinstance(spec["address"], str):
            raise SettingError(path + ".address", "must be HOST:PORT, like 10.0.0.5:9999", spec["address"])
        return _address(spec["address"], path + ".address")
    if spec.get("socket") is None:
        raise SettingError(path, "names no socket: give address: HOST:PORT, or socket: /run/haproxy/admin.sock (with host: <inventory host> "
                           "when HAProxy runs on another machine)", spec)
    host = spec.get("host")
    if host is not None and (not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host)):
        raise SettingError(path + ".host", "must be the inventory hostname of the HAProxy machine", host)
    return {"kind": "unix", "socket": _socket_path(spec["socket"], path + ".socket"), "host": host, "address": None, "port": None}


def runtime_label(runtime):
    """How messages name a runtime API: ``10.0.0.5:9999``, ``lb1:/run/haproxy/admin.sock`` or ``/path (controller)``."""
    if runtime.get("kind") == "tcp":
        return "%s:%s" % (runtime.get("address"), runtime.get("port"))
    if runtime.get("host"):
        return "%s:%s" % (runtime["host"], runtime.get("socket"))
    return "%s (on the controller)" % runtime.get("socket")


def normalize_backends(items, path="load_balancer.haproxy_backends"):
    """Normalize ``load_balancer.haproxy_backends``: a list of backends, each reached through one HAProxy's runtime API.

    Each item: ``{backend, runtime_api, servers: {inventory host: server name}, drain_timeout, up_timeout}``.
    Raises SettingError naming the path, the value and the fix.
    """
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise SettingError(path, "must be a list like [{backend: web, runtime_api: 10.0.0.5:9999}]", items)
    if len(items) > MAX_BACKENDS:
        raise SettingError(path, "%d HAProxy backends given; at most %d are allowed" % (len(items), MAX_BACKENDS), len(items))
    result, seen = [], set()
    for index, item in enumerate(items):
        where = "%s[%d]" % (path, index)
        if not isinstance(item, dict):
            raise SettingError(where, "must be a mapping like {backend: web, runtime_api: 10.0.0.5:9999}", item)
        for key in item:
            if key not in _BACKEND_KEYS:
                raise SettingError("%s.%s" % (where, key), "unknown key. Allowed keys: %s" % ", ".join(_BACKEND_KEYS))
        if item.get("runtime_api") is None:
            raise SettingError(where + ".runtime_api", "is missing: say how to reach HAProxy's runtime API (HOST:PORT of a TCP admin "
                               "socket, or {host: <inventory host>, socket: /run/haproxy/admin.sock})")
        backend = _name(item.get("backend"), where + ".backend", "the name of an HAProxy backend")
        runtime = normalize_runtime_api(item["runtime_api"], where + ".runtime_api")
        servers = item.get("servers") or {}
        if not isinstance(servers, dict):
            raise SettingError(where + ".servers", "must map inventory hostnames to HAProxy server names, like {web-1: srv1}", servers)
        names = {}
        for host, server in servers.items():
            names[str(host)] = _name(server, "%s.servers.%s" % (where, host), "an HAProxy server name")
        key = (backend, runtime_label(runtime))
        if key in seen:
            raise SettingError(where, "backend %s through %s is listed twice. Remove the duplicate" % key, backend)
        seen.add(key)
        result.append({"backend": backend, "runtime_api": runtime, "servers": names,
                       "drain_timeout": _seconds(item.get("drain_timeout"), where + ".drain_timeout", DEFAULT_DRAIN_TIMEOUT),
                       "up_timeout": _seconds(item.get("up_timeout"), where + ".up_timeout", DEFAULT_UP_TIMEOUT)})
    return result


def backend_label(spec):
    """``haproxy web@10.0.0.5:9999``: how results and messages name one backend entry."""
    return "haproxy %s@%s" % (spec["backend"], runtime_label(spec["runtime_api"]))


def server_name(spec, host):
    """The HAProxy server that plays inventory host ``host`` in this backend (the hostname unless ``servers`` maps it)."""
    return (spec.get("servers") or {}).get(host) or host


def longest_wait(specs):
    """The longest wait any backend may take in one traffic step, in seconds (0 without HAProxy)."""
    return max([max(s.get("drain_timeout") or 0, s.get("up_timeout") or 0) for s in specs or ()] or [0])


# ----------------------------------------------------------------------------------------------
# Runtime API replies
# ----------------------------------------------------------------------------------------------
def refusal(reply):
    """What a refused command's reply means, or None when the command was accepted."""
    text = (reply or "").strip()
    for marker, meaning in _REFUSALS:
        if marker.lower() in text.lower():
            return "%s (HAProxy answered %r)" % (meaning, text.splitlines()[0])
    return None


def parse_stat(text):
    """``show stat`` CSV as ``{(proxy, server): row}``; rows are dicts of the header's fields."""
    lines = (text or "").splitlines()
    header = None
    rows = {}
    for line in lines:
        if line.startswith("# "):
            header = line[2:].rstrip(",").split(",")
            continue
        if not line.strip() or header is None:
            continue
        values = line.split(",")
        row = dict(zip(header, values))
        rows[(row.get("pxname"), row.get("svname"))] = row
    if header is None and (text or "").strip():
        raise ValueError("not a 'show stat' reply: %r" % (text.strip().splitlines()[0][:200]))
    return rows


def _int(value):
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def status_of(row):
    """The server's status word: UP, DOWN, MAINT, DRAIN, NOLB, ``no check`` (transition suffixes such as ``1/2`` dropped)."""
    status = (row or {}).get("status") or ""
    if status.startswith("no check"):
        return "no check"
    return status.split(" ")[0] if status else ""


def check_text(row):
    """The last health check as people read it: ``L7STS 503 (Layer7 wrong status)`` or ``no health check``."""
    row = row or {}
    if status_of(row) == "no check":
        return "no health check"
    parts = [p for p in (row.get("check_status"), row.get("check_code")) if p]
    desc = row.get("check_desc") or row.get("last_chk")
    text = " ".join(parts) if parts else "no check result yet"
    return "%s (%s)" % (text, desc) if desc else text


def in_flight(row):
    """Sessions the server still serves plus requests queued for it."""
    return _int((row or {}).get("scur")) + _int((row or {}).get("qcur"))


def out_of_rotation(row):
    """True when HAProxy sends the server no new traffic (maintenance or drain)."""
    return status_of(row) in ("MAINT", "DRAIN")


def has_checks(row):
    """True when HAProxy health-checks the server (``chkfail`` is empty for a server without checks, even in maintenance)."""
    row = row or {}
    if status_of(row) == "no check":
        return False
    return (row.get("chkfail") or "") != ""


def up_verdict(row):
    """AllowTraffic for one server: ``"healthy"``, ``"waiting"`` or ``"no_check"``.

    Only a settled ``UP`` counts: ``UP 1/2`` means a check just failed and the server is on its
    way down, and ``DOWN n/m`` is still coming up.
    """
    status = (row or {}).get("status") or ""
    if status.startswith("no check"):
        return "no_check"
    if status.split(" *")[0].strip() == "UP":
        return "healthy"
    if status.strip() == "DRAIN" and weight_of(row) == 0 and str((row or {}).get("check_status") or "").startswith(("L4OK", "L6OK", "L7OK")):
        # A ready server at weight 0 (a green server waiting for its share of a traffic shift) that passes its checks:
        # some HAProxy versions show it as DRAIN rather than UP.
        return "healthy"
    return "waiting"


def command(verb, backend, server, value):
    """``set server B/S state|health VALUE`` with names checked (no way to smuggle a second command)."""
    if verb not in ("state", "health") or value not in ("ready", "drain", "maint", "up", "down"):
        raise ValueError("unsupported runtime API command %s %s" % (verb, value))
    for name in (backend, server):
        if not _NAME_RE.match(name or ""):
            raise HaproxyError("%r is not an HAProxy name (letters, digits, '-', '_', '.', ':')" % (name,), backend=backend, server=server)
    return "set server %s/%s %s %s" % (backend, server, verb, value)


def weight_command(backend, server, weight):
    """``set weight B/S N`` (an absolute weight 0..256) with names checked like command()."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ValueError("an HAProxy server weight must be a whole number from 0 to %d, not %r" % (MAX_WEIGHT, weight))
    for name in (backend, server):
        if not _NAME_RE.match(name or ""):
            raise HaproxyError("%r is not an HAProxy name (letters, digits, '-', '_', '.', ':')" % (name,), backend=backend, server=server)
    return "set weight %s/%s %d" % (backend, server, weight)


def weight_of(row):
    """The server's current weight from its ``show stat`` row, or None when the row has none."""
    text = ((row or {}).get("weight") or "").strip()
    return int(text) if text.isdigit() else None


# ----------------------------------------------------------------------------------------------
# One backend entry of a deployment group
# ----------------------------------------------------------------------------------------------
class Backend(object):
    """Traffic control for the servers of one HAProxy backend, through one runtime API.

    ``runtime.send(text)`` returns the reply or raises HaproxyError.  The caller polls: ``start_block``
    / ``start_allow`` send the first commands and return a state, ``step`` advances it and returns True
    when the server is done.  ``clock`` is injectable.
    """

    def __init__(self, spec, runtime, clock):
        self.spec = spec
        self.runtime = runtime
        self._clock = clock
        self.label = backend_label(spec)

    @property
    def name(self):
        return self.spec["backend"]

    def _send(self, text, host=None):
        reply = self.runtime.send(text)
        problem = refusal(reply)
        if problem:
            raise HaproxyError("%s: '%s' failed for %s: %s. Check load_balancer.haproxy_backends of the deployment group." % (
                self.label, text, host or self.name, problem), backend=self.name)
        return reply

    def rows(self):
        """This backend's servers: ``{server: row}``."""
        text = self._send("show stat %s 4 -1" % self.name)
        try:
            stats = parse_stat(text)
        except ValueError as exc:
            raise HaproxyError("%s: the runtime API answered something that is not HAProxy statistics (%s)." % (self.label, exc),
                               backend=self.name)
        return dict((server, row) for (proxy, server), row in stats.items() if proxy == self.name)

    def resolve(self, hosts):
        """Check the backend exists and has a server for each inventory host; raise HaproxyError naming what is missing."""
        rows = self.rows()
        missing = [(host, server_name(self.spec, host)) for host in hosts if server_name(self.spec, host) not in rows]
        if missing:
            known = ", ".join(sorted(rows)) or "none"
            raise HaproxyError(
                "%s: backend %s has no server %s (its servers: %s). Name each host's server in load_balancer.haproxy_backends "
                "servers ({inventory host: server}), or add the servers to HAProxy." % (
                    self.label, self.name, ", ".join("%s for host %s" % (s, h) for h, s in missing), known),
                backend=self.name, server=missing[0][1])
        return rows

    def _row(self, server, host):
        row = self.rows().get(server)
        if row is None:
            raise HaproxyError("%s: backend %s no longer has server %s (host %s)." % (self.label, self.name, server, host),
                               backend=self.name, server=server)
        return row

    @staticmethod
    def _entry(server, row):
        return {"server": server, "status": (row or {}).get("status"), "check": check_text(row), "sessions": in_flight(row),
                "changed": False}

    # ------------------------------------------------------------------ block
    def start_block(self, host):
        server = server_name(self.spec, host)
        row = self._row(server, host)
        state = {"host": host, "server": server, "deadline": self._clock() + float(self.spec["drain_timeout"]),
                 "entry": self._entry(server, row), "done": False, "warning": None}
        if status_of(row) == "MAINT":
            state["done"] = True
            return state
        if status_of(row) != "DRAIN":
            self._send(command("state", self.name, server, "drain"), host)
            state["entry"]["changed"] = True
        return state

    def step_block(self, state):
        """Poll a draining server: maint once nothing is in flight or the drain timeout passed; True when done."""
        if state["done"]:
            return True
        row = self._row(state["server"], state["host"])
        state["entry"].update(status=row.get("status"), check=check_text(row), sessions=in_flight(row))
        if in_flight(row) > 0 and self._clock() < state["deadline"]:
            return False
        if in_flight(row) > 0:
            state["warning"] = ("%s: server %s still had %d session(s) after the %s s drain timeout; it was put in maintenance anyway." % (
                self.label, state["server"], in_flight(row), self.spec["drain_timeout"]))
        self._send(command("state", self.name, state["server"], "maint"), state["host"])
        state["entry"].update(status="MAINT", changed=True)
        state["done"] = True
        return True

    # ------------------------------------------------------------------ allow
    def start_allow(self, host):
        server = server_name(self.spec, host)
        row = self._row(server, host)
        state = {"host": host, "server": server, "deadline": self._clock() + float(self.spec["up_timeout"]),
                 "entry": self._entry(server, row), "done": False, "warning": None}
        status = status_of(row)
        if status in ("MAINT", "DRAIN"):
            if status == "MAINT":
                self._send(command("state", self.name, server, "drain"), host)
            if has_checks(row):
                # Forget the health state from before the host left rotation: it must pass fresh checks.
                self._send(command("health", self.name, server, "down"), host)
            self._send(command("state", self.name, server, "ready"), host)
            state["entry"]["changed"] = True
        return state

    def step_allow(self, state):
        """Poll a server coming back: True once UP (or without checks); TIMEOUT after ``up_timeout``."""
        if state["done"]:
            return True
        row = self._row(state["server"], state["host"])
        state["entry"].update(status=row.get("status"), check=check_text(row), sessions=in_flight(row))
        verdict = up_verdict(row)
        if verdict == "no_check":
            state["warning"] = ("%s: server %s has no health check, so HAProxy sends it traffic without knowing whether the "
                                "application answers; add 'check' to the server line." % (self.label, state["server"]))
        if verdict in ("healthy", "no_check"):
            state["done"] = True
            return True
        if self._clock() >= state["deadline"]:
            raise HaproxyError(
                "AllowTraffic timed out after %s s on %s: HAProxy backend %s server %s is %s, last health check %s (%s). The "
                "application does not pass HAProxy's health check: check that it listens and answers it, or raise up_timeout." % (
                    self.spec["up_timeout"], state["host"], self.name, state["server"], row.get("status") or "unknown",
                    check_text(row), self.label),
                code=TIMEOUT, backend=self.name, server=state["server"], status=row.get("status"), check=check_text(row))
        return False
