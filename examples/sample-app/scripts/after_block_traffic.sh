#!/bin/sh
# AfterBlockTraffic: runs from the previous revision's archive. The load balancer
# itself is handled by the controller; only the evidence line is written.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

# Variant knob: FAIL_AFTER_BLOCK at the bundle root makes this hook fail (after the host left its load
# balancers): on every host when the file is empty, else only on the hosts whose names it lists.
if [ -f "$BUNDLE_ROOT/FAIL_AFTER_BLOCK" ]; then
    if [ ! -s "$BUNDLE_ROOT/FAIL_AFTER_BLOCK" ] || grep -qx "$(hostname)" "$BUNDLE_ROOT/FAIL_AFTER_BLOCK"; then
        die "FAIL_AFTER_BLOCK is present in the bundle, failing on purpose on $(hostname)"
    fi
fi

say "nothing to do for the sample app"
