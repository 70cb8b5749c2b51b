"""HAProxy settings, runtime API replies and the BlockTraffic/AllowTraffic rules, against a scripted HAProxy.

The scripted HAProxy (``FakeHaproxy``) answers ``show stat`` and ``set server`` the way HAProxy 2.x does
(statuses UP, ``UP 1/2``, DOWN, ``DOWN 1/2``, DRAIN, MAINT, ``no check``); the real one is exercised by the
integration tests (tests/integration/test_haproxy_traffic.py).
"""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import haproxy
from ansible_collections.rollout.codedeploy.plugins.module_utils.traffic import LoadBalancers, TrafficError

HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,"
          "chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,"
          "check_code,check_duration,check_desc")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.5)


class FakeHaproxy:
    """One backend's servers. ``app_ok`` says whether each server's application passes checks; each ``show stat``
    runs one round of health checks (rise 2, fall 2)."""

    def __init__(self, backend="web", servers=("web-1", "web-2"), checks=True):
        self.backend = backend
        self.servers = {name: {"admin": "ready", "up": True, "count": 0, "scur": 0, "check": checks} for name in servers}
        self.app_ok = {name: True for name in servers}
        self.sent = []
        self.fail_next = 0

    def _status(self, server):
        if server["admin"] == "maint":
            return "MAINT"
        if not server["check"]:
            return "no check"
        word = "UP" if server["up"] else "DOWN"
        if server["count"]:
            word = "%s %d/2" % (word, server["count"])
        if server["admin"] == "drain" and server["up"]:
            return "DRAIN" if not server["count"] else "DRAIN %d/2" % server["count"]
        return word

    def _check(self):
        for name, server in self.servers.items():
            if server["admin"] == "maint" or not server["check"]:
                continue
            ok = self.app_ok[name]
            if ok != server["up"]:
                server["count"] += 1
                if server["count"] >= 2:
                    server["up"], server["count"] = ok, 0
            else:
                server["count"] = 0

    def send(self, text):
        self.sent.append(text)
        if self.fail_next:
            self.fail_next -= 1
            raise haproxy.HaproxyError("runtime API at 10.0.0.5:9999 cannot be reached (Connection refused)", transient=True)
        words = text.split()
        if text.startswith("show stat "):
            if words[2] != self.backend:
                return "No such proxy.\n"
            self._check()
            fields = HEADER[2:].split(",")
            lines = [HEADER]
            for name, server in self.servers.items():
                ok = self.app_ok[name] or not server["check"]
                row = dict.fromkeys(fields, "0")
                row.update(pxname=self.backend, svname=name, scur=str(server["scur"]), status=self._status(server),
                           chkfail="0" if server["check"] else "", check_status="L7OK" if ok else "L4CON", check_code="200" if ok else "",
                           check_desc="Layer7 check passed" if ok else "Layer4 connection problem")
                if not server["check"] or server["admin"] == "maint":
                    row.update(check_status="", check_code="", check_desc="")
                lines.append(",".join(row[field] for field in fields))
            return "\n".join(lines) + "\n"
        if text.startswith("set server "):
            backend, name = words[2].split("/")
            if backend != self.backend:
                return "No such backend.\n"
            if name not in self.servers:
                return "No such server.\n"
            server = self.servers[name]
            if words[3] == "state":
                if server["admin"] == "maint" and words[4] != "maint":
                    server["count"] = 1 if server["up"] else 0  # HAProxy keeps the old result, one check from falling
                server["admin"] = words[4]
            elif words[3] == "health":
                server["up"], server["count"] = words[4] == "up", 0
            return "\n"
        return "Unknown command.\n"


def backend(fake, clock, **spec):
    settings = haproxy.normalize_backends([dict({"backend": fake.backend, "runtime_api": "10.0.0.5:9999"}, **spec)])[0]
    return haproxy.Backend(settings, fake, clock)


def balancers(fake, clock, **spec):
    return LoadBalancers(haproxy=[backend(fake, clock, **spec)], sleep=clock.sleep, clock=clock, haproxy_poll=0.5)


