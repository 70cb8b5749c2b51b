"""HostRun and settle when the ledger cannot record a host's events or outcome (plugins/plugin_utils/host_run.py, service.py):
the task result keeps the host's real outcome, and settle records it later or reports it."""
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.host_run import HostRun

from test_service import HOSTS, SETTINGS, FakeLedger, request, service


class RecordingLedger(FakeLedger):
    """The fake ledger with instance writes; ``down`` (True, or a number of writes) makes instance writes fail as after the retry bound."""

    def __init__(self):
        super(RecordingLedger, self).__init__()
        self.down = False
        self.writes = []

    def _unavailable(self, what):
        if self.down is not True:
            self.down -= 1
        busy = model.LedgerBusy("database is locked", "end the other process")
        raise model.LedgerUnavailable(busy, 120.0, 9).about(what, "/tmp/ledger")

    def _instance(self, deployment_id, instance_id):
        return next(i for i in self.deployments[deployment_id]["instances"] if i["instance_id"] == instance_id)

    def try_start_instance(self, deployment_id, instance_id, max_unhealthy):
        self._instance(deployment_id, instance_id)["status"] = "InProgress"
        return True

    def record_events(self, deployment_id, instance_id, events):
        self.writes.append(("events", [e["event"] for e in events]))
        if self.down:
            self._unavailable("events of %s" % instance_id)
        self._instance(deployment_id, instance_id)["events"].extend(events)

    def finish_instance(self, deployment_id, instance_id, status, error_code=None, message=None, out_of_service=False, **extra):
        self.writes.append(("finish", status))
        if self.down:
            self._unavailable("the end of instance %s in deployment %s (%s)" % (instance_id, deployment_id, status))
        self._instance(deployment_id, instance_id).update(status=status, error_code=error_code, message=message)


def _events(names, status="Succeeded"):
    return {"events": [{"event": n, "status": status, "start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:00:01.000Z"}
                       for n in names]}


def _open():
    ledger = RecordingLedger()
    plan = service(ledger).open(request(deployment_config="CodeDeployDefault.AllAtOnce"), HOSTS[:1], SETTINGS).plan
    return ledger, plan


def test_a_ledger_that_recovers_before_the_end_gets_every_record():
    ledger, plan = _open()
    ledger.down = 1  # the first write fails (after the ledger's own retries), the next ones go through
    result = HostRun(service(ledger), plan, "web-1", _events).run()
    assert result["status"] == "Succeeded" and "ledger_unrecorded" not in result and "warnings" not in result
    events = [e["event"] for e in result["events"]]
    assert ledger.writes == [("events", events), ("events", events), ("finish", "Succeeded")]
    instance = ledger.deployments[plan.deployment_id]["instances"][0]
    assert instance["status"] == "Succeeded" and [e["event"] for e in instance["events"]] == events


def test_a_ledger_that_stays_down_keeps_the_real_outcome_in_the_result_and_settle_records_it():
    ledger, plan = _open()
    ledger.down = True
    result = HostRun(service(ledger), plan, "web-1", _events).run()
    events = [e["event"] for e in result["events"]]
    assert result["status"] == "Succeeded" and not result.get("failed") and events == plan.steps[0]
    assert "could not record the end of instance i-1" in result["ledger_unrecorded"] and "database is locked" in result["ledger_unrecorded"]
    assert "the ledger could not record it" in result["msg"] and result["warnings"] == [result["msg"]]
    # One try per step until the first failure, then one more for the kept events and one for the end: no waiting per event.
    assert ledger.writes == [("events", events), ("events", events), ("finish", "Succeeded")]
    assert ledger.deployments[plan.deployment_id]["instances"][0]["status"] == "InProgress"

    ledger.down = False
    outcome = service(ledger).settle(plan, reported={"web-1": result})
    assert outcome["status"] == "Succeeded" and outcome["unrecorded"] == []
    instance = ledger.deployments[plan.deployment_id]["instances"][0]
    assert instance["status"] == "Succeeded" and [e["event"] for e in instance["events"]] == events


def test_settle_reports_instances_whose_outcome_it_still_cannot_record():
    ledger, plan = _open()
    ledger.down = True
    result = HostRun(service(ledger), plan, "web-1", _events).run()
    outcome = service(ledger).settle(plan, reported={"web-1": result})
    assert outcome["status"] == "Failed"
    assert outcome["unrecorded"][0].startswith("web-1 (Succeeded on the host; the ledger /tmp/ledger could not record")
    assert "The ledger has no outcome for web-1 (Succeeded on the host" in outcome["msg"]
    assert "keeps its own record of its last successful revision" in outcome["msg"]


def test_settle_names_an_instance_left_in_progress_without_a_result():
    ledger, plan = _open()
    ledger.try_start_instance(plan.deployment_id, "i-1", 1)
    outcome = service(ledger).settle(plan)
    assert outcome["status"] == "Failed" and outcome["unrecorded"] == ["web-1 (InProgress, no result from its task)"]


def test_a_worker_whose_controller_is_gone_stops_frees_the_host_and_does_not_renew():
    ledger, plan = _open()
    ran, released, alive = [], [], iter([True])  # alive when admitted, gone before the first step
    result = HostRun(service(ledger), plan, "web-1", lambda events: ran.append(events) or _events(events),
                     controller_alive=lambda: next(alive, False), release_host=lambda: released.append(True)).run()
    assert ran == [] and released == [True] and ledger.renewals == 0
    assert result["failed"] and result["error_code"] == "CONTROLLER_GONE" and "does not go on alone" in result["msg"]
    instance = ledger.deployments[plan.deployment_id]["instances"][0]
    assert instance["status"] == "Failed" and instance["error_code"] == "CONTROLLER_GONE"
