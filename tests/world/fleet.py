"""A fleet of real SSH hosts on this machine, each in its own network namespace.

Every host is a network namespace on the project's bridge (10.213.0.0/24) running sshd as
PID 1 of a private PID/mount/UTS namespace, with private /usr, /etc, /var, /opt, /home and /srv
(overlays on the machine's own, so whatever a host writes there lands in its state folder),
private /root, /tmp, /run and /dev/shm, and a read-only view of the rest of the machine: a host
cannot change the machine it runs on. Package managers are disabled on hosts: apt-get, apt,
aptitude and dpkg are wrappers (in the host's /usr upper dir) that refuse to install or remove
software with a message saying so, and pass read-only queries on to copies of the real programs.
The recipe and its measured costs are in docs/development.md (How a fleet host is built).

A *world* (``demo`` or ``test``) owns a block of addresses, its namespaces (``rcd-<world>-<n>``),
its veth ends (``rcd<w><n>``) and a state folder; ``cleanup()`` removes whatever a previous,
possibly killed, run of the same world left behind, so starting after ``kill -9`` works.
"""
import concurrent.futures
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from world import paths

BRIDGE = "rcdbr0"
BRIDGE_ADDRESS = "10.213.0.1"
PREFIX_LEN = 24
SUBNET = "10.213.0"
# Each world: (one-letter code for link names, first host address - 1, moto port). Separate
# blocks let a kept demo world, a test run and a developer's own runs share the bridge.
WORLDS = {
    "demo": ("d", 10, 5000),
    "test": ("t", 50, 5100),
    "molecule": ("m", 90, 5200),
    "bench": ("b", 110, 5300),
    "dev1": ("x", 130, 5400),
    "dev2": ("y", 170, 5500),
    "dev3": ("z", 210, 5600),
}
MAX_HOSTS = 38
# Index 39 of every world's block is its balancer host (``Fleet.start_balancer_host``), never a normal host.
BALANCER_INDEX = 39
# /usr comes first: a host's copy of /usr covers /usr/local too (same file system). Should
# /usr/local be a mount of its own on some machine, it gets an overlay of its own, stacked after.
PRIVATE_OVERLAYS = ("/usr", "/etc", "/var", "/opt", "/home", "/srv") + (("/usr/local",) if os.path.ismount("/usr/local") else ())
# Where a host keeps the real package-manager programs that its wrappers hand read-only queries to.
REAL_TOOLS = "lib/rollout-fleet"
# Package managers a host must not run to change its software; the value says which first words
# (apt) or actions (dpkg) are refused. A tool the machine lacks is not wrapped.
GUARDED_TOOLS = ("apt-get", "apt", "aptitude", "dpkg")
GUARD_MESSAGE = ("this is a test fleet host: package managers are disabled (%s would change the software "
                 "of a host that is a copy of the machine running the tests); ship the software in the "
                 "revision or use a host with its own system")
# apt-get/apt/aptitude: only these subcommands (they read, never change) reach the real program.
APT_READ_ONLY = ("check", "changelog", "indextargets", "moo", "help", "list", "search", "show", "showsrc",
                 "policy", "depends", "rdepends", "madison", "why", "why-not", "versions")
# dpkg: these actions install, remove or change what dpkg knows; everything else is a query.
DPKG_CHANGES = ("--install", "--unpack", "--record-avail", "--configure", "--triggers-only", "--remove", "--purge",
                "--update-avail", "--merge-avail", "--clear-avail", "--forget-old-unavail", "--set-selections",
                "--clear-selections", "--add-architecture", "--remove-architecture")
GUARD_SCRIPT = """\
#!/bin/sh
# Written by the rollout.codedeploy test world (tests/world/fleet.py) into this host's private /usr.
tool=%(tool)s
refuse() {
    echo "$tool: %(message)s" >&2
    exit 100
}
if [ "$tool" = dpkg ]; then
    for arg in "$@"; do
        case "$arg" in
            --) break ;;
            %(dpkg_long)s) refuse "dpkg $*" ;;
            --*) ;;
            -*[irPA]*) refuse "dpkg $*" ;;
        esac
    done
else
    skip_next=
    for arg in "$@"; do
        if [ -n "$skip_next" ]; then skip_next=; continue; fi
        case "$arg" in
            -o|-c|-t|--option|--config-file|--target-release|--default-release) skip_next=1 ;;
            -*) ;;
            %(apt_read)s) break ;;
            *) refuse "$tool $*" ;;
        esac
    done
fi
exec /usr/%(real)s/$tool "$@"
"""
SSHD_CONFIG = """\
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200:30:400
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
AcceptEnv LANG LC_*
"""


