"""rollout.codedeploy.deploy_local on real fleet hosts: the agent's host-side semantics end to end."""
import io
import os
import shutil
import tarfile
import textwrap
import zipfile

import pytest

from world import paths

pytestmark = [pytest.mark.fleet]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy_local.yml")
ROOT = "/opt/codedeploy-agent/deployment-root"


def inventory(tmp_path, hosts):
    path = tmp_path / "hosts.ini"
    path.write_text("[fleet]\n" + "".join("%s ansible_host=%s\n" % (h.name, h.address) for h in hosts))
    return str(path)


def revision(tmp_path, name, version="1.0.0", extra_files=None, appspec=None, remove=()):
    """A copy of the sample revision with its own VERSION, extra files and optionally another appspec."""
    target = tmp_path / name
    shutil.copytree(os.path.join(paths.SAMPLE_APP), str(target))
    (target / "VERSION").write_text(version + "\n")
    for rel, content in (extra_files or {}).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if rel.startswith("scripts/"):
            path.chmod(0o755)
    for rel in remove:
        (target / rel).unlink()
    if appspec is not None:
        (target / "appspec.yml").write_text(textwrap.dedent(appspec))
    return str(target)


def deploy(world, inv, rev, check=True, **extra):
    extra_vars = {"revision": rev}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check)


def deployment_ids(result):
    return [line.split("Deployment ")[1].split(":")[0] for line in result.stdout.splitlines() if '"msg": "Deployment d-' in line]


def test_two_deployments_in_a_row(world, fleet_hosts, tmp_path):
    hosts = fleet_hosts[:2]
    inv = inventory(tmp_path, hosts)
    first = deploy(world, inv, revision(tmp_path, "v1", "1.0.0", {"app/only_in_v1.txt": "old\n"}))
    second = deploy(world, inv, revision(tmp_path, "v2", "2.0.0"))
    d1, d2 = deployment_ids(first)[0], deployment_ids(second)[0]
    assert d1 != d2
    for host in hosts:
        evidence = world.fleet.ssh(host, "cat /var/lib/sample-app/evidence.log").splitlines()
        rows = [line.split("\t")[1:] for line in evidence]
        # The second deployment ran the FIRST revision's ApplicationStop, then its own hooks.
        assert ["ApplicationStop", d2, "1.0.0"] in rows
        assert ["ValidateService", d2, "2.0.0"] in rows
        assert not any(r[0] == "ApplicationStop" and r[1] == d1 for r in rows), "first deployment had nothing to stop"
        assert world.fleet.ssh(host, "test -e /srv/sample-app/only_in_v1.txt && echo kept || echo gone").strip() == "gone"
        assert world.fleet.ssh(host, "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/').read().decode())\"").strip() \
            == "sample-app 2.0.0"
        pointer = world.fleet.ssh(host, "cat %s/deployment-instructions/*_last_successful_install" % ROOT)
        assert pointer.endswith("/" + d2)
        log = world.fleet.ssh(host, "cat %s/*/%s/logs/scripts.log" % (ROOT, d2))
        assert "LifecycleEvent - ApplicationStop" in log and "LifecycleEvent - ValidateService" in log


@pytest.mark.parametrize("behavior, expected", [("DISALLOW", "preexisting"), ("OVERWRITE", "from the revision"), ("RETAIN", "preexisting")])
def test_file_exists_behavior(world, fleet_hosts, tmp_path, behavior, expected):
    host = fleet_hosts[0]
    world.fleet.ssh(host, "mkdir -p /srv/sample-app && echo preexisting > /srv/sample-app/notes.txt")
    rev = revision(tmp_path, "rev", extra_files={"app/notes.txt": "from the revision\n"})
    result = deploy(world, inventory(tmp_path, [host]), rev, check=False, file_exists_behavior=behavior)
    if behavior == "DISALLOW":
        assert result.returncode != 0
        assert "a specified file already exists at this location: /srv/sample-app/notes.txt" in result.stdout
        assert "Install failed on %s" % host.name in result.stdout
    else:
        assert result.returncode == 0, result.stdout[-3000:]
    assert world.fleet.ssh(host, "cat /srv/sample-app/notes.txt").strip() == expected


