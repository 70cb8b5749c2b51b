"""Real traffic in the test world: HAProxy on the balancer host, moto's ALB-like draining, the mirror, the load generator."""
import http.server
import os
import threading
import time

import pytest

from world import balancer as lb
from world.fleet import BALANCER_INDEX, MAX_HOSTS, SUBNET, WORLDS
from world.load import Load

pytestmark = [pytest.mark.fleet, pytest.mark.aws]


def body(host, suffix=""):
    return "sample-app %s%s" % (host.name, suffix)


def wait_for(what, predicate, timeout=10.0):
    """Poll ``predicate`` until it returns something true; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def health(aws, arn, instance=None):
    """{instance: (state, reason)} from DescribeTargetHealth (all targets, or the one asked for)."""
    kwargs = {"Targets": [{"Id": instance, "Port": 8080}]} if instance else {}
    found = aws.elbv2.describe_target_health(TargetGroupArn=arn, **kwargs)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: (d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")) for d in found}


def states_until_unused(aws, arn, instance):
    """Poll the target's state as the collection's BlockTraffic does, until ``unused``; return every state seen."""
    states = []

    def unused():
        states.append(health(aws, arn, instance)[instance][0])
        return states[-1] == "unused"
    wait_for("moto to report %s unused" % instance, unused)
    return states


def two_servers(world, fleet_hosts, initial_state="ready"):
    hosts = fleet_hosts[:2]
    balancer = world.balancer
    balancer.configure({"web": [("s%d" % h.index, h.address, 8080) for h in hosts]}, initial_state=initial_state)
    return balancer, hosts


def test_the_balancer_host_is_apart_from_the_fleet_and_spreads_load_over_healthy_servers(world, fleet_hosts):
    started = time.monotonic()
    balancer = world.balancer
    assert time.monotonic() - started < 5
    assert MAX_HOSTS < BALANCER_INDEX
    assert balancer.address == "%s.%d" % (SUBNET, WORLDS[world.name][1] + BALANCER_INDEX)
    assert balancer.host.netns == "rcd-%s-lb" % world.name
    assert balancer.host not in world.fleet.hosts.values()
    assert balancer.admin_address == balancer.address + ":9999"
    balancer, hosts = two_servers(world, fleet_hosts)
    with lb.serving(world.fleet, hosts):
        balancer.wait_up("web")
        result = Load(balancer.url("web"), max_requests=400, max_seconds=20, concurrency=4).run()
        # The collection's way in: the Unix admin socket on the balancer host, over SSH as root.
        stat = world.fleet.ssh(balancer.host, "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
                                              "s.sendall(b'show stat\\n'); print(s.makefile().read())\"" % lb.ADMIN_SOCKET)
    assert result.count == 400 and result.failed == 0, result.failures
    assert set(result.bodies) == {body(h) for h in hosts}
    assert min(result.bodies.values()) >= 150, result.bodies  # round robin: about half each
    assert result.unexpected({body(h) for h in hosts}) == []
    assert "web,s%d," % hosts[0].index in stat


def test_drain_then_maint_under_load_loses_no_request_and_sends_none_after(world, fleet_hosts):
    balancer, hosts = two_servers(world, fleet_hosts)
    kept, drained = hosts
    with lb.serving(world.fleet, hosts):
        balancer.wait_up("web")
        load = Load(balancer.url("web"), max_requests=20000, max_seconds=30, concurrency=4).start()
        wait_for("traffic on both servers", lambda: all(s["stot"] > 20 for s in balancer.servers("web").values()))
        balancer.set_state("web", "s%d" % drained.index, "drain")
        wait_for("no session on the draining server", lambda: balancer.servers("web")["s%d" % drained.index]["scur"] == 0)
        balancer.set_state("web", "s%d" % drained.index, "maint")
        in_maint = time.monotonic()
        sessions_at_maint = balancer.servers("web")["s%d" % drained.index]["stot"]
        sent_at_maint = load.sent
        lb.stop_app(world.fleet, drained)  # safe now: nothing is in flight to it
        wait_for("more traffic", lambda: load.sent > sent_at_maint + 300)
        result = load.stop()
        servers = balancer.servers("web")
    assert result.failed == 0, result.failures
    assert servers["s%d" % drained.index]["admin"] == "maint" and servers["s%d" % drained.index]["status"] == "MAINT"
    assert servers["s%d" % drained.index]["stot"] == sessions_at_maint
    later = result.between(start=in_maint)
    assert later and {r["body"] for r in later} == {body(kept)}
    assert result.bodies[body(drained)] > 0


def test_stopping_a_server_in_rotation_shows_as_failed_requests(world, fleet_hosts):
    """The control for the drain tests: without draining, the load generator does see failures."""
    balancer, hosts = two_servers(world, fleet_hosts)
    with lb.serving(world.fleet, hosts):
        balancer.wait_up("web")
        load = Load(balancer.url("web"), max_requests=20000, max_seconds=15, concurrency=4).start()
        wait_for("traffic on both servers", lambda: all(s["stot"] > 20 for s in balancer.servers("web").values()))
        lb.stop_app(world.fleet, hosts[1])
        balancer.wait_servers("web", lambda s: s["s%d" % hosts[1].index]["status"] == "DOWN", what="DOWN")
        result = load.stop()
    assert result.failed > 0
    assert all(r["status"] in (502, 503) or r["error"] for r in result.failures)


def test_moto_drains_targets_of_watched_groups_like_an_alb(world, aws):
    moto = world.moto
    first, second, third = aws.launch(3, {"Role": "drain"})
    watched = aws.target_group("watched-tg", with_load_balancer=False)
    plain = aws.target_group("plain-tg", with_load_balancer=False)
    for arn in (watched, plain):
        aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in (first, second, third)])
    moto.watch("watched-tg")

    aws.elbv2.deregister_targets(TargetGroupArn=watched, Targets=[{"Id": first, "Port": 8080}])
    assert health(aws, watched, first) == {first: ("draining", "Target.DeregistrationInProgress")}
    assert health(aws, watched)[first][0] == "draining"  # listed without asking, as AWS does
    time.sleep(0.3)
    assert health(aws, watched, first)[first][0] == "draining"  # stays until released (delay: 300 s)
    moto.release("watched-tg", first)
    assert health(aws, watched, first) == {first: ("unused", "Target.NotRegistered")}
    assert first not in health(aws, watched)

    aws.elbv2.deregister_targets(TargetGroupArn=watched, Targets=[{"Id": second, "Port": 8080}])
    assert health(aws, watched, second)[second][0] == "draining"
    aws.elbv2.register_targets(TargetGroupArn=watched, Targets=[{"Id": second, "Port": 8080}])
    assert health(aws, watched, second) == {second: ("healthy", None)}

    aws.elbv2.modify_target_group_attributes(TargetGroupArn=watched, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
    aws.elbv2.deregister_targets(TargetGroupArn=watched, Targets=[{"Id": third, "Port": 8080}])
    assert health(aws, watched, third)[third][0] == "draining"
    wait_for("the deregistration delay to end the drain", lambda: health(aws, watched, third)[third][0] == "unused", timeout=3)

    aws.elbv2.deregister_targets(TargetGroupArn=plain, Targets=[{"Id": first, "Port": 8080}])
    assert health(aws, plain, first) == {first: ("unused", "Target.NotRegistered")}
    assert set(health(aws, plain)) == {second, third}

    aws.elbv2.deregister_targets(TargetGroupArn=watched, Targets=[{"Id": second, "Port": 8080}])
    moto.release("watched-tg", "i-left-over")
    moto.reset()
    moto.unwatch("watched-tg")
    assert aws.elbv2.describe_target_groups()["TargetGroups"] == []
    assert not any(moto_files(moto, "released"))


def moto_files(moto, kind):
    found = []
    for root, _dirs, files in os.walk(os.path.join(moto.drain_dir, kind)):
        found += [os.path.join(root, f) for f in files]
    return found


# Every GET / takes this long on the mirror tests' hosts, so a stop that does not wait for the drain cuts requests off.
SLOW_MS = 500


def mirrored_pair(world, aws):
    """Two instances on fleet hosts in web-tg, and HAProxy's web backend with one server per instance (in maint)."""
    bound = world.launch_bound(aws, 2, {"Role": "web"})
    arn = aws.target_group("web-tg")
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in bound])
    balancer = world.balancer
    balancer.configure({"web": [(i, h.address, 8080) for i, h in bound.items()]}, initial_state="maint")
    return bound, arn, balancer


