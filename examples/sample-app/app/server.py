#!/usr/bin/env python3
"""sample-app: a tiny stdlib-only HTTP server for the rollout.codedeploy sample revision.

GET /        -> "sample-app <version>\n"  (version read from VERSION next to this file)
GET /health  -> "ok\n"

Environment: SAMPLE_APP_PORT (default 8080), SAMPLE_APP_BIND (default 0.0.0.0),
SAMPLE_APP_PIDFILE (if set, the pid is written there once the port is bound
and removed again on a clean exit).
"""
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    try:
        with open(os.path.join(HERE, "VERSION"), encoding="utf-8") as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


VERSION = read_version()


class Handler(BaseHTTPRequestHandler):
    server_version = "sample-app/" + VERSION

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.reply(200, "sample-app %s\n" % VERSION)
        elif path == "/health":
            self.reply(200, "ok\n")
        else:
            self.reply(404, "not found\n")

    def reply(self, code, text):
        body = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def write_pidfile(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % os.getpid())
    os.replace(tmp, path)


def remove_pidfile(path):
    try:
        with open(path, encoding="ascii") as f:
            if f.read().strip() != str(os.getpid()):
                return  # not ours any more
        os.unlink(path)
    except OSError:
        pass


def main():
    port = int(os.environ.get("SAMPLE_APP_PORT", "8080"))
    bind = os.environ.get("SAMPLE_APP_BIND", "0.0.0.0")
    pidfile = os.environ.get("SAMPLE_APP_PIDFILE")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    httpd = ThreadingHTTPServer((bind, port), Handler)
    httpd.daemon_threads = True
    if pidfile:
        write_pidfile(pidfile)
    print("sample-app %s listening on %s:%d (pid %d)" % (VERSION, bind, port, os.getpid()), flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        if pidfile:
            remove_pidfile(pidfile)
        print("sample-app %s stopped (pid %d)" % (VERSION, os.getpid()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
