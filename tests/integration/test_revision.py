# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout.codedeploy.revision and appspec_info through ansible-playbook on localhost, against the world's moto server."""
import json
import os
import sys
import textwrap

import pytest

from world import paths

pytestmark = [pytest.mark.aws]

SAMPLE = os.path.join(paths.REPO, "examples", "sample-app")

BUILD = textwrap.dedent("""\
    - name: Build and upload a revision
      hosts: localhost
      gather_facts: false
      module_defaults:
        group/rollout.codedeploy.aws:
          endpoint_url: "{{ endpoint }}"
          region: us-east-1
      tasks:
        - name: Bundle the revision and upload it
          rollout.codedeploy.revision:
            path: "{{ source }}"
            dest: "{{ dest }}"
            bucket: "{{ bucket }}"
            key: "{{ key }}"
          register: built
        - name: Keep the result for the test
          ansible.builtin.copy:
            content: "{{ built | to_json }}"
            dest: "{{ result_file }}"
            mode: "0644"
    """)

INFO = textwrap.dedent("""\
    - name: Read AppSpecs
      hosts: localhost
      gather_facts: false
      tasks:
        - name: Read the AppSpec of a directory and of a bundle
          rollout.codedeploy.appspec_info:
            path: "{{ item }}"
          loop: "{{ paths }}"
          register: specs
        - name: Keep the results for the test
          ansible.builtin.copy:
            content: "{{ specs.results | to_json }}"
            dest: "{{ result_file }}"
            mode: "0644"
    """)


@pytest.fixture
def local(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    return str(inventory)


def task_status(stdout, task):
    """The status line word (ok, changed, failed) of ``task`` for localhost in ansible-playbook's output."""
    section = stdout.split("TASK [%s]" % task, 1)[1].split("TASK [", 1)[0].split("PLAY RECAP", 1)[0]
    for line in section.splitlines():
        if line.endswith(": [localhost]") or ": [localhost] =>" in line or line.startswith(("ok: [localhost]", "changed: [localhost]")):
            return line.split(":", 1)[0]
    raise AssertionError("no status for %s in:\n%s" % (task, section))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def build(world, aws, tmp_path, local, run, options=(), check=True, source=SAMPLE):
    result_file = str(tmp_path / ("result-%s.json" % run))
    proc = world.ansible_playbook(write(tmp_path, "build.yml", BUILD), local, extra_vars={
        "endpoint": world.moto.endpoint, "source": source, "dest": str(tmp_path / "bundles") + "/",
        "bucket": "releases", "key": "sample-app/sample-app.tgz", "result_file": result_file,
    }, options=options, check=check)
    if not os.path.exists(result_file):
        return proc, None
    with open(result_file) as handle:
        return proc, json.load(handle)


def test_build_upload_then_no_change(world, aws, tmp_path, local):
    aws.bucket("releases")
    _proc, first = build(world, aws, tmp_path, local, 1)
    assert first["changed"] is True and first["uploaded"] is True
    head = aws.s3.head_object(Bucket="releases", Key="sample-app/sample-app.tgz")
    assert head["Metadata"]["sha256"] == first["sha256"]
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-sha256"] == first["sha256"]
    assert first["version"] == head["VersionId"] and first["etag"] == head["ETag"].strip('"')
    assert first["location"] == "s3://releases/sample-app/sample-app.tgz?versionId=%s" % head["VersionId"]
    assert first["path"] == os.path.join(str(tmp_path / "bundles"), first["sha256"] + ".tgz")
    body = aws.s3.get_object(Bucket="releases", Key="sample-app/sample-app.tgz")["Body"].read()
    with open(first["path"], "rb") as handle:
        assert handle.read() == body

    proc, second = build(world, aws, tmp_path, local, 2)
    assert second["changed"] is False and second["uploaded"] is False
    assert (second["sha256"], second["version"], second["etag"]) == (first["sha256"], first["version"], first["etag"])
    assert len(aws.s3.list_object_versions(Bucket="releases")["Versions"]) == 1

    assert task_status(proc.stdout, "Bundle the revision and upload it") == "ok"

    # check mode after the upload: still nothing to do
    proc, _result = build(world, aws, tmp_path, local, 3, options=["--check"])
    assert task_status(proc.stdout, "Bundle the revision and upload it") == "ok"


def test_check_mode_before_upload_reports_a_change_and_uploads_nothing(world, aws, tmp_path, local):
    aws.bucket("releases")
    proc, _result = build(world, aws, tmp_path, local, 1, options=["--check"])
    assert task_status(proc.stdout, "Bundle the revision and upload it") == "changed"
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="releases")
    assert not (tmp_path / "bundles").exists()


def test_invalid_revision_fails_the_play_with_the_agent_message(world, aws, tmp_path, local):
    aws.bucket("releases")
    source = tmp_path / "bad"
    (source / "scripts").mkdir(parents=True)
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/a.sh\n"
                                        "      timeout: 0\n")
    proc, result = build(world, aws, tmp_path, local, 1, check=False, source=str(source))
    assert proc.returncode != 0 and result is None
    assert "invalid timeout value was provided for a script" in proc.stdout
    assert "line 6" in proc.stdout and "hooks.AfterInstall[0].timeout" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="releases")


def test_appspec_info_on_directory_and_built_bundle(world, aws, tmp_path, local):
    aws.bucket("releases")
    _proc, built = build(world, aws, tmp_path, local, 1)
    result_file = str(tmp_path / "specs.json")
    world.ansible_playbook(write(tmp_path, "info.yml", INFO), local, extra_vars={
        "paths": [SAMPLE, built["path"]], "result_file": result_file})
    with open(result_file) as handle:
        directory, bundled = json.load(handle)
    assert directory["kind"] == "directory" and bundled["kind"] == "bundle"
    assert directory["changed"] is False and bundled["changed"] is False
    assert directory["appspec"] == bundled["appspec"]
    assert directory["source"] == os.path.join(SAMPLE, "appspec.yml")
    assert bundled["source"] == built["path"] + ":appspec.yml"
    assert bundled["sha256"] == built["sha256"] and bundled["bundle_type"] == "tgz"
    assert directory["script_problems"] == [] and bundled["script_problems"] == []
    assert sorted(directory["appspec"]["hooks"]) == sorted([
        "ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic", "BeforeInstall", "AfterInstall",
        "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"])