def test_the_mirror_makes_haproxy_follow_moto_and_a_rolling_restart_loses_no_request(world, aws, fleet_hosts):
    """Deregister, wait for moto's ``unused`` (as the collection's BlockTraffic does), stop, start, register: one host at a time."""
    bound, arn, balancer = mirrored_pair(world, aws)
    hosts = list(bound.values())
    expected = {body(h) for h in hosts} | {body(h, "-v2") for h in hosts}
    seen = {}
    with lb.serving(world.fleet, hosts, delay_ms=SLOW_MS), balancer.mirror_target_group(aws, arn, "web", {i: i for i in bound}) as mirror:
        balancer.wait_up("web")
        load = Load(balancer.url("web"), max_requests=20000, max_seconds=40, concurrency=6).start()
        wait_for("traffic on both servers", lambda: all(s["stot"] > 5 for s in balancer.servers("web").values()))
        for instance, host in bound.items():
            aws.elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 8080}])
            seen[instance] = states_until_unused(aws, arn, instance)
            lb.stop_app(world.fleet, host)
            lb.start_app(world.fleet, host, host.name + "-v2", delay_ms=SLOW_MS)
            aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 8080}])
            balancer.wait_up("web", [instance])
            sent = load.sent
            wait_for("traffic after %s is back" % instance, lambda sent=sent: load.sent > sent + 20)
        result = load.stop()
    assert result.failed == 0, result.failures
    assert result.unexpected(expected) == []
    for instance, host in bound.items():
        assert "draining" in seen[instance], seen[instance]
        actions = [e["action"] for e in mirror.events_for(instance)]
        assert actions == ["ready", "drain", "maint", "release", "ready"], actions
        out = mirror.events_for(instance, "maint")[0]["time"]
        back = mirror.events_for(instance, "ready")[1]["time"]
        assert body(host) not in {r["body"] for r in result.between(start=out)}
        assert body(host, "-v2") not in {r["body"] for r in result.between(end=back)}
    assert set(result.bodies) == expected
    assert not moto_files(world.moto, "watch")  # the mirror removed its marker on exit


