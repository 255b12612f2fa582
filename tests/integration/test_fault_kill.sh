#!/usr/bin/env bash
# Seeded fault trials: pgstep is killed with SIGKILL at a random moment of an apply of 56 mixed
# steps (transactional, no-transaction index builds and a VACUUM, repeatable), each trial on a
# fresh database. Right after the kill, every transactional step's effects are there if and only
# if its history row is, and a no-transaction step's history row implies its effects (with a
# valid index). The next plain apply exits 0, and then every step is recorded once and its
# effects exist once. The dead client's backend may still be running what it was sent (the rest
# of a pipeline, an index build) and holding the lock for a while: the follow-up waits for it
# within lock.timeout; how long it took is in the summary.
# PGSTEP_TRIALS (default 30), PGSTEP_SEED; PGSTEP_FAULT_WINDOW_MS, the span the kill falls in
# (default 1,300 ms from the start: about one apply, which takes 1.1 to 1.2 s here).
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/lib/trials.sh
. "$T_LIB/trials.sh"

tr_shared_setup 30
db=$TR_DB

follow_max=0 follow_total=0 wait_max=0
for trial in $(seq 1 "$TR_TRIALS"); do
    tr_start_apply "$trial"
    kill -KILL "$TR_RUNNER" 2>/dev/null || true
    rc=0
    { wait "$TR_RUNNER"; } 2>/dev/null || rc=$?
    TR_RUNNER=''
    case $rc in
    137) tr_count "killed" ;;
    0) tr_count "finished-first" ;;
    *) tr_fail "apply exited $rc before the kill" ;;
    esac
    applied=$(tr_applied "$PGSTEP_TEST_PORT" "$db")
    echo "  killed after ${TR_DELAY_MS} ms with $applied of $TR_STEPS steps recorded"
    tr_check "$PGSTEP_TEST_PORT" "$db" fault
    tr_follow_up "$T_DIR/pgstep.conf" "$T_DIR/steps"
    waited=$(tr_lock_wait_ms)
    echo "  follow-up apply: exit 0 in ${TR_FOLLOW_MS} ms${waited:+, ${waited} ms of it waiting for the lock}"
    if [ -n "$waited" ]; then
        tr_count "lock-waits"
        [ "$waited" -le "$wait_max" ] || wait_max=$waited
    fi
    tr_check "$PGSTEP_TEST_PORT" "$db" final
    if [ "$applied" = 0 ]; then
        tr_count "at=none-recorded"
    elif [ "$applied" = "$TR_STEPS" ]; then
        tr_count "at=all-recorded"
    else
        tr_count "at=part-recorded"
    fi
    [ "$TR_FOLLOW_MS" -le "$follow_max" ] || follow_max=$TR_FOLLOW_MS
    follow_total=$((follow_total + TR_FOLLOW_MS))
done
t_ok "after $TR_TRIALS kills, every step was applied once"
tr_summary "follow-up apply exit 0 every time, mean $((follow_total / TR_TRIALS)) ms, max ${follow_max} ms, longest lock wait ${wait_max} ms"
