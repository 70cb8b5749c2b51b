# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of rollout.codedeploy.deployment_info: what it shows never holds URL credentials."""
import json
import sqlite3

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledger_api
from ansible_collections.rollout.codedeploy.plugins.modules import deployment_info

PRESIGNED = "https://b.s3.amazonaws.com/app.tgz?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=c2lnbmF0dXJlZm9v"


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            deployment_info.main()
    return json.loads(capsys.readouterr().out)


def test_output_is_redacted_even_for_records_stored_unredacted(capsys, tmp_path):
    path = str(tmp_path / "ledger.sqlite3")
    with ledger_api.open_ledger(path) as book:
        made = book.create_deployment("web", "prod", "dg", {"location": PRESIGNED, "sha256": "ab"}, "CodeDeployDefault.AllAtOnce",
                                      [{"instance_id": "i-1", "host": "web-1"}])
        book.update_status(made["deployment_id"], "Failed", "REVISION_MISSING", "cannot fetch " + PRESIGNED)
    # A ledger written by an older collection may hold the URL as it was given.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE deployments SET revision = ?", (json.dumps({"location": PRESIGNED, "source": {"url": PRESIGNED}}),))
    for args in ({"ledger": path}, {"ledger": path, "deployment_id": made["deployment_id"]}):
        result = run(capsys, **args)
        shown = json.dumps(result)
        assert "AKIAIOSFODNN7EXAMPLE" not in shown and "c2lnbmF0dXJlZm9v" not in shown
        deployment = result["deployments"][0]
        assert deployment["revision"]["location"] == PRESIGNED.replace("AKIAIOSFODNN7EXAMPLE", "REDACTED").replace(
            "c2lnbmF0dXJlZm9v", "REDACTED")
        assert deployment["error"]["message"].startswith("cannot fetch https://b.s3.amazonaws.com/app.tgz?AWSAccessKeyId=REDACTED")
