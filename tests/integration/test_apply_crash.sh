#!/usr/bin/env bash
# The server crashes in the middle of a batch, after three steps committed without waiting for
# the WAL flush: crash recovery keeps the WAL that reached the kernel and takes back the rest,
# at least the last commit, whose WAL page was never completed. apply waits for the server to
# come back, finds from its history rows which of the three are gone, applies them again with
# the rest, and exits 0 with every step recorded exactly once. Then, on a new database, two
# crashes, the first before any result of the first batch arrived: the commits the run never
# heard of count as its own.
. "$(dirname "$0")/../lib/testlib.sh"

t_slow_flush_server
port=$T_SERVER_PORT

mkdir "$T_DIR/steps"
for i in 1 2 3; do
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >"$T_DIR/steps/V${i}__t_$i.sql"
done
# The notice makes the server send what it holds, the results of the three commits among them.
printf "DO \$\$ BEGIN RAISE NOTICE 'sleeping'; END \$\$;\nSELECT pg_sleep(2);\n" >"$T_DIR/steps/V4__sleep.sql"
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; };
CONF

# crash_during_sleep DB HISTORY [own]: once pgstep sleeps in a step and DB's history holds the
# versions HISTORY, kill a bystander's backend, or with "own" pgstep's, which then never sends
# the results it holds; either way the postmaster restarts every backend and recovers.
crash_during_sleep() {
    local state='' bystander victim='' who="query = 'SELECT pg_sleep(60)'"
    [ "${3:-}" = own ] && who="application_name = 'pgstep'"
    for _ in $(seq 1 400); do
        state=$(pg_psql "$port" "$1" -c "
            SELECT (SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = 'pgstep' AND wait_event = 'PgSleep') || '/' ||
                   CASE WHEN pg_catalog.to_regclass('pgstep.history') IS NULL THEN ''
                        ELSE (SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '')
                              FROM pgstep.history) END" 2>/dev/null || true)
        [ "$state" = "1/$2" ] && break
        sleep 0.05
    done
    [ "$state" = "1/$2" ] || t_fail "pgstep never slept with history '$2' in $1 (last: $state)"
    pg_psql "$port" postgres -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
    bystander=$!
    for _ in $(seq 1 100); do
        victim=$(pg_psql "$port" postgres -c "SELECT pid FROM pg_stat_activity WHERE $who")
        [ -n "$victim" ] && break
        sleep 0.01
    done
    [ -n "$victim" ] || t_fail "the backend to kill was not found"
    kill -KILL "$victim"
    wait "$bystander" 2>/dev/null || true
}
history_of() {
    pg_psql "$port" "$1" -c "SELECT string_agg(version::text, ',' ORDER BY version) FROM pgstep.history"
}

"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
crash_during_sleep postgres 1,2,3
rc=0
wait "$runner" || rc=$?
[ "$rc" = 0 ] || { cat "$T_DIR/stderr" >&2; t_fail "apply exited $rc after the crash, expected 0"; }
t_stderr_has 'retrying V4__sleep.sql after a transient error'
t_stderr_has '[123] of the steps committed before the connection was lost are gone with it'
[ "$(history_of postgres)" = 1,2,3,4 ] || t_fail "history after the crash: $(history_of postgres)"
tables=$(pg_psql "$port" postgres -c "SELECT count(*) FROM pg_class WHERE relname IN ('t_1', 't_2', 't_3')")
[ "$tables" = 3 ] || t_fail "$tables of the 3 tables exist after the crash"

# Two crashes; the first kills pgstep's own backend.
pg_psql "$port" postgres -c "CREATE DATABASE twice" >/dev/null
mkdir "$T_DIR/steps2"
for i in 1 2 3 5 6 7; do
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >"$T_DIR/steps2/V${i}__t_$i.sql"
done
printf 'SELECT pg_sleep(2);\nCREATE TABLE t_4 (id int);\n' >"$T_DIR/steps2/V4__sleep.sql"
printf 'SELECT pg_sleep(2);\nCREATE TABLE t_8 (id int);\n' >"$T_DIR/steps2/V8__sleep.sql"
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" --dsn "$(t_dsn twice "$port")" -d "$T_DIR/steps2" apply \
    >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
crash_during_sleep twice 1,2,3 own
crash_during_sleep twice 1,2,3,4,5,6,7
rc=0
wait "$runner" || rc=$?
[ "$rc" = 0 ] || { cat "$T_DIR/stderr" >&2; t_fail "apply exited $rc after two crashes, expected 0"; }
t_stderr_lacks 'applied by another runner'
[ "$(history_of twice)" = 1,2,3,4,5,6,7,8 ] || t_fail "history after two crashes: $(history_of twice)"
tables=$(pg_psql "$port" twice -c "SELECT count(*) FROM pg_class WHERE relname LIKE 't\_%'")
[ "$tables" = 8 ] || t_fail "$tables of the 8 tables exist after two crashes"
t_ok "the steps crashes took back were applied again, each recorded once"
