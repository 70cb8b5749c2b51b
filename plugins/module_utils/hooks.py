# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to rollout.codedeploy
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the AppSpec hook scripts of one lifecycle event on a managed host, like the CodeDeploy agent.

Runs on the managed host inside a module: Python 3.8+, standard library only, never raises out
of ``run_event``. The agent's behaviour (hook_executor.rb, linux_util.rb and their tests in
aws/aws-codedeploy-agent) is kept where existing bundles rely on it; the "Decision" notes below
are deliberate differences (docs/agent-compatibility.md §2 and §6).

The agent's behaviour kept
    * Scripts of one event run in listed order; the first failure ends the event.
    * Path = archive root + location (a leading ``/`` is harmless). Missing script:
      ``Script does not exist at specified location: <absolute path>`` (ScriptMissing).
    * Not executable: chmod a+x with a warning, failing that ``Unable to set script at specified
      location: <loc> as executable`` (ScriptNotExecutable).
    * Timeout per script, then SIGTERM to the whole process group: ``Script at specified location:
      <loc> failed to complete in <N> seconds`` (ScriptTimedOut).
    * Exit status != 0: ``Script at specified location: <loc>[ run as user <u>] failed with exit
      code <n>``; the script cannot be started: ``... failed with error <Class> with message <text>``
      (ScriptFailed). Anything else unexpected: UnknownError with the exception's text.
    * Environment: LIFECYCLE_EVENT, DEPLOYMENT_ID, APPLICATION_NAME, DEPLOYMENT_GROUP_NAME,
      DEPLOYMENT_GROUP_ID; S3 revisions BUNDLE_BUCKET/KEY/VERSION/ETAG (unset when None), git or
      GitHub revisions BUNDLE_COMMIT. stdin is /dev/null. No shebang: run with /bin/sh.
    * ``scripts.log``: parent directories created, appended to; ``LifecycleEvent - <E>`` once per
      event (only when it has scripts), ``Script - <loc>`` before each script is started (after the
      missing/executable checks), then every output line as ``[stdout]line`` / ``[stderr]line``.
      Each log line starts with the agent's timestamp, Ruby's ``Time.now.to_s[0..-7]``: local time
      ``YYYY-MM-DD HH:MM:SS`` and one space, e.g. ``2026-11-22 02:03:04 [stdout]hello``.
    * ``log_tail``: the agent's ScriptLog of the event: the newest whole entries (headers and
      output lines, without timestamps) whose total length stays below 2048 characters.

