#!/usr/bin/env bash
# Through pgbouncer in transaction pooling mode, two pgstep runners started at once apply a set
# of 20 transactional steps: both exit 0 and every step runs and is recorded exactly once.
. "$(dirname "$0")/../lib/testlib.sh"

# shellcheck source=tests/lib/pgbouncer.sh
. "$(dirname "$0")/../lib/pgbouncer.sh"

db=$(t_db main)
t_psql "$db" "CREATE TABLE ran (version int NOT NULL, backend int NOT NULL)" >/dev/null
t_pgbouncer transaction 4
bport=$T_BOUNCER_PORT

mkdir "$T_DIR/steps"
for v in $(seq 1 20); do
    printf 'INSERT INTO ran VALUES (%d, pg_backend_pid());\nSELECT pg_sleep(0.05);\n' "$v" \
        >"$T_DIR/steps/V${v}__step_$v.sql"
done
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn "$db" "$bport")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
lock: { timeout = 60; };
CONF

start=$(t_now_ms)
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/a.out" 2>"$T_DIR/a.err" &
pid_a=$!
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/b.out" 2>"$T_DIR/b.err" &
pid_b=$!
t_on_exit "kill $pid_a $pid_b 2>/dev/null"
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
took=$(($(t_now_ms) - start))
cp "$T_DIR/a.err" "$T_DIR/stderr"
[ "$rc_a" = 0 ] || t_fail "runner a exited $rc_a (runner b: $rc_b)"
cp "$T_DIR/b.err" "$T_DIR/stderr"
[ "$rc_b" = 0 ] || t_fail "runner b exited $rc_b"
cat "$T_DIR/a.err" "$T_DIR/b.err" >"$T_DIR/stderr"

[ "$(t_psql "$db" "SELECT count(*), count(DISTINCT version), min(version), max(version)
                   FROM pgstep.history WHERE kind = 'V'")" = "20|20|1|20" ] ||
    t_fail "history is not one row for each of V1..V20: $(t_psql "$db" "SELECT version, count(*) FROM pgstep.history GROUP BY 1 ORDER BY 1")"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 20 ] || t_fail "history has extra rows"
[ "$(t_psql "$db" "SELECT count(*), count(DISTINCT version) FROM ran")" = "20|20" ] ||
    t_fail "the steps did not run exactly once each: $(t_psql "$db" "SELECT version, count(*) FROM ran GROUP BY 1 HAVING count(*) <> 1")"
applied=0
for r in a b; do
    n=$(t_applied_in "$T_DIR/$r.err")
    [ -n "$n" ] || t_fail "runner $r logged no summary"
    applied=$((applied + n))
done
[ "$applied" = 20 ] || t_fail "the runners report $applied applications in all, expected 20"
# Both ran at the same time: one of them met the other's lock or work.
contention=$(grep -Ec 'waiting for the advisory lock|applied by another runner meanwhile' \
    "$T_DIR/a.err" "$T_DIR/b.err" | awk -F: '{ s += $2 } END { print s }')
[ "$contention" -ge 1 ] || t_fail "the two runners never met: the test did not run them concurrently"
t_ok "two runners through pgbouncer (transaction pooling): 20 steps once each in ${took} ms," \
    "$contention contention events"
