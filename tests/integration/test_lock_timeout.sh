#!/usr/bin/env bash
# While another session holds pgstep's advisory lock, apply waits lock.timeout seconds without
# holding a transaction open, then exits 75 having applied nothing; it applies promptly once the
# lock is released within lock.timeout; and a different lock.name is not blocked by it.
. "$(dirname "$0")/../lib/testlib.sh"

# The key pgstep derives from a lock name: BLAKE2b-64 of "pgstep lock NAME", big-endian, signed.
lock_key() {
    python3 -c 'import hashlib, sys
print(int.from_bytes(hashlib.blake2b(b"pgstep lock " + sys.argv[1].encode(), digest_size=8).digest(), "big", signed=True))' "$1"
}

db=$(t_db main)
key=$(lock_key pgstep)

# A psql session holds the lock (session level) until its backend is terminated.
PGAPPNAME=pgstep_locker pg_psql "$PGSTEP_TEST_PORT" "$db" \
    -c "SELECT pg_advisory_lock($key)" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
locker=$!
release_lock() {
    t_psql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = 'pgstep_locker'" >/dev/null
}
t_on_exit "kill $locker 2>/dev/null; release_lock"
held=0
for _ in $(seq 1 100); do
    held=$(t_psql "$db" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                         WHERE a.application_name = 'pgstep_locker' AND l.locktype = 'advisory'
                           AND l.granted")
    [ "$held" = 1 ] && break
    sleep 0.1
done
[ "$held" = 1 ] || t_fail "the psql session did not take the advisory lock"

mkdir "$T_DIR/steps"
printf 'CREATE TABLE lock_marker (id int);\n' >"$T_DIR/steps/V1__marker.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'lock: { timeout = 2; };'

# 1. The lock is held throughout: exit 75 after about 2 s, nothing applied, and the backend is
#    idle (no transaction open) while pgstep waits. Each attempt opens a transaction for the
#    moment it takes to try the lock, which a sample may catch on a busy machine (the backend
#    is idle in transaction between two messages of the attempt); the same transaction seen
#    twice, 50 ms apart, would be one held while waiting.
start=$(t_now_ms)
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
samples=0 idle=0 in_xact=0 states="" last_xact=""
while kill -0 "$pid" 2>/dev/null; do
    st=$(t_psql "$db" "SELECT state || '|' || (xact_start IS NULL) || '|' || coalesce(xact_start::text, '')
                       FROM pg_stat_activity
                       WHERE application_name = 'pgstep' AND datname = current_database()")
    if [ -n "$st" ]; then
        samples=$((samples + 1))
        xact=${st##*|}
        case "$st" in
        "idle|true|") idle=$((idle + 1)) ;;
        "idle in transaction|"*) [ "$xact" != "$last_xact" ] || in_xact=$((in_xact + 1)) ;;
        esac
        last_xact=$xact
        st=${st%|*}
        states="$states ${st// /_}"
    fi
    sleep 0.05
done
rc=0
wait "$pid" || rc=$?
elapsed=$(($(t_now_ms) - start))
[ "$rc" = 75 ] || t_fail "apply with the lock held exited $rc, expected 75"
[ "$elapsed" -ge 1900 ] || t_fail "gave up on the lock after ${elapsed} ms, before lock.timeout = 2 s"
[ "$elapsed" -lt 5000 ] || t_fail "gave up on the lock only after ${elapsed} ms (lock.timeout = 2 s)"
t_stderr_has 'could not obtain the advisory lock within 2 s'
t_stderr_has 'waiting for the advisory lock'
[ "$samples" -ge 3 ] || t_fail "the pgstep backend was seen only $samples times while it waited:$states"
[ "$in_xact" = 0 ] || t_fail "the pgstep backend held a transaction open while it waited:$states"
[ $((idle * 10)) -ge $((samples * 8)) ] ||
    t_fail "the pgstep backend was idle in only $idle of $samples samples while it waited:$states"
[ -z "$(t_psql "$db" "SELECT to_regclass('public.lock_marker')")" ] ||
    t_fail "the step ran although the lock was never obtained"
if [ -n "$(t_psql "$db" "SELECT to_regclass('pgstep.history')")" ]; then
    [ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 0 ] ||
        t_fail "history rows were written although the lock was never obtained"
fi
waited=$elapsed

# 2. Another lock.name is not blocked by the held lock.
t_conf "$T_DIR/other.conf" "$db" 'lock: { name = "other-runner-group"; timeout = 2; };'
start=$(t_now_ms)
t_run 0 -c "$T_DIR/other.conf" -d "$T_DIR/steps" apply
other=$(($(t_now_ms) - start))
[ "$other" -lt 5000 ] || t_fail "apply under another lock.name took ${other} ms"
t_stderr_lacks 'waiting for the advisory lock'
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history WHERE version = 1")" = 1 ] ||
    t_fail "V1 was not recorded under another lock.name"

# 3. The lock is released while pgstep waits with a longer lock.timeout: it applies promptly.
printf 'CREATE TABLE lock_marker2 (id int);\n' >"$T_DIR/steps/V2__marker2.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'lock: { timeout = 60; };'
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
for _ in $(seq 1 100); do
    grep -q 'waiting for the advisory lock' "$T_DIR/stderr" && break
    sleep 0.1
done
t_stderr_has 'waiting for the advisory lock'
sleep 1
kill -0 "$pid" 2>/dev/null || t_fail "apply did not wait for the held lock"
release_lock
released=$(t_now_ms)
rc=0
wait "$pid" || rc=$?
after=$(($(t_now_ms) - released))
[ "$rc" = 0 ] || t_fail "apply exited $rc after the lock was released, expected 0"
[ "$after" -lt 3000 ] || t_fail "apply finished ${after} ms after the lock was released"
[ -n "$(t_psql "$db" "SELECT to_regclass('public.lock_marker2')")" ] || t_fail "V2 did not run"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history WHERE version = 2")" = 1 ] ||
    t_fail "V2 was not recorded once"
t_ok "held lock: exit 75 after ${waited} ms, idle in $idle/$samples samples; other lock.name" \
    "applied in ${other} ms; released lock: applied ${after} ms after release"
