# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: deployment_view
type: notification
short_description: Live view of a CodeDeploy deployment - a line per batch, failures, and a host by event table
version_added: 0.2.0
description:
  - Follows the deployments that the playbooks C(rollout.codedeploy.deploy) and C(rollout.codedeploy.rollback) run (and any
    playbook built from the same tasks), and prints their story next to Ansible's usual task output.
  - After each batch, one line with the batch's hosts, the lifecycle events they completed and any failures, and what the
    health and alarm check after the batch decided.
  - For each failed host, right after its batch line, the host, the event, the failing script, the error code and the last
    lines of the script log.
  - When the deployment is settled, a table of each host against each lifecycle event (status and seconds per event, the
    host's status and total time), then the deployment id and its final status. An automatic rollback gets its own lines and table.
  - It is a notification callback, so it adds to whatever stdout callback runs (Ansible's default, or AWX's own). Enable it
    with C(callbacks_enabled) in C(ansible.cfg) or the E(ANSIBLE_CALLBACKS_ENABLED) environment variable.
  - It reads only the results of the collection's own tasks (M(rollout.codedeploy.deployment) and M(rollout.codedeploy.deploy_host));
    it never opens the ledger, so it costs nothing on the hosts and works with either ledger.
  - Colour follows Ansible's own rule - only when standard output is a terminal, never with E(NO_COLOR) or E(ANSIBLE_NOCOLOR)
    set, always with E(ANSIBLE_FORCE_COLOR). Without colour the output is plain text with no escape sequences.
author:
  - rollout.codedeploy maintainers (@rollout)
requirements:
  - Enabled in the configuration (C(callbacks_enabled = rollout.codedeploy.deployment_view)).
options:
  show_table:
    description: Print the table of hosts against lifecycle events when a deployment is settled.
    type: bool
    default: true
    env:
      - name: CODEDEPLOY_VIEW_SHOW_TABLE
    ini:
      - section: callback_deployment_view
        key: show_table
  width:
    description:
      - The width, in characters, that the table keeps within. A table wider than that uses short event names with a legend,
        and if still too wide it is split into several blocks of events, each repeating the host and status columns.
      - 0 (the default) means the value of E(COLUMNS), else the terminal's width, else 120 columns when standard output is
        not a terminal (CI logs, a pipe).
    type: int
    default: 0
    env:
      - name: CODEDEPLOY_VIEW_WIDTH
    ini:
      - section: callback_deployment_view
        key: width
  log_lines:
    description: How many of the last lines of a failed event's script log to print (0 prints none).
    type: int
    default: 10
    env:
      - name: CODEDEPLOY_VIEW_LOG_LINES
    ini:
      - section: callback_deployment_view
        key: log_lines
notes:
  - In AWX or Automation Controller, put the collection in the execution environment and set E(ANSIBLE_CALLBACKS_ENABLED) to
    C(rollout.codedeploy.deployment_view) in the job template's environment (or in an C(ansible.cfg) of the project). See the
    collection's docs/operator-view.md.
  - A host's events come from its M(rollout.codedeploy.deploy_host) result, so a host whose task never returned (the play was
    cut off) has no row.
seealso:
  - module: rollout.codedeploy.deployment
  - module: rollout.codedeploy.deploy_host
  - module: rollout.codedeploy.deployment_info
"""

import os
import shutil
import sys

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

from ansible_collections.rollout.codedeploy.plugins.plugin_utils import deployment_view as view


class CallbackModule(CallbackBase):
    """Feeds the deployment's task results to plugin_utils/deployment_view.py and prints what it says."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "rollout.codedeploy.deployment_view"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        super(CallbackModule, self).__init__(display=display, options=options)
        self._view = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(CallbackModule, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        isatty = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        columns = shutil.get_terminal_size((0, 0)).columns if isatty else None
        self._view = view.DeploymentView(
            show_table=self.get_option("show_table"),
            width=view.view_width(self.get_option("width"), os.environ, columns),
            log_lines=max(self.get_option("log_lines") or 0, 0),
            colour=view.colour_enabled(isatty, nocolor=C.ANSIBLE_NOCOLOR, force=C.ANSIBLE_FORCE_COLOR, env=os.environ))

    def _feed(self, result, outcome):
        task = result._task  # pylint: disable=protected-access
        action = getattr(task, "resolved_action", None) or task.action
        payload = result._result  # pylint: disable=protected-access
        kind = view.classify(action, payload)
        if kind is None:
            return
        if self._view is None:
            self.set_options()
        for line in self._view.feed(kind, result._host.get_name(), payload, outcome):  # pylint: disable=protected-access
            self._display.display(line)

    def v2_runner_on_ok(self, result):
        self._feed(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._feed(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._feed(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._feed(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if self._view is None:
            return
        for line in self._view.close():
            self._display.display(line)
