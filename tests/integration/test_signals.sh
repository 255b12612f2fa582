#!/usr/bin/env bash
# SIGTERM and SIGINT end a wait promptly with 143 and 130, and a running step is cancelled and
# rolled back.
. "$(dirname "$0")/../lib/testlib.sh"

# signal_and_wait SIG PID: sends SIG to PID and waits for it; sets rc (its exit code) and took
# (milliseconds from the signal to the exit).
signal_and_wait() {
    local sent
    sent=$(t_now_ms)
    kill -"$1" "$2"
    rc=0
    wait "$2" || rc=$?
    took=$(($(t_now_ms) - sent))
}

port=$(pg_free_port)
cat >"$T_DIR/down.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; };
wait: { timeout = 60; };
CONF
for sig in TERM:143 INT:130; do
    "$PGSTEP_BIN" -c "$T_DIR/down.conf" wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
    pid=$!
    sleep 0.5
    signal_and_wait "${sig%:*}" "$pid"
    [ "$rc" = "${sig#*:}" ] || t_fail "SIG${sig%:*} during wait: exit $rc, expected ${sig#*:}"
    [ "$took" -lt "$(t_ms 1000)" ] || t_fail "SIG${sig%:*} took ${took} ms to end the wait"
done

db=$(t_db cancel)
mkdir "$T_DIR/steps"
printf 'CREATE TABLE slow_marker (id int);\nSELECT pg_sleep(60);\n' >"$T_DIR/steps/V1__slow.sql"
t_conf "$T_DIR/pgstep.conf" "$db"
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
running() {
    t_psql "$db" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                  AND state = 'active' AND application_name = 'pgstep' AND wait_event = 'PgSleep'"
}
for _ in $(seq 1 100); do
    [ "$(running)" = 1 ] && break
    sleep 0.1
done
[ "$(running)" = 1 ] || t_fail "the step never ran"
signal_and_wait TERM "$pid"
[ "$rc" = 143 ] || t_fail "SIGTERM during a step: exit $rc, expected 143"
[ "$took" -lt "$(t_ms 2000)" ] || t_fail "SIGTERM took ${took} ms to end the step"
cancelled=$took
# The cancelled backend may linger a moment as it exits, but its query is no longer running.
[ "$(running)" = 0 ] ||
    t_fail "the step's query is still running on the server"
[ -z "$(t_psql "$db" "SELECT to_regclass('public.slow_marker')")" ] || t_fail "the step was not rolled back"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 0 ] || t_fail "the cancelled step was recorded"

# A server that does not answer the cancel (its backend stopped) does not keep pgstep alive.
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
for _ in $(seq 1 100); do
    [ "$(running)" = 1 ] && break
    sleep 0.1
done
backend=$(t_psql "$db" "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                        AND application_name = 'pgstep' AND wait_event = 'PgSleep'")
[ -n "$backend" ] || t_fail "the step never ran (second time)"
kill -STOP "$backend"
t_on_exit "kill -CONT $backend 2>/dev/null"
signal_and_wait TERM "$pid"
stuck=$took
kill -CONT "$backend"
[ "$rc" = 143 ] || t_fail "SIGTERM with a stopped backend: exit $rc, expected 143"
[ "$stuck" -lt "$(t_ms 6000)" ] || t_fail "SIGTERM with a stopped backend took ${stuck} ms"
t_ok "signals end wait and apply promptly; cancelled step rolled back in ${cancelled} ms; ${stuck} ms with an unresponsive server"

# A signal while the step set loads (large files, read and split before connecting) ends the
# run promptly too, not once everything is loaded.
mkdir "$T_DIR/large"
for i in $(seq 1 40); do
    { yes 'SELECT 1;' || true; } | head -c $((2 * 1024 * 1024)) >"$T_DIR/large/V${i}__large.sql"
done
"$PGSTEP_BIN" -c "$T_DIR/down.conf" -d "$T_DIR/large" verify >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
sleep 0.3
signal_and_wait TERM "$pid"
rm -r "$T_DIR/large"
[ "$rc" = 143 ] || t_fail "SIGTERM while loading: exit $rc, expected 143"
[ "$took" -lt "$(t_ms 1500)" ] || t_fail "SIGTERM took ${took} ms to end the load"
t_ok "a signal ends loading the step set in ${took} ms"
