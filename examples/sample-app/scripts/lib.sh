# shellcheck shell=sh disable=SC2034
# Shared by every hook script of the sample app; sourced, never run.
# (SC2034: the variables set here are used by the scripts that source this file.)
# The caller sets HOOK_DIR to its own directory before sourcing this file.
#
# Paths default to the real host locations; the SAMPLE_APP_* variables
# override them (used for local dry runs without root).

BUNDLE_ROOT=$(CDPATH='' cd -- "$HOOK_DIR/.." && pwd)
APP_ROOT=${SAMPLE_APP_ROOT:-/srv/sample-app}
STATE_DIR=${SAMPLE_APP_STATE:-/var/lib/sample-app}
LOG_DIR=${SAMPLE_APP_LOG_DIR:-/var/log/sample-app}
ETC_DIR=${SAMPLE_APP_ETC:-/etc/sample-app}
PIDFILE=${SAMPLE_APP_PIDFILE:-/run/sample-app.pid}
PORT=${SAMPLE_APP_PORT:-8080}
CONF=$ETC_DIR/sample-app.conf
EVIDENCE=$STATE_DIR/evidence.log

# The revision is the VERSION of the bundle this script came from, which for
# ApplicationStop / *BlockTraffic is the previous revision, not the new one.
REVISION=$(sed -n '1{s/[[:space:]]//g;p;q;}' "$BUNDLE_ROOT/VERSION" 2>/dev/null || true)
REVISION=${REVISION:-unknown}

say() {
    printf 'sample-app %s: %s\n' "${LIFECYCLE_EVENT:-?}" "$*"
}

die() {
    printf 'sample-app %s: ERROR: %s\n' "${LIFECYCLE_EVENT:-?}" "$*" >&2
    exit 1
}

# One tab-separated line per hook run:
#   <UTC ISO time> <LIFECYCLE_EVENT> <DEPLOYMENT_ID> <revision>
record_evidence() {
    mkdir -p "$STATE_DIR"
    line=$(printf '%s\t%s\t%s\t%s' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "${LIFECYCLE_EVENT:--}" "${DEPLOYMENT_ID:--}" "$REVISION")
    printf '%s\n' "$line" >>"$EVIDENCE"
    say "evidence: $line"
}

# Take the port from the config AfterInstall wrote, if there is one.
load_conf() {
    if [ -r "$CONF" ]; then
        conf_port=$(sed -n 's/^port=//p' "$CONF" | tail -n 1)
        if [ -n "$conf_port" ]; then
            PORT=$conf_port
        fi
    fi
}

# True if $1 is a live (not zombie) process running our server.py.
is_server() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$1" 2>/dev/null || return 1
    if [ -d /proc/self ]; then
        # a zombie has an empty cmdline; a recycled pid runs something else
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'server\.py' || return 1
    fi
    return 0
}

# Print the pid of the running server, or fail.
server_pid() {
    [ -r "$PIDFILE" ] || return 1
    pid=$(sed -n '1p' "$PIDFILE" 2>/dev/null || true)
    is_server "$pid" || return 1
    printf '%s\n' "$pid"
}

# Stop the server if it runs; not running is fine.
stop_server() {
    if ! pid=$(server_pid); then
        rm -f "$PIDFILE"
        say "server is not running"
        return 0
    fi
    say "stopping server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    n=0
    while is_server "$pid"; do
        n=$((n + 1))
        if [ "$n" -gt 50 ]; then
            say "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
    say "server stopped"
}