Decisions (differences from the agent)
    * A location that resolves (symlinks included) outside the archive root is refused
      (ScriptMissing, the message says why). Scripts run in the archive root (the agent does not set
      a working directory) and are executed without a shell, so paths are never word-split.
    * Timeout: SIGTERM to the process group, SIGKILL to it after ``kill_grace`` seconds when any
      member is still alive (the agent sends TERM only and can wait forever).
    * Output is read with non-blocking reads; a background child that keeps stdout/stderr open
      never holds the event: once the main process has exited, output is drained until EOF or for
      ``DRAIN_AFTER_EXIT`` (1 s), then reading stops and the event ends with the script's own exit
      status. The background child keeps running (ApplicationStart starts daemons); if it later
      writes to the closed pipe it gets EPIPE/SIGPIPE, so daemons must redirect their output, as the
      CodeDeploy documentation asks. (The agent hangs until the timeout, or fails the script with
      "failed to close STDOUT".) At a timeout, reading stops when the group is gone or killed.
    * Death by signal is ScriptFailed with exit code 128+N and the signal's name (the agent prints
      an empty exit code). A last output line without a newline is logged with one.
    * runas: when running as root (the normal case, the module runs with become) the script is
      started directly as the user: a new session, then initgroups/setgid/setuid in the child
      before exec, with HOME, USER, LOGNAME for the user and SHELL = the user's shell, or /bin/sh
      when that is nologin/false. This is the agent's ``su <user> -c <script>`` without its
      problems: no login shell is needed (``nobody`` with /usr/sbin/nologin works), no PAM or
      terminal, no shell parsing of the path, and the script stays in the process group we kill
      (util-linux ``su -c`` puts the command in a new session, out of reach of the group kill).
      Not applied: PAM session settings (pam_limits, pam_env) and profile files.
    * sudo: true means root. When we are root it changes nothing (it works without sudo
      installed); runas + sudo as root is the runas case above. When not root, sudo wanted or runas
      with sudo installed: ``sudo -n`` (never prompts) with ``-u <user>`` for runas, running
      ``/usr/bin/env`` to pass the deployment variables that sudo's env_reset would drop. runas
      when not root and without sudo: the agent's ``su``, as ``su -s /bin/sh <user> -c`` so that a
      nologin user works (su needs a password then, so this fails unless PAM allows it).
    * The "not executable, trying to make it executable" warning is also written to scripts.log
      (as ``[warning]...``) and returned in ``warnings``; the agent writes it to its own log only.
    * Base environment (``default_base_env``): not the Ansible module's environment (SSH_*,
      ANSIBLE_*, PYTHONPATH ... are dropped) but what the agent, a systemd service, hands its
      scripts: PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, HOME, USER,
      LOGNAME and SHELL of the user the module runs as, LANG (inherited, else C.UTF-8), and when
      set: LC_ALL, TZ and the proxy variables. Pass ``base_env=os.environ`` to inherit everything.
"""

import datetime
import errno
import os
import pwd
import selectors
import shlex
import signal
import subprocess
import time

SUCCEEDED = "Success"
SCRIPT_MISSING = "ScriptMissing"
SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
SCRIPT_TIMED_OUT = "ScriptTimedOut"
SCRIPT_FAILED = "ScriptFailed"
UNKNOWN_ERROR = "UnknownError"

#: The lifecycle error codes; the index of a code is the agent's numeric diagnostics error_code.
ERROR_CODES = (SUCCEEDED, SCRIPT_MISSING, SCRIPT_NOT_EXECUTABLE, SCRIPT_TIMED_OUT, SCRIPT_FAILED, UNKNOWN_ERROR)

STATUS_SUCCEEDED = "Succeeded"
STATUS_FAILED = "Failed"
STATUS_SKIPPED = "Skipped"

DEFAULT_TIMEOUT = 3600
LOG_TAIL_SIZE = 2048
#: Seconds to keep reading output after the script's main process exited (EOF ends it sooner).
DRAIN_AFTER_EXIT = 1.0
#: Seconds to keep reading output after the process group was killed.
DRAIN_AFTER_KILL = 0.5
#: Longest wait for the killed process group to disappear.
KILL_WAIT = 5.0
#: Longest wait between two checks of the main process while its pipes stay open.
POLL_INTERVAL = 0.05
#: Longest output line kept whole; longer ones are split.
MAX_LINE = 16384

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_LANG = "C.UTF-8"
SHELL = "/bin/sh"
ENV_BIN = "/usr/bin/env"
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "")
PASSTHROUGH_ENV = ("LC_ALL", "TZ", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
DEPLOYMENT_ENV = ("LIFECYCLE_EVENT", "DEPLOYMENT_ID", "APPLICATION_NAME", "DEPLOYMENT_GROUP_NAME", "DEPLOYMENT_GROUP_ID")
BUNDLE_ENV = ("BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_VERSION", "BUNDLE_ETAG", "BUNDLE_COMMIT")

# The agent's messages (hook_executor.rb).
MSG_MISSING = "Script does not exist at specified location: {0}"
MSG_NOT_EXECUTABLE_WARNING = "Script at specified location: {0} is not executable.  Trying to make it executable."
MSG_NOT_EXECUTABLE = "Unable to set script at specified location: {0} as executable"
MSG_TIMED_OUT = "Script at specified location: {0} failed to complete in {1} seconds"
MSG_EXIT_CODE = "{0} failed with exit code {1}"
MSG_ERROR = "{0} failed with error {1} with message {2}"
MSG_PREFIX = "Script at specified location: {0}"
MSG_PREFIX_RUNAS = "Script at specified location: {0} run as user {1}"
MSG_SUCCEEDED = "Succeeded"
# This collection's messages.
MSG_OUTSIDE = ("Script at specified location: {0} resolves to {1}, outside the deployment archive {2}. "
               "Hook scripts must be inside the revision: fix the location in the hooks section of the AppSpec file.")
MSG_SIGNAL = "{0} failed with exit code {1} (killed by signal {2})"
MSG_NO_USER = "{0} failed: user {1} does not exist on this host. Create the user or fix runas in the AppSpec file."


def utc_timestamp(when=None):
    """``when`` (seconds since the epoch, default now) as UTC ISO 8601 with milliseconds: 2026-11-22T02:03:04.123Z."""
    stamp = datetime.datetime.fromtimestamp(time.time() if when is None else when, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000)


def log_timestamp(when=None):
    """The agent's scripts.log timestamp: local time, ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def default_base_env(environ=None):
    """The environment scripts start from (see the module docstring): agent-like, not Ansible's."""
    environ = os.environ if environ is None else environ
    env = {"PATH": DEFAULT_PATH, "LANG": environ.get("LANG") or DEFAULT_LANG}
    try:
        entry = pwd.getpwuid(os.geteuid())
    except KeyError:
        entry = None
    if entry is not None:
        env.update(_user_env(entry))
    elif environ.get("HOME"):
        env["HOME"] = environ["HOME"]
    for name in PASSTHROUGH_ENV:
        if environ.get(name):
            env[name] = environ[name]
    return env