class FleetError(Exception):
    """The fleet could not be started or stopped; the message says what to check."""


def run(cmd, check=True, input_text=None):
    """Run a command; return its stdout. Raise FleetError with its stderr on failure."""
    proc = subprocess.run(cmd, input=input_text, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise FleetError("command failed (%s): %s\n%s" % (proc.returncode, " ".join(cmd), proc.stderr.strip()))
    return proc.stdout


def require_tools():
    """Fail early, with the fix, when this machine lacks what a fleet needs."""
    if os.geteuid() != 0:
        raise FleetError("the fleet needs root (network namespaces, mounts); run as root")
    for tool, package in (("/usr/sbin/sshd", "openssh-server"), ("ip", "iproute2"), ("unshare", "util-linux"),
                          ("nsenter", "util-linux"), ("ssh-keygen", "openssh-client")):
        if not (os.path.exists(tool) or shutil.which(tool)):
            raise FleetError("%s is missing: install the Debian package %s (tools/setup does)" % (tool, package))


class Host:
    """One fleet host. ``address`` is what Ansible connects to."""

    def __init__(self, world, index):
        code, base, _port = WORLDS[world]
        self.world = world
        self.index = index
        self.name = "%s-%d" % (world, index)
        self.netns = "rcd-%s-%d" % (world, index)
        self.veth = "rcd%s%d" % (code, index)
        self.address = "%s.%d" % (SUBNET, base + index)
        self.pid = None

    def as_dict(self):
        return {"name": self.name, "index": self.index, "address": self.address, "netns": self.netns, "pid": self.pid}

    def __repr__(self):
        return "Host(%s, %s)" % (self.name, self.address)


class BalancerHost(Host):
    """The world's load-balancer host: built like a fleet host at index 39, named ``<world>-lb``.

    It is never in ``Fleet.hosts``, so no EC2 instance is ever bound to it.
    """

    def __init__(self, world):
        super().__init__(world, BALANCER_INDEX)
        self.name = "%s-lb" % world
        self.netns = "rcd-%s-lb" % world
        self.veth = "rcd%slb" % WORLDS[world][0]

    def __repr__(self):
        return "BalancerHost(%s, %s)" % (self.name, self.address)


class Fleet:
    """The hosts of one world. Not thread-safe; one owner process at a time."""

    def __init__(self, world="test", state_root=None):
        if world not in WORLDS:
            raise FleetError("unknown world %r: use one of %s" % (world, ", ".join(sorted(WORLDS))))
        self.world = world
        self.code = WORLDS[world][0]
        self.state = os.path.join(state_root or paths.STATE_ROOT, world)
        self.key_file = os.path.join(self.state, "id_ed25519")
        self.hosts = {}
        self.balancer_host = None

    # ----------------------------------------------------------------- lifecycle
    def prepare(self):
        """Remove leftovers of an earlier run of this world, then set up the bridge and the SSH key.

        Refuses when another live process owns the world (a second test session on the same machine);
        the leftovers of a dead owner (kill -9) are removed.
        """
        require_tools()
        owner = self._owner()
        if owner and owner != os.getpid():
            raise FleetError("world %s is in use by process %d (still running); pick another world with "
                             "ROLLOUT_TEST_WORLD / --world, or stop that process" % (self.world, owner))
        self.cleanup()
        os.makedirs(os.path.join(self.state, "hosts"), exist_ok=True)
        os.makedirs(os.path.join(self.state, "cp"), exist_ok=True)
        ensure_bridge()
        if not os.path.exists(self.key_file):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rollout-fleet-%s" % self.world, "-f", self.key_file])
        return self

    def start(self, count):
        """Start ``count`` more hosts in parallel and wait until each one's sshd answers."""
        taken = set(self.hosts)
        indexes = []
        index = 1
        while len(indexes) < count:
            if index not in taken:
                indexes.append(index)
            index += 1
        if indexes and indexes[-1] > MAX_HOSTS:
            raise FleetError("world %s has room for %d hosts; %d more were asked for" % (self.world, MAX_HOSTS, count))
        new = [Host(self.world, i) for i in indexes]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._start_host, new))
        for host in new:
            self.hosts[host.index] = host
        self._wait_ssh(new)
        self._save()
        return new

    def start_balancer_host(self):
        """Start the world's balancer host (once; later calls return it) and wait until its sshd answers."""
        if self.balancer_host is None:
            host = BalancerHost(self.world)
            self._start_host(host)
            self._wait_ssh([host])
            self.balancer_host = host
            self._save()
        return self.balancer_host

    def stop_balancer_host(self):
        """Take the balancer host down (``cleanup`` removes it too, with everything else of the world)."""
        if self.balancer_host is not None:
            self._stop_host(self.balancer_host)
            self.balancer_host = None
            self._save()

    def restart(self, hosts):
        """Give hosts a fresh private filesystem (same name and address): a clean machine for the next test."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._stop_host, hosts))
        self.close_ssh_masters()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._start_host, hosts))
        self._wait_ssh(hosts)
        self._save()

    def kill(self, host):
        """Take one host down at once, as a machine that dies (its processes and network go); ``restart`` brings it back."""
        self._stop_host(host)

    def stop(self):
        """Stop every host of this world and remove its namespaces, links and state."""
        self.cleanup()
        self.hosts = {}
        self.balancer_host = None

    def cleanup(self):
        """Remove every namespace, veth, process and state file of this world, running or left over.

        The balancer host is covered by the same prefixes: ``rcd-<world>-lb`` and ``rcd<code>lb``.
        """
        prefix = "rcd-%s-" % self.world
        namespaces = [line.split()[0] for line in run(["ip", "netns", "list"], check=False).splitlines()
                      if line.split() and line.split()[0].startswith(prefix)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(_remove_namespace, namespaces))
        for link in _links_with_prefix("rcd%s" % self.code):
            run(["ip", "link", "del", link], check=False)
        self.close_ssh_masters()
        if os.path.isdir(self.state):
            shutil.rmtree(self.state, ignore_errors=True)
        if not any(name.startswith("rcd-") for name in run(["ip", "netns", "list"], check=False).split()) and not _live_moto_servers():
            run(["ip", "link", "del", BRIDGE], check=False)

    def close_ssh_masters(self):
        """End SSH ControlPersist masters of this world: a restarted host must get a fresh connection."""
        for sock in glob.glob(os.path.join(self.state, "cp", "*")):
            subprocess.run(["ssh", "-o", "ControlPath=%s" % sock, "-O", "exit", "fleet"], capture_output=True, check=False)
            try:
                os.unlink(sock)
            except FileNotFoundError:
                pass  # the master removed its socket as it exited

    # ----------------------------------------------------------------- queries
    def ansible_env(self):
        """Environment variables that make ansible reach this world's hosts over SSH with pipelining."""
        ssh_args = " ".join([
            "-o ControlMaster=auto", "-o ControlPersist=120s",
            "-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null", "-o LogLevel=ERROR",
            "-o IdentitiesOnly=yes", "-o ServerAliveInterval=5", "-o ServerAliveCountMax=3",
        ])
        return {
            "ANSIBLE_REMOTE_USER": "root",
            "ANSIBLE_PRIVATE_KEY_FILE": self.key_file,
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_ARGS": ssh_args,
            "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(self.state, "cp"),
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_FORKS": "8",
        }

    def ssh(self, host, command, check=True):
        """Run a shell command on a host over SSH (the same way Ansible reaches it)."""
        cmd = ["ssh", "-i", self.key_file, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@%s" % host.address, command]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise FleetError("ssh %s %r failed (%d): %s" % (host.name, command, proc.returncode, proc.stderr.strip()))
        return proc.stdout

    def host_root(self, host):
        """The folder that holds a host's private state (its overlay upper dirs live below it)."""
        return os.path.join(self.state, "hosts", host.name)

    # ----------------------------------------------------------------- internals
    def _start_host(self, host):
        root = self.host_root(host)
        if os.path.isdir(root):
            shutil.rmtree(root)
        for mount in PRIVATE_OVERLAYS:
            label = mount.strip("/").replace("/", "_")
            os.makedirs(os.path.join(root, label + ".upper"))
            os.makedirs(os.path.join(root, label + ".work"))
        for private in ("root/.ssh", "tmp"):
            os.makedirs(os.path.join(root, private))
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.chmod(os.path.join(root, "root"), 0o700)
        shutil.copy(self.key_file + ".pub", os.path.join(root, "root/.ssh/authorized_keys"))
        etc = os.path.join(root, "etc.upper")
        os.makedirs(os.path.join(etc, "ssh"))
        with open(os.path.join(etc, "ssh", "sshd_config"), "w", encoding="utf-8") as handle:
            handle.write(SSHD_CONFIG)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", os.path.join(etc, "ssh", "ssh_host_ed25519_key")])
        _guard_package_managers(os.path.join(root, "usr.upper"))
        with open(os.path.join(etc, "hostname"), "w", encoding="utf-8") as handle:
            handle.write(host.name + "\n")
        with open(os.path.join(etc, "hosts"), "w", encoding="utf-8") as handle:
            handle.write("127.0.0.1 localhost\n%s %s\n" % (host.address, host.name))

        run(["ip", "netns", "add", host.netns])
        run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
        run(["ip", "link", "set", host.veth, "master", BRIDGE, "up"])
        # A restarted host keeps its address but not its MAC: drop the bridge's stale ARP entry,
        # or the controller keeps sending to the old MAC for up to half a minute.
        run(["ip", "neigh", "flush", "to", host.address, "dev", BRIDGE], check=False)
        # The balancer host sends to fleet hosts too (HAProxy's checks and requests): same stale entry there.
        if self.balancer_host is not None and host is not self.balancer_host:
            run(["ip", "-n", self.balancer_host.netns, "neigh", "flush", "to", host.address], check=False)
        run(["ip", "-n", host.netns, "addr", "add", "%s/%d" % (host.address, PREFIX_LEN), "dev", "eth0"])
        run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", host.netns, "link", "set", "lo", "up"])

        script = ["set -e", "hostname %s" % host.name]
        for mount in PRIVATE_OVERLAYS:
            label = mount.strip("/").replace("/", "_")
            script.append("mount -t overlay overlay -o lowerdir=%s,upperdir=%s/%s.upper,workdir=%s/%s.work %s"
                          % (mount, root, label, root, label, mount))
        script += [
            "mount --bind %s/root /root" % root,
            "mount --bind %s/tmp /tmp" % root,
            "mount -t tmpfs -o mode=0755 tmpfs /run",
            "mkdir -p /run/sshd",
            "mount -t tmpfs -o mode=1777 tmpfs /dev/shm",
            # Everything else the host sees of the machine (/work, /mnt with every host's state, /boot,
            # new top-level folders) is read-only for it: only this namespace's view of / changes, and
            # the mounts above keep their own (writable) flags.
            "mount -o remount,bind,ro /",
            "exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config",
        ]
        log = open(os.path.join(root, "sshd.log"), "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ["nsenter", "--net=/run/netns/%s" % host.netns, "--", "unshare", "--mount", "--uts", "--pid", "--fork",
             "--kill-child", "--mount-proc", "--propagation", "private", "--", "/bin/sh", "-c", "\n".join(script)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        host.pid = proc.pid

    def _stop_host(self, host):
        _remove_namespace(host.netns)
        run(["ip", "link", "del", host.veth], check=False)
        host.pid = None

    def _wait_ssh(self, hosts, timeout=30.0):
        deadline = time.monotonic() + timeout
        waiting = list(hosts)
        while waiting:
            still = []
            for host in waiting:
                try:
                    with socket.create_connection((host.address, 22), timeout=0.5) as conn:
                        if not conn.recv(4).startswith(b"SSH"):
                            still.append(host)
                except OSError:
                    still.append(host)
            waiting = still
            if waiting:
                if time.monotonic() > deadline:
                    logs = {h.name: _tail(os.path.join(self.host_root(h), "sshd.log")) for h in waiting}
                    raise FleetError("sshd did not come up on %s within %ds; its log: %s" % (
                        ", ".join(h.name for h in waiting), timeout, json.dumps(logs)))
                time.sleep(0.05)

    def _owner(self):
        """The pid of the live process that started this world, if any."""
        try:
            with open(os.path.join(self.state, "fleet.json"), encoding="utf-8") as handle:
                pid = int(json.load(handle).get("owner") or 0)
        except (OSError, ValueError, TypeError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _save(self):
        with open(os.path.join(self.state, "fleet.json"), "w", encoding="utf-8") as handle:
            json.dump({"world": self.world, "key_file": self.key_file, "owner": os.getpid(),
                       "hosts": [h.as_dict() for h in sorted(self.hosts.values(), key=lambda h: h.index)],
                       "balancer": self.balancer_host.as_dict() if self.balancer_host else None}, handle, indent=2)

    @classmethod
    def load(cls, world="test", state_root=None):
        """The fleet of a running world, as recorded by the process that started it."""
        fleet = cls(world, state_root)
        try:
            with open(os.path.join(fleet.state, "fleet.json"), encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError as exc:
            raise FleetError("world %s is not running (start it with tools/world start)" % world) from exc
        for item in data["hosts"]:
            host = Host(world, item["index"])
            host.pid = item["pid"]
            fleet.hosts[host.index] = host
        if data.get("balancer"):
            fleet.balancer_host = BalancerHost(world)
            fleet.balancer_host.pid = data["balancer"]["pid"]
        return fleet


def ensure_bridge():
    """Create the project's bridge with its address, once; idempotent."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False).returncode != 0:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE])
    if BRIDGE_ADDRESS + "/" not in addrs:
        run(["ip", "addr", "add", "%s/%d" % (BRIDGE_ADDRESS, PREFIX_LEN), "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def _remove_namespace(netns):
    """Kill every process in a namespace (PID 1 first: that takes its PID namespace down), then delete it."""
    for _attempt in range(50):
        pids = [int(p) for p in run(["ip", "netns", "pids", netns], check=False).split() if p.isdigit()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    run(["ip", "netns", "del", netns], check=False)


def _guard_package_managers(usr_upper):
    """Shadow the machine's package managers in a host's /usr upper dir with wrappers that refuse changes.

    The real programs are copied (never linked: a host may write to them) to /usr/lib/rollout-fleet,
    where the wrappers send read-only queries such as ``dpkg -l`` or ``apt list``.
    """
    real = os.path.join(usr_upper, REAL_TOOLS)
    for tool in GUARDED_TOOLS:
        for folder in ("bin", "sbin"):
            if os.path.isfile(os.path.join("/usr", folder, tool)):
                break
        else:
            continue
        os.makedirs(real, exist_ok=True)
        os.makedirs(os.path.join(usr_upper, folder), exist_ok=True)
        shutil.copy2(os.path.join("/usr", folder, tool), os.path.join(real, tool))
        wrapper = os.path.join(usr_upper, folder, tool)
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write(GUARD_SCRIPT % {"tool": tool, "message": GUARD_MESSAGE % "$1", "real": REAL_TOOLS,
                                         "dpkg_long": "|".join(DPKG_CHANGES), "apt_read": "|".join(APT_READ_ONLY)})
        os.chmod(wrapper, 0o755)


def _live_moto_servers():
    """Moto servers of any world still running: they listen on the bridge address, so the bridge stays."""
    live = []
    for pid_file in glob.glob(os.path.join(paths.STATE_ROOT, "*", "moto.pid")):
        try:
            with open(pid_file, encoding="utf-8") as handle:
                pid = int(handle.read().strip())
            os.kill(pid, 0)
            live.append(pid)
        except (OSError, ValueError):
            continue
    return live


def _links_with_prefix(prefix):
    names = []
    for line in run(["ip", "-o", "link", "show"], check=False).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix) and name != BRIDGE:
                names.append(name)
    return names


def _tail(path, size=1000):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
