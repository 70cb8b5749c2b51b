"""pytest fixtures for the test world: one moto server and one fleet per session, reset between tests.

- ``world``: the session's World (started on first use, stopped at the end, also after failures;
  a run killed with -9 is cleaned up by the next run's start).
- ``aws``: a Resources builder on a freshly reset moto server (function scope).
- ``fleet_hosts``: the session's hosts, each restarted with a clean private filesystem for the test.
"""
import os

import pytest

from world.world import World

FLEET_SIZE = int(os.environ.get("ROLLOUT_TEST_FLEET_SIZE", "6"))
# Which world the session uses: "test" by default; dev1..dev3 let several runs share a machine.
WORLD_NAME = os.environ.get("ROLLOUT_TEST_WORLD", "test")


@pytest.fixture(scope="session")
def world():
    started = World(WORLD_NAME).start(FLEET_SIZE)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def aws(world):
    world.moto.reset()
    return world.resources()


@pytest.fixture
def fleet_hosts(world):
    """All session hosts with fresh private filesystems (about 0.2 s for the whole fleet)."""
    hosts = sorted(world.fleet.hosts.values(), key=lambda h: h.index)
    world.fleet.restart(hosts)
    return hosts
