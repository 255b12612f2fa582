#!/usr/bin/env bash
# Transient errors are retried: a step that hits apply.lock_timeout (55P03) is retried and
# succeeds once the other session lets go; when the lock outlasts apply.retries pgstep exits 75
# with nothing recorded for that step and earlier steps kept; when pgstep's backend is killed
# mid-step it reconnects, reruns the step and records it exactly once; and when it is terminated
# while pgstep reads the history, before any step, that read is retried on a new connection too
# (it used to end the run at once: exit 75 for a lost connection, or 1, as if a step had
# failed, when the server's 57P01 arrived first).
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db main)
t_psql "$db" "CREATE TABLE t (id int)" >/dev/null

hold_table() {
    PGAPPNAME=pgstep_tlocker pg_psql "$PGSTEP_TEST_PORT" "$db" \
        -c "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)" >/dev/null 2>&1 &
    locker=$!
    t_on_exit "kill $locker 2>/dev/null"
    local held=0
    for _ in $(seq 1 100); do
        held=$(t_psql "$db" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                             WHERE a.application_name = 'pgstep_tlocker' AND l.granted
                               AND l.relation = 'public.t'::regclass
                               AND l.mode = 'AccessExclusiveLock'")
        [ "$held" = 1 ] && return 0
        sleep 0.1
    done
    t_fail "the psql session did not lock table t"
}
release_table() {
    t_psql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = 'pgstep_tlocker'" >/dev/null
}
t_on_exit "release_table"
recorded() { t_psql "$db" "SELECT count(*) FROM pgstep.history WHERE version = $1"; }
wait_for_stderr() {
    for _ in $(seq 1 150); do
        grep -Eq -- "$1" "$T_DIR/stderr" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    t_fail "stderr never showed /$1/"
}

mkdir "$T_DIR/steps"
printf 'CREATE TABLE before_lock (id int);\n' >"$T_DIR/steps/V1__before.sql"
printf 'ALTER TABLE t ADD COLUMN added int;\n' >"$T_DIR/steps/V2__alter.sql"
printf 'CREATE TABLE after_lock (id int);\n' >"$T_DIR/steps/V3__after.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'apply: { lock_timeout = 1; retries = 5; };'

# 1. The table is locked for about 2 s after the first failure: retried, then applied.
hold_table
start=$(t_now_ms)
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
wait_for_stderr 'warn: retrying V2__alter.sql'
sleep 2
kill -0 "$pid" 2>/dev/null || t_fail "apply ended while table t was still locked"
release_table
released=$(t_now_ms)
rc=0
wait "$pid" || rc=$?
after=$(($(t_now_ms) - released))
total=$(($(t_now_ms) - start))
[ "$rc" = 0 ] || t_fail "apply exited $rc after the table lock was released, expected 0"
retries=$(grep -c 'retrying V2__alter.sql' "$T_DIR/stderr" || true)
[ "$retries" -ge 2 ] || t_fail "V2 was retried only $retries times while t was locked for 2 s"
t_stderr_has 'retrying V2__alter.sql .*SQLSTATE 55P03'
[ "$after" -lt 3000 ] || t_fail "apply finished ${after} ms after the table lock was released"
for v in 1 2 3; do
    [ "$(recorded $v)" = 1 ] || t_fail "V$v is recorded $(recorded $v) times, expected once"
done
[ "$(t_psql "$db" "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'added'")" = 1 ] ||
    t_fail "V2's column is missing"
first="$retries retries, exit 0 ${after} ms after release (${total} ms in all)"

# 2. The table stays locked: with retries = 1, exit 75; V4 kept, V5 not recorded, V6 not tried.
printf 'CREATE TABLE kept (id int);\n' >"$T_DIR/steps/V4__kept.sql"
printf 'LOCK TABLE t IN ACCESS EXCLUSIVE MODE;\nCREATE TABLE behind_lock (id int);\n' \
    >"$T_DIR/steps/V5__lock.sql"
printf 'CREATE TABLE never (id int);\n' >"$T_DIR/steps/V6__never.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'apply: { lock_timeout = 1; retries = 1; };'
hold_table
start=$(t_now_ms)
t_run 75 -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
gave_up=$(($(t_now_ms) - start))
[ "$(grep -c 'retrying V5__lock.sql' "$T_DIR/stderr" || true)" = 1 ] ||
    t_fail "V5 was not retried exactly once with retries = 1"
t_stderr_has 'Gave up on V5__lock.sql after 1 retries'
t_stderr_has 'Exit code 75\.'
[ "$gave_up" -lt 8000 ] || t_fail "giving up took ${gave_up} ms"
[ "$(recorded 4)" = 1 ] || t_fail "V4, before the failing step, was not kept"
[ "$(recorded 5)" = 0 ] || t_fail "V5 was recorded although it never got the table lock"
[ "$(recorded 6)" = 0 ] || t_fail "V6, after the failing step, was recorded"
[ -z "$(t_psql "$db" "SELECT to_regclass('public.behind_lock')")" ] || t_fail "V5 was not rolled back"
[ -z "$(t_psql "$db" "SELECT to_regclass('public.never')")" ] || t_fail "V6 ran"
release_table
rm "$T_DIR/steps/V5__lock.sql" "$T_DIR/steps/V6__never.sql"

# terminate_pgstep_when CONDITION WHAT: terminates pgstep's backend in $db once it matches
# CONDITION (on pg_stat_activity), polling for 10 s; fails naming WHAT if it never does.
terminate_pgstep_when() {
    local killed=0
    for _ in $(seq 1 100); do
        killed=$(t_psql postgres "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                  WHERE application_name = 'pgstep' AND datname = '$db' AND $1")
        [ "$killed" = 1 ] && return 0
        sleep 0.1
    done
    t_fail "pgstep's backend was never seen $2"
}

# 3. pgstep's backend is terminated while a step runs: reconnect, rerun, record once.
printf 'CREATE TABLE conn_marker (id int);\nSELECT pg_sleep(3);\n' >"$T_DIR/steps/V7__slow.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'apply: { retries = 3; };'
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
terminate_pgstep_when "state = 'active' AND query LIKE '%SELECT pg_sleep(3)%'" "running V7's pg_sleep"
killed_at=$(t_now_ms)
rc=0
wait "$pid" || rc=$?
after=$(($(t_now_ms) - killed_at))
[ "$rc" = 0 ] || t_fail "apply exited $rc after its backend was terminated, expected 0"
t_stderr_has 'retrying V7__slow.sql'
[ "$after" -ge 2500 ] || t_fail "apply ended ${after} ms after the kill: V7 cannot have rerun"
[ "$after" -lt 10000 ] || t_fail "apply ended only ${after} ms after its backend was terminated"
[ "$(recorded 7)" = 1 ] || t_fail "V7 is recorded $(recorded 7) times, expected once"
[ -n "$(t_psql "$db" "SELECT to_regclass('public.conn_marker')")" ] || t_fail "V7's table is missing"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 5 ] ||
    t_fail "history has $(t_psql "$db" "SELECT count(*) FROM pgstep.history") rows, expected 5"
