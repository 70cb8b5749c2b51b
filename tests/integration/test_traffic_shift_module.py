"""rollout.codedeploy.traffic_shift in a playbook: an ALB listener in moto (DescribeListeners while the steps run, check
mode, an alarm set to ALARM mid-shift by moto's SetAlarmState, direction back) and the world's real HAProxy (``show stat``)."""
import json
import sys
import threading
import time

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy, shift

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAY = """
- name: Shift traffic
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The shift under test
      rollout.codedeploy.traffic_shift: %s
      register: shift_result
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ shift_result | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _play(world, tmp_path, shift_args, check=False):
    playbook = tmp_path / "shift.yml"
    playbook.write_text(PLAY % json.dumps(shift_args), encoding="utf-8")
    result_file = tmp_path / "result.json"
    if result_file.exists():
        result_file.unlink()
    args = ["ansible-playbook", "-i", "localhost,", str(playbook), "-e",
            json.dumps({"result_file": str(result_file), "ansible_python_interpreter": sys.executable})]
    if check:
        args.append("--check")
    proc = world.ansible(args)
    assert result_file.exists(), proc.stdout[-3000:]
    return json.loads(result_file.read_text(encoding="utf-8"))


class Watcher(threading.Thread):
    """Polls ``read()`` in the background and keeps every distinct value seen; ``on_value`` may react to one."""

    def __init__(self, read, on_value=None, interval=0.05):
        super().__init__(daemon=True)
        self.read = read
        self.on_value = on_value
        self.interval = interval
        self.seen = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            value = self.read()
            if not self.seen or self.seen[-1] != value:
                self.seen.append(value)
                if self.on_value:
                    self.on_value(value)
            time.sleep(self.interval)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(5)


def _alb(aws):
    blue = aws.target_group("tsm-blue")
    green = aws.target_group("tsm-green", with_load_balancer=False)
    lb = aws.elbv2.describe_load_balancers(Names=["tsm-blue-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = aws.elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"]
    return blue, green, listener


def _green_weight(aws, listener, blue, green):
    action = aws.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if not groups:
        return (100, 0) if action.get("TargetGroupArn") == blue else None
    weights = dict((g["TargetGroupArn"], g["Weight"]) for g in groups)
    return (weights.get(blue, 0), weights.get(green, 0))


def test_alb_listener_steps_check_mode_alarm_and_back(world, aws, tmp_path):
    blue, green, listener = _alb(aws)
    cloudwatch = world.moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="tsm-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    base = {"listener_arn": listener, "blue_target_group": "tsm-blue", "green_target_group": "tsm-green",
            "alarms": ["tsm-5xx"], "alarm_interval": 0.1}

    # Check mode: the plan and the current weights, nothing changed.
    preview = _play(world, tmp_path, dict(base, deployment_config="Rollout.Canary10Percent5Minutes"), check=True)
    assert preview["status"] == "Preview" and not preview["changed"], preview
    assert [s["green_percent"] for s in preview["planned_steps"]] == [10, 100]
    assert preview["current_weights"] == {"listener %s" % listener: {"tsm-blue": 1, "tsm-green": 0}}
    assert _green_weight(aws, listener, blue, green) == (100, 0)

    # Linear 25 % with 1-minute intervals scaled to 0.6 s; a watcher reads DescribeListeners all along.
    config = {"type": "TimeBasedLinear", "time_based_linear": {"linear_percentage": 25, "linear_interval": 1}}
    with Watcher(lambda: _green_weight(aws, listener, blue, green)) as watcher:
        done = _play(world, tmp_path, dict(base, deployment_config=config, interval_scale=0.01))
        time.sleep(0.2)
    assert done["status"] == "Succeeded" and done["changed"] and not done.get("failed"), done
    assert watcher.seen == [(100, 0), (75, 25), (50, 50), (25, 75), (0, 100)], watcher.seen
    assert [(s["green_percent"], s["weights"]["listener %s" % listener]["tsm-green"]) for s in done["steps"]] == [
        (25, 25), (50, 50), (75, 75), (100, 100)]
    for entry in done["steps"]:
        assert entry["at"].endswith("Z") and entry["at"][:2] == "20" and "T" in entry["at"], entry
    assert 1.6 <= done["duration"] < 20, done

    # Back to blue, then a canary whose alarm goes to ALARM while the canary step waits: straight back to blue.
    back = _play(world, tmp_path, dict(base, direction="back"))
    assert back["changed"] and back["green_percent"] == 0 and _green_weight(aws, listener, blue, green) == (100, 0), back

    def alarm_on_canary(value):
        if value == (90, 10):
            cloudwatch.set_alarm_state(AlarmName="tsm-5xx", StateValue="ALARM", StateReason="5xx above 1")

    with Watcher(lambda: _green_weight(aws, listener, blue, green), alarm_on_canary) as watcher:
        failed = _play(world, tmp_path, dict(base, deployment_config="Rollout.Canary10Percent5Minutes", interval_scale=0.1))
    assert failed["failed"] and failed["error_code"] == "ALARM_ACTIVE" and "tsm-5xx" in failed["msg"], failed
    assert failed["status"] == "RolledBack" and failed["green_percent"] == 0
    assert watcher.seen == [(100, 0), (90, 10), (100, 0)], watcher.seen
    assert [s["event"] for s in failed["steps"]] == ["shift", "alarm", "rollback"]
    assert failed["duration"] < 20, failed


def test_bad_input_is_refused_with_the_field_and_no_traceback(world, aws, tmp_path):
    blue, green, listener = _alb(aws)
    refused = _play(world, tmp_path, {"listener_arn": listener, "blue_target_group": "tsm-blue", "green_target_group": "tsm-green",
                                      "deployment_config": "Rollout.Canary10Percent4Minutes"})
    assert refused["failed"] and refused["error_code"] == "INVALID_INPUT", refused
    assert "deployment_config=" in refused["msg"] and "Rollout.Canary10Percent5Minutes" in refused["msg"], refused
    assert "Traceback (most recent call last)" not in json.dumps(refused) and not refused.get("warnings"), refused
    assert _green_weight(aws, listener, blue, green) == (100, 0)


def _weights(balancer):
    rows = haproxy.parse_stat(balancer.command("show stat"))
    return dict((server, haproxy.weight_of(row)) for (proxy, server), row in rows.items()
                if proxy == "web" and server not in ("FRONTEND", "BACKEND"))


def test_haproxy_backend_weights_follow_the_steps(world, fleet_hosts, tmp_path):
    blue_hosts, green_hosts = fleet_hosts[:2], fleet_hosts[2:3]
    balancer = world.balancer
    balancer.configure({"web": [(h.name, h.address, 8080) for h in blue_hosts + green_hosts]})
    blue_names, green_name = [h.name for h in blue_hosts], green_hosts[0].name
    args = {"haproxy_backend": "web", "runtime_api": balancer.admin_address, "blue_servers": blue_names,
            "green_servers": [green_name]}
    preview = _play(world, tmp_path, dict(args, steps=[{"percent": 50, "wait_seconds": 1}, {"percent": 100}]), check=True)
    assert preview["status"] == "Preview" and not preview["changed"]
    start = _weights(balancer)
    assert preview["current_weights"] == {"haproxy web@%s" % balancer.admin_address: start}

    with Watcher(lambda: _weights(balancer)) as watcher:
        done = _play(world, tmp_path, dict(args, steps=[{"percent": 20, "wait_seconds": 0.5}, {"percent": 50, "wait_seconds": 0.5},
                                                        {"percent": 100}]))
        time.sleep(0.2)
    assert done["status"] == "Succeeded", done
    expected = []
    for percent in (20, 50, 100):
        blue_weight, green_weight = shift.server_weights(percent, 2, 1)
        expected.append(dict([(name, blue_weight) for name in blue_names] + [(green_name, green_weight)]))
    seen = [w for w in watcher.seen if w != start]
    # Servers change one command at a time; the settled weights of every step must show up in order.
    settled = [w for w in seen if w in expected]
    assert settled == expected, watcher.seen
    back = _play(world, tmp_path, dict(args, direction="back"))
    assert back["green_percent"] == 0 and _weights(balancer) == dict([(n, shift.FULL_WEIGHT) for n in blue_names] + [(green_name, 0)])
