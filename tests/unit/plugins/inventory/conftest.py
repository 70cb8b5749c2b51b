# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin tests load the plugin the way ansible-inventory does: through Ansible's collection loader.

``ansible-test units`` installs that loader before any test module is imported; plain pytest
does not, and modules imported earlier through ``sys.path`` would shadow it. So the loader is
installed here, after forgetting any ``ansible_collections`` modules imported without it.
"""
import sys

from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder


def _install_collection_loader():
    if any(isinstance(finder, _AnsibleCollectionFinder) for finder in sys.meta_path):
        return
    for name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
        del sys.modules[name]
    init_plugin_loader()


_install_collection_loader()
