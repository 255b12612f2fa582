#!/usr/bin/env bash
# wait keeps waiting while the server is a hot standby in recovery, and succeeds promptly after
# pg_ctl promote.
. "$(dirname "$0")/../lib/testlib.sh"

work=$(pg_make_dir)
primary_port=$(pg_free_port)
pg_as_owner mkdir -m 700 "$work/primary"
pg_init "$work/primary" "$primary_port"
pg_start "$work/primary"
t_on_exit "pg_stop '$work/primary'; pg_stop '$work/standby'; rm -rf '$work'"
standby_port=$(pg_free_port)
pg_standby "$primary_port" "$work/standby" "$standby_port"
pg_start "$work/standby"
[ "$(pg_psql "$standby_port" postgres -c 'SELECT pg_is_in_recovery()')" = t ] ||
    t_fail "the standby is not in recovery"

cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$standby_port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; };
CONF
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" --verbose wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
sleep 2
kill -0 "$pid" 2>/dev/null || t_fail "pgstep stopped waiting while the server was a standby"
grep -q "server is in recovery" "$T_DIR/stderr" || t_fail "the reason (in recovery) was not logged"
pg_as_owner "$PG_BINDIR/pg_ctl" -D "$work/standby" -w promote >/dev/null
promoted=$(t_now_ms)
rc=0
wait "$pid" || rc=$?
noticed=$(($(t_now_ms) - promoted))
[ "$rc" = 0 ] || t_fail "wait exited $rc after promotion"
[ "$noticed" -lt 1000 ] || t_fail "promotion noticed only after ${noticed} ms"
t_ok "promotion noticed ${noticed} ms after pg_ctl promote returned"
