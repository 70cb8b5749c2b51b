#!/bin/sh
# AfterInstall: check what Install put in place and write the app config.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

[ -f "$APP_ROOT/server.py" ] || die "$APP_ROOT/server.py is missing after Install"
installed=$(sed -n '1{s/[[:space:]]//g;p;q;}' "$APP_ROOT/VERSION" 2>/dev/null || true)
[ "$installed" = "$REVISION" ] ||
    die "$APP_ROOT/VERSION holds '$installed', expected '$REVISION'"

mkdir -p "$ETC_DIR"
cat >"$CONF.tmp" <<CONF
# written by AfterInstall of deployment ${DEPLOYMENT_ID:--}
revision=$REVISION
deployment_id=${DEPLOYMENT_ID:--}
port=$PORT
CONF
mv -f "$CONF.tmp" "$CONF"
say "wrote $CONF"