HANGING_APPSPEC = """\
    version: 0.0
    os: linux
    files:
      - source: app/
        destination: /srv/sample-app
    hooks:
      ApplicationStart:
        - location: scripts/daemon_keeps_stdout.sh
          timeout: 120
      ValidateService:
        - location: scripts/never_ends.sh
          timeout: 3
"""


def test_hooks_with_open_pipes_and_timeouts_end(world, fleet_hosts, tmp_path):
    host = fleet_hosts[0]
    rev = revision(tmp_path, "hang", extra_files={
        # A background child that keeps the hook's stdout open must not hold the event.
        "scripts/daemon_keeps_stdout.sh": "#!/bin/sh\nsleep 300 &\necho started a daemon\n",
        # A script that never ends is stopped at its timeout (TERM ignored: KILL after the grace).
        "scripts/never_ends.sh": "#!/bin/sh\ntrap '' TERM\necho waiting forever\nwhile true; do sleep 1; done\n",
    }, appspec=HANGING_APPSPEC)
    result = deploy(world, inventory(tmp_path, [host]), rev, check=False)
    assert result.returncode != 0
    assert "ValidateService failed on %s" % host.name in result.stdout
    assert "failed to complete in 3 seconds" in result.stdout
    assert "waiting forever" in result.stdout
    log = world.fleet.ssh(host, "cat %s/*/d-*/logs/scripts.log" % ROOT)
    assert "[stdout]started a daemon" in log
    assert world.fleet.ssh(host, "pgrep -f never_end[s].sh || echo none").strip() == "none"


RUNAS_APPSPEC = """\
    version: 0.0
    os: linux
    hooks:
      AfterInstall:
        - location: scripts/whoami.sh
          runas: deployer
"""


def test_runas_a_user_without_login_shell(world, fleet_hosts, tmp_path):
    host = fleet_hosts[0]
    world.fleet.ssh(host, "useradd --system --shell /usr/sbin/nologin --create-home deployer")
    rev = revision(tmp_path, "runas", extra_files={"scripts/whoami.sh": "#!/bin/sh\nid -un > /tmp/runas-user\necho home=$HOME\n"},
                   appspec=RUNAS_APPSPEC)
    deploy(world, inventory(tmp_path, [host]), rev)
    assert world.fleet.ssh(host, "cat /tmp/runas-user").strip() == "deployer"
    assert world.fleet.ssh(host, "stat -c %U /tmp/runas-user").strip() == "deployer"


MODES_APPSPEC = """\
    version: 0.0
    os: linux
    files:
      - source: app/
        destination: /srv/modes
    permissions:
      - object: /srv/modes/unquoted.txt
        mode: 0640
      - object: /srv/modes/quoted.txt
        mode: "0604"
      - object: /srv/modes
        pattern: "*.py"
        type: [file]
        mode: 750
"""


def test_quoted_and_unquoted_modes(world, fleet_hosts, tmp_path):
    host = fleet_hosts[0]
    rev = revision(tmp_path, "modes", extra_files={"app/unquoted.txt": "u\n", "app/quoted.txt": "q\n"}, appspec=MODES_APPSPEC)
    deploy(world, inventory(tmp_path, [host]), rev)
    modes = world.fleet.ssh(host, "stat -c '%n %a' /srv/modes/unquoted.txt /srv/modes/quoted.txt /srv/modes/server.py").split("\n")
    assert modes[:3] == ["/srv/modes/unquoted.txt 640", "/srv/modes/quoted.txt 604", "/srv/modes/server.py 750"]


def _zip_slip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr("../../../../etc/evil", "owned\n")


def _symlink_escape(path):
    with tarfile.open(path, "w:gz") as archive:
        spec = b"version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/escape\n"
        info = tarfile.TarInfo("appspec.yml")
        info.size = len(spec)
        archive.addfile(info, io.BytesIO(spec))
        link = tarfile.TarInfo("etc")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc"
        archive.addfile(link)
        evil = tarfile.TarInfo("etc/evil")
        evil.size = 6
        archive.addfile(evil, io.BytesIO(b"owned\n"))


HOST_SIDE = """\
- name: Hand an unsafe bundle straight to the host (skipping the controller's checks)
  hosts: all
  gather_facts: false
  tasks:
    - name: Deploy
      rollout.codedeploy.lifecycle:
        deployment_id: d-UNSAFE0001
        deployment_group_id: unsafe-group
        application_name: unsafe
        deployment_group_name: unsafe
        events: [DownloadBundle, Install]
        appspec: {version: "0.0", os: linux, files: [], hooks: {}, permissions: []}
        bundle_src: "{{ unsafe_bundle }}"
"""


