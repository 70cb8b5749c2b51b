"""Blue/green deployments that reroute by weighted steps (plugins/plugin_utils/reroute.py) through rollout.codedeploy.deploy, with
real fleet hosts: a canary on moto's ALB listener between a blue and a green target group (weights watched while the playbook runs,
registrations, versions, and deployment_info's swap record), an alarm during the canary (straight back to blue), and a canary on
HAProxy server weights under the load generator with no failed request. Step intervals are overridden to a few seconds."""
import os
import sys
import threading
import time

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers
from world import paths
from world.load import Load

from test_deploy import last_deployment as _last, registered as _registered, revision, serving as _serving
from test_deployment_info import run_info

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")
WEB = {"ec2_tag_filters": [{"key": "Role", "value": "web"}]}
GREEN = {"ec2_tag_filters": [{"key": "Role", "value": "green"}]}
BLUE_GREEN = {"terminate_blue_instances_on_deployment_success": {"action": "KEEP_ALIVE"},
              "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT"},
              "green_fleet_provisioning_option": {"action": "DISCOVER_EXISTING"}}


def _groups(load_balancer, seed_load_balancer=None, alarms=None):
    production = dict(WEB, deployment_config="Rollout.Canary10Percent5Minutes", deployment_style={"type": "BLUE_GREEN"},
                      load_balancer=load_balancer, blue_green=BLUE_GREEN)
    if alarms:
        production["alarms"] = {"enabled": True, "names": alarms}
    seed = dict(WEB, deployment_config="CodeDeployDefault.AllAtOnce")
    if seed_load_balancer:
        seed["load_balancer"] = seed_load_balancer
    return {"web": {"seed": seed, "production": production, "green": dict(GREEN, deployment_config="CodeDeployDefault.AllAtOnce")}}


def _deploy(world, inv, rev, ledger_path, group, check=True, **extra):
    extra_vars = {"deployment_group": group, "revision": rev, "codedeploy_ledger": ledger_path}
    extra_vars.update(extra)
    return world.ansible_playbook(PLAYBOOK, inv, extra_vars=extra_vars, check=check)


class ListenerWatch:
    """Polls the listener's forward weights (blue, green) while the playbook runs; ``seen`` keeps each change in order and
    ``on_change`` is called with every new pair."""

    def __init__(self, aws, listener, blue, green, on_change=None):
        self.aws, self.listener, self.blue, self.green = aws, listener, blue, green
        self.on_change = on_change
        self.seen = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def weights(self):
        action = self.aws.elbv2.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]["DefaultActions"][0]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if not groups:
            return (1, 0) if action.get("TargetGroupArn") == self.blue else (0, 1)
        weights = dict((g["TargetGroupArn"], g.get("Weight", 1)) for g in groups)
        return weights.get(self.blue, 0), weights.get(self.green, 0)

    def _run(self):
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            now = self.weights()
            if not self.seen or self.seen[-1] != now:
                self.seen.append(now)
                if self.on_change:
                    self.on_change(now)
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        now = self.weights()
        if self.seen[-1] != now:
            self.seen.append(now)
        return False


def _alb_fleets(world, aws, tmp_path, alarms=None):
    """2 blue hosts serving v1 in web-blue (the listener forwards there), 2 green hosts; web-green is empty and not forwarded to."""
    blue = world.launch_bound(aws, 2, {"Role": "web"})
    green = world.launch_bound(aws, 2, {"Role": "green"})
    blue_arn = aws.target_group("web-blue")
    green_arn = aws.target_group("web-green", with_load_balancer=False)
    lb = aws.elbv2.describe_load_balancers(Names=["web-blue-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = aws.elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"]
    pair = {"target_group_pair_info": {"target_groups": ["web-blue", "web-green"], "prod_traffic_route": {"listener_arns": [listener]}}}
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), _groups(pair, alarms=alarms))
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, "web_seed")
    aws.elbv2.register_targets(TargetGroupArn=blue_arn, Targets=[{"Id": i, "Port": 8080} for i in blue])
    return blue, green, blue_arn, green_arn, listener, inv, ledger_path


def test_a_canary_on_an_alb_target_group_pair_shifts_by_weight_then_blue_leaves(world, aws, fleet_hosts, tmp_path):
    blue, green, blue_arn, green_arn, listener, inv, ledger_path = _alb_fleets(world, aws, tmp_path)
    registered_at_10 = []

    def at_change(weights):
        if weights == (90, 10):  # the canary: green already in its group, blue still in its own
            registered_at_10.append((_registered(aws, blue_arn), _registered(aws, green_arn)))

    with ListenerWatch(aws, listener, blue_arn, green_arn, at_change) as watch:
        result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", green_hosts="web_green",
                         codedeploy_traffic_interval_seconds=3)
    assert "Succeeded" in result.stdout
    assert watch.seen == [(1, 0), (100, 0), (90, 10), (0, 100)], watch.seen
    assert registered_at_10 == [(set(blue), set(green))]
    assert _registered(aws, green_arn) == set(green) and _registered(aws, blue_arn) == set()
    for host in green.values():
        assert _serving(world, host) == "sample-app 2.0.0"
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded", deployment.get("error")
    # deployment_info shows the swap: its state and every weight change with its time.
    local = tmp_path / "local.ini"
    local.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    info, _proc = run_info(world, tmp_path, str(local), {"deployment_id": deployment["deployment_id"], "ledger": ledger_path})
    swap = info["deployments"][0]["swap"]
    assert swap["state"] == "rerouted" and (swap["blue_target_group"], swap["green_target_group"]) == ("web-blue", "web-green")
    label = "listener %s" % listener
    assert [(t["step"], t["green_percent"], t["weights"][label]) for t in swap["traffic"]] == [
        (0, 0, {"web-blue": 100, "web-green": 0}), (1, 10, {"web-blue": 90, "web-green": 10}), (2, 100, {"web-blue": 0, "web-green": 100})]
    times = [t["time"] for t in swap["traffic"]]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert swap["traffic"][1]["reason"] == "step 1 of 2, 3 s at this share"
    # The blue hosts left only after the shift reached 100 %.
    blue_block = min(e["start"] for i in deployment["instances"] if i["role"] == "blue" for e in i["events"] if e["event"] == "BlockTraffic")
    assert blue_block >= swap["traffic"][2]["time"]