def build_environment(deployment_id, application_name, deployment_group_name, deployment_group_id,
                      revision=None, base_env=None):
    """The environment of the hook scripts of one deployment (docs/agent-compatibility.md §2).

    ``revision``: ``{"s3": {"bucket", "key", "version", "etag"}}`` adds BUNDLE_BUCKET, BUNDLE_KEY,
    BUNDLE_VERSION, BUNDLE_ETAG (a None value leaves the variable unset); ``{"git": {"commit"}}``
    (or ``"github"``) adds BUNDLE_COMMIT; other revisions add nothing. ``base_env``: the starting
    environment, default ``default_base_env()``. LIFECYCLE_EVENT is set per event by ``run_event``.
    Values are strings; a None value means unset.
    """
    env = dict(default_base_env() if base_env is None else base_env)
    for name in DEPLOYMENT_ENV + BUNDLE_ENV:
        env.pop(name, None)
    values = {
        "DEPLOYMENT_ID": deployment_id,
        "APPLICATION_NAME": application_name,
        "DEPLOYMENT_GROUP_NAME": deployment_group_name,
        "DEPLOYMENT_GROUP_ID": deployment_group_id,
    }
    values.update(_revision_env(revision))
    for name, value in values.items():
        if value is not None:
            env[name] = _text(value)
    return env


def _revision_env(revision):
    if not isinstance(revision, dict):
        return {}
    s3 = revision.get("s3")
    if isinstance(s3, dict):
        return {"BUNDLE_BUCKET": s3.get("bucket"), "BUNDLE_KEY": s3.get("key"),
                "BUNDLE_VERSION": s3.get("version"), "BUNDLE_ETAG": s3.get("etag")}
    for kind in ("git", "github"):
        git = revision.get(kind)
        if isinstance(git, dict):
            return {"BUNDLE_COMMIT": git.get("commit", git.get("commit_id"))}
    return {}


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _user_env(entry):
    shell = entry.pw_shell if entry.pw_shell not in NO_LOGIN_SHELLS and not entry.pw_shell.endswith("/nologin") else SHELL
    return {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name, "SHELL": shell}


