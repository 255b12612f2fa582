#!/usr/bin/env bash
# wait keeps waiting while the server is a hot standby in recovery, and succeeds promptly after
# pg_ctl promote.
. "$(dirname "$0")/../lib/testlib.sh"

t_own_server
work=$T_SERVER_WORK primary_port=$T_SERVER_PORT
t_on_exit "pg_stop '$work/standby'"
standby_port=$(pg_free_port)
pg_standby "$primary_port" "$work/standby" "$standby_port"
pg_start "$work/standby"
[ "$(pg_psql "$standby_port" postgres -c 'SELECT pg_is_in_recovery()')" = t ] ||
    t_fail "the standby is not in recovery"

cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$standby_port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; };
CONF
t_wait_in_background "$T_DIR/pgstep.conf"
t_still_waiting "server is in recovery"
pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$work/standby" -w promote >/dev/null
t_ready_within 1000
t_ok "promotion noticed ${T_NOTICED_MS} ms after pg_ctl promote returned"
