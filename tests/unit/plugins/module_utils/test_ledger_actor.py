# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the actor of a deployment: the AWX job variables, the owner string and its parts (ledger/__init__.py)."""

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model


@pytest.mark.parametrize("variables, expected", [
    (None, {"awx_job_id": None, "awx_user": None}),
    ({}, {"awx_job_id": None, "awx_user": None}),
    ({"awx_job_id": 17, "awx_user_name": "alice"}, {"awx_job_id": "17", "awx_user": "alice"}),
    ({"tower_job_id": 9, "tower_user_name": "bob"}, {"awx_job_id": "9", "awx_user": "bob"}),
    ({"awx_job_id": 17, "tower_job_id": 17, "awx_user_name": "alice", "tower_user_name": "alice"}, {"awx_job_id": "17", "awx_user": "alice"}),
    ({"awx_job_id": 21, "awx_schedule_name": "nightly"}, {"awx_job_id": "21", "awx_user": None}),  # scheduled: no user
    ({"awx_job_id": "", "tower_job_id": 5, "awx_user_name": ""}, {"awx_job_id": "5", "awx_user": None}),
])
def test_awx_job_from_the_job_variables(variables, expected):
    assert model.awx_job(variables) == expected


@pytest.mark.parametrize("job, user, suffix", [
    (None, None, ""),
    ("17", None, ", AWX job 17"),
    ("17", "alice", ", AWX job 17 launched by alice"),
    (None, "alice", ""),  # a user name without a job is not AWX's
    ("17", "", ", AWX job 17"),
])
def test_controller_owner_names_the_awx_job_and_its_launcher(job, user, suffix):
    owner = model.controller_owner(job, parent_pid=4242, awx_user=user)
    assert owner.startswith("%s pid 4242 on " % (model._program(4242) or "ansible-playbook"))
    assert owner.endswith(")" + suffix)


@pytest.mark.parametrize("owner, expected", [
    (None, None),
    ("ansible-playbook pid 4242 on ctl (user deploy)",
     {"controller": "ansible-playbook pid 4242 on ctl (user deploy)", "program": "ansible-playbook", "pid": 4242, "host": "ctl",
      "user": "deploy", "awx_job_id": None, "awx_user": None}),
    ("ansible-playbook pid 12 on automation-job-17-x2 (user runner), AWX job 17 launched by alice@example.com",
     {"controller": "ansible-playbook pid 12 on automation-job-17-x2 (user runner)", "program": "ansible-playbook", "pid": 12,
      "host": "automation-job-17-x2", "user": "runner", "awx_job_id": "17", "awx_user": "alice@example.com"}),
    ("deploy@ctl pid 99, AWX job 3",
     {"controller": "deploy@ctl pid 99", "program": None, "pid": 99, "host": "ctl", "user": "deploy", "awx_job_id": "3", "awx_user": None}),
    ("a CI pipeline", {"controller": "a CI pipeline", "program": None, "pid": None, "host": None, "user": None,
                       "awx_job_id": None, "awx_user": None}),
])
def test_owner_actor_splits_the_owner(owner, expected):
    assert model.owner_actor(owner) == expected


def test_owner_actor_reads_what_controller_owner_writes():
    actor = model.owner_actor(model.controller_owner(**dict(model.awx_job({"awx_job_id": 88, "awx_user_name": "carol"}), parent_pid=4242)))
    assert (actor["pid"], actor["awx_job_id"], actor["awx_user"]) == (4242, "88", "carol")