# ---------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("spec, expected", [
    ("10.0.0.5:9999", {"kind": "tcp", "address": "10.0.0.5", "port": 9999, "host": None, "socket": None}),
    ("tcp://lb.example.com:9999", {"kind": "tcp", "address": "lb.example.com", "port": 9999, "host": None, "socket": None}),
    ("ipv4@127.0.0.1:1", {"kind": "tcp", "address": "127.0.0.1", "port": 1, "host": None, "socket": None}),
    ("/run/haproxy/admin.sock", {"kind": "unix", "socket": "/run/haproxy/admin.sock", "host": None, "address": None, "port": None}),
    ("unix:///run/h.sock", {"kind": "unix", "socket": "/run/h.sock", "host": None, "address": None, "port": None}),
    ({"host": "lb1", "socket": "/run/haproxy/admin.sock"},
     {"kind": "unix", "socket": "/run/haproxy/admin.sock", "host": "lb1", "address": None, "port": None}),
    ({"address": "[::1]:9999"}, {"kind": "tcp", "address": "::1", "port": 9999, "host": None, "socket": None}),
])
def test_runtime_api_forms(spec, expected):
    assert haproxy.normalize_runtime_api(spec) == expected


@pytest.mark.parametrize("items, path, words", [
    ("web", "load_balancer.haproxy_backends", "must be a list"),
    ([{"backend": "web"}], "load_balancer.haproxy_backends[0].runtime_api", "is missing"),
    ([{"backend": "we b", "runtime_api": "h:1"}], "load_balancer.haproxy_backends[0].backend", "HAProxy backend"),
    ([{"backend": "web", "runtime_api": "h:99999"}], "load_balancer.haproxy_backends[0].runtime_api", "HOST:PORT"),
    ([{"backend": "web", "runtime_api": "lb1"}], "load_balancer.haproxy_backends[0].runtime_api", "HOST:PORT"),
    ([{"backend": "web", "runtime_api": "relative.sock"}], "load_balancer.haproxy_backends[0].runtime_api", "HOST:PORT"),
    ([{"backend": "web", "runtime_api": {"host": "lb1"}}], "load_balancer.haproxy_backends[0].runtime_api", "names no socket"),
    ([{"backend": "web", "runtime_api": {"host": "lb1", "socket": "admin.sock"}}],
     "load_balancer.haproxy_backends[0].runtime_api.socket", "absolute path"),
    ([{"backend": "web", "runtime_api": {"address": "h:1", "socket": "/s"}}], "load_balancer.haproxy_backends[0].runtime_api", "not both"),
    ([{"backend": "web", "runtime_api": {"adress": "h:1"}}], "load_balancer.haproxy_backends[0].runtime_api.adress", "unknown key"),
    ([{"backend": "web", "runtime_api": "h:1", "drain_timeout": 0}], "load_balancer.haproxy_backends[0].drain_timeout", "1 to 3600"),
    ([{"backend": "web", "runtime_api": "h:1", "up_timeout": "5"}], "load_balancer.haproxy_backends[0].up_timeout", "1 to 3600"),
    ([{"backend": "web", "runtime_api": "h:1", "up_timeout": True}], "load_balancer.haproxy_backends[0].up_timeout", "1 to 3600"),
    ([{"backend": "web", "runtime_api": "h:1", "servers": ["a"]}], "load_balancer.haproxy_backends[0].servers", "must map"),
    ([{"backend": "web", "runtime_api": "h:1", "servers": {"web-1": "a b"}}], "load_balancer.haproxy_backends[0].servers.web-1",
     "server name"),
    ([{"backend": "web", "runtime_api": "h:1", "backends": "x"}], "load_balancer.haproxy_backends[0].backends", "unknown key"),
    ([{"backend": "web", "runtime_api": "h:1"}, {"backend": "web", "runtime_api": "tcp://h:1"}], "load_balancer.haproxy_backends[1]",
     "listed twice"),
    ([{"backend": "b%d" % i, "runtime_api": "h:1"} for i in range(11)], "load_balancer.haproxy_backends", "at most 10"),
])
def test_bad_settings_name_the_path(items, path, words):
    with pytest.raises(haproxy.SettingError) as caught:
        haproxy.normalize_backends(items)
    assert caught.value.path == path
    assert words in caught.value.problem


