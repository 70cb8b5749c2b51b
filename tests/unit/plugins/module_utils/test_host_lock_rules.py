# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock: one deployment at a time per host (module_utils/host_lock.py), on a real file with a fake clock."""

import json
import os

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import host_lock as host_locks
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle

NOW = 1700000000.0
ME = {"deployment_id": "d-MINE00001", "application": "web", "deployment_group": "production", "deployment_group_id": "g-web"}
OTHER = {"deployment_id": "d-OTHER0001", "application": "api", "deployment_group": "production", "deployment_group_id": "g-api",
         "acquired": "2023-11-14T22:00:00Z", "expires_at": "2023-11-14T22:20:00Z"}


class Clock(object):
    def __init__(self):
        self.now = NOW
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def write(path, record):
    with open(path, "w") as handle:
        handle.write(json.dumps(record) if isinstance(record, dict) else record)


def read(path):
    with open(path) as handle:
        text = handle.read()
    return json.loads(text) if text else None


def make_lock(tmp_path, alive=None, clock=None, identity=None):
    clock = clock or Clock()
    identity = identity or ME
    lock = host_locks.HostLock(str(tmp_path / "root" / ".rollout-host.lock"), identity, clock=clock, sleep=clock.sleep, pid=4242,
                               alive=alive or (lambda pid, token: None))
    return lock, clock


@pytest.mark.parametrize("held, alive, outcome", [
    (None, None, "free"),
    ("not json", None, "free"),
    (dict(OTHER, pid=77, expires=NOW + 60), True, "refused"),
    (dict(OTHER, pid=77, expires=NOW - 60), True, "refused"),
    (dict(OTHER, pid=None, expires=NOW + 60), None, "refused"),
    (dict(OTHER, pid=77, expires=NOW + 60), None, "refused"),
    (dict(OTHER, pid=None, expires=NOW - 1), None, "taken over: it expired"),
    (dict(OTHER, pid=77, expires=NOW - 1), None, "taken over: it expired"),
    (dict(OTHER, pid=77, expires=NOW + 600), False, "taken over: its run on this host (process 77) ended"),
    (dict(ME, pid=None, expires=NOW + 60, acquired="2023-11-14T21:00:00Z"), None, "same deployment"),
    (dict(ME, pid=None, expires=NOW - 60, acquired="2023-11-14T21:00:00Z"), None, "same deployment"),
])
def test_who_gets_the_host(tmp_path, held, alive, outcome):
    lock = make_lock(tmp_path, alive=lambda pid, token: alive)[0]
    os.makedirs(os.path.dirname(lock.path))
    if held is not None:
        write(lock.path, held)
    if outcome == "refused":
        with pytest.raises(host_locks.HostLockError) as caught:
            lock.acquire(120, wait=0)
        message = caught.value.message
        assert "d-OTHER0001 of application api, deployment group production has held it since 2023-11-14T22:00:00Z" in message
        assert "raise host_lock_wait" in message and lock.path in message and "Traceback" not in message
        assert read(lock.path) == held, "a refused run leaves the holder's lock as it was"
        return
    taken = lock.acquire(120, wait=0)
    record = read(lock.path)
    assert (record["deployment_id"], record["pid"], record["expires"]) == ("d-MINE00001", 4242, NOW + 120)
    assert (record["application"], record["deployment_group"]) == ("web", "production")
    if outcome.startswith("taken over"):
        assert taken["took_over"]["deployment_id"] == "d-OTHER0001" and outcome.split(": ", 1)[1] in taken["took_over"]["why"]
        assert record["acquired"] != OTHER["acquired"]
    else:
        assert taken["took_over"] is None
    if outcome == "same deployment":
        assert record["acquired"] == "2023-11-14T21:00:00Z", "the next slice renews the lock, it keeps its start"


def test_a_run_waits_for_the_holder_and_then_gets_in(tmp_path):
    lock, clock = make_lock(tmp_path)
    os.makedirs(os.path.dirname(lock.path))
    write(lock.path, dict(OTHER, pid=None, expires=NOW + 5))
    taken = lock.acquire(60, wait=30, poll=2)
    assert taken["waited"] == 6 and clock.sleeps == [2, 2, 2]
    assert read(lock.path)["deployment_id"] == "d-MINE00001"


def test_a_run_gives_up_after_host_lock_wait(tmp_path):
    lock, clock = make_lock(tmp_path, alive=lambda pid, token: True)
    os.makedirs(os.path.dirname(lock.path))
    write(lock.path, dict(OTHER, pid=77, expires=NOW + 5))
    with pytest.raises(host_locks.HostLockError) as caught:
        lock.acquire(60, wait=7, poll=2)
    assert sum(clock.sleeps) == 7 and "waited 7 seconds" in caught.value.message and "process 77" in caught.value.message


