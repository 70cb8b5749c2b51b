"""The test world of rollout.codedeploy: an embedded AWS (moto server) and a fleet of SSH hosts.

Used by the pytest fixtures (``world.fixtures``), by ``tools/world`` and by the demo.
"""