def test_stopping_a_host_while_moto_still_reports_it_draining_loses_requests(world, aws, fleet_hosts):
    """The control for the mirror test: a stop that does not wait for ``unused`` cuts requests in flight off."""
    bound, arn, balancer = mirrored_pair(world, aws)
    instance, host = next(iter(bound.items()))
    with lb.serving(world.fleet, list(bound.values()), delay_ms=1000), balancer.mirror_target_group(aws, arn, "web", {i: i for i in bound}):
        balancer.wait_up("web")
        load = Load(balancer.url("web"), max_requests=20000, max_seconds=20, concurrency=8).start()
        wait_for("requests in flight on both servers", lambda: all(s["scur"] > 0 for s in balancer.servers("web").values()))
        aws.elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 8080}])
        wait_for("moto to report draining", lambda: health(aws, arn, instance)[instance][0] == "draining")
        lb.stop_app(world.fleet, host)
        result = load.stop()
    assert result.failed > 0
    assert all(r["status"] == 502 or r["error"] for r in result.failures), result.failures


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        data = b"fine\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@pytest.fixture
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "http://10.213.1.5/", "http://example.com/", "https://127.0.0.1/", "http://[2001:db8::1]/"])
def test_the_load_generator_refuses_targets_outside_loopback_and_the_bridge(url):
    with pytest.raises(ValueError):
        Load(url)


def test_the_load_generator_stops_at_its_request_and_time_bounds(local_server):
    counted = Load(local_server, max_requests=50, max_seconds=20, concurrency=4).run()
    assert counted.count == 50 and counted.failed == 0 and counted.bodies == {"fine": 50}
    assert counted.p50 <= counted.p99
    timed = Load(local_server, max_requests=1000000, max_seconds=0.5, concurrency=2, interval=0.05).run()
    assert 0 < timed.count < 40
    assert timed.duration < 1.5
    assert [label for _offset, label in timed.timeline] == ["fine"] * timed.count
    refused = Load("http://127.0.0.1:9/", max_requests=3, max_seconds=5, concurrency=1).run()
    assert refused.count == 3 and refused.failed == 3 and refused.failures[0]["error"].startswith("ConnectionRefusedError")