def test_settings_defaults_and_server_names():
    spec = haproxy.normalize_backends([{"backend": "web", "runtime_api": "h:1", "servers": {"web-1": "srv1"}}])[0]
    assert (spec["drain_timeout"], spec["up_timeout"]) == (300, 300)
    assert haproxy.server_name(spec, "web-1") == "srv1"
    assert haproxy.server_name(spec, "web-2") == "web-2"
    assert haproxy.backend_label(spec) == "haproxy web@h:1"
    assert haproxy.longest_wait([spec, dict(spec, up_timeout=900)]) == 900
    assert haproxy.longest_wait([]) == 0


# ---------------------------------------------------------------------------------------------- replies
@pytest.mark.parametrize("reply, meaning", [
    ("No such server.\n", "no server of that name"),
    ("No such backend.\n", "no backend of that name"),
    ("Permission denied\n", "level admin"),
    ("Unknown command. Please enter one of the following commands only :", "does not know the command"),
    ("\n", None),
    ("", None),
])
def test_refusals(reply, meaning):
    found = haproxy.refusal(reply)
    assert (found is None) if meaning is None else (meaning in found)


@pytest.mark.parametrize("status, verdict, word", [
    ("UP", "healthy", "UP"), ("UP 1/2", "waiting", "UP"), ("DOWN", "waiting", "DOWN"), ("DOWN 1/2", "waiting", "DOWN"),
    ("MAINT", "waiting", "MAINT"), ("DRAIN", "waiting", "DRAIN"), ("no check", "no_check", "no check"),
    ("MAINT (via web/s1)", "waiting", "MAINT"), ("NOLB", "waiting", "NOLB"),
])
def test_status_words(status, verdict, word):
    assert haproxy.up_verdict({"status": status}) == verdict
    assert haproxy.status_of({"status": status}) == word


def test_a_ready_server_at_weight_0_that_passes_its_checks_is_in_service():
    # A green server waiting for its share of a traffic shift: some HAProxy versions show it as DRAIN.
    assert haproxy.up_verdict({"status": "DRAIN", "weight": "0", "check_status": "L7OK"}) == "healthy"
    assert haproxy.up_verdict({"status": "DRAIN", "weight": "0", "check_status": "L7STS"}) == "waiting"
    assert haproxy.up_verdict({"status": "DRAIN", "weight": "1", "check_status": "L7OK"}) == "waiting"


def test_parse_stat_and_check_text():
    fake = FakeHaproxy()
    rows = haproxy.parse_stat(fake.send("show stat web 4 -1"))
    assert set(rows) == {("web", "web-1"), ("web", "web-2")}
    assert haproxy.check_text(rows[("web", "web-1")]) == "L7OK 200 (Layer7 check passed)"
    assert haproxy.in_flight({"scur": "3", "qcur": "2"}) == 5
    assert haproxy.has_checks({"status": "MAINT", "chkfail": "0"}) and not haproxy.has_checks({"status": "MAINT", "chkfail": ""})
    assert haproxy.in_flight({"scur": "", "qcur": None}) == 0
    with pytest.raises(ValueError):
        haproxy.parse_stat("this is not csv")


def test_command_refuses_smuggled_names():
    assert haproxy.command("state", "web", "web-1", "drain") == "set server web/web-1 state drain"
    with pytest.raises(haproxy.HaproxyError):
        haproxy.command("state", "web", "web-1\nshutdown sessions server web/web-2", "maint")


# ---------------------------------------------------------------------------------------------- block and allow
def test_block_drains_then_maint_once_sessions_end():
    fake, clock = FakeHaproxy(), Clock()
    fake.servers["web-1"]["scur"] = 2
    lbs = balancers(fake, clock)
    sessions = iter([2, 1, 0])

    def polls(text, original=fake.send):
        if text.startswith("show stat"):
            fake.servers["web-1"]["scur"] = next(sessions, 0)
        return original(text)
    fake.send = polls
    result = lbs.block("i-1", host="web-1")
    entry = result["haproxy_backends"]["haproxy web@10.0.0.5:9999"]
    assert entry["status"] == "MAINT" and entry["changed"] and result["changed"]
    assert fake.servers["web-1"]["admin"] == "maint"
    commands = [c for c in fake.sent if c.startswith("set")]
    assert commands == ["set server web/web-1 state drain", "set server web/web-1 state maint"]
    assert not result["warnings"]