def test_an_alarm_during_the_canary_sends_the_traffic_back_and_blue_keeps_serving(world, aws, fleet_hosts, tmp_path):
    cloudwatch = world.moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="OK", StateReason="set by the test")
    blue, green, blue_arn, green_arn, listener, inv, ledger_path = _alb_fleets(world, aws, tmp_path, alarms=["web-5xx"])

    def at_change(weights):
        if weights == (90, 10):
            cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="Threshold Crossed: 9 > 5")

    with ListenerWatch(aws, listener, blue_arn, green_arn, at_change) as watch:
        result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", check=False,
                         green_hosts="web_green", codedeploy_traffic_interval_seconds=30)
    assert result.returncode != 0
    assert watch.seen == [(1, 0), (100, 0), (90, 10), (100, 0)], watch.seen
    # The green hosts that joined the green group left it again in a rollback deployment linked to the stopped one.
    rollback = _last(ledger_path)
    assert rollback["creator"] == "rollback" and rollback["status"] == "Succeeded", rollback.get("error")
    assert {(i["instance_id"], i["role"]) for i in rollback["instances"]} == {(i, "green") for i in green}
    assert all([e["event"] for e in i["events"]] == ["BlockTraffic"] for i in rollback["instances"])
    deployment = ledgers.open_ledger(ledger_path).get_deployment(rollback["rollback_info"]["rollback_triggering_deployment_id"])
    assert deployment["status"] == "Stopped" and deployment["error"]["code"] == "ALARM_ACTIVE", deployment["error"]
    assert "Alarm at 10% green traffic" in deployment["error"]["message"] and "web-5xx" in deployment["error"]["message"]
    assert _registered(aws, blue_arn) == set(blue) and _registered(aws, green_arn) == set()
    for host in blue.values():
        assert _serving(world, host) == "sample-app 1.0.0"
    for instance in deployment["instances"]:
        if instance["role"] == "blue":
            assert instance["status"] == "Skipped" and instance["events"] == []
    swap = deployment["swap"]
    assert swap["state"] == "rolled_back" and [t["green_percent"] for t in swap["traffic"]] == [0, 10, 0]
    assert "web-5xx" in swap["traffic"][-1]["reason"]


def test_a_canary_on_haproxy_weights_under_load_loses_no_request(world, aws, fleet_hosts, tmp_path):
    blue = world.launch_bound(aws, 2, {"Role": "web"})
    green = world.launch_bound(aws, 2, {"Role": "green"})
    balancer = world.balancer
    hosts = list(blue.values()) + list(green.values())
    balancer.configure({"web": [(h.name, h.address, 8080) for h in hosts]}, initial_state="maint")
    backend = {"haproxy_backends": [{"backend": "web", "runtime_api": balancer.admin_address, "drain_timeout": 30, "up_timeout": 60}]}
    inv = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), _groups(backend, seed_load_balancer=backend))
    ledger_path = str(tmp_path / "ledger.sqlite3")
    _deploy(world, inv, revision(tmp_path, "v1", "1.0.0"), ledger_path, "web_seed")  # blue UP through AllowTraffic
    balancer.wait_up("web", servers=[h.name for h in blue.values()], timeout=20)
    load = Load(balancer.url("web"), max_requests=200000, max_seconds=240, concurrency=4, interval=0.01)
    load.start()
    try:
        result = _deploy(world, inv, revision(tmp_path, "v2", "2.0.0"), ledger_path, "web_production", green_hosts="web_green",
                         codedeploy_traffic_interval_seconds=3)
    finally:
        done = load.stop()
    assert "Succeeded" in result.stdout
    deployment = _last(ledger_path)
    assert deployment["status"] == "Succeeded", deployment.get("error")
    assert done.count > 50 and done.failed == 0, (done.summary(), done.failures[:5])
    assert set(done.bodies) == {"sample-app 1.0.0", "sample-app 2.0.0"}, done.bodies
    swap = deployment["swap"]
    label = next(iter(swap["traffic"][0]["weights"]))
    assert [t["green_percent"] for t in swap["traffic"]] == [0, 10, 100]
    assert swap["traffic"][1]["weights"][label] == dict([(h.name, 252) for h in blue.values()] + [(h.name, 28) for h in green.values()])
    servers = balancer.servers("web")
    assert {name: s["admin"] for name, s in servers.items()} == dict([(h.name, "maint") for h in blue.values()] +
                                                                     [(h.name, "ready") for h in green.values()])
    # The blue servers, left at weight 0 by the shift, got their full weight back once in maintenance (srv_uweight: the weight set).
    assert _set_weights(balancer) == dict([(h.name, 100) for h in hosts])


def _set_weights(balancer):
    """{server: the weight set through the runtime API} of backend web (``show servers state``'s srv_uweight)."""
    lines = [line for line in balancer.command("show servers state web").splitlines() if line.strip()]
    header = next(line.lstrip("# ").split() for line in lines if line.startswith("#"))
    rows = [dict(zip(header, line.split())) for line in lines if not line.startswith("#") and len(line.split()) >= len(header)]
    return dict((row["srv_name"], int(row["srv_uweight"])) for row in rows)
