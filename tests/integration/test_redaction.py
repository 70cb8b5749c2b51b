# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A presigned S3 URL revision deployed through ``ansible-playbook rollout.codedeploy.deploy``: its signature and
access key id are in neither the ledger file (read raw), nor the play's output, nor deployment_info."""
import os
import sys
import tempfile
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")


def presigned_revision(aws, tmp_path):
    """The sample app bundled and uploaded to moto; returns (presigned GET URL, sha256)."""
    path = str(tmp_path / "app.tgz")
    made = bundles.create(paths.SAMPLE_APP, path, "tgz")
    aws.bucket("releases")
    with open(path, "rb") as handle:
        aws.s3.put_object(Bucket="releases", Key="web/app.tgz", Body=handle.read())
    url = aws.s3.generate_presigned_url("get_object", Params={"Bucket": "releases", "Key": "web/app.tgz"}, ExpiresIn=3600)
    return url, made["sha256"]


def secrets_of(url):
    """The credential values of a presigned URL (signature and access key id, in both signing versions)."""
    query = parse_qs(urlparse(url).query)
    found = []
    for name in ("X-Amz-Signature", "Signature", "AWSAccessKeyId", "X-Amz-Security-Token"):
        found += query.get(name, [])
    for credential in query.get("X-Amz-Credential", []):
        found += [credential, credential.split("/")[0]]  # the access key id is the credential's first part
    found = [value for value in found if value]
    assert found, "the URL carries a signature: %s" % url
    return found


def deployment_info(world, tmp_path, ledger_path):
    inventory = tmp_path / "local.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    result_file = str(tmp_path / "info.json")
    play = [{"name": "Read the ledger", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Read deployments", "rollout.codedeploy.deployment_info": {"ledger": ledger_path}, "register": "found"},
        {"name": "Keep the result", "ansible.builtin.copy": {"content": "{{ found | to_json }}", "dest": result_file, "mode": "0644"}},
    ]}]
    (tmp_path / "info.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    proc = world.ansible_playbook(str(tmp_path / "info.yml"), str(inventory))
    with open(result_file, encoding="utf-8") as handle:
        return handle.read(), proc


def test_presigned_url_credentials_are_never_stored_or_shown(world, aws, fleet_hosts, tmp_path):
    world.launch_bound(aws, 2, {"Role": "web"})
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": {
        "ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": "CodeDeployDefault.AllAtOnce"}}})
    url, sha256 = presigned_revision(aws, tmp_path)
    secrets = secrets_of(url)
    ledger_path = str(tmp_path / "ledger.sqlite3")
    proc = world.ansible_playbook(PLAYBOOK, inv, extra_vars={
        "deployment_group": "web_production", "revision": {"url": url, "sha256": sha256}, "codedeploy_ledger": ledger_path},
        options=["-v"])
    output = proc.stdout + (proc.stderr or "")
    assert "Succeeded" in output, output[-4000:]
    assert "REDACTED" in output  # the location is shown, without its credentials
    raw = b""
    for name in os.listdir(str(tmp_path)):
        if name.startswith("ledger.sqlite3"):  # the database and its WAL
            with open(str(tmp_path / name), "rb") as handle:
                raw += handle.read()
    assert b"releases" in raw and b"REDACTED" in raw
    info, _proc = deployment_info(world, tmp_path, ledger_path)
    assert '"status": "Succeeded"' in info and "REDACTED" in info
    for secret in secrets:
        assert secret not in output, "the play output shows %s" % secret
        assert secret.encode() not in raw, "the ledger stores %s" % secret
        assert secret not in info, "deployment_info shows %s" % secret
    # the URL-encoded forms too (the credential's slashes are %2F in the URL)
    for secret in secrets:
        encoded = secret.replace("/", "%2F")
        assert encoded not in output and encoded.encode() not in raw and encoded not in info


def test_a_revision_that_is_not_an_archive_is_refused_before_anything_starts(world, aws, fleet_hosts, tmp_path):
    world.launch_bound(aws, 1, {"Role": "web"})
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": {
        "ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": "CodeDeployDefault.AllAtOnce"}}})
    work = tempfile.mkdtemp(dir=str(tmp_path))
    spec = os.path.join(work, "appspec.yml")
    with open(spec, "w") as handle:
        handle.write("version: 0.0\nos: linux\n")
    ledger_path = str(tmp_path / "ledger.sqlite3")
    proc = world.ansible_playbook(PLAYBOOK, inv, extra_vars={
        "deployment_group": "web_production", "revision": spec, "codedeploy_ledger": ledger_path}, check=False)
    assert proc.returncode != 0
    assert "revision %s is an AppSpec file, not a revision: pass its directory %s" % (spec, work) in proc.stdout, proc.stdout[-3000:]
    assert "DownloadBundle" not in proc.stdout
    if os.path.exists(ledger_path):
        from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
        assert ledgers.open_ledger(ledger_path).list_deployments() == []
