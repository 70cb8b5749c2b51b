# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/layout.py (the agent's deployment-root layout)."""

import json
import os
import re

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import layout as layout_mod
from ansible_collections.rollout.codedeploy.plugins.module_utils.layout import DEFAULT_ROOT, Layout

GID = "6f5c2a8e-1b2c-4d5e-8f90-0a1b2c3d4e5f"


@pytest.fixture
def lay(tmp_path):
    return Layout(str(tmp_path / "deployment-root"))


# -- paths (docs/agent-compatibility.md §3) -------------------------------------------------

def test_default_root():
    assert DEFAULT_ROOT == "/opt/codedeploy-agent/deployment-root"
    assert Layout().root == DEFAULT_ROOT
    assert Layout(None).root == DEFAULT_ROOT
    assert Layout(DEFAULT_ROOT + "/").root == DEFAULT_ROOT


@pytest.mark.parametrize("method, expected", [
    ("deployment_dir", "/r/%s/d-ABC" % GID),
    ("archive_dir", "/r/%s/d-ABC/deployment-archive" % GID),
    ("bundle_file", "/r/%s/d-ABC/bundle.tar" % GID),
    ("scripts_log", "/r/%s/d-ABC/logs/scripts.log" % GID),
    ("logs_dir", "/r/%s/d-ABC/logs" % GID),
])
def test_deployment_paths(method, expected):
    assert getattr(Layout("/r"), method)(GID, "d-ABC") == expected


@pytest.mark.parametrize("method, expected", [
    ("cleanup_file", "/r/deployment-instructions/%s-cleanup" % GID),
    ("install_json", "/r/deployment-instructions/%s-install.json" % GID),
    ("last_successful_file", "/r/deployment-instructions/%s_last_successful_install" % GID),
    ("most_recent_file", "/r/deployment-instructions/%s_most_recent_install" % GID),
    ("group_dir", "/r/%s" % GID),
])
def test_group_paths(method, expected):
    assert getattr(Layout("/r"), method)(GID) == expected


def test_shared_paths():
    lay = Layout("/r")
    assert lay.instructions_dir == "/r/deployment-instructions"
    assert lay.deployments_log == "/r/deployment-logs/codedeploy-agent-deployments.log"
    assert lay.ongoing_dir == "/r/ongoing-deployment"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", None, "a\nb"])
def test_ids_must_be_one_path_component(bad):
    with pytest.raises(ValueError, match="without '/'"):
        Layout("/r").deployment_dir(bad, "d-1")
    with pytest.raises(ValueError):
        Layout("/r").deployment_dir(GID, bad)
    with pytest.raises(ValueError):
        Layout("/r").cleanup_file(bad)


# -- pointer files ---------------------------------------------------------------------------

def test_pointers_absent(lay):
    assert lay.last_successful(GID) is None
    assert lay.most_recent(GID) is None


def test_pointers_written_in_agent_format(lay):
    target = lay.deployment_dir(GID, "d-1")
    lay.set_last_successful(GID, target)
    lay.set_most_recent(GID, lay.deployment_dir(GID, "d-2"))
    with open(lay.last_successful_file(GID)) as handle:
        assert handle.read() == target  # the bare path, no newline, as the agent writes it
    assert lay.last_successful(GID) == target
    assert lay.most_recent(GID) == lay.deployment_dir(GID, "d-2")
    assert sorted(os.listdir(lay.instructions_dir)) == sorted([GID + "_last_successful_install", GID + "_most_recent_install"])


def test_pointer_written_by_the_agent_with_newline_and_other_root(lay):
    os.makedirs(lay.instructions_dir)
    with open(lay.last_successful_file(GID), "w") as handle:
        handle.write("/opt/codedeploy-agent/deployment-root/%s/d-OLD\n" % GID)
    assert lay.last_successful(GID) == "/opt/codedeploy-agent/deployment-root/%s/d-OLD" % GID


def test_empty_pointer_is_none(lay):
    os.makedirs(lay.instructions_dir)
    open(lay.most_recent_file(GID), "w").close()
    assert lay.most_recent(GID) is None


def test_pointer_overwrite_is_atomic_and_leaves_no_temp(lay):
    for index in range(3):
        lay.set_last_successful(GID, "/x/%d" % index)
    assert lay.last_successful(GID) == "/x/2"
    assert os.listdir(lay.instructions_dir) == [GID + "_last_successful_install"]


def test_atomic_write_keeps_old_content_when_writing_fails(lay, monkeypatch):
    lay.set_most_recent(GID, "/x/old")

    def broken(_src, _dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(layout_mod.os, "replace", broken)
    with pytest.raises(OSError):
        lay.set_most_recent(GID, "/x/new")
    monkeypatch.undo()
    assert lay.most_recent(GID) == "/x/old"
    assert os.listdir(lay.instructions_dir) == [GID + "_most_recent_install"]


def test_install_json(lay):
    lay.write_install_json(GID, [{"type": "mkdir", "directory": "/srv/a"}])
    with open(lay.install_json(GID)) as handle:
        assert json.load(handle) == {"instructions": [{"type": "mkdir", "directory": "/srv/a"}]}


# -- deployments log -------------------------------------------------------------------------

def test_log_deployment_appends_stamped_lines(lay):
    lay.log_deployment("d-1 Install Succeeded")
    lay.log_deployment("two\nlines")
    with open(lay.deployments_log) as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 3
    stamp = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] "
    assert re.match(stamp + r"d-1 Install Succeeded$", lines[0])
    assert re.match(stamp + "two$", lines[1]) and re.match(stamp + "lines$", lines[2])


