#!/bin/sh
# ApplicationStop (runs from the previous revision's archive): stop the server.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

stop_server
