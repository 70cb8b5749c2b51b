"""A bounded HTTP load generator for the test world: proves that traffic keeps flowing during a deployment.

``Load(url, max_requests, max_seconds, concurrency, interval)`` runs ``concurrency`` threads that
each send ``GET`` requests in a loop until ``max_requests`` requests were sent in all, or
``max_seconds`` passed, or ``stop()`` was called, whichever comes first. Every request opens a
new TCP connection (no keep-alive): a connection that stays open would keep reaching a server the
load balancer has already taken out of rotation for new connections, and per-request connections
are the stricter test of draining. Only loopback and the world's bridge network (10.213.0.0/24)
are accepted as targets, given as IP literals (or ``localhost``): the generator never resolves names.
"""
import collections
import http.client
import ipaddress
import threading
import time
import urllib.parse

ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"), ipaddress.ip_network("10.213.0.0/24"))
REQUEST_TIMEOUT = 5.0
HARD_MAX_REQUESTS = 1000000
HARD_MAX_SECONDS = 900


def check_target(url):
    """Return (host, port, path) of ``url``; ValueError unless it is http:// to loopback or 10.213.0.0/24."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("load URLs must be http://<address>[:port]/...: %r" % (url,))
    host = parts.hostname
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError("load URLs must name an IP address, not %r (names are not resolved)" % (parts.hostname,)) from exc
    if not any(address in network for network in ALLOWED_NETWORKS):
        raise ValueError("refusing to send load to %s: only loopback and 10.213.0.0/24 are allowed" % address)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, parts.port or 80, path


class LoadResult:
    """What a load run saw. Times are ``time.monotonic()`` values; latencies in ms."""

    def __init__(self, records, started, finished, max_failures=20):
        self.records = sorted(records, key=lambda r: r["start"])
        self.started = started
        self.finished = finished
        self.count = len(self.records)
        failed = [r for r in self.records if r["error"] is not None or r["status"] != 200]
        self.failed = len(failed)
        self.failures = failed[:max_failures]
        self.bodies = collections.Counter(r["body"] for r in self.records if r["error"] is None and r["status"] == 200)
        latencies = sorted(r["latency"] for r in self.records)
        self.p50 = _percentile(latencies, 50)
        self.p99 = _percentile(latencies, 99)
        self.duration = finished - started

    @property
    def timeline(self):
        """[(seconds since start, body or "<status>"/"error: ...")] in start order: which version answered when."""
        return [(r["start"] - self.started, _label(r)) for r in self.records]

    def unexpected(self, expected_bodies):
        """Successful responses whose body is not exactly one of ``expected_bodies`` (a mixed or foreign answer)."""
        expected = set(expected_bodies)
        return [r for r in self.records if r["error"] is None and r["status"] == 200 and r["body"] not in expected]

    def between(self, start=None, end=None):
        """Records whose request started in [start, end) (monotonic times; None leaves a side open)."""
        return [r for r in self.records if (start is None or r["start"] >= start) and (end is None or r["start"] < end)]

    def summary(self):
        return "%d requests in %.1f s, %d failed, p50 %.1f ms, p99 %.1f ms, bodies %s" % (
            self.count, self.duration, self.failed, self.p50, self.p99, dict(self.bodies))

    def __repr__(self):
        return "LoadResult(%s)" % self.summary()


class Load:
    """Bounded concurrent GET load on one URL; ``start()``, then ``stop()`` returns a ``LoadResult``."""

    def __init__(self, url, max_requests=20000, max_seconds=120, concurrency=4, interval=0.0, timeout=REQUEST_TIMEOUT):
        self.url = url
        self.host, self.port, self.path = check_target(url)
        if not 0 < max_requests <= HARD_MAX_REQUESTS:
            raise ValueError("max_requests must be in 1..%d" % HARD_MAX_REQUESTS)
        if not 0 < max_seconds <= HARD_MAX_SECONDS:
            raise ValueError("max_seconds must be in (0, %d]" % HARD_MAX_SECONDS)
        if not 0 < concurrency <= 64:
            raise ValueError("concurrency must be in 1..64")
        self.max_requests = int(max_requests)
        self.max_seconds = float(max_seconds)
        self.concurrency = int(concurrency)
        self.interval = max(0.0, float(interval))
        self.timeout = float(timeout)
        self._records = []
        self._lock = threading.Lock()
        self._sent = 0
        self._stop = threading.Event()
        self._threads = []
        self._started = None
        self._deadline = None

    def start(self):
        if self._threads:
            raise RuntimeError("this Load was started already")
        self._started = time.monotonic()
        self._deadline = self._started + self.max_seconds
        for number in range(self.concurrency):
            thread = threading.Thread(target=self._worker, name="load-%d" % number, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        """Stop sending (requests in flight finish or time out), wait for the workers, return the result."""
        self._stop.set()
        return self.wait()

    def wait(self):
        """Wait until the load ends by itself (max_requests or max_seconds), then return the result."""
        for thread in self._threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + self.timeout + 1)
        finished = time.monotonic()
        with self._lock:
            return LoadResult(list(self._records), self._started, finished)

    def run(self):
        """start() and wait(): the whole bounded run."""
        return self.start().wait()

    @property
    def sent(self):
        with self._lock:
            return self._sent

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, traceback):
        self.stop()
        return False

    def _take(self):
        with self._lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _worker(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline and self._take():
            record = self._request()
            with self._lock:
                self._records.append(record)
            if self.interval:
                self._stop.wait(self.interval)

    def _request(self):
        start = time.monotonic()
        record = {"start": start, "latency": None, "status": None, "body": None, "error": None, "worker": threading.current_thread().name}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            response = conn.getresponse()
            record["status"] = response.status
            record["body"] = response.read().decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException) as exc:
            record["error"] = "%s: %s" % (type(exc).__name__, exc)
        finally:
            conn.close()
            record["latency"] = (time.monotonic() - start) * 1000.0
        return record


def _label(record):
    if record["error"] is not None:
        return "error: %s" % record["error"]
    if record["status"] != 200:
        return "<%d>" % record["status"]
    return record["body"]


def _percentile(values, pct):
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, int(round(pct / 100.0 * len(values) + 0.5)) - 1))
    return values[index]
