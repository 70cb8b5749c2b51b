#!/bin/sh
# AfterBlockTraffic: runs from the previous revision's archive. The load balancer
# itself is handled by the controller; only the evidence line is written.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

say "nothing to do for the sample app"