# --------------------------------------------------------------------------------------
# Command forms
# --------------------------------------------------------------------------------------

def agent_command(path, runas=None, sudo=False):
    """The agent's command line for a script (linux_util.rb prepare_script_command), for reference and tests."""
    if runas and sudo:
        return "sudo su " + runas + " -c " + path
    if runas:
        return "su " + runas + " -c " + path
    if sudo:
        return "sudo " + path
    return path


def needs_shell(path):
    """True when ``path`` has no ``#!`` line and is not an ELF binary: the agent's exec falls back to /bin/sh."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return not (head.startswith(b"#!") or head == b"\x7fELF")


def plan_command(path, runas=None, sudo=False, env=None, euid=None, sudo_path=None, use_shell=False):
    """How this collection starts a script: ``{"argv", "user", "form"}``.

    ``user`` is the passwd entry to switch to in the child (root only), else None. ``form`` is one of
    ``direct``, ``setuid``, ``sudo``, ``su``. Raises KeyError for an unknown runas user when we are
    root. ``euid`` and ``sudo_path`` default to this process's and sudo found in DEFAULT_PATH
    (``""``: none). Not root, sudo wanted and not installed: the argv starts with ``sudo`` and so
    fails to start (ScriptFailed), like the agent's ``sudo`` form would.
    """
    euid = os.geteuid() if euid is None else euid
    target = [SHELL, path] if use_shell else [path]
    runas = runas or None
    if euid == 0:
        if runas is None:
            return {"argv": target, "user": None, "form": "direct"}
        return {"argv": target, "user": lookup_user(runas), "form": "setuid"}
    if sudo_path is None:
        sudo_path = _which("sudo")
    if sudo or (runas and sudo_path):
        argv = [sudo_path or "sudo", "-n"]
        if runas:
            argv += ["-u", runas]
        passed = ["%s=%s" % (name, (env or {})[name]) for name in DEPLOYMENT_ENV + BUNDLE_ENV if name in (env or {})]
        return {"argv": argv + ["--", ENV_BIN] + passed + target, "user": None, "form": "sudo"}
    if runas:
        return {"argv": ["su", "-s", SHELL, runas, "-c", " ".join(shlex.quote(part) for part in target)], "user": None, "form": "su"}
    return {"argv": target, "user": None, "form": "direct"}


def lookup_user(name):
    """The passwd entry of a user name (or numeric uid); KeyError when there is none."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if str(name).isdigit():
            return pwd.getpwuid(int(name))
        raise


def _which(program):
    for directory in DEFAULT_PATH.split(":"):
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _switch_user(entry):
    """preexec_fn: become ``entry`` (supplementary groups, gid, uid) in the child, before exec."""
    def switch():
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return switch


# --------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------

