"""The callback rollout.codedeploy.deployment_view is thin: it hands the collection's task results to the view and prints
what the view says through Ansible's display, and ignores every other task."""
import pytest

from ansible.playbook.task import Task

from ansible_collections.rollout.codedeploy.plugins.callback.deployment_view import CallbackModule
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.deployment_view import DeploymentView


class Host(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class Result(object):
    """What the callback reads of an Ansible TaskResult: the task, the host and the result mapping."""

    def __init__(self, action, host, result):
        self._task = Task()
        self._task.action = action.rsplit(".", 1)[-1]  # as written with the play's collections keyword
        self._task._resolved_action = action  # what Ansible resolved it to
        self._host = Host(host)
        self._result = result


class Display(object):
    verbosity = 0

    def __init__(self):
        self.lines = []

    def display(self, msg, **kwargs):
        self.lines.append(msg)


@pytest.fixture
def callback():
    # Its options (set_options) come from Ansible's configuration; the integration test sets them through the environment.
    plugin = CallbackModule(display=Display())
    plugin._view = DeploymentView(width=200, log_lines=3)
    return plugin


def test_it_adds_to_the_stdout_callback_and_must_be_enabled():
    assert (CallbackModule.CALLBACK_TYPE, CallbackModule.CALLBACK_NEEDS_ENABLED) == ("notification", True)


def test_the_callback_prints_the_views_lines_for_the_deployments_tasks_only(callback):
    started = {"deployment_id": "d-ONE", "plan": {"batches": [["web-1"]]}, "rollout_hosts": ["web-1"], "rollout_serial": [1]}
    callback.v2_runner_on_ok(Result("rollout.codedeploy.deployment", "localhost", started))
    callback.v2_runner_on_ok(Result("ansible.builtin.debug", "localhost", {"msg": "hello", "proceed": True}))
    callback.v2_runner_on_failed(Result("rollout.codedeploy.deploy_host", "web-1", {
        "failed": True, "status": "Failed", "failed_event": "Install", "error_code": "UnknownError", "script": None, "log_tail": "",
        "msg": "Install failed", "events": [{"event": "Install", "status": "Failed", "duration": 0.5, "message": "disk full"}]}),
        ignore_errors=True)
    callback.v2_runner_on_ok(Result("rollout.codedeploy.deployment", "web-1", {"proceed": True, "status": "InProgress"}))
    callback.v2_runner_on_ok(Result("rollout.codedeploy.deployment", "localhost",
                                    {"deployment_id": "d-ONE", "status": "Failed", "overview": {"Failed": 1}, "error": None}))
    callback.v2_playbook_on_stats(None)
    lines = callback._display.lines
    assert lines[0] == "[d-ONE] Deployment opened: 1 host(s) in 1 batch(es)"
    assert lines[1] == "[d-ONE] batch 1/1: web-1 | events done: none | failures: web-1 at Install (UnknownError)"
    assert lines[2:5] == ["FAILED web-1 at Install in d-ONE (UnknownError)", "  script: none (no script ran in this event)",
                          "  message: disk full"]
    assert lines[-1] == "Deployment d-ONE Failed (Failed 1)"
    assert not any("\x1b[" in line for line in lines)
