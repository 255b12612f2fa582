# shellcheck shell=bash
# Helpers for integration tests: the shared server, scratch directories, running pgstep and
# checking what it did. Source it first thing; it sets -euo pipefail.
set -euo pipefail

T_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/pg.sh
. "$T_LIB/pg.sh"

: "${PGSTEP_BIN:?PGSTEP_BIN must name the pgstep binary}"
: "${PGSTEP_TEST_STATE:?PGSTEP_TEST_STATE must name the fixture directory}"
[ -f "$PGSTEP_TEST_STATE/env" ] || { echo "the test server fixture is not running" >&2; exit 1; }
# shellcheck disable=SC1091
. "$PGSTEP_TEST_STATE/env"

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-$T_NAME.XXXXXX")
T_CLEANUPS=()
t_cleanup() {
    local rc=$?
    for ((i = ${#T_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${T_CLEANUPS[i]}" || true; done
    rm -rf "$T_DIR"
    exit $rc
}
trap t_cleanup EXIT
# t_on_exit COMMAND: run COMMAND when the test ends, pass or fail (last registered runs first).
t_on_exit() { T_CLEANUPS+=("$1"); }

# Every test says which server it runs against, and a failure names its major version.
echo "server: $PGSTEP_TEST_SERVER_VERSION"

t_fail() {
    echo "FAIL [$T_NAME, PostgreSQL $PGSTEP_TEST_SERVER_MAJOR] $*" >&2
    for f in "$T_DIR/stdout" "$T_DIR/stderr"; do
        [ -s "$f" ] && { echo "--- $(basename "$f"):" >&2; tail -n 40 "$f" >&2; }
    done
    exit 1
}

t_ok() { echo "ok [$T_NAME, PostgreSQL $PGSTEP_TEST_SERVER_MAJOR] $*"; }

# t_psql DB SQL: run SQL on the shared server as the superuser, print the result.
t_psql() { pg_psql "$PGSTEP_TEST_PORT" "$1" -c "$2"; }

# t_db NAME: a fresh database on the shared server, dropped at exit.
t_db() {
    local db="${T_NAME}_$1"
    t_psql postgres "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    t_psql postgres "CREATE DATABASE \"$db\"" >/dev/null
    t_on_exit "pg_psql $PGSTEP_TEST_PORT postgres -c 'DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)' >/dev/null"
    echo "$db"
}

# t_dsn DB [PORT]: a connection string without a password (that comes from the password file).
t_dsn() { echo "host=127.0.0.1 port=${2:-$PGSTEP_TEST_PORT} user=postgres dbname=$1"; }

# t_conf FILE DB [extra libconfig text]: a configuration file for the shared server.
t_conf() {
    local file=$1 db=$2
    shift 2
    cat >"$file" <<CONF
connection: {
  conninfo = "$(t_dsn "$db")";
  password_file = "$PGSTEP_TEST_PASSFILE";
};
$*
CONF
}

# t_run EXPECTED_EXIT ARGS...: run pgstep, keep stdout/stderr in $T_DIR, check the exit code.
t_run() {
    local expected=$1 rc=0
    shift
    "$PGSTEP_BIN" "$@" >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
    [ "$rc" = "$expected" ] || t_fail "pgstep $* exited $rc, expected $expected"
}

# t_start_together N MAX_JITTER_MS ARGS...: N runs of pgstep ARGS started at once, each after a
# delay below MAX_JITTER_MS drawn from RANDOM (a seeded test replays the same delays), each
# keeping its output in $T_DIR/out.I and $T_DIR/err.I. Their pids are in T_TOGETHER_PIDS; they
# are killed if the test ends first.
T_TOGETHER_PIDS=()
t_start_together() {
    local n=$1 jitter=$2 i delay
    shift 2
    if [ -z "${T_TOGETHER_KILL:-}" ]; then
        T_TOGETHER_KILL=1
        t_on_exit '[ ${#T_TOGETHER_PIDS[@]} = 0 ] || kill "${T_TOGETHER_PIDS[@]}" 2>/dev/null'
    fi
    for i in $(seq 1 "$n"); do
        delay=0
        [ "$jitter" -le 0 ] || delay=$((RANDOM % jitter))
        if [ "$delay" = 0 ]; then
            "$PGSTEP_BIN" "$@" >"$T_DIR/out.$i" 2>"$T_DIR/err.$i" &
        else
            (sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))" &&
                exec "$PGSTEP_BIN" "$@") >"$T_DIR/out.$i" 2>"$T_DIR/err.$i" &
        fi
        T_TOGETHER_PIDS+=($!)
    done
}

# t_wait_together: waits for the runs t_start_together started; their exit codes, in order, are
# in T_TOGETHER_RCS.
t_wait_together() {
    local pid rc
    T_TOGETHER_RCS=()
    for pid in "${T_TOGETHER_PIDS[@]}"; do
        rc=0
        wait "$pid" || rc=$?
        T_TOGETHER_RCS+=("$rc")
    done
    T_TOGETHER_PIDS=()
}

# t_run_together N ARGS...: N runs of pgstep ARGS started at once (see t_start_together); every
# one must exit 0.
t_run_together() {
    local n=$1 i
    shift
    t_start_together "$n" 0 "$@"
    t_wait_together
    for i in $(seq 1 "$n"); do
        [ "${T_TOGETHER_RCS[$((i - 1))]}" = 0 ] ||
            { cat "$T_DIR/err.$i" >&2; t_fail "runner $i of $n exited ${T_TOGETHER_RCS[$((i - 1))]}"; }
    done
}

# t_applied_in FILE: the number of steps a run applied, from the summary line of its log (text
# format) in FILE; nothing if it logged no summary.
t_applied_in() {
    sed -nE 's/.*info: applied ([0-9]+) steps?(,| \().*skipped .*/\1/p; s/.*info: nothing to apply: .*/0/p' "$1" |
        tail -n 1
}

# t_stderr_has PATTERN / t_stdout_has PATTERN / t_stderr_lacks PATTERN: grep -E checks.
t_stderr_has() { grep -Eq -- "$1" "$T_DIR/stderr" || t_fail "stderr lacks /$1/"; }
t_stdout_has() { grep -Eq -- "$1" "$T_DIR/stdout" || t_fail "stdout lacks /$1/"; }
t_stderr_lacks() { ! grep -Eq -- "$1" "$T_DIR/stderr" || t_fail "stderr has /$1/"; }

# t_tripwire: starts a loopback listener that records every connection made to it in
# $T_DIR/tripwire and closes it at once; its port is in T_TRIPWIRE_PORT. A test that must not
# connect points pgstep at it and checks t_no_connection afterwards.
t_tripwire() {
    T_TRIPWIRE_PORT=$(pg_free_port)
    python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[2]))); s.listen(16)
