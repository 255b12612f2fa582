#!/usr/bin/env bash
# wait returns at once against a ready primary, and apply's first phase is the same wait.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db ready)
t_conf "$T_DIR/pgstep.conf" "$db"
start=$(t_now_ms)
t_run 0 -c "$T_DIR/pgstep.conf" wait
elapsed=$(($(t_now_ms) - start))
t_stderr_has "primary is writable"
[ "$elapsed" -lt "$(t_ms 2000)" ] || t_fail "wait against a ready primary took ${elapsed} ms"
t_ok "ready primary noticed in ${elapsed} ms"
