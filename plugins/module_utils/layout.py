# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CodeDeploy agent's deployment-root layout on a managed host (docs/agent-compatibility.md §3).

::

    <root>/<group-id>/<deployment-id>/bundle.tar              the download, whatever its type
    <root>/<group-id>/<deployment-id>/deployment-archive/     the unpacked revision
    <root>/<group-id>/<deployment-id>/logs/scripts.log        hook output
    <root>/deployment-instructions/<group-id>-cleanup         paths the last Install created
    <root>/deployment-instructions/<group-id>-install.json    the last Install's instructions
    <root>/deployment-instructions/<group-id>_last_successful_install   a deployment directory path
    <root>/deployment-instructions/<group-id>_most_recent_install       a deployment directory path
    <root>/deployment-logs/codedeploy-agent-deployments.log
    <root>/ongoing-deployment/<deployment-id>                 an event in flight
    <root>/.rollout-host.lock                                 which deployment holds the host (ours, not the agent's)

A host that the real agent managed keeps its history: the pointer files are read and written
in the agent's format (the bare path, no newline), ``prune`` follows the agent's retention
rule, and ``read_ongoing`` understands the agent's tracking files too.

Pure Python (standard library), Python 3.8 compatible: it runs on managed hosts.
"""

import datetime
import json
import os
import shutil
import tempfile

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import DEFAULT_DEPLOYMENT_ROOT, DEFAULT_MAX_REVISIONS

DEFAULT_ROOT = DEFAULT_DEPLOYMENT_ROOT

INSTRUCTIONS_DIR = "deployment-instructions"
DEPLOYMENT_LOGS_DIR = "deployment-logs"
DEPLOYMENTS_LOG = "codedeploy-agent-deployments.log"
ONGOING_DIR = "ongoing-deployment"
HOST_LOCK_FILE = ".rollout-host.lock"
ARCHIVE_DIR = "deployment-archive"
BUNDLE_FILE = "bundle.tar"
LOGS_DIR = "logs"
SCRIPTS_LOG = "scripts.log"


def _check_component(value, what):
    """A group or deployment id becomes one path component: refuse anything that is not."""
    text = "" if value is None else str(value)
    if not text or text in (".", "..") or "/" in text or "\0" in text or "\n" in text:
        raise ValueError("invalid %s %r: it must be a non-empty name without '/', such as the id CodeDeploy gives" % (what, value))
    return text


def atomic_write(path, data, mode=0o644):
    """Write ``data`` (str or bytes) to ``path`` through a temporary file and a rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory)
    handle, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except (IOError, OSError):
        return None


