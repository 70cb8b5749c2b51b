"""pytest bootstrap: make the checkout importable as ``ansible_collections.rollout.codedeploy``.

The collection lives at the repository root, but Python and Ansible find collections only
under an ``ansible_collections/<namespace>/<name>`` path. ``tests/world/paths.py`` keeps one
symlink for that in ``.cache/collections`` (git-ignored) and every entry point uses it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from world import paths  # noqa: E402  (needs the sys.path entry above)

paths.ensure_collection_link()
if paths.COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, paths.COLLECTIONS_ROOT)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = paths.collections_path()

pytest_plugins = ["world.fixtures"]
