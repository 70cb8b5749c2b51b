# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of rollout.codedeploy.lifecycle: copy the bundle from the controller's cache to
the host, run the module, and word a failure with the host's inventory name.

Round trips: with pipelining a run that needs no bundle is one remote command (the module). A run
that needs the bundle costs one more: a command that creates a private folder and writes the bundle
into it from its stdin. Bundles over PIPED_BUNDLE_LIMIT, other shells, no pipelining or an
unprivileged become user cost two: the folder, then a file transfer. The module removes that folder
itself when it ends, so no cleanup command follows unless the module could not do it. No remote
temporary folder is made up front (TRANSFERS_FILES is off): Ansible's own would be created and
removed without ever being used.
"""

from __future__ import annotations

import os

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.rollout.codedeploy.plugins.module_utils.lifecycle import describe_failure


# Largest bundle sent on a command's stdin (read into memory whole); larger ones go by file transfer.
PIPED_BUNDLE_LIMIT = 16 * 1024 * 1024


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run_lifecycle(self, args, task_vars):
        """Run the lifecycle module with ``args`` (copying ``bundle_src`` first when DownloadBundle needs it); return its result.

        The one host entry of the collection: the action ``lifecycle`` (role ``in_place``, playbook
        ``deploy_local``) and ``deploy_host`` (playbook ``deploy``) both run a host's events through it.
        """
        args = dict(args)
        source = args.pop("bundle_src", None)
        upload = None
        outcome = {}
        try:
            if self._needs_bundle(args) and not self._task.check_mode:
                upload, args["bundle"] = self._upload_bundle(source)
                if not C.DEFAULT_KEEP_REMOTE_FILES:
                    args["bundle_tmpdir"] = upload
            outcome = self._execute_module(module_name="rollout.codedeploy.lifecycle", module_args=args, task_vars=task_vars)
        finally:
            if upload and not outcome.pop("bundle_tmpdir_removed", False) and not C.DEFAULT_KEEP_REMOTE_FILES:
                self._remove_tmp_path(upload, force=True)
        if outcome.get("failed") and outcome.get("failed_event"):
            outcome["msg"] = describe_failure(task_vars.get("inventory_hostname", "?"), outcome)
        return outcome

    @staticmethod
    def _needs_bundle(args):
        events = args.get("events") or []
        return "DownloadBundle" in events and not (args.get("reuse_deployment") or args.get("bundle") or args.get("bundle_url"))

    def _upload_bundle(self, source):
        """Copy the controller's bundle into a new private folder on the host; return (folder, bundle path)."""
        if not source:
            raise AnsibleActionFail("DownloadBundle needs bundle_src (the bundle on the controller), bundle_url or reuse_deployment")
        source = os.path.expanduser(source)
        if not os.path.isfile(source):
            raise AnsibleActionFail("bundle_src %s does not exist on the controller; build or fetch the revision first" % source)
        folder = self._piped_bundle(source)
        if folder:
            return folder, self._connection._shell.join_path(folder, "bundle")
        folder = self._private_folder()
        remote = self._connection._shell.join_path(folder, "bundle")
        self._transfer_file(source, remote)
        # Nothing to run in it: read access for a become user is all it needs (no command unless that user is unprivileged).
        self._fixup_perms2((folder, remote), execute=False)
        return folder, remote

    def _piped_bundle(self, source):
        """Make a private folder and write the bundle into it with one command fed the bundle on stdin; return the folder.

        Only where that is as safe as a transfer: pipelining is on (the connection feeds commands on stdin), a POSIX
        shell, no become to an unprivileged user (whose read access the transfer path arranges), and a bundle small
        enough to hold in memory. Returns None otherwise or when the command fails, for the transfer path to take over.
        """
        shell = self._connection._shell
        if (not self._connection.is_pipelining_enabled() or getattr(shell, "SHELL_FAMILY", None) != "sh"
                or self._is_become_unprivileged() or os.path.getsize(source) > PIPED_BUNDLE_LIMIT):
            return None
        remote_tmp = self.get_shell_option("remote_tmp", default="~/.ansible/tmp")
        basefile = shell._generate_temp_dir_name()
        target = shell.join_path(remote_tmp, basefile, "bundle")
        cmd = '%s && umask 77 && cat > "`echo %s`"' % (shell._mkdtemp2(basefile=basefile, tmpdir=remote_tmp).command, target)
        with open(source, "rb") as handle:
            result = self._low_level_execute_command(cmd, in_data=handle.read(), sudoable=False)
        folder = self._created_folder(result, basefile)
        if result.get("rc") != 0 and folder:
            self._remove_tmp_path(folder, force=True)
        return folder if result.get("rc") == 0 else None

    def _private_folder(self):
        """A new folder under the remote temporary directory, made in one command.

        ActionBase._make_tmp_path asks the host for the home directory first (a command of its own);
        the shell expands ``~`` in the mkdir command just as well. Falls back to it on any trouble.
        """
        shell = self._connection._shell
        remote_tmp = self.get_shell_option("remote_tmp", default="~/.ansible/tmp")
        basefile = shell._generate_temp_dir_name()
        cmd = shell._mkdtemp2(basefile=basefile, system=self._is_become_unprivileged(), tmpdir=remote_tmp)
        result = self._low_level_execute_command(cmd.command, in_data=cmd.input_data, sudoable=False)
        folder = self._created_folder(result, basefile) if result.get("rc") == 0 else None
        if not folder:
            folder = self._make_tmp_path()
            shell.tmpdir = None  # ours alone, removed by the module or below; not the task's shared folder
        return folder

    @staticmethod
    def _created_folder(result, basefile):
        """The absolute path the mkdtemp command printed as ``<basefile>=<path>``, or None."""
        stdout, marker = result.get("stdout") or "", "%s=" % basefile
        folder = stdout.split(marker, 1)[1].strip().split("\n", 1)[0].strip() if marker in stdout else ""
        return folder if folder.startswith("/") and folder.strip("/") else None

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(self.run_lifecycle(self._task.args, task_vars))
        return result
