# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-side lifecycle of one deployment: the events a CodeDeploy agent runs on an instance.

Runs on the managed host (inside the ``lifecycle`` module). One call runs a consecutive slice of
the lifecycle (for example ApplicationStop through ValidateService) so that a deployment costs as
few remote round trips as the order of events allows; the load-balancer events in between are the
controller's. State that later calls need (where the revision was unpacked, its appspec) is kept
in the deployment's folder, beside the agent's own files, so any later call - or a rollback that
reuses the archive - finds it.

Which revision's scripts run: ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run the
scripts of the last revision that installed successfully on this host (none on a first
deployment: a successful no-op); every other event runs the current revision's scripts.
"""

import errno
import json
import os
import shutil

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as appspec_rules
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
from ansible_collections.rollout.codedeploy.plugins.module_utils import hooks
from ansible_collections.rollout.codedeploy.plugins.module_utils import host_lock as host_locks
from ansible_collections.rollout.codedeploy.plugins.module_utils import install as installer
from ansible_collections.rollout.codedeploy.plugins.module_utils.layout import Layout

# Written by this collection into each deployment folder; the agent never reads it.
REVISION_FILE = "rollout-revision.json"
HOST_EVENTS = tuple(e for e in appspec_rules.EC2_LIFECYCLE_EVENTS if e not in ("BlockTraffic", "AllowTraffic"))
CONTROLLER_EVENTS = ("BlockTraffic", "AllowTraffic")
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SKIPPED = "Skipped"
#: The error code of a run that found the host held by another deployment.
HOST_LOCKED = "HostLocked"
#: Beyond the scripts' timeouts, how long a slice may take (module start, DownloadBundle, Install).
RUN_MARGIN = 900


utc_now = hooks.utc_timestamp


class LifecycleError(Exception):
    """A deployment cannot run on this host; ``message`` says why and what to do."""

    def __init__(self, message):
        super(LifecycleError, self).__init__(message)
        self.message = message


def order_events(events):
    """Check event names and their order; return them as a list. Raise LifecycleError naming the problem."""
    known = appspec_rules.EC2_LIFECYCLE_EVENTS
    for event in events:
        if event in CONTROLLER_EVENTS:
            raise LifecycleError("%s is a load-balancer step that the controller runs; it cannot run on the host. "
                                 "Leave it out of the host's events." % event)
        if event not in known:
            raise LifecycleError("unknown lifecycle event %r; the events are: %s" % (event, ", ".join(HOST_EVENTS)))
    positions = [known.index(e) for e in events]
    if positions != sorted(positions) or len(set(positions)) != len(positions):
        raise LifecycleError("events must be given once each, in lifecycle order (%s); got %s"
                             % (", ".join(HOST_EVENTS), ", ".join(events)))
    return list(events)


def needs_host(events, spec):
    """Whether running ``events`` on the host can do anything, judged from the revision's appspec ``spec``.

    DownloadBundle and Install always work on the host, and so do the events that run the scripts of the
    revision installed before (the controller does not know that revision). Any other event only runs the
    hooks ``spec`` lists for it. Without an appspec the host has to decide.
    """
    if not isinstance(spec, dict) or not spec:
        return True
    hooks_of = spec.get("hooks") or {}
    for event in events:
        if event in ("DownloadBundle", "Install") or event in appspec_rules.OLD_REVISION_EVENTS or hooks_of.get(event):
            return True
    return False


def os_error_text(exc):
    """A file-system error in plain words, with what to do for the common ones."""
    where = " (%s)" % exc.filename if getattr(exc, "filename", None) else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return ("No space left on device%s: the disk of the deployment root or of a destination is full. Free space on the host "
                "(the deployment root keeps max_revisions archives) and deploy again" % where)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "%s%s: the host refused the write; check the file's permissions and mounts" % (reason, where)
    return "%s%s" % (reason, where)


def skipped_events(events):
    """The records the module returns for ``events`` that have no scripts (status Skipped, error code Success)."""
    records = []
    for event in events:
        record = hooks.run_event(event, [], None, None, None)
        record["changed"] = False
        records.append(record)
    return records


def find_revision_root(archive_dir):
    """The folder holding the appspec: the archive itself, or its single top-level folder that holds one."""
    if appspec_rules.find_appspec(archive_dir):
        return archive_dir
    entries = os.listdir(archive_dir) if os.path.isdir(archive_dir) else []
    if len(entries) == 1:
        inner = os.path.join(archive_dir, entries[0])
        if os.path.isdir(inner) and appspec_rules.find_appspec(inner):
            return inner
    return archive_dir


class HostDeployment(object):
    """One deployment as this host sees it."""

    def __init__(self, params, layout=None):
        self.params = params
        self.layout = layout or Layout(params.get("deployment_root") or None)
        self.deployment_id = params["deployment_id"]
        self.group_id = params["deployment_group_id"]
        self.deployment_dir = self.layout.deployment_dir(self.group_id, self.deployment_id)
        self.env = hooks.build_environment(self.deployment_id, params.get("application_name") or "",
                                           params.get("deployment_group_name") or "", self.group_id,
                                           revision=params.get("revision"))
        self.state = self._load_state(self.deployment_dir)

    # ----------------------------------------------------------------- state kept beside the agent's files
    @staticmethod
    def _load_state(deployment_dir):
        try:
            with open(os.path.join(deployment_dir, REVISION_FILE)) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return None

    def _save_state(self, state):
        path = os.path.join(self.deployment_dir, REVISION_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        os.rename(tmp, path)
        self.state = state

    def _revision_of(self, deployment_dir):
        """(appspec, revision root) of an earlier deployment folder, ours or the agent's."""
        state = self._load_state(deployment_dir)
        if state and state.get("appspec") is not None:
            return state["appspec"], state["root"]
        archive = os.path.join(deployment_dir, "deployment-archive")
        root = find_revision_root(archive)
        try:
            spec, _warnings = appspec_rules.load_appspec_file(root)
        except appspec_rules.AppSpecError as exc:
            raise LifecycleError("the last successful revision in %s has an appspec this host cannot read: %s" % (deployment_dir, exc.message))
        return spec, root

    # ----------------------------------------------------------------- the host lock
    def host_lock(self):
        identity = {"deployment_id": self.deployment_id, "application": self.params.get("application_name"),
                    "deployment_group": self.params.get("deployment_group_name"), "deployment_group_id": self.group_id}
        return host_locks.HostLock(self.layout.host_lock_file, identity)

    def slice_seconds(self, events):
        """The longest ``events`` can take on this host: their scripts' timeouts (an event of the revision installed
        before, or without an appspec: the most one event may take) plus RUN_MARGIN for downloading and installing."""
        spec = self.params.get("appspec") or (self.state or {}).get("appspec") or {}
        total = RUN_MARGIN
        for event in events:
            if event in appspec_rules.OLD_REVISION_EVENTS or not spec:
                total += appspec_rules.MAX_EVENT_TIMEOUT
                continue
            for script in (spec.get("hooks") or {}).get(event) or []:
                timeout = script.get("timeout")
                total += appspec_rules.DEFAULT_SCRIPT_TIMEOUT if timeout is None else float(timeout)
        return total

    # ----------------------------------------------------------------- the events
    def run(self, events, check_mode=False):
        """Run ``events`` holding the host lock (not in check mode): wait for another deployment's lock, keep the host
        after a slice that is not the deployment's last on it, release it after the last slice and after any failure."""
        events = order_events(events)
        if check_mode:
            return self._run_events(events, check_mode)
        lock = self.host_lock()
        release = self.params.get("release_host_lock", True)
        if not events:
            released = lock.release() if release else False
            return {"deployment_id": self.deployment_id, "deployment_dir": self.deployment_dir, "events": [],
                    "status": SUCCEEDED, "changed": released, "host_lock": "released" if released else "not held"}
        try:
            taken = lock.acquire(self.slice_seconds(events), wait=self.params.get("host_lock_wait", host_locks.DEFAULT_WAIT))
        except host_locks.HostLockError as exc:
            return self._refused(events[0], exc.message)
        result = None
        try:
            result = self._run_events(events, check_mode)
        finally:
            if result is None or result["status"] == FAILED or release:
                lock.release()
            else:
                lock.keep(self.params.get("host_lock_hold") or host_locks.DEFAULT_HOLD)
        result["host_lock"] = "released" if result["status"] == FAILED or release else "kept"
        if taken.get("waited"):
            result["host_lock_waited"] = taken["waited"]
        if taken.get("took_over"):
            result["host_lock_taken_over"] = taken["took_over"]
        return result

    def _refused(self, event, message):
        """The result of a run that never started because another deployment holds the host."""
        outcome = self._outcome(event, FAILED, "UnknownError", message)
        return {"deployment_id": self.deployment_id, "deployment_dir": self.deployment_dir, "events": [outcome],
                "status": FAILED, "changed": False, "failed_event": event, "error_code": HOST_LOCKED, "message": message,
                "log_tail": "", "script": None, "host_lock": "held by another deployment"}

    def _run_events(self, events, check_mode):
        result = {"deployment_id": self.deployment_id, "deployment_dir": self.deployment_dir, "events": [],
                  "status": SUCCEEDED, "changed": False}
        interrupted = self.layout.read_ongoing()
        if interrupted:
            result["interrupted"] = interrupted
            if not check_mode:
                self.layout.clear_ongoing()
        missing = None if check_mode else self._missing_archive()
        if missing and events:
            # Nothing runs, not even the old revision's stop scripts: the controller can send the bundle instead.
            outcome = self._outcome(events[0], FAILED, "UnknownError", missing)
            result.update(status=FAILED, failed_event=events[0], error_code="ARCHIVE_MISSING", message=missing, log_tail="",
                          archive_missing=True, events=[outcome])
            return result
        for event in events:
            if check_mode:
                result["events"].append(self._plan(event))
                continue
            try:
                self.layout.mark_ongoing(self.group_id, self.deployment_id, event)
                outcome = self._run_one(event)
            except (LifecycleError, installer.InstallError, bundles.BundleError) as exc:
                outcome = self._outcome(event, FAILED, "UnknownError", exc.message)
            except EnvironmentError as exc:
                outcome = self._outcome(event, FAILED, "UnknownError", os_error_text(exc))
            except Exception as exc:  # pylint: disable=broad-except
                outcome = self._outcome(event, FAILED, "UnknownError", "an unexpected error on the host: %s" % (str(exc) or repr(exc)))
            finally:
                try:
                    self.layout.clear_ongoing()
                except EnvironmentError:
                    pass
            result["events"].append(outcome)
            result["changed"] = result["changed"] or outcome.get("changed", outcome["status"] != SKIPPED)
            try:
                self.layout.log_deployment("%s %s %s" % (self.deployment_id, event, outcome["status"]))
            except EnvironmentError:
                pass  # the deployment log is a courtesy; a full disk is reported by the event itself
            if outcome["status"] == FAILED and not outcome.get("ignored"):
                result.update(status=FAILED, failed_event=event, error_code=outcome.get("error_code"),
                              message=outcome.get("message"), log_tail=outcome.get("log_tail", ""),
                              script=_failed_script(outcome))
                break
        if self.state:
            result["archive_root"] = self.state.get("root")
        return result

    def _missing_archive(self):
        """Why a rollback from an earlier deployment's archive cannot run here, or None (checked before its DownloadBundle)."""
        reuse = self.params.get("reuse_deployment")
        if not reuse or self.state is not None:
            return None
        source_archive = os.path.join(self.layout.deployment_dir(self.group_id, reuse), "deployment-archive")
        if os.path.isdir(source_archive):
            return None
        return ("the archive of %s is not on this host (%s: pruned beyond max_revisions, or that deployment never reached this "
                "host); nothing was run" % (reuse, source_archive))

    def _outcome(self, event, status, error_code, message, started=None, **extra):
        now = utc_now()
        outcome = {"event": event, "status": status, "error_code": error_code, "message": message,
                   "start": started or now, "end": now, "duration": 0.0, "log_tail": ""}
        outcome.update(extra)
        return outcome

    def _run_one(self, event):
        if event == "DownloadBundle":
            return self._download_bundle()
        if event == "Install":
            return self._install()
        if event in appspec_rules.OLD_REVISION_EVENTS:
            return self._old_revision_hook(event)
        if not self.state:
            raise LifecycleError("%s needs the revision of %s on this host, but it was never downloaded here: "
                                 "run DownloadBundle first" % (event, self.deployment_id))
        return self._hook(event, self.state["appspec"], self.state["root"])

    def _hook(self, event, spec, root):
        scripts = (spec.get("hooks") or {}).get(event) or []
        log_path = self.layout.scripts_log(self.group_id, self.deployment_id)
        outcome = hooks.run_event(event, scripts, root, self.env, log_path)
        outcome["changed"] = bool(scripts)
        return outcome

    def _old_revision_hook(self, event):
        last = self.layout.last_successful(self.group_id)
        if not last or not os.path.isdir(last):
            return self._outcome(event, SUCCEEDED, "Success", "no earlier revision was installed on this host: nothing to run",
                                 changed=False)
        spec, root = self._revision_of(last)
        outcome = self._hook(event, spec, root)
        outcome["revision_dir"] = last
        if outcome["status"] == FAILED and self.params.get("ignore_application_stop_failures"):
            outcome["ignored"] = True
            outcome["message"] = "%s (ignored: ignore_application_stop_failures is set)" % outcome.get("message")
        return outcome

    def _download_bundle(self):
        started = utc_now()
        archive = self.layout.archive_dir(self.group_id, self.deployment_id)
        # A retried deployment unpacks afresh; its logs (ApplicationStop ran already) stay.
        if os.path.isdir(archive):
            shutil.rmtree(archive)
        if not os.path.isdir(os.path.join(self.deployment_dir, "logs")):
            os.makedirs(os.path.join(self.deployment_dir, "logs"))
        reuse = self.params.get("reuse_deployment")
        if reuse:
            source_dir = self.layout.deployment_dir(self.group_id, reuse)
            source_archive = os.path.join(source_dir, "deployment-archive")
            if not os.path.isdir(source_archive):
                raise LifecycleError("the archive of %s is no longer on this host (%s; hosts keep the last max_revisions archives): "
                                     "redeploy that revision from its source with rollout.codedeploy.deploy" % (reuse, source_archive))
            spec, source_root = self._revision_of(source_dir)
            _link_tree(source_archive, archive)
            root = os.path.join(archive, os.path.relpath(source_root, source_archive))
            how = "reused the archive of %s (no download)" % reuse
            sha256 = (self._load_state(source_dir) or {}).get("sha256")
        else:
            spec = self.params.get("appspec")
            target = self.layout.bundle_file(self.group_id, self.deployment_id)
            if self.params.get("bundle_url"):
                _download(self.params["bundle_url"], target)
            else:
                source = self.params.get("bundle")
                if not source or not os.path.isfile(source):
                    raise LifecycleError("DownloadBundle: the bundle %r did not reach this host" % source)
                shutil.move(source, target)
            sha256 = bundles.sha256_file(target)
            want = self.params.get("bundle_sha256")
            if want and want != sha256:
                raise LifecycleError("DownloadBundle: the bundle's sha256 is %s but the revision says %s: the bundle was "
                                     "changed or damaged in transit; upload the revision again" % (sha256, want))
            bundle_type = self.params.get("bundle_type") or bundles.detect_type(target)
            root = bundles.unpack(target, archive, bundle_type)
            if spec is None:
                spec, _warnings = appspec_rules.load_appspec_file(root)
            if not self.params.get("keep_bundle"):
                os.unlink(target)
            how = "unpacked the %s bundle (sha256 %s)" % (bundle_type, sha256)
        self._save_state({"root": root, "appspec": spec, "revision": self.params.get("revision"), "sha256": sha256,
                          "deployment_id": self.deployment_id})
        self.layout.set_most_recent(self.group_id, self.deployment_dir)
        pruned = self.layout.prune(self.group_id, self.params.get("max_revisions") or 5, keep=(self.deployment_dir,))
        return self._outcome("DownloadBundle", SUCCEEDED, "Success", how, started=started, pruned=pruned, changed=True)

    def _install(self):
        started = utc_now()
        if not self.state:
            raise LifecycleError("Install needs the revision of %s on this host: run DownloadBundle first" % self.deployment_id)
        spec = self.state["appspec"]
        behavior = spec.get("file_exists_behavior") or self.params.get("file_exists_behavior") or "DISALLOW"
        report = installer.install(self.layout, self.group_id, self.deployment_id, spec, self.state["root"], behavior)
        return self._outcome("Install", SUCCEEDED, "Success", "installed with file_exists_behavior %s" % behavior,
                             started=started, install=report, changed=True)

    # ----------------------------------------------------------------- check mode
    def _plan(self, event):
        if event in appspec_rules.OLD_REVISION_EVENTS:
            last = self.layout.last_successful(self.group_id)
            if not last or not os.path.isdir(last):
                return {"event": event, "status": "Pending", "scripts": [], "note": "no earlier revision: nothing would run"}
            spec, _root = self._revision_of(last)
            return {"event": event, "status": "Pending", "revision_dir": last,
                    "scripts": [s["location"] for s in (spec.get("hooks") or {}).get(event) or []]}
        spec = self.params.get("appspec") or (self.state or {}).get("appspec") or {}
        if event in ("DownloadBundle", "Install"):
            return {"event": event, "status": "Pending", "scripts": []}
        return {"event": event, "status": "Pending", "scripts": [s["location"] for s in (spec.get("hooks") or {}).get(event) or []]}


