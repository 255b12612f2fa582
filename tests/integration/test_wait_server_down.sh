#!/usr/bin/env bash
# wait keeps waiting while nothing listens on the port, and succeeds within a second of the
# server having started.
. "$(dirname "$0")/../lib/testlib.sh"

pg_throwaway
work=$PG_WORK port=$PG_PORT
t_on_exit "pg_discard '$work'"

cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; };
CONF
t_wait_in_background "$T_DIR/pgstep.conf"
t_still_waiting "Connection refused"
pg_start "$work/data"
t_ready_within 1000
t_ok "server start noticed ${T_NOTICED_MS} ms after pg_ctl -w returned"