t_ok "lock_timeout: $first; retries exhausted: exit 75 after ${gave_up} ms;" \
    "backend terminated: rerun, exit 0 ${after} ms later, recorded once"

# 4. pgstep's backend is terminated while it reads the history (held up by a session that locks
# the history table): the read is retried on a new connection, and the pending step applied.
printf 'CREATE TABLE read_marker (id int);\n' >"$T_DIR/steps/V8__after_read.sql"
PGAPPNAME=pgstep_hlocker pg_psql "$PGSTEP_TEST_PORT" "$db" \
    -c "BEGIN; LOCK TABLE pgstep.history IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)" >/dev/null 2>&1 &
hlocker=$!
t_on_exit "kill $hlocker 2>/dev/null"
for _ in $(seq 1 100); do
    [ "$(t_psql "$db" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                       WHERE a.application_name = 'pgstep_hlocker' AND l.granted
                         AND l.relation = 'pgstep.history'::regclass")" = 1 ] && break
    sleep 0.1
done
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
terminate_pgstep_when "wait_event_type = 'Lock'" "waiting to read the history"
t_psql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = 'pgstep_hlocker'" >/dev/null
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || t_fail "apply exited $rc after its backend was terminated during the history read, expected 0"
# Whether the server's "terminating connection" (57P01) is read before the socket closes
# (08006) is a race; either is a lost connection, retried.
t_stderr_has 'retrying the read of the history after a transient error \(SQLSTATE (57P01|08006)'
[ "$(recorded 8)" = 1 ] || t_fail "V8 is recorded $(recorded 8) times, expected once"
t_ok "backend terminated while reading the history: read again, exit 0"
