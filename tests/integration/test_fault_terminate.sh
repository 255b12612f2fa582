#!/usr/bin/env bash
# Seeded fault trials: pgstep's backend is ended with pg_terminate_backend at a random moment of
# an apply of 56 mixed steps, each trial on a fresh database. That is an admin shutdown (57P01)
# and a lost connection, which pgstep retries on a new connection: the run normally finishes by
# itself with exit 0 (the exit codes are counted; any other must be a documented one). Right
# after the termination, every transactional step's effects are there if and only if its history
# row is, and a no-transaction step's history row implies its effects (a valid index); after the
# next plain apply, which exits 0, every step is recorded once and its effects exist once.
# PGSTEP_TRIALS (default 10), PGSTEP_SEED; PGSTEP_FAULT_WINDOW_MS, the span the termination
# falls in (default 1,300 ms from the start: about one apply, which takes 1.1 to 1.2 s here).
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/lib/trials.sh
. "$T_LIB/trials.sh"

tr_shared_setup 10
port=$PGSTEP_TEST_PORT
db=$TR_DB


# pgstep's backends are those with its application_name; while a step runs longer than 10 s it
# also opens a short-lived second connection to read who blocks it (none of these steps does),
# which is told apart by its query on pg_blocking_pids.
terminate() {
    pg_psql "$port" postgres -c "
        SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
        WHERE datname = '$db' AND application_name = 'pgstep' AND backend_type = 'client backend'
          AND query NOT LIKE '%pg_blocking_pids%'"
}

for trial in $(seq 1 "$TR_TRIALS"); do
    tr_start_apply "$trial"
    # At that moment pgstep may be between connections (starting, or reconnecting): the first
    # backend it has from then on is the one ended.
    ended=0
    for _ in $(seq 1 200); do
        kill -0 "$TR_RUNNER" 2>/dev/null || break
        ended=$(terminate)
        [ "$ended" = 0 ] || break
        sleep 0.005
    done
    applied=$(tr_applied "$port" "$db")
    tr_check "$port" "$db" fault
    rc=0
    wait "$TR_RUNNER" || rc=$?
    TR_RUNNER=''
    if [ "$ended" = 0 ]; then
        tr_count "finished-first"
    else
        tr_count "terminated"
    fi
    echo "  backend ended after ${TR_DELAY_MS} ms ($ended) with $applied of $TR_STEPS steps recorded; apply exited $rc"
    tr_count "exit=$rc"
    case $rc in
    0) ;;
    69 | 75) t_stderr_has 'connection|terminat' ;;
    *) tail -n 20 "$T_DIR/stderr" >&2; tr_fail "apply exited $rc after its backend was ended" ;;
    esac
    grep -q 'retrying .* after a transient error' "$T_DIR/stderr" && tr_count "retried"
    tr_check "$port" "$db" run-end
    tr_follow_up "$T_DIR/pgstep.conf" "$T_DIR/steps"
    tr_check "$port" "$db" final
done
t_ok "after $TR_TRIALS terminated backends, every step was applied once"
tr_summary "follow-up apply exit 0 every time"
