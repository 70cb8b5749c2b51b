#!/bin/sh
# ValidateService: the server must be healthy and serve this revision.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

# Variant knob: FAIL_VALIDATE at the bundle root makes this hook fail: on every host when the
# file is empty, else only on the hosts whose names it lists (one per line).
if [ -f "$BUNDLE_ROOT/FAIL_VALIDATE" ]; then
    if [ ! -s "$BUNDLE_ROOT/FAIL_VALIDATE" ] || grep -qx "$(hostname)" "$BUNDLE_ROOT/FAIL_VALIDATE"; then
        die "FAIL_VALIDATE is present in the bundle, failing on purpose on $(hostname)"
    fi
fi

load_conf
python3 - "$PORT" "$REVISION" <<'PY'
import sys, time, urllib.request

port, revision = sys.argv[1], sys.argv[2]
base = "http://127.0.0.1:%s" % port
deadline = time.monotonic() + 10
last = "no answer"
while True:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as r:
            body = r.read().decode().strip()
        if body == "ok":
            break
        last = "unexpected body %r" % body
    except Exception as exc:
        last = str(exc)
    if time.monotonic() >= deadline:
        sys.exit("sample-app ValidateService: ERROR: %s/health not healthy after 10 s (%s)" % (base, last))
    time.sleep(0.5)

with urllib.request.urlopen(base + "/", timeout=2) as r:
    body = r.read().decode().strip()
if body != "sample-app " + revision:
    sys.exit("sample-app ValidateService: ERROR: / answered %r, expected revision %s" % (body, revision))
print("sample-app ValidateService: healthy, serving %r" % body)
PY
