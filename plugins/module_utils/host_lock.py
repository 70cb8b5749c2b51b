# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment at a time per host, as with the CodeDeploy agent.

A host's part of a deployment spans several runs of the ``lifecycle`` module (the controller moves
the host out of and back into its load balancers in between), so no lock that one process holds can
cover it. Instead a small JSON file under the deployment root names the deployment that holds the
host; it is only read and written while ``fcntl.flock`` is held on it, so concurrent module runs see
each other's changes whole.

The record: ``deployment_id``, ``application``, ``deployment_group``, ``deployment_group_id``,
``acquired`` and ``renewed`` (UTC ISO 8601), ``expires`` (seconds since the epoch), and while a
module run works on the host its ``pid`` with a ``process`` token (boot id and start time) that
tells the same process from a later one with a reused pid.

Whether a held lock still counts:

* a run is working (``pid`` set): it counts while that process lives. Where the token cannot be
  checked (no ``/proc``), it counts while it lives and has not expired;
* between two runs of the holder (``pid`` empty): it counts until ``expires``.

A lock that no longer counts (its holder died, or its controller vanished between two runs) is
taken over, and the run that takes it says so. Releasing empties the file rather than removing it:
a run waiting for ``flock`` on a removed file would lock a file nobody else sees.

Host room: standard library only; it runs on managed hosts.
"""

import datetime
import fcntl
import json
import os
import time

DEFAULT_WAIT = 300
DEFAULT_HOLD = 600
POLL = 2.0

#: What a lock record names, in the order messages show it.
IDENTITY = ("deployment_id", "application", "deployment_group", "deployment_group_id")


class HostLockError(Exception):
    """The host is held by another deployment for longer than the run may wait; ``message`` names it."""

    def __init__(self, message, holder=None):
        super(HostLockError, self).__init__(message)
        self.message = message
        self.holder = holder


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def process_token(pid):
    """``<boot id>:<start time>`` of process ``pid``, or None where /proc cannot tell."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        with open("/proc/%d/stat" % int(pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return "%s:%s" % (boot, fields[19])
    except (IOError, OSError, IndexError, ValueError):
        return None


def process_state(pid, token):
    """True when process ``pid`` with ``token`` runs, False when it is gone, None when that cannot be known."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OSError, ValueError, TypeError):
        return None
    if token:
        current = process_token(pid)
        if current is not None:
            return current == token
    return None


class HostLock(object):
    """The lock file at ``path`` seen from the deployment ``identity`` (a mapping with the keys of IDENTITY)."""

    def __init__(self, path, identity, clock=time.time, sleep=time.sleep, pid=None, alive=process_state):
        self.path = path
        self.identity = {key: identity.get(key) for key in IDENTITY}
        self._clock = clock
        self._sleep = sleep
        self.pid = os.getpid() if pid is None else pid
        self._alive = alive

    # ------------------------------------------------------------------ the file, under flock
    def _open(self):
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    @staticmethod
    def _read(handle):
        os.lseek(handle, 0, os.SEEK_SET)
        chunks = []
        while True:
            data = os.read(handle, 65536)
            if not data:
                break
            chunks.append(data)
        try:
            record = json.loads(b"".join(chunks).decode("utf-8"))
        except ValueError:
            return None
        return record if isinstance(record, dict) and record.get("deployment_id") else None

    @staticmethod
    def _write(handle, record):
        data = json.dumps(record, sort_keys=True).encode("utf-8") if record else b""
        os.lseek(handle, 0, os.SEEK_SET)
        os.ftruncate(handle, 0)
        os.write(handle, data)
        os.fsync(handle)

    def _update(self, change):
        """Run ``change(record, now)`` under the lock; write what it returns unless that is the record unchanged."""
        handle = self._open()
        try:
            record = self._read(handle)
            new = change(record, self._clock())
            if new is not record:
                self._write(handle, new)
            return record, new
        finally:
            os.close(handle)

    # ------------------------------------------------------------------ questions
    def ours(self, record):
        return bool(record) and record.get("deployment_id") == self.identity["deployment_id"]

    def stale_reason(self, record, now):
        """None while ``record`` still holds the host, else why it no longer does."""
        pid = record.get("pid")
        expires = float(record.get("expires") or 0)
        if pid:
            state = self._alive(pid, record.get("process"))
            if state is True:
                return None
            if state is False:
                return "its run on this host (process %s) ended without releasing it" % pid
        if now < expires:
            return None
        return "it expired at %s" % _iso(expires)

    # ------------------------------------------------------------------ taking, keeping, releasing
    def acquire(self, hold_seconds, wait=DEFAULT_WAIT, poll=POLL):
        """Hold the host for this run (at most ``hold_seconds`` unless renewed), waiting up to ``wait`` seconds for another
        deployment's lock to go. Returns ``{"waited": seconds, "took_over": <the stale record and why> or None}``;
        raises HostLockError naming the holder when the wait ends first."""
        started = self._clock()
        while True:
            verdict = {}

            def take(record, now):
                if record and not self.ours(record):
                    why = self.stale_reason(record, now)
                    if why is None:
                        verdict["holder"] = record
                        return record
                    verdict["took_over"] = dict(record, why=why)
                return self._record(record if self.ours(record) else None, now, now + hold_seconds, self.pid)

            self._update(take)
            if "holder" not in verdict:
                return {"waited": round(self._clock() - started, 1), "took_over": verdict.get("took_over")}
            left = started + max(wait, 0) - self._clock()
            if left <= 0:
                raise HostLockError(self.held_message(verdict["holder"], self._clock() - started), verdict["holder"])
            self._sleep(min(poll, left))

    def keep(self, hold_seconds):
        """End this run and keep the host for the deployment's next run: it expires in ``hold_seconds``."""
        self._update(lambda record, now: self._record(record, now, now + hold_seconds, None) if self.ours(record) else record)

    def release(self):
        """Free the host if this deployment holds it; True when it did."""
        before, after = self._update(lambda record, now: None if self.ours(record) else record)
        return self.ours(before) and after is None

    def _record(self, previous, now, expires, pid):
        record = dict(self.identity)
        record.update(acquired=(previous or {}).get("acquired") or _iso(now), renewed=_iso(now), expires=round(expires, 3),
                      expires_at=_iso(expires), pid=pid, process=process_token(pid) if pid else None)
        return record

    # ------------------------------------------------------------------ words
    def held_message(self, holder, waited):
        """What the run that gave up says: who holds the host, since when, and what to do."""
        who = holder.get("deployment_id")
        working = ("its run is working on the host now (process %s)" % holder["pid"]) if holder.get("pid") else \
            ("it is between two of its runs and keeps the host until %s unless its next run comes" % holder.get("expires_at"))
        return ("the host is busy with another deployment: %s of application %s, deployment group %s has held it since %s, and %s. "
                "This deployment waited %d seconds (host_lock_wait) for it; a host runs one deployment at a time. Deploy again when %s "
                "is done, or raise host_lock_wait. If %s is no longer running anywhere, its lock (%s) frees itself when it expires; "
                "empty that file to free the host now."
                % (who, holder.get("application"), holder.get("deployment_group"), holder.get("acquired"), working,
                   int(waited), who, who, self.path))
