#!/usr/bin/env bash
# wait keeps waiting while the server is a hot standby in recovery, and succeeds promptly after
# pg_ctl promote; apply, waiting the same way on a connection it keeps open, applies its steps
# on that connection once the standby is promoted.
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
noticed=$T_NOTICED_MS

# apply: a second standby of the same primary.
t_on_exit "pg_stop '$work/standby2'"
standby2_port=$(pg_free_port)
pg_standby "$primary_port" "$work/standby2" "$standby2_port"
pg_start "$work/standby2"
mkdir "$T_DIR/steps"
printf 'CREATE TABLE after_promotion (id int);\n' >"$T_DIR/steps/V1__after_promotion.sql"
sed "s/port=$standby_port/port=$standby2_port/" "$T_DIR/pgstep.conf" >"$T_DIR/apply.conf"
"$PGSTEP_BIN" -c "$T_DIR/apply.conf" -d "$T_DIR/steps" --verbose apply \
    >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
T_BG_PID=$!
t_on_exit "kill $T_BG_PID 2>/dev/null"
t_still_waiting "server is in recovery"
pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$work/standby2" -w promote >/dev/null
t_ready_within 5000
t_stderr_has 'applied 1 step'
[ "$(pg_psql "$standby2_port" postgres -c 'SELECT count(*) FROM pgstep.history')" = 1 ] ||
    t_fail "the promoted standby's history does not hold the step once"
[ -n "$(pg_psql "$standby2_port" postgres -c "SELECT to_regclass('public.after_promotion')")" ] ||
    t_fail "the step's table is missing on the promoted standby"
t_ok "promotion noticed ${noticed} ms after pg_ctl promote returned; apply went on after a promotion"