def _download(url, target, chunk=1024 * 1024):
    """Fetch the bundle from a (presigned) URL straight into the deployment folder."""
    from ansible.module_utils.urls import open_url  # only hosts that pull need it
    from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_url
    try:
        response = open_url(url, timeout=60)
        with open(target, "wb") as handle:
            while True:
                data = response.read(chunk)
                if not data:
                    break
                handle.write(data)
    except Exception as exc:  # pylint: disable=broad-except
        # Never echo credentials: a presigned URL grants access to the object until it expires (redaction.py).
        raise LifecycleError("DownloadBundle: the host could not download the bundle from its URL (%s). Check that the "
                             "host reaches the S3 endpoint and that the presigned URL has not expired."
                             % (redact_url(str(exc)) or "no detail given"))


def _failed_script(outcome):
    for script in outcome.get("scripts") or []:
        if script.get("status") == FAILED or script.get("timed_out"):
            return script.get("location")
    return None


def _link_tree(source, dest):
    """Copy a folder tree using hard links for files where the filesystem allows (no data copied)."""
    for current, dirs, files in os.walk(source):
        rel = os.path.relpath(current, source)
        target_dir = os.path.join(dest, rel) if rel != "." else dest
        os.makedirs(target_dir)
        shutil.copystat(current, target_dir)
        for name in list(dirs):
            path = os.path.join(current, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), os.path.join(target_dir, name))
                dirs.remove(name)
        for name in files:
            path = os.path.join(current, name)
            target = os.path.join(target_dir, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), target)
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