@pytest.mark.parametrize("maker, name, entry", [(_zip_slip, "slip.zip", "../../../../etc/evil"), (_symlink_escape, "escape.tgz", "etc")])
def test_unsafe_bundles_are_refused_and_hosts_unchanged(world, fleet_hosts, tmp_path, maker, name, entry):
    host = fleet_hosts[0]
    bundle = str(tmp_path / name)
    maker(bundle)
    inv = inventory(tmp_path, [host])
    refused = deploy(world, inv, bundle, check=False)
    assert refused.returncode != 0
    assert entry in refused.stdout
    assert world.fleet.ssh(host, "test -e %s && echo touched || echo untouched" % ROOT).strip() == "untouched"

    playbook = tmp_path / "host_side.yml"
    playbook.write_text(HOST_SIDE)
    direct = world.ansible_playbook(str(playbook), inv, extra_vars={"unsafe_bundle": bundle}, check=False)
    assert direct.returncode != 0
    assert "DownloadBundle failed on %s" % host.name in direct.stdout and entry in direct.stdout
    assert world.fleet.ssh(host, "test -e /etc/evil && echo written || echo clean").strip() == "clean"
    assert world.fleet.ssh(host, "ls -A %s/unsafe-group/d-UNSAFE0001/deployment-archive 2>/dev/null | wc -l" % ROOT).strip() == "0"
    assert world.fleet.ssh(host, "test -e /srv/escape && echo installed || echo absent").strip() == "absent"


PULL = """\
- name: Hosts pull the bundle from a presigned S3 URL
  hosts: all
  gather_facts: false
  roles:
    - role: rollout.codedeploy.in_place
      vars:
        codedeploy_deployment_id: d-PULLED0001
        codedeploy_deployment_group_id: pull-group
        codedeploy_appspec: "{{ pull_appspec }}"
        codedeploy_bundle_url: "{{ pull_url }}"
        codedeploy_bundle_sha256: "{{ pull_sha256 }}"
        codedeploy_revision_source: {s3: {bucket: "{{ pull_bucket }}", key: sample.tgz, version: null, etag: null}}
"""


@pytest.mark.aws
def test_hosts_pull_the_bundle_from_a_presigned_s3_url(world, aws, fleet_hosts, tmp_path):
    from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
    from ansible_collections.rollout.codedeploy.plugins.module_utils.appspec import load_appspec_file

    hosts = fleet_hosts[:2]
    made = bundles.create(paths.SAMPLE_APP, str(tmp_path / "sample.tgz"), "tgz")
    aws.bucket("pull-revisions")
    aws.s3.upload_file(str(tmp_path / "sample.tgz"), "pull-revisions", "sample.tgz")
    url = aws.s3.generate_presigned_url("get_object", Params={"Bucket": "pull-revisions", "Key": "sample.tgz"}, ExpiresIn=600)
    spec, _warnings = load_appspec_file(paths.SAMPLE_APP)
    playbook = tmp_path / "pull.yml"
    playbook.write_text(PULL)
    extra = {"pull_appspec": spec, "pull_url": url, "pull_sha256": made["sha256"], "pull_bucket": "pull-revisions"}
    result = world.ansible_playbook(str(playbook), inventory(tmp_path, hosts), extra_vars=extra, options=["-v"])
    assert "X-Amz-Signature" not in result.stdout, "the presigned URL must not be logged"
    for host in hosts:
        rows = [line.split("\t") for line in world.fleet.ssh(host, "cat /var/lib/sample-app/evidence.log").splitlines()]
        assert ["ValidateService", "d-PULLED0001"] == rows[-1][1:3]
        log = world.fleet.ssh(host, "cat %s/pull-group/d-PULLED0001/logs/scripts.log" % ROOT)
        assert "LifecycleEvent - ValidateService" in log

    extra["pull_sha256"] = "f" * 64
    wrong = world.ansible_playbook(str(playbook), inventory(tmp_path, hosts[:1]), extra_vars=extra, check=False)
    assert wrong.returncode != 0 and "DownloadBundle failed on %s" % hosts[0].name in wrong.stdout and "f" * 64 in wrong.stdout
