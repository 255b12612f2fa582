#!/usr/bin/env bash
# Seeded fault trials: the server is stopped (pg_ctl stop -m immediate, or -m fast) at a random
# moment and started again after a random short pause, on a server of the test's own, each trial
# on a fresh database. Four modes, taken in turn:
#   immediate-apply, fast-apply: the stop falls anywhere in an apply of 56 mixed steps;
#   immediate-wait, fast-wait: the stop is issued up to 300 ms before pgstep starts (pgstep
#   starts against a server being stopped, or stopped) or up to 150 ms after (pgstep is
#   connecting, checking that the server is writable, or reading the history).
# pgstep's wait.timeout outlives the restart, so the run normally finishes by itself with exit 0;
# the exit codes are counted per mode, and any other code must be a documented one (69, 75).
# Once the server is back, every transactional step's effects are there if and only if its
# history row is, and a no-transaction step's history row implies its effects (a valid index);
# after the next plain apply, which exits 0, every step is recorded once and its effects exist
# once.
# The server runs with fsync = off, as every test server does: that is fine here, as an
# immediate stop kills the server's processes, not the machine, and the kernel keeps what was
# written to its page cache; with synchronous_commit = off, commits whose WAL was still in the
# server's buffers are lost, which pgstep has to notice (README, Durability).
# PGSTEP_TRIALS: trials in all, spread evenly over the four modes (default 20, five per mode,
# which keeps the test near a minute);
# PGSTEP_SEED; PGSTEP_FAULT_MODES: the modes to run (default all four);
# PGSTEP_FAULT_WINDOW_MS: the span of an apply the stop falls in (default 1,300 ms).
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/lib/trials.sh
. "$T_LIB/trials.sh"

tr_init 20
read -r -a modes <<<"${PGSTEP_FAULT_MODES:-immediate-apply fast-apply immediate-wait fast-wait}"
window=${PGSTEP_FAULT_WINDOW_MS:-1300}
tr_stepset "$T_DIR/steps"
t_own_server
port=$T_SERVER_PORT data=$T_SERVER_WORK/data
db=trial
runner=''
t_on_exit '[ -z "$runner" ] || kill -KILL "$runner" 2>/dev/null'
tr_conf "$T_DIR/pgstep.conf" "$port" "$db" 'wait: { timeout = 120; }; lock: { timeout = 60; };'

# stop MODE: stops the server (pg_ctl -w, so it returns once the server is down).
stop() {
    pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$data" -m "$1" -w -t 60 stop >/dev/null ||
        tr_fail "pg_ctl stop -m $1 failed"
}

for trial in $(seq 1 "$TR_TRIALS"); do
    tr_trial "$trial"
    mode=${modes[$(((trial - 1) % ${#modes[@]}))]}
    how=${mode%-*}
    TR_REPLAY="PGSTEP_FAULT_MODES=$mode"
    echo "  mode $mode"
    tr_database "$port" "$db"
    tr_random_ms 1000
    pause=$TR_MS
    if [ "${mode#*-}" = apply ]; then
        tr_random_ms "$window"
        at=$TR_MS
        "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
        runner=$!
        tr_sleep_ms "$at"
        applied=$(tr_applied "$port" "$db")
        stop "$how"
        what="stopped -m $how ${at} ms into the apply ($applied of $TR_STEPS steps recorded)"
    else
        tr_random_ms 450
        at=$((TR_MS - 300))
        if [ "$at" -lt 0 ]; then
            stop "$how" &
            stopper=$!
            tr_sleep_ms $((-at))
            "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
            runner=$!
            wait "$stopper"
        else
            "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
            runner=$!
            tr_sleep_ms "$at"
            stop "$how"
        fi
        what="stopped -m $how ${at} ms from pgstep's start"
    fi
    tr_sleep_ms "$pause"
    pg_start "$data"
    tr_check "$port" "$db" fault
    rc=0
    wait "$runner" || rc=$?
    runner=''
    echo "  $what, started again ${pause} ms later; apply exited $rc"
    tr_count "$mode:exit=$rc"
    case $rc in
    0) ;;
    69 | 75)
        # Documented, and retrying helps (README, Exit codes); shown, to be read.
        sed 's/^/    | /' "$T_DIR/stderr" | tail -n 8
        grep -q 'server\|connection' "$T_DIR/stderr" || tr_fail "apply exited $rc without naming the lost server"
        ;;
    *) tail -n 20 "$T_DIR/stderr" >&2; tr_fail "$mode: apply exited $rc after the server was $what" ;;
    esac
    grep -q 'retrying .* after a transient error' "$T_DIR/stderr" && tr_count "$mode:retried"
    grep -q 'are gone with it' "$T_DIR/stderr" && tr_count "$mode:commits-lost"
    tr_check "$port" "$db" run-end
    tr_follow_up "$T_DIR/pgstep.conf" "$T_DIR/steps"
    tr_check "$port" "$db" final
done
t_ok "after $TR_TRIALS server stops, every step was applied once"
tr_summary "modes ${modes[*]}, follow-up apply exit 0 every time"