def test_block_puts_server_in_maint_after_drain_timeout_with_a_warning():
    fake, clock = FakeHaproxy(), Clock()
    fake.servers["web-1"]["scur"] = 5  # a session that never ends
    result = balancers(fake, clock, drain_timeout=3).block("i-1", host="web-1")
    assert fake.servers["web-1"]["admin"] == "maint"
    assert "still had 5 session(s) after the 3 s drain timeout" in result["warnings"][0]
    assert 3 <= clock.now < 10


def test_block_of_a_server_in_maintenance_changes_nothing():
    fake, clock = FakeHaproxy(), Clock()
    fake.servers["web-1"]["admin"] = "maint"
    result = balancers(fake, clock).block("i-1", host="web-1")
    assert not result["changed"]
    assert not [c for c in fake.sent if c.startswith("set")]


def test_allow_forgets_the_old_health_and_waits_for_fresh_checks():
    fake, clock = FakeHaproxy(), Clock()
    fake.servers["web-1"]["admin"] = "maint"
    result = balancers(fake, clock).allow("i-1", host="web-1")
    assert [c for c in fake.sent if c.startswith("set")] == [
        "set server web/web-1 state drain", "set server web/web-1 health down", "set server web/web-1 state ready"]
    assert fake.servers["web-1"]["up"] and result["haproxy_backends"]["haproxy web@10.0.0.5:9999"]["status"] == "UP"
    assert result["waited"] >= 2  # two checks had to pass


def test_allow_times_out_naming_backend_server_and_check():
    fake, clock = FakeHaproxy(), Clock()
    fake.servers["web-1"]["admin"] = "maint"
    fake.app_ok["web-1"] = False
    with pytest.raises(TrafficError) as caught:
        balancers(fake, clock, up_timeout=5).allow("i-1", host="web-1")
    message = caught.value.message
    assert caught.value.code == "TIMEOUT"
    assert "backend web server web-1 is DOWN" in message and "L4CON" in message and "Layer4 connection problem" in message
    assert "up_timeout" in message and fake.servers["web-1"]["admin"] == "ready"


def test_allow_without_health_checks_warns():
    fake, clock = FakeHaproxy(checks=False), Clock()
    fake.servers["web-1"]["admin"] = "maint"
    result = balancers(fake, clock).allow("i-1", host="web-1")
    assert "has no health check" in result["warnings"][0]
    assert "set server web/web-1 health down" not in fake.sent


def test_mapped_server_names_and_unknown_servers():
    fake, clock = FakeHaproxy(servers=("srv1",)), Clock()
    lbs = balancers(fake, clock, servers={"web-1": "srv1"})
    lbs.resolve(["web-1"])
    lbs.block("i-1", host="web-1")
    assert fake.servers["srv1"]["admin"] == "maint"
    with pytest.raises(TrafficError) as caught:
        balancers(fake, clock).resolve(["web-1", "web-2"])
    assert "has no server web-1 for host web-1, web-2 for host web-2 (its servers: srv1)" in caught.value.message
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"


def test_unknown_backend_is_refused_at_resolve():
    fake, clock = FakeHaproxy(backend="other"), Clock()
    spec = haproxy.normalize_backends([{"backend": "web", "runtime_api": "10.0.0.5:9999"}])[0]
    lbs = LoadBalancers(haproxy=[haproxy.Backend(spec, fake, clock)], sleep=clock.sleep, clock=clock)
    with pytest.raises(TrafficError) as caught:
        lbs.resolve(["web-1"])
    assert "no backend of that name" in caught.value.message and "haproxy web@10.0.0.5:9999" in caught.value.message


def test_a_runtime_hiccup_while_polling_is_retried():
    fake, clock = FakeHaproxy(), Clock()
    lbs = balancers(fake, clock)
    original = fake.send

    def flaky(text):
        reply = original(text)
        if text.startswith("set server web/web-1 state drain"):
            fake.fail_next = 2  # the next two polls find HAProxy reloading
        return reply
    fake.send = flaky
    result = lbs.block("i-1", host="web-1")
    assert fake.servers["web-1"]["admin"] == "maint" and result["changed"]


def test_a_runtime_that_stays_away_fails_the_step():
    fake, clock = FakeHaproxy(), Clock()
    lbs = balancers(fake, clock)
    fake.fail_next = 100
    with pytest.raises(TrafficError) as caught:
        lbs.block("i-1", host="web-1")
    assert "cannot be reached" in caught.value.message