def _utc_stamp(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (now.microsecond // 1000)


class Layout(object):
    """Paths and small state files under one deployment root."""

    def __init__(self, root=DEFAULT_ROOT):
        root = root or DEFAULT_ROOT
        self.root = os.path.abspath(root)
        self.instructions_dir = os.path.join(self.root, INSTRUCTIONS_DIR)
        self.deployment_logs_dir = os.path.join(self.root, DEPLOYMENT_LOGS_DIR)
        self.deployments_log = os.path.join(self.deployment_logs_dir, DEPLOYMENTS_LOG)
        self.ongoing_dir = os.path.join(self.root, ONGOING_DIR)

    def __repr__(self):
        return "Layout(%r)" % self.root

    @property
    def host_lock_file(self):
        """The file that says which deployment holds this host (module_utils/host_lock.py)."""
        return os.path.join(self.root, HOST_LOCK_FILE)

    # -- per deployment -----------------------------------------------------------------
    def group_dir(self, group_id):
        return os.path.join(self.root, _check_component(group_id, "deployment group id"))

    def deployment_dir(self, group_id, deployment_id):
        return os.path.join(self.group_dir(group_id), _check_component(deployment_id, "deployment id"))

    def archive_dir(self, group_id, deployment_id):
        return os.path.join(self.deployment_dir(group_id, deployment_id), ARCHIVE_DIR)

    def bundle_file(self, group_id, deployment_id):
        return os.path.join(self.deployment_dir(group_id, deployment_id), BUNDLE_FILE)

    def logs_dir(self, group_id, deployment_id):
        return os.path.join(self.deployment_dir(group_id, deployment_id), LOGS_DIR)

    def scripts_log(self, group_id, deployment_id):
        return os.path.join(self.logs_dir(group_id, deployment_id), SCRIPTS_LOG)

    # -- deployment-instructions ---------------------------------------------------------
    def cleanup_file(self, group_id):
        return os.path.join(self.instructions_dir, "%s-cleanup" % _check_component(group_id, "deployment group id"))

    def install_json(self, group_id):
        return os.path.join(self.instructions_dir, "%s-install.json" % _check_component(group_id, "deployment group id"))

    def last_successful_file(self, group_id):
        return os.path.join(self.instructions_dir, "%s_last_successful_install" % _check_component(group_id, "deployment group id"))

    def most_recent_file(self, group_id):
        return os.path.join(self.instructions_dir, "%s_most_recent_install" % _check_component(group_id, "deployment group id"))

    @staticmethod
    def _read_pointer(path):
        text = _read_text(path)
        if text is None:
            return None
        text = text.strip()
        return text or None

    def last_successful(self, group_id):
        """The deployment directory of the last successful Install of the group, or None."""
        return self._read_pointer(self.last_successful_file(group_id))

    def most_recent(self, group_id):
        """The deployment directory of the group's most recent DownloadBundle, or None."""
        return self._read_pointer(self.most_recent_file(group_id))

    def set_last_successful(self, group_id, deployment_dir):
        atomic_write(self.last_successful_file(group_id), str(deployment_dir))

    def set_most_recent(self, group_id, deployment_dir):
        atomic_write(self.most_recent_file(group_id), str(deployment_dir))

    def write_install_json(self, group_id, instructions):
        """Write ``{"instructions": [...]}`` as the agent does (atomically here)."""
        atomic_write(self.install_json(group_id), json.dumps({"instructions": list(instructions)}))

    # -- deployment log ------------------------------------------------------------------
    def log_deployment(self, text):
        """Append ``text`` to the deployments log, each line as ``[YYYY-mm-dd HH:MM:SS.mmm] line`` (UTC)."""
        if not os.path.isdir(self.deployment_logs_dir):
            os.makedirs(self.deployment_logs_dir)
        stamp = _utc_stamp()
        lines = str(text).splitlines() or [""]
        data = "".join("[%s] %s\n" % (stamp, line) for line in lines)
        with open(self.deployments_log, "ab") as handle:
            handle.write(data.encode("utf-8", "surrogateescape"))

    # -- ongoing-deployment marker ---------------------------------------------------------
    def ongoing_file(self, deployment_id):
        return os.path.join(self.ongoing_dir, _check_component(deployment_id, "deployment id"))

    def mark_ongoing(self, group_id, deployment_id, event):
        """Mark ``event`` of a deployment as in flight (cleared by ``clear_ongoing``)."""
        record = {"group_id": str(group_id), "deployment_id": str(deployment_id), "event": event,
                  "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "pid": os.getpid()}
        atomic_write(self.ongoing_file(deployment_id), json.dumps(record, sort_keys=True))

    def read_ongoing(self):
        """The most recent in-flight marker as a dict, or None when no event was cut off.

        Our markers are JSON (group_id, deployment_id, event, started_at, pid). A tracking file
        the real agent left (its content is a host command identifier) is reported as
        ``{"deployment_id": <file name>, "event": None, "host_command_identifier": <text>, "agent": True}``.
        """
        try:
            names = [name for name in os.listdir(self.ongoing_dir) if not name.startswith(".")]
        except OSError:
            return None
        entries = []
        for name in names:
            path = os.path.join(self.ongoing_dir, name)
            try:
                if os.path.isfile(path):
                    entries.append((os.path.getmtime(path), name, path))
            except OSError:
                continue
        if not entries:
            return None
        _mtime, name, path = max(entries)
        text = _read_text(path) or ""
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {"deployment_id": name, "group_id": None, "event": None,
                      "host_command_identifier": text.strip(), "agent": True}
        record["path"] = path
        return record

    def clear_ongoing(self, deployment_id=None):
        """Remove the marker of ``deployment_id``, or every marker when it is None."""
        if deployment_id is not None:
            paths = [self.ongoing_file(deployment_id)]
        else:
            try:
                paths = [os.path.join(self.ongoing_dir, name) for name in os.listdir(self.ongoing_dir)]
            except OSError:
                return
        for path in paths:
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError:
                pass

    # -- retention -----------------------------------------------------------------------------
    def prune(self, group_id, max_revisions=DEFAULT_MAX_REVISIONS, keep=()):
        """Remove the group's oldest deployment directories beyond ``max_revisions``.

        The agent's rule: at most ``max_revisions`` deployment directories per group (those in
        ``keep`` count, even when not created yet, as the agent counts the deployment being
        downloaded); the oldest by mtime go first; the last successful one and those in
        ``keep`` (deployment ids or paths) are never removed. Returns the removed paths.
        """
        max_revisions = int(max_revisions)
        if max_revisions < 1:
            raise ValueError("max_revisions must be at least 1, not %d" % max_revisions)
        group_dir = self.group_dir(group_id)
        try:
            names = os.listdir(group_dir)
        except OSError:
            return []
        existing = []
        for name in names:
            path = os.path.join(group_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                existing.append(path)
        kept = set()
        for item in keep or ():
            item = str(item)
            path = item if os.sep in item else os.path.join(group_dir, item)
            kept.add(os.path.normpath(path))
        counted = set(os.path.normpath(p) for p in existing) | set(p for p in kept if os.path.dirname(p) == group_dir)
        extra = len(counted) - max_revisions
        if extra <= 0:
            return []
        protected = set(kept)
        last = self.last_successful(group_id)
        if last:
            protected.add(os.path.normpath(last))
        candidates = []
        for path in existing:
            if os.path.normpath(path) in protected:
                continue
            try:
                candidates.append((os.path.getmtime(path), path))
            except OSError:
                continue
        candidates.sort()
        removed = []
        for _mtime, path in candidates[:extra]:
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                removed.append(path)
        return removed
