#!/bin/sh
# ApplicationStart: start the server fully detached from the hook.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

# Variant knob: SLOW_HOOK at the bundle root holds a delay in whole seconds.
if [ -f "$BUNDLE_ROOT/SLOW_HOOK" ]; then
    delay=$(tr -cd 0-9 <"$BUNDLE_ROOT/SLOW_HOOK")
    say "SLOW_HOOK present: sleeping ${delay:-0} s"
    sleep "${delay:-0}"
fi

load_conf
[ -f "$APP_ROOT/server.py" ] || die "$APP_ROOT/server.py is missing"
stop_server # a copy left over from a run without ApplicationStop
mkdir -p "$LOG_DIR" "$(dirname -- "$PIDFILE")"

# New session, no terminal, every standard stream away from the hook pipes,
# working directory / (the deployment archive may be removed later).
(
    cd /
    SAMPLE_APP_PORT=$PORT SAMPLE_APP_PIDFILE=$PIDFILE \
        setsid -f python3 "$APP_ROOT/server.py" \
        </dev/null >>"$LOG_DIR/server.log" 2>&1
)

# The server writes its pid file once the port is bound.
n=0
until pid=$(server_pid); do
    n=$((n + 1))
    if [ "$n" -gt 50 ]; then
        tail -n 20 "$LOG_DIR/server.log" >&2 || true
        die "server did not start within 10 s (log: $LOG_DIR/server.log)"
    fi
    sleep 0.2
done
say "server $REVISION started (pid $pid, port $PORT)"
