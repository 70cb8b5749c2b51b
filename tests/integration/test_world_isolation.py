"""A fleet host cannot change the machine it runs on: its /usr is its own, and package managers refuse.

Public sample revisions write under /usr and run ``apt-get install`` in their hooks. On a fleet host
those writes land in the host's /usr overlay (its state folder), and apt-get, apt and dpkg stop with a
message that says why, so a test run never installs software on the machine running the tests.
"""
import os
import subprocess

import pytest

from test_deploy import deploy, fleet, inventory, last_deployment, revision

pytestmark = [pytest.mark.fleet]

DISABLED = "this is a test fleet host: package managers are disabled"
PACKAGE = "cowsay"  # not installed on the machine (the tests check), small, in Debian


def machine_package_state(package):
    """What dpkg on this machine knows of a package: its status line, or '' when it knows nothing."""
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def on_host(world, host, command):
    """Run a shell command on a host; its stdout and stderr together, and the exit status."""
    out = world.fleet.ssh(host, "{ %s ; } 2>&1; echo \"rc=$?\"" % command)
    text, _sep, status = out.rstrip("\n").rpartition("rc=")
    return text, int(status)


def marker_paths(name):
    return ["/usr/bin/%s" % name, "/usr/lib/%s" % name, "/usr/local/bin/%s" % name]


def test_writes_under_usr_stay_on_the_host(world, fleet_hosts):
    first, second = fleet_hosts[0], fleet_hosts[1]
    paths = marker_paths("rollout-fleet-isolation")
    assert not any(os.path.exists(p) for p in paths)
    text, status = on_host(world, first, " && ".join("echo %s > %s" % (first.name, p) for p in paths))
    assert status == 0, text
    for path in paths:
        assert world.fleet.ssh(first, "cat %s" % path).strip() == first.name
        assert not os.path.exists(path), "a fleet host wrote %s on the machine" % path
    # /bin is /usr/bin on this machine: the host's write shows there too, and still only on the host.
    assert world.fleet.ssh(first, "cat /bin/rollout-fleet-isolation").strip() == first.name
    assert world.fleet.ssh(second, "ls %s 2>/dev/null; true" % " ".join(paths)) == ""
    assert os.path.isfile(os.path.join(world.fleet.host_root(first), "usr.upper", "bin", "rollout-fleet-isolation"))
    # A deleted system file is gone on the host only.
    world.fleet.ssh(first, "rm /usr/bin/yes")
    assert world.fleet.ssh(first, "test -e /usr/bin/yes && echo there || echo gone").strip() == "gone"
    assert os.path.exists("/usr/bin/yes")
    world.fleet.restart([first])
    assert world.fleet.ssh(first, "ls %s 2>/dev/null; test -e /usr/bin/yes && echo clean" % " ".join(paths)).strip() == "clean"


def test_the_rest_of_the_machine_is_read_only(world, fleet_hosts):
    """Folders a host has no private copy of (the checkout, the worlds' state, new top-level folders) are read-only."""
    host = fleet_hosts[0]
    for path in (os.path.join(world.fleet.state, "rollout-fleet-isolation"), "/rollout-fleet-isolation",
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "rollout-fleet-isolation")):
        text, status = on_host(world, host, "mkdir %s" % path)
        assert status != 0 and "Read-only file system" in text, (path, text)
        assert not os.path.exists(path)
    # Its own folders stay writable, /dev/shm included (a tmpfs of its own).
    world.fleet.ssh(host, "touch /dev/shm/rollout-fleet-isolation /run/rollout-fleet-isolation /var/tmp/rollout-fleet-isolation")
    assert not os.path.exists("/dev/shm/rollout-fleet-isolation")


