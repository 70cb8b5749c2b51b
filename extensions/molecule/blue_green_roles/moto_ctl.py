"""Start or stop the scenario's moto server: ``moto_ctl.py start|stop STATE_DIR`` (port and pid files in STATE_DIR)."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def start(state):
    os.makedirs(state, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = os.path.join(os.path.dirname(sys.executable), "moto_server")
    with open(os.path.join(state, "moto.log"), "wb") as log:
        proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/moto-api/" % port, timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("moto_server did not start; see %s/moto.log" % state)
            time.sleep(0.1)
    with open(os.path.join(state, "moto.pid"), "w", encoding="utf-8") as handle:
        handle.write(str(proc.pid))
    with open(os.path.join(state, "moto.port"), "w", encoding="utf-8") as handle:
        handle.write(str(port))


def stop(state):
    pid_file = os.path.join(state, "moto.pid")
    if not os.path.exists(pid_file):
        return
    with open(pid_file, encoding="utf-8") as handle:
        pid = int(handle.read().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for name in ("moto.pid", "moto.port"):
        path = os.path.join(state, name)
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1]](sys.argv[2])
