# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease heartbeat: keeps a deployment's lock alive for exactly as long as its controller lives.

Ansible runs each task in a short-lived worker, so nothing of the controller runs between tasks, and a
hook longer than the lease would let a second deployment take the group. When a deployment opens, the
service starts this file as a small detached process. Every third of the lease it renews the lease,
until the deployment is settled (then there is nothing to hold) or the ``ansible-playbook`` process
that owns it is gone (then the lease runs out, and ``rollout.codedeploy.stop`` or the next deployment
settles it). Controller-only; see docs/reliability.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

#: How often the heartbeat looks for its controller between two renewals (seconds).
WATCH = 1.0
_HERE = os.path.abspath(__file__)
# .../ansible_collections/rollout/codedeploy/plugins/plugin_utils/heartbeat.py -> the folder holding ansible_collections
_COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(_HERE))))))


def alive(pid):
    """True while process ``pid`` exists (a zombie child counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        with open("/proc/%d/stat" % pid, "r", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def interval_for(lease_seconds):
    """How often to renew: a third of the lease, at least every 0.5 s and at most every 60 s."""
    return min(60.0, max(0.5, float(lease_seconds) / 3.0))


def beat(ledger, deployment_id, owner, lease_seconds, controller_pid, sleep=time.sleep, is_alive=alive, limit=None):
    """Renew until the deployment is settled or the controller is gone; returns why it stopped."""
    from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import TERMINAL_STATUSES
    from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import LedgerError
    rounds = 0
    while limit is None or rounds < limit:
        rounds += 1
        if not is_alive(controller_pid):
            return "controller gone"
        try:
            if ledger.get_deployment(deployment_id, include_instances=False)["status"] in TERMINAL_STATUSES:
                return "settled"
            ledger.renew_lease(deployment_id, owner=owner, lease_seconds=lease_seconds)
            if not is_alive(controller_pid):
                # The controller died while this renewal was on its way: hand the lease back at once.
                ledger.renew_lease(deployment_id, owner=owner, lease_seconds=0)
                return "controller gone"
        except LedgerError:
            pass  # a busy or briefly unreachable ledger: try again next round; the lease has slack for that
        if not _wait(interval_for(lease_seconds), controller_pid, sleep, is_alive):
            return "controller gone"
    return "limit"


def _wait(seconds, controller_pid, sleep, is_alive):
    """Sleep until the next renewal, looking for the controller every WATCH seconds; False as soon as it is gone."""
    while seconds > 0:
        sleep(min(WATCH, seconds))
        seconds -= WATCH
        if not is_alive(controller_pid):
            return False
    return True


def start(ledger_location, aws, deployment_id, owner, lease_seconds, controller_pid):
    """Start the heartbeat as a detached process; returns its pid (None when it cannot start)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_COLLECTIONS_ROOT, env.get("PYTHONPATH")) if p)
    env["ROLLOUT_CODEDEPLOY_HEARTBEAT"] = json.dumps({
        "ledger": ledger_location, "aws": aws or {}, "deployment_id": deployment_id, "owner": owner,
        "lease_seconds": lease_seconds, "controller_pid": controller_pid})
    try:
        process = subprocess.Popen([sys.executable, _HERE], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    except OSError:
        return None
    return process.pid


def main():
    settings = json.loads(os.environ.pop("ROLLOUT_CODEDEPLOY_HEARTBEAT"))
    from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
    book = ledgers.open_ledger(settings["ledger"], aws=settings["aws"])
    beat(book, settings["deployment_id"], settings["owner"], settings["lease_seconds"], settings["controller_pid"])


if __name__ == "__main__":
    main()
