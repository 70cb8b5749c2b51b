"""The docsite (docs/docsite) and the CI examples (examples/ci) stay true to the code.

- every error code the plugins produce is explained on the troubleshooting page, and every code the page explains
  is one the plugins produce (or is listed among CodeDeploy's codes that do not occur here);
- extra-docs.yml and the rst pages agree, and every link into the repository names a file that exists;
- the CI examples are well-formed YAML that build a revision with appspec.yml at its root, upload it, and run the
  deploy playbook with extra vars it accepts and the revision that was uploaded.
"""
import os
import re
import shlex

import yaml

from error_codes import REPO, plugin_error_codes

DOCSITE = os.path.join(REPO, "docs", "docsite")
RST = os.path.join(DOCSITE, "rst")
TROUBLESHOOTING = os.path.join(RST, "troubleshooting.rst")
REPO_LINK = re.compile(r"https://github\.com/rollout/codedeploy/(?:blob|tree)/main/([^>\s`]+)")
NOT_HERE = "CodeDeploy codes that do not occur here"


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _documented_codes():
    """(codes explained, codes listed as not occurring here): the first column of the page's tables."""
    text = _read(TROUBLESHOOTING)
    produced_part, _sep, absent_part = text.partition(NOT_HERE)
    first_cell = re.compile(r"^   \* - (.+)$", re.MULTILINE)

    def codes(part):
        return {code for cell in first_cell.findall(part) for code in re.findall(r"``([A-Za-z_]+)``", cell)} - {"Code"}

    return codes(produced_part), codes(absent_part)


def test_the_extractor_finds_codes_of_every_kind():
    codes = plugin_error_codes()
    # A deployment code, a refusal, a lifecycle code, a host code and a config exception: if one kind stops being
    # found, the extractor (not the page) is broken.
    for code in ("HEALTH_CONSTRAINTS", "INVALID_INPUT", "ScriptFailed", "HostLocked", "InvalidMinimumHealthyHostValueException"):
        assert code in codes, "tests/unit/docs/error_codes.py no longer finds %s in plugins/" % code


def test_every_error_code_of_the_plugins_is_on_the_troubleshooting_page():
    explained, _absent = _documented_codes()
    missing = {code: files for code, files in plugin_error_codes().items() if code not in explained}
    assert not missing, "explain these error codes (meaning, what to do) in docs/docsite/rst/troubleshooting.rst: %s" % missing


def test_the_troubleshooting_page_explains_no_code_the_plugins_do_not_produce():
    explained, absent = _documented_codes()
    produced = set(plugin_error_codes())
    assert explained - produced == set(), "codes on the page that no plugin produces (move them to %r)" % NOT_HERE
    assert absent & produced == set(), "codes listed as not occurring that a plugin produces"
    assert {"OVER_MAX_INSTANCES", "APPLICATION_MISSING", "DEPLOYMENT_GROUP_MISSING"} <= absent


def test_extra_docs_and_rst_pages_agree():
    with open(os.path.join(DOCSITE, "extra-docs.yml"), encoding="utf-8") as handle:
        index = yaml.safe_load(handle)
    refs = [entry["ref"] for section in index["sections"] for entry in section["toctree"]]
    pages = sorted(name[:-4] for name in os.listdir(RST) if name.endswith(".rst"))
    assert sorted(refs) == pages
    for page in pages:
        label = ".. _ansible_collections.rollout.codedeploy.docsite.%s:" % page.replace("-", "_")
        assert _read(os.path.join(RST, page + ".rst")).startswith(label + "\n"), page


def test_every_link_into_the_repository_names_an_existing_file():
    sources = [os.path.join(RST, name) for name in os.listdir(RST)] + [os.path.join(DOCSITE, "links.yml")]
    broken = {}
    for source in sources:
        for target in REPO_LINK.findall(_read(source)):
            if not os.path.exists(os.path.join(REPO, target.split("#")[0])):
                broken.setdefault(os.path.relpath(source, REPO), []).append(target)
    assert not broken, broken


def _deploy_playbook_vars():
    """The extra vars the deploy playbook reads (every name it uses in a template)."""
    text = _read(os.path.join(REPO, "playbooks", "deploy.yml"))
    return set(re.findall(r"\{\{\s*([a-z_]+)", text)) | {"codedeploy_ledger"}


def _commands(ci_file):
    """Shell lines of a CI example: GitHub's run steps or GitLab's scripts."""
    with open(os.path.join(REPO, "examples", "ci", ci_file), encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    lines = []
    for job in document.get("jobs", {}).values():
        lines += [step["run"] for step in job["steps"] if "run" in step]
    for key, job in document.items():
        if isinstance(job, dict) and key not in ("variables", "jobs"):
            lines += job.get("before_script", []) + job.get("script", [])
    return document, [line for text in lines for line in text.replace("\\\n", " ").splitlines()]


def _expand(text, variables):
    return re.sub(r"\$\{?([A-Za-z_]+)\}?", lambda match: str(variables.get(match.group(1), match.group(0))), text)


def _check_ci(ci_file, variables):
    document, commands = _commands(ci_file)
    deploys = [shlex.split(line) for line in commands if "ansible-playbook rollout.codedeploy.deploy " in line]
    assert len(deploys) == 1, "%s runs the deploy playbook once" % ci_file
    words = deploys[0]
    extra = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-e")
    accepted = _deploy_playbook_vars()
    assert {"deployment_group", "revision"} <= set(extra), extra
    assert set(extra) <= accepted, "%s passes extra vars the deploy playbook does not read: %s" % (ci_file, set(extra) - accepted)
    env = dict(variables(document))
    assert _expand(extra["deployment_group"], env) == env["DEPLOYMENT_GROUP"]
    # The revision deployed is the one uploaded, and it is built from the directory holding appspec.yml.
    uploads = [shlex.split(line) for line in commands if line.strip().startswith("aws s3 cp ")]
    assert len(uploads) == 1 and uploads[0][-1] == extra["revision"] and extra["revision"].startswith("s3://")
    assert any('test -f "$APP_DIR/appspec.yml"' in line for line in commands)
    assert any(re.search(r'cd "\$APP_DIR" && zip -qr -X "[^"]+/%s" \.' % re.escape(uploads[0][-2]), line) for line in commands)
    assert any("ansible-galaxy collection install rollout.codedeploy" in line for line in commands)
    return document


def test_github_actions_example_builds_uploads_and_deploys():
    document = _check_ci("github-actions.yml", lambda doc: doc["env"])
    assert document["permissions"]["id-token"] == "write"  # OIDC
    assert "on" in document and True not in document  # the trigger key is the text "on", not YAML 1.1's true


def test_gitlab_example_builds_uploads_and_deploys():
    document = _check_ci("gitlab-ci.yml", lambda doc: doc["variables"])
    assert document["build-revision"]["artifacts"]["paths"] == ["revision.zip"]
    assert document["deploy-production"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"


def test_readme_links_the_docsite_and_the_ci_examples():
    readme = _read(os.path.join(REPO, "README.md"))
    assert "docs/docsite" in readme and "examples/ci" in readme