FIXES = {
    "ScriptMissing": "add the script to the revision or fix its location in appspec.yml, then redeploy",
    "ScriptNotExecutable": "make the script executable (chmod +x) in the revision, then redeploy",
    "ScriptTimedOut": "make the script finish sooner, or raise its timeout in appspec.yml, then redeploy",
    "ScriptFailed": "fix the script (its output is above), then redeploy",
    HOST_LOCKED: "deploy again once the other deployment is done on this host",
}


def describe_failure(host, result):
    """The one-paragraph failure message: what failed, where, why, and what to do."""
    event = result.get("failed_event") or "the deployment"
    code = result.get("error_code") or "UnknownError"
    where = "%s failed on %s (%s)" % (event, host, result.get("deployment_id"))
    reason = result.get("message") or code
    text = "%s: %s." % (where, reason.rstrip("."))
    tail = (result.get("log_tail") or "").strip()
    if tail:
        text += " Last output: %s" % tail[-600:]
    fix = FIXES.get(code, "see the host's scripts.log in %s/logs and fix the cause, then redeploy" % result.get("deployment_dir"))
    if event in appspec_rules.OLD_REVISION_EVENTS and code != HOST_LOCKED:
        fix = ("this script belongs to the revision installed before; fix it there, or redeploy with "
               "ignore_application_stop_failures=true")
    return "%s Fix: %s." % (text.rstrip(), fix)
