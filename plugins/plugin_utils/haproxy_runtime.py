# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the controller reaches HAProxy's runtime API: one ``send(command) -> reply`` per transport.

* ``TcpRuntime``: a TCP admin socket (``stats socket ipv4@ADDRESS:PORT level admin``), straight from the controller.
* ``UnixRuntime``: a stats socket on the controller itself.
* ``HostRuntime``: a stats socket on an inventory host, reached through that host's own Ansible connection
  (ssh, paramiko, local, ...: whatever the inventory says, with its user, key and options). Each command is one
  ``exec_command`` of a small relay that needs ``python3`` (or ``socat``) on the HAProxy machine; with ssh,
  Ansible's ControlPersist keeps that to one round trip per command.

The rules that decide what to send live in module_utils/haproxy.py; this file only moves text. Controller-only.
"""

from __future__ import annotations

import os
import shlex
import socket

from ansible_collections.rollout.codedeploy.plugins.module_utils.haproxy import HaproxyError, runtime_label

#: Seconds to wait for the runtime API to accept a connection and answer one command.
TIMEOUT = 10.0
#: Biggest reply read (``show stat`` of a backend with a few hundred servers is well below it).
MAX_REPLY = 4 * 1024 * 1024

# Runs on the HAProxy machine: send stdin to the UNIX socket, print the whole reply.
_RELAY = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\n"
    "s.settimeout(%s)\n"
    "s.connect(sys.argv[1])\n"
    "s.sendall(sys.stdin.buffer.read())\n"
    "while True:\n"
    "    d=s.recv(65536)\n"
    "    if not d: break\n"
    "    sys.stdout.buffer.write(d)\n"
) % TIMEOUT


def _exchange(sock, text):
    sock.sendall(text.encode("utf-8") + b"\n")
    chunks, size = [], 0
    while True:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if size > MAX_REPLY:
            break
    return b"".join(chunks).decode("utf-8", "replace")


class TcpRuntime(object):
    def __init__(self, address, port, timeout=TIMEOUT):
        self.address = address
        self.port = int(port)
        self.timeout = timeout
        self.label = "%s:%d" % (address, self.port)

    def send(self, text):
        try:
            with socket.create_connection((self.address, self.port), timeout=self.timeout) as sock:
                return _exchange(sock, text)
        except OSError as exc:
            raise HaproxyError("HAProxy's runtime API at %s cannot be reached (%s). Check that HAProxy runs with 'stats socket "
                               "ipv4@%s level admin' and that the controller may connect to it." % (
                                   self.label, exc.strerror or exc, self.label), transient=True)


class UnixRuntime(object):
    def __init__(self, path, timeout=TIMEOUT):
        self.path = path
        self.timeout = timeout
        self.label = "%s (on the controller)" % path

    def send(self, text):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                return _exchange(sock, text)
        except OSError as exc:
            raise HaproxyError("HAProxy's stats socket %s cannot be reached (%s). Check the path, that HAProxy runs, and that "
                               "the controller's user may open the socket." % (self.label, exc.strerror or exc),
                               transient=True)


class HostRuntime(object):
    """A stats socket on another machine; ``connection`` is an Ansible connection plugin already set up for it."""

    def __init__(self, connection, host, path):
        self.connection = connection
        self.host = host
        self.path = path
        self.label = "%s:%s" % (host, path)

    def shell_command(self):
        relay, path = shlex.quote(_RELAY), shlex.quote(self.path)
        return ("if command -v python3 >/dev/null 2>&1; then exec python3 -c %s %s; "
                "elif command -v socat >/dev/null 2>&1; then exec socat - UNIX-CONNECT:%s; "
                "else echo 'neither python3 nor socat is installed' >&2; exit 127; fi" % (relay, path, path))

    def send(self, text):
        command = "/bin/sh -c %s" % shlex.quote(self.shell_command())
        try:
            rc, out, err = self.connection.exec_command(command, in_data=(text + "\n").encode("utf-8"), sudoable=False)
        except Exception as exc:  # pylint: disable=broad-except  # any connection plugin's failure, named for the user
            raise HaproxyError("HAProxy's stats socket %s cannot be reached: the connection to %s failed (%s)." % (
                self.label, self.host, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__), transient=True)
        if rc != 0:
            why = (err or b"").decode("utf-8", "replace").strip().splitlines()
            raise HaproxyError("HAProxy's stats socket %s cannot be reached (exit %d: %s). Check the path, that HAProxy runs, "
                               "and that %s's remote user may open the socket." % (
                                   self.label, rc, why[-1] if why else "no message", self.host), transient=rc != 127)
        return (out or b"").decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------
# From settings to a runtime
# ----------------------------------------------------------------------------------------------
_CONNECTION_VARS_PREFIX = "ansible_"


def host_connection(host, hostvars):
    """An Ansible connection plugin for inventory host ``host``, set up from its variables as a task would be."""
    # Imported here: only controller code that reaches a remote HAProxy needs Ansible's executor parts.
    from ansible import constants as C
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    if host not in hostvars:
        raise HaproxyError("load_balancer.haproxy_backends names host %s for HAProxy's runtime API, but the inventory has no host of that "
                           "name. Add it to the inventory (any group) with the variables Ansible needs to reach it." % host)
    source = hostvars[host]
    variables = {"inventory_hostname": host}
    for key in list(source.keys()):
        if str(key).startswith(_CONNECTION_VARS_PREFIX):
            try:
                variables[key] = source[key]
            except Exception:  # pylint: disable=broad-except  # a variable that does not template is not ours to judge
                continue
    kind = variables.get("ansible_connection") or C.DEFAULT_TRANSPORT or "ssh"
    if kind in ("smart",):
        kind = "ssh"
    context = PlayContext()
    context.remote_addr = variables.get("ansible_host") or host
    context.connection = kind
    connection = connection_loader.get(kind, context, os.devnull)
    if connection is None:
        raise HaproxyError("host %s uses connection %s, which this Ansible does not have." % (host, kind))
    connection.set_options(var_options=variables)
    return connection


def runtime_for(spec, hostvars=None):
    """The runtime of one normalized ``runtime_api`` setting (module_utils/haproxy.py normalize_runtime_api)."""
    if spec["kind"] == "tcp":
        return TcpRuntime(spec["address"], spec["port"])
    if spec.get("host"):
        return HostRuntime(host_connection(spec["host"], hostvars or {}), spec["host"], spec["socket"])
    return UnixRuntime(spec["socket"])


def factory(hostvars):
    """``runtime_api setting -> runtime`` for the deployment service, with connections made once per HAProxy host."""
    made = {}

    def make(spec):
        key = runtime_label(spec)
        if key not in made:
            made[key] = runtime_for(spec, hostvars)
        return made[key]
    return make