def test_keep_and_release_touch_only_the_own_lock(tmp_path):
    lock, clock = make_lock(tmp_path)
    lock.acquire(60)
    clock.now += 10
    lock.keep(600)
    record = read(lock.path)
    assert (record["pid"], record["expires"]) == (None, NOW + 610)
    other = make_lock(tmp_path, identity=dict(OTHER))[0]
    assert other.release() is False and read(lock.path)["deployment_id"] == "d-MINE00001"
    assert lock.release() is True and read(lock.path) is None
    assert lock.release() is False


def test_the_process_token_tells_a_reused_pid_apart():
    token = host_locks.process_token(os.getpid())
    if token is None:
        pytest.skip("no /proc here")
    assert host_locks.process_state(os.getpid(), token) is True
    assert host_locks.process_state(os.getpid(), token.rsplit(":", 1)[0] + ":1") is False
    assert host_locks.process_state(2 ** 22 + 1, None) is False


# ---------------------------------------------------------------------- the lifecycle run holding the lock
GROUP = "3f1c2b8e-0000-5000-8000-000000000002"
SPEC = {"version": 0.0, "os": "linux", "hooks": {}}


def host_run(tmp_path, deployment_id, events, check_mode=False, **extra):
    params = {"deployment_id": deployment_id, "deployment_group_id": GROUP, "application_name": "web", "deployment_group_name": "production",
              "appspec": SPEC, "deployment_root": str(tmp_path / "root"), "revision": None, "host_lock_wait": 0}
    params.update(extra)
    deployment = lifecycle.HostDeployment(params)
    return deployment.run(events, check_mode=check_mode), deployment.layout.host_lock_file


@pytest.mark.parametrize("release, status, lock_after", [
    (True, "Succeeded", None),
    (False, "Succeeded", "d-MINE00001"),
    (False, "Failed", None),
    (True, "Failed", None),
])
def test_a_run_releases_after_its_last_slice_and_after_any_failure(tmp_path, release, status, lock_after):
    # ApplicationStart without a downloaded revision fails; AfterBlockTraffic with nothing installed before succeeds.
    events = ["AfterBlockTraffic"] if status == "Succeeded" else ["ApplicationStart"]
    result, path = host_run(tmp_path, "d-MINE00001", events, release_host_lock=release, host_lock_hold=90)
    assert result["status"] == status
    held = read(path)
    assert (held or {}).get("deployment_id") == lock_after
    assert result["host_lock"] == ("kept" if lock_after else "released")
    if held:
        assert held["pid"] is None and held["expires_at"] >= held["renewed"]


def test_another_deployment_is_refused_while_the_host_is_kept_and_gets_in_after(tmp_path):
    host_run(tmp_path, "d-MINE00001", ["BeforeBlockTraffic"], release_host_lock=False)
    refused, path = host_run(tmp_path, "d-OTHER0001", ["BeforeBlockTraffic"])
    assert (refused["status"], refused["error_code"], refused["failed_event"]) == ("Failed", "HostLocked", "BeforeBlockTraffic")
    assert refused["events"][0]["status"] == "Failed" and "d-MINE00001 of application web" in refused["message"]
    assert read(path)["deployment_id"] == "d-MINE00001"
    assert "Fix: deploy again once the other deployment is done" in lifecycle.describe_failure("web-1", refused)
    done = host_run(tmp_path, "d-MINE00001", ["AfterBlockTraffic"])[0]
    assert done["status"] == "Succeeded" and read(path) is None
    again = host_run(tmp_path, "d-OTHER0001", ["BeforeBlockTraffic"])[0]
    assert again["status"] == "Succeeded" and again["host_lock"] == "released"


def test_check_mode_and_an_empty_release_run(tmp_path):
    result, path = host_run(tmp_path, "d-MINE00001", ["BeforeBlockTraffic"], check_mode=True)
    assert "host_lock" not in result and not os.path.exists(path)
    host_run(tmp_path, "d-MINE00001", ["BeforeBlockTraffic"], release_host_lock=False)
    other = host_run(tmp_path, "d-OTHER0001", [], release_host_lock=True)[0]
    assert other["host_lock"] == "not held" and read(path)["deployment_id"] == "d-MINE00001"
    mine = host_run(tmp_path, "d-MINE00001", [], release_host_lock=True)[0]
    assert mine["host_lock"] == "released" and read(path) is None


def test_the_slice_bound_adds_the_scripts_timeouts():
    spec = {"hooks": {"ApplicationStart": [{"location": "a", "timeout": 30}, {"location": "b", "timeout": None}]}}
    deployment = lifecycle.HostDeployment.__new__(lifecycle.HostDeployment)
    deployment.params, deployment.state = {"appspec": spec}, None
    assert deployment.slice_seconds(["ApplicationStart", "ValidateService"]) == lifecycle.RUN_MARGIN + 30 + 3600
    assert deployment.slice_seconds(["ApplicationStop"]) == lifecycle.RUN_MARGIN + 3600
