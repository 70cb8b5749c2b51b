# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of rollout.codedeploy.lifecycle: copy the bundle from the controller's cache to
the host, run the module, and word a failure with the host's inventory name."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.rollout.codedeploy.plugins.module_utils.lifecycle import describe_failure


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run_lifecycle(self, args, task_vars):
        """Run the lifecycle module with ``args`` (copying ``bundle_src`` first when DownloadBundle needs it); return its result."""
        args = dict(args)
        source = args.pop("bundle_src", None)
        events = args.get("events") or []
        needs_bundle = "DownloadBundle" in events and not (args.get("reuse_deployment") or args.get("bundle") or args.get("bundle_url"))
        try:
            if needs_bundle and not self._task.check_mode:
                if not source:
                    raise AnsibleActionFail("DownloadBundle needs bundle_src (the bundle on the controller), bundle_url or reuse_deployment")
                source = os.path.expanduser(source)
                if not os.path.isfile(source):
                    raise AnsibleActionFail("bundle_src %s does not exist on the controller; build or fetch the revision first" % source)
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir or self._make_tmp_path(), "bundle")
                self._transfer_file(source, remote)
                self._fixup_perms2((self._connection._shell.tmpdir, remote))
                args["bundle"] = remote
            outcome = self._execute_module(module_name="rollout.codedeploy.lifecycle", module_args=args, task_vars=task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if outcome.get("failed") and outcome.get("failed_event"):
            outcome["msg"] = describe_failure(task_vars.get("inventory_hostname", "?"), outcome)
        return outcome

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(self.run_lifecycle(self._task.args, task_vars))
        return result