while True:
    c, _ = s.accept()
    with open(sys.argv[1], 'a') as f: f.write('connection\\n')
    c.close()" "$T_DIR/tripwire" "$T_TRIPWIRE_PORT" </dev/null >/dev/null 2>&1 &
    t_on_exit "kill $! 2>/dev/null"
    t_wait_listening "$T_TRIPWIRE_PORT"
    # Forget the probe that found it listening.
    for _ in $(seq 1 50); do [ -s "$T_DIR/tripwire" ] && break; sleep 0.1; done
    : >"$T_DIR/tripwire"
}
t_no_connection() { [ ! -s "$T_DIR/tripwire" ] || t_fail "$1: pgstep connected to the server"; }

# t_wait_listening PORT: wait (up to 10 s) until something accepts connections on PORT.
t_wait_listening() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    t_fail "nothing listens on port $1"
}

# t_wait_in_background CONF: starts "pgstep -c CONF --verbose wait"; its pid is T_BG_PID.
t_wait_in_background() {
    "$PGSTEP_BIN" -c "$1" --verbose wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
    T_BG_PID=$!
    t_on_exit "kill $T_BG_PID 2>/dev/null"
}

# t_still_waiting REASON: two seconds on, the background wait has not ended and has logged why.
t_still_waiting() {
    sleep 2
    kill -0 "$T_BG_PID" 2>/dev/null || t_fail "pgstep stopped waiting ($1)"
    grep -q -- "$1" "$T_DIR/stderr" || t_fail "the reason ($1) was not logged"
}

# t_ready_within MS: the background wait exits 0 within MS milliseconds from now; the time it
# took is in T_NOTICED_MS.
t_ready_within() {
    local since rc=0
    since=$(t_now_ms)
    wait "$T_BG_PID" || rc=$?
    T_NOTICED_MS=$(($(t_now_ms) - since))
    [ "$rc" = 0 ] || t_fail "wait exited $rc"
    [ "$T_NOTICED_MS" -lt "$(t_ms "$1")" ] || t_fail "the writable primary was noticed only after ${T_NOTICED_MS} ms"
}

# t_ms LIMIT: a time limit in milliseconds, stretched by PGSTEP_TEST_SLOWDOWN in builds whose
# instrumentation makes everything slower (the sanitizer build sets 3).
t_ms() { echo $(($1 * ${PGSTEP_TEST_SLOWDOWN:-1})); }

# t_now_ms: milliseconds since the epoch.
t_now_ms() { date +%s%3N; }

# t_tmpfs SIZE: a tmpfs of SIZE (mount's size=, e.g. 64m) mounted on a new directory beside the
# servers' (in TMPDIR, where the servers' owner can reach it), owned by that user, mode 700; its
# path is in T_TMPFS. t_tmpfs_remove DIR unmounts and removes it, as happens anyway when the test
# ends, after servers registered later are stopped. For a disk that fills up, or servers that
# start fast (initdb's fsync costs nothing there). Needs root, as mount does.
t_tmpfs() {
    T_TMPFS=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-tmpfs.XXXXXX")
    t_on_exit "t_tmpfs_remove '$T_TMPFS'"
    mount -t tmpfs -o "size=$1,mode=0700,uid=$(id -u "$PG_OWNER"),gid=$(id -g "$PG_OWNER")" \
        pgstep-test "$T_TMPFS" || t_fail "could not mount a tmpfs at $T_TMPFS (needs root)"
}
t_tmpfs_remove() {
    if mountpoint -q "$1"; then
        umount "$1" || umount -l "$1"
    fi
    [ ! -d "$1" ] || rmdir "$1"
}

# t_own_server [CONFIGURE...]: a server of the test's own, in $T_SERVER_WORK/data, initialised,
# changed by "CONFIGURE... DATADIR" if given, and started; stopped and removed when the test
# ends, after any server registered later beside it in $T_SERVER_WORK. Sets T_SERVER_WORK and
# T_SERVER_PORT.
t_own_server() {
    pg_throwaway
    T_SERVER_WORK=$PG_WORK T_SERVER_PORT=$PG_PORT
    t_on_exit "pg_discard '$T_SERVER_WORK'"
    [ $# = 0 ] || "$@" "$T_SERVER_WORK/data"
    pg_start "$T_SERVER_WORK/data"
}

# t_slow_flush_server: t_own_server, durable but with a slow WAL writer (see pg_slow_flush),
# primed.
t_slow_flush_server() {
    t_own_server pg_slow_flush
    pg_prime_wal_writer "$T_SERVER_PORT"
}
