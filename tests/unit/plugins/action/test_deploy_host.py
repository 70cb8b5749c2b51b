# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_host's arguments for the host's lifecycle runs, built from the plan (no host, no ledger)."""

import pytest

from ansible_collections.rollout.codedeploy.plugins.action.deploy_host import ActionModule
from ansible_collections.rollout.codedeploy.plugins.action.lifecycle import ActionModule as LifecycleAction
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan

FIELDS = {"deployment_id": "d-AAAAAAAA1", "deployment_group_id": "gid", "application": "web", "deployment_group": "production",
          "appspec": {"version": 0.0, "os": "linux", "hooks": {}}, "revision_env": {}, "sha256": "abc", "bundle": "/b.tgz",
          "options": {"file_exists_behavior": "OVERWRITE", "ignore_application_stop_failures": False}}
PLAN = Plan(**FIELDS)


def test_deployment_root_and_max_revisions_reach_the_host_when_set():
    plan = Plan(**dict(FIELDS, deployment_root="/srv/agent", max_revisions=2))
    args = plan.host_arguments(["ApplicationStop"])
    assert (args["deployment_root"], args["max_revisions"]) == ("/srv/agent", 2)
    assert "deployment_root" not in PLAN.host_arguments(["ApplicationStop"])
    assert "max_revisions" not in PLAN.host_arguments(["ApplicationStop"])


def test_a_slice_without_work_is_not_sent_to_the_host():
    action = ActionModule.__new__(ActionModule)
    action.run_lifecycle = lambda args, task_vars: pytest.fail("no module run expected")
    outcome = action._run_host_events(PLAN, ["AfterAllowTraffic"], {})
    assert [(e["event"], e["status"], e["error_code"]) for e in outcome["events"]] == [("AfterAllowTraffic", "Skipped", "Success")]


@pytest.mark.parametrize("stdout, folder", [
    ("ansible-tmp-1=/root/.ansible/tmp/ansible-tmp-1\n", "/root/.ansible/tmp/ansible-tmp-1"),
    ("motd\nansible-tmp-1=/home/u/.ansible/tmp/ansible-tmp-1\nmore\n", "/home/u/.ansible/tmp/ansible-tmp-1"),
    ("ansible-tmp-1=\n", None),
    ("ansible-tmp-1=/\n", None),
    ("", None),
])
def test_the_created_folder_is_read_from_the_mkdtemp_output(stdout, folder):
    assert LifecycleAction._created_folder({"rc": 0, "stdout": stdout}, "ansible-tmp-1") == folder


LB_STEPS = [["BeforeBlockTraffic"], "BlockTraffic", ["AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
                                                     "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic"],
            "AllowTraffic", ["AfterAllowTraffic"]]


@pytest.mark.parametrize("hooks, releasing", [
    ({}, 2),                                              # AfterAllowTraffic has no scripts: the middle slice is the host's last
    ({"AfterAllowTraffic": [{"location": "a.sh", "timeout": 5}]}, 4),
])
def test_only_the_hosts_last_run_releases_the_host_lock(hooks, releasing):
    plan = Plan(**{**FIELDS, "steps": LB_STEPS, "appspec": {"version": 0.0, "os": "linux", "hooks": hooks}})
    for index, step in enumerate(LB_STEPS):
        if isinstance(step, list):
            args = plan.host_arguments(step)
            assert args["release_host_lock"] is (index == releasing)
            assert ("host_lock_hold" in args) is (index != releasing)


def test_a_traffic_failure_between_two_runs_releases_the_host_with_one_more_run():
    action = ActionModule.__new__(ActionModule)
    runs = []
    action.run_lifecycle = lambda args, task_vars: runs.append(args) or {"host_lock": "kept", "events": []}
    plan = Plan(**dict(FIELDS, steps=LB_STEPS))
    action._run_host_events(plan, ["BeforeBlockTraffic"], {})
    action._release_host(plan, {})
    assert runs[-1]["events"] == [] and runs[-1]["release_host_lock"] is True and "bundle_src" not in runs[-1]
    action._release_host(plan, {})
    assert len(runs) == 2, "nothing more to release"