# -- ongoing-deployment marker -----------------------------------------------------------------

def test_ongoing_marker_round_trip(lay):
    assert lay.read_ongoing() is None
    lay.mark_ongoing(GID, "d-1", "AfterInstall")
    record = lay.read_ongoing()
    assert record["group_id"] == GID and record["deployment_id"] == "d-1" and record["event"] == "AfterInstall"
    assert record["pid"] == os.getpid()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["started_at"])
    assert record["path"] == os.path.join(lay.ongoing_dir, "d-1")
    lay.clear_ongoing()
    assert lay.read_ongoing() is None
    assert os.path.isdir(lay.ongoing_dir)


def test_ongoing_marker_is_replaced_per_event(lay):
    lay.mark_ongoing(GID, "d-1", "BeforeInstall")
    lay.mark_ongoing(GID, "d-1", "Install")
    assert lay.read_ongoing()["event"] == "Install"
    assert os.listdir(lay.ongoing_dir) == ["d-1"]


def test_ongoing_most_recent_wins_and_clear_one(lay):
    lay.mark_ongoing(GID, "d-1", "Install")
    lay.mark_ongoing(GID, "d-2", "ApplicationStart")
    os.utime(os.path.join(lay.ongoing_dir, "d-1"), (1000, 1000))
    os.utime(os.path.join(lay.ongoing_dir, "d-2"), (2000, 2000))
    assert lay.read_ongoing()["deployment_id"] == "d-2"
    lay.clear_ongoing("d-2")
    assert lay.read_ongoing()["deployment_id"] == "d-1"


def test_ongoing_tracking_file_left_by_the_agent(lay):
    os.makedirs(lay.ongoing_dir)
    with open(os.path.join(lay.ongoing_dir, "d-AGENT"), "w") as handle:
        handle.write("WyJjb21tYW5kIiwgImhvc3QiXQ==")
    record = lay.read_ongoing()
    assert record["agent"] is True
    assert record["deployment_id"] == "d-AGENT"
    assert record["event"] is None
    assert record["host_command_identifier"] == "WyJjb21tYW5kIiwgImhvc3QiXQ=="
    lay.clear_ongoing()
    assert os.listdir(lay.ongoing_dir) == []


# -- retention ----------------------------------------------------------------------------------

def _make_deployments(lay, count):
    paths = []
    for index in range(count):
        path = lay.deployment_dir(GID, "d-%d" % index)
        os.makedirs(os.path.join(path, "deployment-archive"))
        os.utime(path, (1000 + index, 1000 + index))
        paths.append(path)
    return paths


def test_prune_nothing_when_within_limit(lay):
    _make_deployments(lay, 5)
    assert lay.prune(GID, 5) == []
    assert lay.prune("other-group", 5) == []


def test_prune_removes_oldest_by_mtime(lay):
    paths = _make_deployments(lay, 7)
    # mtime order differs from name order
    os.utime(paths[6], (10, 10))
    removed = lay.prune(GID, 5)
    assert removed == [paths[6], paths[0]]
    assert sorted(os.listdir(lay.group_dir(GID))) == ["d-1", "d-2", "d-3", "d-4", "d-5"]


def test_prune_counts_the_deployment_being_downloaded_like_the_agent(lay):
    paths = _make_deployments(lay, 5)
    current = lay.deployment_dir(GID, "d-new")  # not created yet: the agent prunes before downloading
    removed = lay.prune(GID, 5, keep=(current,))
    assert removed == [paths[0]]
    os.makedirs(current)
    os.utime(current, (1, 1))  # oldest, but kept
    assert lay.prune(GID, 5, keep=("d-new",)) == []  # d-1..d-4 and d-new: five
    assert lay.prune(GID, 4, keep=("d-new",)) == [paths[1]]
    assert os.path.isdir(current)


def test_prune_never_removes_last_successful(lay):
    paths = _make_deployments(lay, 7)
    lay.set_last_successful(GID, paths[0])
    removed = lay.prune(GID, 5)
    assert removed == [paths[1], paths[2]]
    assert os.path.isdir(paths[0])


def test_prune_with_max_one_keeps_current_and_last_successful(lay):
    paths = _make_deployments(lay, 4)
    lay.set_last_successful(GID, paths[1])
    removed = lay.prune(GID, 1, keep=(paths[3],))
    assert sorted(removed) == sorted([paths[0], paths[2]])
    assert sorted(os.listdir(lay.group_dir(GID))) == ["d-1", "d-3"]


def test_prune_ignores_files_and_rejects_bad_limit(lay):
    _make_deployments(lay, 5)
    with open(os.path.join(lay.group_dir(GID), "stray-file"), "w") as handle:
        handle.write("x")
    assert lay.prune(GID, 5) == []
    with pytest.raises(ValueError):
        lay.prune(GID, 0)
