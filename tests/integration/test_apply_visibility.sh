#!/usr/bin/env bash
# Every step is visible while it runs: its applied line is written when it commits, not when the
# pipeline ends; pg_stat_activity shows the step's own statement behind a comment naming its file
# and line, never pgstep's bookkeeping; a step that waits for a lock gets a line naming the
# session that holds it; the server logs each statement of each step as an entry of its own.
. "$(dirname "$0")/../lib/testlib.sh"

# Two 2-second steps: two applied lines, about two seconds apart, each as its step commits.
db=$(t_db live)
mkdir "$T_DIR/live"
printf 'SELECT pg_sleep(2);\nCREATE TABLE vis_one (id int);\n' >"$T_DIR/live/V1__vis_sleep_one.sql"
printf 'SELECT pg_sleep(2);\n' >"$T_DIR/live/V2__vis_sleep_two.sql"
t_conf "$T_DIR/live.conf" "$db" 'log: { format = "json"; };'
"$PGSTEP_BIN" -c "$T_DIR/live.conf" -d "$T_DIR/live" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
t_on_exit "kill $runner 2>/dev/null"
query=''
for _ in $(seq 1 200); do
    query=$(t_psql "$db" "SELECT query FROM pg_stat_activity
                          WHERE datname = current_database() AND application_name = 'pgstep'
                            AND state = 'active' AND query LIKE '%pg_sleep%'")
    [ -n "$query" ] && break
    sleep 0.02
done
wait "$runner" || t_fail "apply of two sleeping steps failed"
[ "$query" = "/* pgstep V1__vis_sleep_one.sql:1 */ SELECT pg_sleep(2)" ] ||
    t_fail "pg_stat_activity showed [$query] during the first step"
python3 - "$T_DIR/stderr" <<'PY'
import datetime, json, sys
applied = {}
for line in open(sys.argv[1]):
    event = json.loads(line)
    if event["message"].startswith("applied V"):
        applied[event["step"]] = datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        assert event["duration_ms"] >= 1900, event
gap = (applied["V2__vis_sleep_two.sql"] - applied["V1__vis_sleep_one.sql"]).total_seconds()
assert gap >= 1.5, f"applied lines only {gap} s apart: {applied}"
print(f"applied lines {gap:.3f} s apart")
PY

# A step waiting for another session's lock: the progress line names that session's pid.
db=$(t_db lock)
t_psql "$db" "CREATE TABLE vis_locked (id int)" >/dev/null
mkdir "$T_DIR/lock"
printf 'INSERT INTO vis_locked VALUES (1);\n' >"$T_DIR/lock/V1__vis_insert.sql"
t_conf "$T_DIR/lock.conf" "$db" 'apply: { lock_timeout = 0; };'
PGAPPNAME=vis_blocker pg_psql "$PGSTEP_TEST_PORT" "$db" \
    -c "BEGIN; LOCK TABLE vis_locked; SELECT pg_sleep(30); COMMIT" >/dev/null 2>&1 &
blocker=$!
t_on_exit "kill $blocker 2>/dev/null"
blocker_pid=''
for _ in $(seq 1 200); do
    blocker_pid=$(t_psql "$db" "SELECT pid FROM pg_stat_activity WHERE application_name = 'vis_blocker'
                                  AND query LIKE '%pg_sleep(30)%'")
    [ -n "$blocker_pid" ] && break
    sleep 0.02
done
[ -n "$blocker_pid" ] || t_fail "the blocking session did not start"
"$PGSTEP_BIN" -c "$T_DIR/lock.conf" -d "$T_DIR/lock" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
t_on_exit "kill $runner 2>/dev/null"
started=$(t_now_ms)
seen=''
while [ $(($(t_now_ms) - started)) -lt 15000 ]; do
    if grep -q "still running V1__vis_insert.sql: [0-9]* s, waiting for a lock held by pid $blocker_pid (vis_blocker, active: .*LOCK TABLE vis_locked" "$T_DIR/stderr"; then
        seen=$(($(t_now_ms) - started))
        break
    fi
    sleep 0.1
done
[ -n "$seen" ] || t_fail "no line named the blocking session within 15 s"
t_psql "$db" "SELECT pg_terminate_backend($blocker_pid)" >/dev/null
wait "$runner" || t_fail "apply failed once the lock was released"
t_stderr_has 'applied V1__vis_insert.sql'
[ "$(t_psql "$db" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND application_name = 'pgstep'")" = 0 ] || t_fail "a connection was left open"

# With log_statement = 'all', each statement of each step is an entry of its own.
db=$(t_db log)
t_psql "$db" "ALTER DATABASE \"$db\" SET log_statement = 'all'" >/dev/null
mkdir "$T_DIR/log"
printf 'CREATE TABLE vis_log_a (id int);\nCREATE TABLE vis_log_b (id int);\n' >"$T_DIR/log/V1__vis_log_first.sql"
printf 'CREATE TABLE vis_log_c (id int);\n' >"$T_DIR/log/V2__vis_log_second.sql"
t_conf "$T_DIR/log.conf" "$db"
t_run 0 -c "$T_DIR/log.conf" -d "$T_DIR/log" apply
log=$PGSTEP_TEST_DATA/server.log
for entry in 'V1__vis_log_first.sql:1 \*/ CREATE TABLE vis_log_a \(id int\)$' \
    'V1__vis_log_first.sql:2 \*/ CREATE TABLE vis_log_b \(id int\)$' \
    'V2__vis_log_second.sql:1 \*/ CREATE TABLE vis_log_c \(id int\)$'; do
    grep -Eq "LOG: +(statement|execute [^:]*): /\* pgstep $entry" "$log" ||
        t_fail "the server log lacks an entry for /$entry/"
done
! grep -E 'vis_log_a.*vis_log_b|vis_log_b.*vis_log_c' "$log" >/dev/null ||
    t_fail "the server logged several statements as one entry"
t_ok "applied lines as each step commits; the step's statement shown and logged alone; blocker named after ${seen} ms"