def test_package_managers_refuse_with_a_clear_message(world, fleet_hosts):
    host = fleet_hosts[0]
    before = machine_package_state(PACKAGE)
    assert not before.startswith("install ok installed"), "%s is installed on this machine; pick another package" % PACKAGE
    for command in ("apt-get install -y %s" % PACKAGE, "apt-get -q -o Debug::NoLocking=1 update", "apt install %s" % PACKAGE,
                    "apt-get remove -y bash", "dpkg -i /tmp/%s.deb" % PACKAGE, "dpkg --purge bash"):
        text, status = on_host(world, host, command)
        assert status != 0, (command, text)
        assert DISABLED in text and command in text and "ship the software in the revision" in text, (command, text)
    assert machine_package_state(PACKAGE) == before
    assert world.fleet.ssh(host, "command -v cowsay /usr/games/cowsay; true") == ""
    # Queries still work, as scripts use them to look at the system.
    assert "ii  bash" in world.fleet.ssh(host, "dpkg -l bash")
    assert world.fleet.ssh(host, "dpkg --print-architecture").strip() == machine_arch()
    assert "bash/" in world.fleet.ssh(host, "apt list --installed bash 2>/dev/null")
    assert world.fleet.ssh(host, "apt-get --version").startswith("apt ")


def machine_arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def test_package_state_is_private_to_the_host(world, fleet_hosts):
    """/etc/apt and /var/lib/dpkg are overlays: even the real dpkg, run past the wrapper, changes the host only."""
    host = fleet_hosts[0]
    machine_foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=True).stdout
    assert "s390x" not in machine_foreign
    world.fleet.ssh(host, "/usr/lib/rollout-fleet/dpkg --add-architecture s390x && "
                          "echo 'deb http://deb.example.invalid/ stable main' > /etc/apt/sources.list.d/rollout-fleet.list")
    assert "s390x" in world.fleet.ssh(host, "dpkg --print-foreign-architectures")
    assert subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=True).stdout == machine_foreign
    assert not os.path.exists("/etc/apt/sources.list.d/rollout-fleet.list")
    for mount in ("/etc", "/var", "/usr"):
        assert world.fleet.ssh(host, "findmnt -n -o FSTYPE %s" % mount).strip() == "overlay", mount


HOOK = """\
#!/bin/sh
# A hook as public sample revisions write them: it puts a tool under /usr and installs a package.
set -eu
echo "$DEPLOYMENT_ID" > /usr/bin/rollout-fleet-hook
echo "$DEPLOYMENT_ID" > /usr/lib/rollout-fleet-hook
apt-get install -y %s
""" % PACKAGE


@pytest.mark.aws
def test_a_hook_that_writes_usr_and_runs_apt_get_leaves_the_machine_alone(world, aws, fleet_hosts, tmp_path):
    bound, _arn = fleet(world, aws, 1, load_balancer=False)
    host = list(bound.values())[0]
    rev = revision(tmp_path, "installs")
    with open(os.path.join(rev, "scripts", "install_tools.sh"), "w", encoding="utf-8") as handle:
        handle.write(HOOK)
    os.chmod(os.path.join(rev, "scripts", "install_tools.sh"), 0o755)
    with open(os.path.join(rev, "appspec.yml"), encoding="utf-8") as handle:
        appspec = handle.read()
    appspec = appspec.replace("  AfterInstall:\n", "  AfterInstall:\n    - location: scripts/install_tools.sh\n      timeout: 60\n", 1)
    with open(os.path.join(rev, "appspec.yml"), "w", encoding="utf-8") as handle:
        handle.write(appspec)
    before = machine_package_state(PACKAGE)
    ledger_path = str(tmp_path / "ledger.sqlite3")

    result = deploy(world, inventory(world, tmp_path, "CodeDeployDefault.AllAtOnce", load_balancer=False), rev, ledger_path)

    deployment = last_deployment(ledger_path)
    assert deployment["status"] == "Failed", result.stdout[-3000:]
    events = {e["event"]: e for e in deployment["instances"][0]["events"]}
    assert events["AfterInstall"]["status"] == "Failed"
    assert DISABLED in events["AfterInstall"]["log_tail"], events["AfterInstall"]
    assert "apt-get install -y %s" % PACKAGE in events["AfterInstall"]["log_tail"]
    # The host saw its own writes; the machine has neither the files nor the package.
    for path in ("/usr/bin/rollout-fleet-hook", "/usr/lib/rollout-fleet-hook"):
        assert world.fleet.ssh(host, "cat %s" % path).strip() == deployment["deployment_id"]
        assert not os.path.exists(path), "the hook wrote %s on the machine" % path
    assert machine_package_state(PACKAGE) == before