class ScriptLog(object):
    """scripts.log writer plus the agent's in-memory tail of the event (ScriptLog.append_to_log)."""

    def __init__(self, log_path, tail_size=LOG_TAIL_SIZE):
        self.tail_size = tail_size
        self.entries = []
        self._length = 0
        directory = os.path.dirname(log_path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        self._file = open(log_path, "a", encoding="utf-8", errors="replace")

    def append(self, entry, tail=True):
        """Write one entry (ending with a newline) with the agent's timestamp; keep it in the tail."""
        self._file.write(log_timestamp() + " " + entry)
        self._file.flush()
        if tail:
            self.entries.append(entry)
            self._length += len(entry)
            # The agent keeps the newest whole entries whose total stays below the buffer size.
            while self.entries and self._length >= self.tail_size:
                if len(self.entries) == 1:
                    # Decision: a single entry longer than the buffer keeps its end (the agent drops it).
                    keep = max(self.tail_size - 1, 0)
                    self.entries[0] = self.entries[0][-keep:] if keep else ""
                    self._length = len(self.entries[0])
                    break
                self._length -= len(self.entries.pop(0))

    def tail(self):
        return "".join(self.entries)

    def close(self):
        self._file.close()


# --------------------------------------------------------------------------------------
# Running one script
# --------------------------------------------------------------------------------------

class _Output(object):
    """Non-blocking line reader of a script's stdout and stderr pipes."""

    def __init__(self, proc, log):
        self.log = log
        self.selector = selectors.DefaultSelector()
        self.buffers = {}
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            os.set_blocking(pipe.fileno(), False)
            self.selector.register(pipe, selectors.EVENT_READ, name)
            self.buffers[name] = bytearray()

    @property
    def open(self):
        return bool(self.selector.get_map())

    def read(self, timeout):
        """Wait up to ``timeout`` seconds for output and log the complete lines that arrived."""
        for key, _mask in self.selector.select(max(timeout, 0)):
            name = key.data
            try:
                data = os.read(key.fd, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                self._finish(key.fileobj, name)
                continue
            buf = self.buffers[name]
            buf += data
            while True:
                cut = buf.find(b"\n", 0, MAX_LINE + 1)
                if cut < 0 and len(buf) > MAX_LINE:
                    cut = MAX_LINE - 1
                if cut < 0:
                    break
                self._emit(name, bytes(buf[:cut + 1]))
                del buf[:cut + 1]

    def _emit(self, name, raw):
        line = raw.decode("utf-8", "replace")
        if not line.endswith("\n"):
            line += "\n"
        self.log.append("[%s]%s" % (name, line))

    def _finish(self, fileobj, name):
        self.selector.unregister(fileobj)
        fileobj.close()
        if self.buffers[name]:
            self._emit(name, bytes(self.buffers[name]))
            self.buffers[name] = bytearray()

    def close(self):
        """Stop reading: log what is buffered and close our ends of the pipes."""
        for key in list(self.selector.get_map().values()):
            self._finish(key.fileobj, key.data)
        self.selector.close()


def _group_alive(pgid):
    """True while any non-zombie process is in process group ``pgid``."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        pids = None
    if pids is None:
        try:
            os.killpg(pgid, 0)
        except OSError:
            return False
        return True
    for pid in pids:
        try:
            with open("/proc/%s/stat" % pid, "rb") as handle:
                stat = handle.read()
        except (IOError, OSError):
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            return True
    return False


def _killpg(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except OSError as exc:
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise


def _drain(output, seconds):
    end = time.monotonic() + seconds
    while output.open:
        left = end - time.monotonic()
        if left <= 0:
            break
        output.read(min(left, POLL_INTERVAL))


def _supervise(proc, output, timeout, kill_grace):
    """Read output until the script ends (or its deadline passes); returns ``(returncode, timed_out, killed_with)``."""
    started = time.monotonic()
    deadline = started + timeout
    returncode = None
    exited_at = None
    while True:
        now = time.monotonic()
        if returncode is None:
            returncode = proc.poll()
            if returncode is not None:
                exited_at = now
        if returncode is not None:
            if not output.open or now >= exited_at + DRAIN_AFTER_EXIT:
                return returncode, False, None
            wait = exited_at + DRAIN_AFTER_EXIT - now
        elif now >= deadline:
            break
        else:
            wait = deadline - now
        wait = min(wait, POLL_INTERVAL)
        if output.open:
            output.read(wait)
        elif returncode is None:
            try:
                proc.wait(timeout=max(wait, 0.001))
            except subprocess.TimeoutExpired:
                pass

    # The deadline: TERM the whole group, KILL it after the grace if anything is left.
    pgid = proc.pid
    _killpg(pgid, signal.SIGTERM)
    killed_with = "SIGTERM"
    grace_end = time.monotonic() + kill_grace
    while True:
        if proc.poll() is not None and not _group_alive(pgid):
            break
        left = grace_end - time.monotonic()
        if left <= 0:
            _killpg(pgid, signal.SIGKILL)
            killed_with = "SIGKILL"
            break
        if output.open:
            output.read(min(left, POLL_INTERVAL))
        else:
            time.sleep(min(left, POLL_INTERVAL))
    # SIGKILL is delivered asynchronously: wait (bounded) until the group is really gone, so that
    # nothing of it runs once the event has ended. A process stuck in the kernel is left behind.
    gone_by = time.monotonic() + KILL_WAIT
    while time.monotonic() < gone_by and (proc.poll() is None or _group_alive(pgid)):
        if output.open:
            output.read(POLL_INTERVAL / 5)
        else:
            time.sleep(POLL_INTERVAL / 5)
    _drain(output, DRAIN_AFTER_KILL)
    return proc.returncode, True, killed_with


def _format_seconds(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _signal_name(signum):
    try:
        return signal.Signals(signum).name  # pylint: disable=no-member
    except ValueError:
        return "signal %d" % signum


class _ScriptFailure(Exception):
    """Ends the event: one script failed (error code and message of the agent)."""

    def __init__(self, error_code, message):
        super(_ScriptFailure, self).__init__(message)
        self.error_code = error_code
        self.message = message


def _run_one(script, archive_root, env, log, kill_grace, record):
    location = _text(script.get("location") or "")
    runas = script.get("runas") or None
    sudo = bool(script.get("sudo"))
    timeout = script.get("timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout) if isinstance(timeout, str) else timeout
    prefix = MSG_PREFIX_RUNAS.format(location, runas) if runas else MSG_PREFIX.format(location)

    root = os.path.abspath(archive_root)
    path = os.path.normpath(os.path.join(root, location.lstrip("/")))
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    if real_path != real_root and not real_path.startswith(real_root.rstrip("/") + "/"):
        raise _ScriptFailure(SCRIPT_MISSING, MSG_OUTSIDE.format(location, real_path, real_root))
    if not os.path.exists(path):
        raise _ScriptFailure(SCRIPT_MISSING, MSG_MISSING.format(path))
    if not os.access(path, os.X_OK):
        warning = MSG_NOT_EXECUTABLE_WARNING.format(location)
        record["warnings"].append(warning)
        log.append("[warning]" + warning + "\n", tail=False)
        try:
            os.chmod(path, os.stat(path).st_mode | 0o111)
        except OSError:
            raise _ScriptFailure(SCRIPT_NOT_EXECUTABLE, MSG_NOT_EXECUTABLE.format(location))

    log.append("Script - " + location + "\n")
    record["status"] = STATUS_FAILED
    started = time.monotonic()
    try:
        try:
            plan = plan_command(path, runas, sudo, env, use_shell=os.path.isfile(path) and needs_shell(path))
        except KeyError:
            raise _ScriptFailure(SCRIPT_FAILED, MSG_NO_USER.format(prefix, runas))
        child_env = dict(env)
        if plan["user"] is not None:
            child_env.update(_user_env(plan["user"]))
        try:
            proc = subprocess.Popen(plan["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=root, env=child_env, close_fds=True, start_new_session=True,
                                    preexec_fn=_switch_user(plan["user"]) if plan["user"] is not None else None)
        except (OSError, subprocess.SubprocessError) as exc:
            raise _ScriptFailure(SCRIPT_FAILED, MSG_ERROR.format(prefix, type(exc).__name__, exc))
        output = _Output(proc, log)
        try:
            returncode, timed_out, killed_with = _supervise(proc, output, timeout, kill_grace)
        finally:
            output.close()
    finally:
        record["duration"] = round(time.monotonic() - started, 3)

    record["timed_out"] = timed_out
    record["killed_with"] = killed_with
    if returncode is not None and returncode < 0:
        record["exit_code"] = 128 - returncode
        record["signal"] = _signal_name(-returncode)
    else:
        record["exit_code"] = returncode
    if timed_out:
        raise _ScriptFailure(SCRIPT_TIMED_OUT, MSG_TIMED_OUT.format(location, _format_seconds(timeout)))
    if returncode < 0:
        raise _ScriptFailure(SCRIPT_FAILED, MSG_SIGNAL.format(prefix, record["exit_code"], record["signal"]))
    if returncode != 0:
        raise _ScriptFailure(SCRIPT_FAILED, MSG_EXIT_CODE.format(prefix, returncode))
    record["status"] = STATUS_SUCCEEDED


def _script_record(script):
    location = script.get("location") if isinstance(script, dict) else None
    return {"location": location, "runas": script.get("runas") if isinstance(script, dict) else None,
            "status": STATUS_SKIPPED, "error_code": None, "exit_code": None, "signal": None,
            "duration": 0.0, "timed_out": False, "killed_with": None, "warnings": []}


def run_event(event, scripts, archive_root, env, log_path, log_tail_size=LOG_TAIL_SIZE, kill_grace=5.0):
    """Run the hook scripts of one lifecycle event; never raises.

    ``scripts``: normalized AppSpec hook entries ``{"location", "timeout", "runas", "sudo"}``.
    ``env``: from ``build_environment`` (LIFECYCLE_EVENT is added here). ``log_path``: the
    deployment's ``logs/scripts.log``. Returns ``event``, ``status`` (Succeeded, Failed, or Skipped
    when there are no scripts), ``error_code`` (``ERROR_CODES``), ``message``, ``script_name``
    (the failing script's location), ``log_tail``, ``start``, ``end``, ``duration``, ``scripts``
    (per script: location, runas, status, error_code, exit_code, signal, duration, timed_out,
    killed_with, warnings; scripts after a failure have status Skipped) and ``warnings``.
    """
    started_wall = time.time()
    started = time.monotonic()
    result = {"event": event, "status": STATUS_SKIPPED, "error_code": SUCCEEDED, "message": "", "script_name": "",
              "log_tail": "", "start": utc_timestamp(started_wall), "end": None, "duration": 0.0, "scripts": [], "warnings": []}
    log = None
    try:
        scripts = list(scripts or [])
        result["scripts"] = [_script_record(script) for script in scripts]
        if scripts:
            base = default_base_env() if env is None else env
            child_env = dict((name, _text(value)) for name, value in base.items() if value is not None)
            child_env["LIFECYCLE_EVENT"] = _text(event)
            log = ScriptLog(log_path, log_tail_size)
            log.append("LifecycleEvent - " + _text(event) + "\n")
            result["status"] = STATUS_SUCCEEDED
            result["message"] = MSG_SUCCEEDED
            for script, record in zip(scripts, result["scripts"]):
                try:
                    _run_one(script, archive_root, child_env, log, kill_grace, record)
                except _ScriptFailure as failure:
                    record["status"] = STATUS_FAILED
                    record["error_code"] = failure.error_code
                    result.update(status=STATUS_FAILED, error_code=failure.error_code, message=failure.message,
                                  script_name=record["location"] or "")
                    break
                finally:
                    result["warnings"].extend(record["warnings"])
                record["error_code"] = SUCCEEDED
    except Exception as exc:  # pylint: disable=broad-except  # run_event reports, never raises
        result.update(status=STATUS_FAILED, error_code=UNKNOWN_ERROR, message=str(exc) or type(exc).__name__)
    finally:
        if log is not None:
            result["log_tail"] = log.tail()
            try:
                log.close()
            except Exception:  # pylint: disable=broad-except
                pass
        result["end"] = utc_timestamp(time.time())
        result["duration"] = round(time.monotonic() - started, 3)
    return result


def diagnostics(result):
    """The agent's diagnostics payload (PutHostCommandComplete, format JSON) for a ``run_event`` result."""
    code = result.get("error_code") or SUCCEEDED
    return {"error_code": ERROR_CODES.index(code) if code in ERROR_CODES else ERROR_CODES.index(UNKNOWN_ERROR),
            "script_name": result.get("script_name") or "", "message": result.get("message") or "",
            "log": result.get("log_tail") or ""}
