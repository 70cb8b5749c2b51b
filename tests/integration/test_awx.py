# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX / Automation Controller material of extensions/awx/: the execution environment that ansible-builder accepts
(the build context it creates, no container build), and the controller objects as code, checked against the playbooks."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import deployment_config as configs

AWX = os.path.join(paths.REPO, "extensions", "awx")
EE_FILES = ("execution-environment.yml", "requirements.yml", "requirements.txt", "bindep.txt")


def load(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def galaxy_version():
    return load(paths.REPO, "galaxy.yml")["version"]


def tool(name):
    return os.path.join(os.path.dirname(sys.executable), name)


# ----------------------------------------------------------------------------------------------
# The execution environment
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def build_context(tmp_path_factory):
    """ansible-builder create on a copy of extensions/awx with the collection tarball built from this checkout."""
    work = tmp_path_factory.mktemp("ee")
    for name in EE_FILES:
        shutil.copy(os.path.join(AWX, name), str(work / name))
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(work / "dist"), paths.REPO],
                   check=True, capture_output=True, text=True, timeout=300)
    proc = subprocess.run([tool("ansible-builder"), "create", "--file", str(work / "execution-environment.yml"),
                           "--context", str(work / "context"), "--output-filename", "Containerfile"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=str(work))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work


def test_the_execution_environment_definition_is_ansible_builder_v3():
    definition = load(AWX, "execution-environment.yml")
    assert definition["version"] == 3 and definition["images"]["base_image"]["name"]
    dependencies = definition["dependencies"]
    assert (dependencies["galaxy"], dependencies["python"], dependencies["system"]) == ("requirements.yml", "requirements.txt", "bindep.txt")
    # The collection's own declaration (what galaxy-importer checks and ansible-builder's introspection reads).
    meta = load(paths.REPO, "meta", "execution-environment.yml")
    for key in ("python", "system"):
        assert os.path.isfile(os.path.join(paths.REPO, meta["dependencies"][key])), meta


def test_the_build_context_holds_the_base_image_the_requirements_and_the_collection(build_context):
    context = build_context / "context"
    containerfile = (context / "Containerfile").read_text()
    base = load(AWX, "execution-environment.yml")["images"]["base_image"]["name"]
    assert 'ARG EE_BASE_IMAGE="%s"' % base in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    for name in ("requirements.yml", "requirements.txt", "bindep.txt"):
        assert (context / "_build" / name).read_text().strip() == (build_context / name).read_text().strip(), name
    python = (context / "_build" / "requirements.txt").read_text()
    assert re.search(r"^boto3>=", python, re.M) and re.search(r"^botocore>=", python, re.M)
    system = (context / "_build" / "bindep.txt").read_text()
    assert "openssh-clients [platform:rpm]" in system and "haproxy" not in system
    # The collection tarball, where requirements.yml names it once the build context is copied to /build.
    tarball = "rollout-codedeploy-%s.tar.gz" % galaxy_version()
    assert (context / "_build" / "collections" / tarball).read_bytes() == (build_context / "dist" / tarball).read_bytes()
    galaxy = {c["name"]: c for c in yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]}
    assert galaxy["/build/collections/" + tarball]["type"] == "file", "requirements.yml must name galaxy.yml's version"
    assert "COPY _build /build" in containerfile
    needed = set(load(paths.REPO, "galaxy.yml")["dependencies"])
    assert needed <= set(galaxy), "every collection galaxy.yml depends on is in the EE"


# ----------------------------------------------------------------------------------------------
# The controller objects as code (infra.aap_configuration) against the playbooks
# ----------------------------------------------------------------------------------------------
def controller():
    return load(AWX, "controller", "configuration.yml")


def survey():
    with open(os.path.join(AWX, "survey", "deploy.json"), encoding="utf-8") as handle:
        return json.load(handle)


def playbook_variables(name):
    """Extra vars a collection playbook reads (``{{ name | default(...) }}`` or ``{{ name }}`` in task arguments)."""
    with open(os.path.join(paths.REPO, "playbooks", name + ".yml"), encoding="utf-8") as handle:
        return set(re.findall(r"\{\{ *([a-z_]+) *(?:\||\}\})", handle.read()))


def imported(project_playbook):
    """The collection playbook a project playbook imports (rollout.codedeploy.<name>) -> <name>."""
    plays = load(AWX, "project", project_playbook)
    names = [p["ansible.builtin.import_playbook"] for p in plays if "ansible.builtin.import_playbook" in p]
    return names[0].split(".")[-1] if names else None


def set_stats_keys(name):
    plays = load(paths.REPO, "playbooks", name + ".yml")
    keys = set()
    for play in plays:
        for task in play.get("tasks", []):
            if "ansible.builtin.set_stats" in task:
                assert task["ansible.builtin.set_stats"]["per_host"] is False, "workflow artifacts need per_host: false"
                keys |= set(task["ansible.builtin.set_stats"]["data"])
    return keys


