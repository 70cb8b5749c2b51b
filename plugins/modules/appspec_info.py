#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: appspec_info
short_description: Read and validate a CodeDeploy AppSpec file
version_added: 0.1.0
description:
  - Reads the C(appspec.yml) of a CodeDeploy revision (EC2/on-premises) and validates it with the
    rules of the CodeDeploy agent, without deploying anything.
  - O(path) may be a revision directory, a zip, tar or tgz bundle (recognized by its content, not its
    name), or an AppSpec file.
  - For a directory or a bundle, also checks that every hook script exists inside the revision
    (see RV(script_problems)). A bundle is unpacked into a temporary directory with the same safety
    checks as a deployment, so an unsafe bundle (absolute paths, C(..), symlinks pointing outside) fails here too.
  - An invalid AppSpec fails the task with the agent's own message, followed by the file, line and key
    of the problem (also returned as RV(key) and RV(line)).
  - Warnings about the AppSpec are returned in RV(appspec_warnings) and emitted as Ansible warnings.
author:
  - rollout.codedeploy maintainers (@rollout)
requirements:
  - PyYAML on the host that runs the module
attributes:
  check_mode:
    description: Can run in check mode and return the same result.
    support: full
    details:
      - This module does not modify state.
  diff_mode:
    description: Returns details on what has changed when in diff mode.
    support: none
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - A revision directory (with C(appspec.yml) or C(appspec.yaml) at its root), a revision bundle
        (zip, tar or tgz), or an AppSpec file.
      - "The path is read on the host that runs the module; use C(delegate_to: localhost) for a file on the controller."
    type: path
    required: true
notes:
  - Like the agent, a bundle whose root holds exactly one directory containing the AppSpec uses that
    directory as the revision root.
seealso:
  - module: rollout.codedeploy.revision
extends_documentation_fragment:
  - rollout.codedeploy.attributes
"""

EXAMPLES = r"""
- name: Validate the AppSpec of a revision directory on the controller
  rollout.codedeploy.appspec_info:
    path: "{{ playbook_dir }}/app"
  delegate_to: localhost
  register: spec

- name: Show the hooks it runs
  ansible.builtin.debug:
    msg: "{{ spec.appspec.hooks | list }}"

- name: Check a built bundle, and fail on missing hook scripts
  rollout.codedeploy.appspec_info:
    path: /srv/builds/web-1.4.2.tgz
  register: bundle_spec
  failed_when: bundle_spec.failed or bundle_spec.script_problems | length > 0
"""

RETURN = r"""
appspec:
  description:
    - The normalized AppSpec, with defaults filled in (script C(timeout) 3600, permission C(pattern) C(**), ...).
  returned: success
  type: dict
  sample:
    version: "0.0"
    os: linux
    files: [{source: app/, destination: /srv/app}]
    hooks:
      ApplicationStart: [{location: scripts/start.sh, timeout: 120, runas: null, sudo: false}]
    permissions: []
    file_exists_behavior: null
appspec_warnings:
  description:
    - Problems that do not stop a deployment (for example scripts under an event that never runs scripts).
    - Each one is also emitted as an Ansible warning, so it is shown and, when there is any, listed in the
      standard C(warnings) key of the result.
  returned: success
  type: list
  elements: str
  sample:
    - >-
      app/appspec.yml line 4, hooks.Install: Install is done by the deployment itself: scripts listed under
      it never run; use BeforeInstall or AfterInstall instead
script_problems:
  description:
    - Hook scripts that are missing from the revision or resolve outside it (empty for an AppSpec file,
      which has no revision around it).
  returned: success
  type: list
  elements: dict
  contains:
    event:
      description: The lifecycle event.
      type: str
    index:
      description: The script's position in the event's list (0-based).
      type: int
    location:
      description: The script's location as written.
      type: str
    path:
      description: Where the location resolves inside the revision.
      type: str
    problem:
      description: C(missing), C(not_a_file) or C(outside_revision).
      type: str
    message:
      description: What is wrong and how to fix it.
      type: str
