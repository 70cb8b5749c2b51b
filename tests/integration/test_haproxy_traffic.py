"""HAProxy as a deployment group's load balancer, driven by rollout.codedeploy.deploy against the world's real HAProxy
(tests/world/balancer.py): the TCP admin socket and the stats socket through the balancer host's Ansible connection,
a target group and an HAProxy backend together, and the failures: a server that never comes UP, a backend without
the host's server, and an HAProxy host the inventory does not know."""
import json
import os

import pytest

from world import paths

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledgers

from test_deploy import revision

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = os.path.join(paths.REPO, "playbooks", "deploy.yml")


def _group(world, aws, tmp_path, count, load_balancer, port_of=None):
    bound = world.launch_bound(aws, count, {"Role": "web"})
    balancer = world.balancer
    balancer.configure({"web": [(h.name, h.address, (port_of or {}).get(h.name, 8080)) for h in bound.values()]}, initial_state="maint")
    group = {"ec2_tag_filters": [{"key": "Role", "value": "web"}], "deployment_config": "CodeDeployDefault.AllAtOnce",
             "file_exists_behavior": "OVERWRITE", "load_balancer": load_balancer}
    inventory = world.codedeploy_inventory(str(tmp_path / "web.codedeploy.yml"), {"web": {"production": group}})
    return bound, balancer, inventory


def _deploy(world, inventories, tmp_path, version):
    ledger_path = str(tmp_path / "ledger.sqlite3")
    args = ["ansible-playbook"]
    for inventory in inventories:
        args += ["-i", inventory]
    args += [PLAYBOOK, "-e", json.dumps({"deployment_group": "web_production", "revision": revision(tmp_path, "rev-" + version, version),
                                         "codedeploy_ledger": ledger_path})]
    proc = world.ansible(args, check=False)
    book = ledgers.open_ledger(ledger_path)
    listed = book.list_deployments(limit=1)
    return proc, (book.get_deployment(listed[0]["deployment_id"]) if listed else None)


def _lb_inventory(tmp_path, balancer, name="haproxy-lb"):
    path = str(tmp_path / "lb.ini")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[balancers]\n%s ansible_host=%s\n" % (name, balancer.address))
    return path


def _status(balancer):
    return {name: row["status"] for name, row in balancer.servers("web").items()}


def test_tcp_admin_socket_and_a_target_group_together(world, aws, fleet_hosts, tmp_path):
    arn = aws.target_group("web-tg")
    bound, balancer, inventory = _group(world, aws, tmp_path, 2, {
        "target_groups": ["web-tg"],
        "haproxy_backends": [{"backend": "web", "runtime_api": world.balancer.admin_address, "up_timeout": 30}]})
    proc, deployment = _deploy(world, [inventory], tmp_path, "1.0.0")
    assert proc.returncode == 0 and deployment["status"] == "Succeeded", proc.stdout[-3000:]
    assert set(_status(balancer).values()) == {"UP"}
    registered = {d["Target"]["Id"] for d in aws.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
    assert registered == set(bound)
    for instance in deployment["instances"]:
        allow = next(e for e in instance["events"] if e["event"] == "AllowTraffic")
        assert "web-tg" in allow["message"] and "haproxy web@%s" % balancer.admin_address in allow["message"]
    # The second deployment takes each server through drain and maintenance and back.
    proc, deployment = _deploy(world, [inventory], tmp_path, "2.0.0")
    assert proc.returncode == 0 and deployment["status"] == "Succeeded", proc.stdout[-3000:]
    block = next(e for e in deployment["instances"][0]["events"] if e["event"] == "BlockTraffic")
    assert block["status"] == "Succeeded" and "out of" in block["message"]
    assert set(_status(balancer).values()) == {"UP"}


def test_a_server_that_never_comes_up_fails_allow_traffic_naming_it(world, aws, fleet_hosts, tmp_path):
    hosts = sorted(world.free_hosts(aws), key=lambda h: h.index)[:2]
    broken = hosts[1].name  # HAProxy checks port 8081 for it, where nothing listens
    bound, balancer, inventory = _group(world, aws, tmp_path, 2, {
        "haproxy_backends": [{"backend": "web", "runtime_api": {"host": "haproxy-lb", "socket": "/run/haproxy/admin.sock"},
                              "up_timeout": 3}]}, port_of={broken: 8081})
    assert broken in {h.name for h in bound.values()}
    proc, deployment = _deploy(world, [inventory, _lb_inventory(tmp_path, balancer)], tmp_path, "1.0.0")
    # AllAtOnce succeeds with one healthy host (CodeDeploy's rule); the broken host is the failed instance.
    assert deployment["status"] == "Succeeded" and deployment["overview"]["Failed"] == 1, proc.stdout[-3000:]
    failed = next(i for i in deployment["instances"] if i["host"] == broken)
    assert failed["status"] == "Failed"
    allow = next(e for e in failed["events"] if e["event"] == "AllowTraffic")
    assert allow["status"] == "Failed" and allow["error_code"] == "TIMEOUT"
    for words in ("HAProxy backend web server %s" % broken, "L4CON", "up_timeout", "haproxy-lb:/run/haproxy/admin.sock"):
        assert words in allow["message"], allow["message"]
    good = next(i for i in deployment["instances"] if i["host"] != broken)
    assert good["status"] == "Succeeded" and _status(balancer)[good["host"]] == "UP"


def test_a_backend_without_the_hosts_server_is_refused_before_any_host_is_touched(world, aws, fleet_hosts, tmp_path):
    bound, balancer, inventory = _group(world, aws, tmp_path, 2, {
        "haproxy_backends": [{"backend": "web", "runtime_api": world.balancer.admin_address}]})
    balancer.configure({"web": [("other-1", "10.213.0.2", 8080)]}, initial_state="maint")
    proc, deployment = _deploy(world, [inventory], tmp_path, "1.0.0")
    assert proc.returncode != 0 and deployment["status"] == "Failed"
    assert deployment["error"]["code"] == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "backend web has no server" in deployment["error"]["message"] and "(its servers: other-1)" in deployment["error"]["message"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all(not i.get("events") for i in deployment["instances"])
    for host in bound.values():
        assert world.fleet.ssh(host, "test -e /opt/codedeploy-agent && echo touched || echo clean").strip() == "clean"


def test_an_haproxy_host_missing_from_the_inventory_is_named(world, aws, fleet_hosts, tmp_path):
    _bound, _balancer, inventory = _group(world, aws, tmp_path, 1, {
        "haproxy_backends": [{"backend": "web", "runtime_api": {"host": "lb-nowhere", "socket": "/run/haproxy/admin.sock"}}]})
    proc, deployment = _deploy(world, [inventory], tmp_path, "1.0.0")
    assert proc.returncode != 0 and deployment["status"] == "Failed"
    message = deployment["error"]["message"]
    assert "names host lb-nowhere" in message and "the inventory has no host of that name" in message
    assert "Traceback" not in proc.stdout + proc.stderr
