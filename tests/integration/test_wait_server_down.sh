#!/usr/bin/env bash
# wait keeps waiting while nothing listens on the port, and succeeds within a second of the
# server having started.
. "$(dirname "$0")/../lib/testlib.sh"

work=$(pg_make_dir)
port=$(pg_free_port)
pg_as_owner mkdir -m 700 "$work/data"
pg_init "$work/data" "$port"
t_on_exit "pg_stop '$work/data'; rm -rf '$work'"

cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; };
CONF
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" --verbose wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
sleep 2
kill -0 "$pid" 2>/dev/null || t_fail "pgstep stopped waiting while the server was down"
grep -q "Connection refused" "$T_DIR/stderr" || t_fail "the reason (connection refused) was not logged"
pg_start "$work/data"
started=$(t_now_ms)
rc=0
wait "$pid" || rc=$?
noticed=$(($(t_now_ms) - started))
[ "$rc" = 0 ] || t_fail "wait exited $rc after the server started"
[ "$noticed" -lt 1000 ] || t_fail "wait noticed the started server only after ${noticed} ms"
t_ok "server start noticed ${noticed} ms after pg_ctl -w returned"