source:
  description:
    - Where the AppSpec was read; for a bundle, C(<bundle>:<member inside the archive>).
  returned: success
  type: str
  sample: /srv/builds/web-1.4.2.tgz:web/appspec.yml
kind:
  description: What O(path) is.
  returned: success
  type: str
  sample: bundle
  choices: [directory, bundle, file]
bundle_type:
  description: The bundle's type, from its content (C(zip), C(tar) or C(tgz)); null unless O(path) is a bundle.
  returned: success
  type: str
  sample: tgz
sha256:
  description: The bundle's sha256; null unless O(path) is a bundle.
  returned: success
  type: str
key:
  description: The key path of the problem in an invalid AppSpec (for example C(hooks.AfterInstall[0].timeout)), or null.
  returned: failure
  type: str
  sample: hooks.AfterInstall[0].timeout
line:
  description: The 1-based line of the problem in an invalid AppSpec, or null.
  returned: failure
  type: int
  sample: 12
entry:
  description: The archive member of a bundle that was refused (absolute path, C(..), symlink outside, ...), or null.
  returned: failure
  type: str
  sample: ../../etc/cron.d/evil
"""

import os
import shutil
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as spec
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle


def inspect(path, tmpdir=None):
    """The appspec_info result for ``path``; raises AppSpecError or BundleError."""
    result = dict(appspec=None, warnings=[], script_problems=[], source=None, kind=None, bundle_type=None, sha256=None)
    if os.path.isdir(path):
        source = spec.find_appspec(path)
        parsed, warnings = spec.load_appspec_file(path)
        result.update(kind="directory", source=source, script_problems=spec.script_path_problems(parsed, path))
    elif not os.path.exists(path):
        raise bundle.BundleError("%s does not exist: give a revision directory, a bundle or an AppSpec file." % path)
    elif _is_bundle(path):
        text, member = bundle.read_appspec(path)
        source = "%s:%s" % (path, member)
        parsed, warnings = spec.parse_appspec(text, source=source)
        work = tempfile.mkdtemp(prefix="appspec_info.", dir=tmpdir)
        try:
            root = bundle.unpack(path, os.path.join(work, "revision"))
            problems = spec.script_path_problems(parsed, root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for problem in problems:  # name paths inside the bundle, not inside the removed temporary copy
            problem["path"] = "%s:%s" % (path, os.path.relpath(problem["path"], root))
            problem["message"] = problem["message"].replace(root, path + ":")
        result.update(kind="bundle", source=source, script_problems=problems,
                      bundle_type=bundle.detect_type(path), sha256=bundle.sha256_file(path))
    elif bundle.type_from_name(path):
        # Named like a bundle but no archive: say so, rather than reading it as an AppSpec.
        with open(path, "rb") as handle:
            head = handle.read(16)
        raise bundle.BundleError(bundle.not_an_archive_message(path, head))
    else:
        parsed, warnings = spec.load_appspec_file(path)
        result.update(kind="file", source=path)
    result.update(appspec=parsed, warnings=list(warnings))
    return result


def _is_bundle(path):
    try:
        bundle.detect_type(path)
    except bundle.BundleError:
        return False
    return True


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type="path", required=True)), supports_check_mode=True)
    if not spec.HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=spec.YAML_IMPORT_ERROR and "".join(
            traceback.format_exception_only(type(spec.YAML_IMPORT_ERROR), spec.YAML_IMPORT_ERROR)))
    path = module.params["path"]
    try:
        result = inspect(path, tmpdir=getattr(module, "tmpdir", None))
    except spec.AppSpecError as exc:
        module.fail_json(msg=exc.message, path=path, key=exc.key, line=exc.line)
    except bundle.BundleError as exc:
        module.fail_json(msg=exc.message, path=path, entry=exc.entry)
    warnings = result.pop("warnings")
    for warning in warnings:
        module.warn(warning)  # Ansible shows them and lists them in the result's "warnings"
    module.exit_json(changed=False, appspec_warnings=warnings, **result)


if __name__ == "__main__":
    main()
