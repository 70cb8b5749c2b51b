#!/bin/sh
# BeforeInstall: prepare the directories the app uses outside its install dir.
set -eu
HOOK_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$HOOK_DIR/lib.sh"
record_evidence

mkdir -p "$STATE_DIR" "$LOG_DIR" "$ETC_DIR" "$(dirname -- "$PIDFILE")"
say "directories ready: $STATE_DIR $LOG_DIR $ETC_DIR"
