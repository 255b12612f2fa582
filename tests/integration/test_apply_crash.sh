#!/usr/bin/env bash
# The server crashes in the middle of a batch, after three steps committed without waiting for
# the WAL flush: crash recovery keeps the WAL that reached the kernel and takes back the rest,
# at least the last commit, whose WAL page was never completed. apply waits for the server to
# come back, finds from its history rows which of the three are gone, applies them again with
# the rest, and exits 0 with every step recorded exactly once.
. "$(dirname "$0")/../lib/testlib.sh"

work=$(pg_make_dir)
port=$(pg_free_port)
pg_as_owner mkdir -m 700 "$work/data"
t_on_exit "pg_stop '$work/data'; rm -rf '$work'"
pg_init "$work/data" "$port"
pg_slow_flush "$work/data"
pg_start "$work/data"
pg_prime_wal_writer "$port"

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

# A bystander whose backend is killed: the postmaster then restarts every backend and recovers.
pg_psql "$port" postgres -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
bystander=$!
t_on_exit "kill $bystander 2>/dev/null || true"
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
sleeping=
for _ in $(seq 1 200); do
    sleeping=$(pg_psql "$port" postgres -c "SELECT count(*) FROM pg_stat_activity
                                            WHERE application_name = 'pgstep'
                                              AND wait_event = 'PgSleep'" 2>/dev/null || true)
    [ "$sleeping" = 1 ] && break
    sleep 0.05
done
[ "$sleeping" = 1 ] || t_fail "pgstep never reached the sleeping step"
victim=$(pg_psql "$port" postgres -c "SELECT pid FROM pg_stat_activity
                                      WHERE query = 'SELECT pg_sleep(60)'")
[ -n "$victim" ] || t_fail "the bystander's backend was not found"
kill -KILL "$victim"

rc=0
wait "$runner" || rc=$?
[ "$rc" = 0 ] || { cat "$T_DIR/stderr" >&2; t_fail "apply exited $rc after the crash, expected 0"; }
t_stderr_has 'retrying V4__sleep.sql after a transient error'
t_stderr_has '[123] of the steps committed before the connection was lost are gone with it'
recorded=$(pg_psql "$port" postgres -c "SELECT string_agg(version::text, ',' ORDER BY version)
                                        FROM pgstep.history")
[ "$recorded" = 1,2,3,4 ] || t_fail "history after the crash: $recorded, expected 1,2,3,4"
tables=$(pg_psql "$port" postgres -c "SELECT count(*) FROM pg_class WHERE relname IN ('t_1', 't_2', 't_3')")
[ "$tables" = 3 ] || t_fail "$tables of the 3 tables exist after the crash"
t_ok "the steps a crash took back were applied again, each recorded once"