def test_the_survey_asks_for_variables_the_deploy_playbook_accepts():
    spec = survey()
    assert spec["name"] and spec["description"]
    variables = [q["variable"] for q in spec["spec"]]
    assert variables == ["deployment_group", "revision", "deployment_config"]
    assert set(variables) <= playbook_variables("deploy")
    choices = next(q for q in spec["spec"] if q["variable"] == "deployment_config")["choices"]
    assert set(choices) <= {configs.ONE_AT_A_TIME, configs.HALF_AT_A_TIME, configs.ALL_AT_ONCE}
    for question in spec["spec"]:
        assert question["type"] in ("text", "multiplechoice") and question["question_name"]
        assert question["required"] == (question["variable"] != "deployment_config")  # blank: the group's own config
    config = controller()
    for template in config["controller_templates"] + config["controller_workflows"]:
        if template.get("survey_enabled"):
            assert template["survey_spec"] == "{{ lookup('ansible.builtin.file', 'survey/deploy.json') | from_json }}"


def test_job_templates_run_the_project_playbooks_that_import_the_collections():
    config = controller()
    credentials = {c["name"] for c in config["controller_credentials"]}
    types = {t["name"] for t in config["controller_credential_types"]} | {"Amazon Web Services", "Machine"}
    assert {c["credential_type"] for c in config["controller_credentials"]} <= types
    projects = {p["name"] for p in config["controller_projects"]}
    environments = {e["name"] for e in config["controller_execution_environments"]}
    for template in config["controller_templates"]:
        assert imported(template["playbook"]) in ("deploy", "continue") or template["playbook"] == "metrics.yml", template["name"]
        assert set(template["credentials"]) <= credentials and template["project"] in projects
        assert template["execution_environment"] in environments
        injected = [c for c in template["credentials"] if c in credentials]
        kinds = {c["name"]: c["credential_type"] for c in config["controller_credentials"]}
        assert {"Amazon Web Services", "AWS region"} <= {kinds[c] for c in injected}, "keys and region for every AWS job"
        assert template["extra_vars"]["codedeploy_ledger"].startswith("dynamodb://"), "jobs run in fresh containers"
    deploy = next(t for t in config["controller_templates"] if t["playbook"] == "deploy.yml")
    assert deploy["job_slice_count"] == 1 and deploy["allow_simultaneous"] is False
    region = next(t for t in config["controller_credential_types"] if t["name"] == "AWS region")
    assert set(region["injectors"]["env"]) == {"AWS_REGION", "AWS_DEFAULT_REGION"}


def test_the_workflow_approval_node_is_followed_by_the_continue_playbook():
    config = controller()
    playbooks = {t["name"]: t["playbook"] for t in config["controller_templates"]}
    workflow = config["controller_workflows"][0]
    nodes = {n["identifier"]: n for n in workflow["simplified_workflow_nodes"]}
    children = {c for n in nodes.values() for key in ("success_nodes", "failure_nodes", "always_nodes") for c in n.get(key, [])}
    assert children <= set(nodes)
    approvals = [n for n in nodes.values() if "approval_node" in n]
    assert len(approvals) == 1 and approvals[0]["approval_node"]["timeout"] > 0
    approval = approvals[0]
    # The deploy job waits in status Ready while the approval runs: both start together (roots), not one after the other.
    deploy = next(n for n in nodes.values() if playbooks.get(n.get("unified_job_template")) == "deploy.yml")
    assert approval["identifier"] not in children and deploy["identifier"] not in children
    follow = [nodes[c] for c in approval["success_nodes"]]
    assert [imported(playbooks[n["unified_job_template"]]) for n in follow] == ["continue"]
    # continue.yml finds the Ready deployment by the group the workflow's survey asked for.
    assert "deployment_group" in playbook_variables("continue")
    # The metrics node reads the deploy node's artifacts.
    metrics_node = next(n for n in nodes.values() if playbooks.get(n.get("unified_job_template")) == "metrics.yml")
    assert metrics_node["identifier"] in deploy["always_nodes"]
    with open(os.path.join(AWX, "project", "metrics.yml"), encoding="utf-8") as handle:
        assert "codedeploy_deployment_id" in handle.read() and "codedeploy_deployment_id" in set_stats_keys("deploy")


def test_the_artifacts_table_names_every_set_stats_key():
    with open(os.path.join(paths.REPO, "docs", "awx.md"), encoding="utf-8") as handle:
        text = handle.read()
    table = text.split("## Artifacts (set_stats)", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(codedeploy_[a-z_]+)` \|", table, re.M))
    published = set()
    for name in ("deploy", "rollback", "continue", "stop"):
        keys = set_stats_keys(name)
        published |= keys
        for key in keys:
            assert re.search(r"^\| `%s` \|[^\n]*`%s\.yml`" % (key, name), table, re.M), "docs/awx.md: %s from %s.yml" % (key, name)
    assert documented == published
