#!/usr/bin/env bash
# Failover during an apply, against a real primary and an asynchronous streaming standby. pgstep
# is given both servers in one libpq multi-host connection string, as an operator would outside
# Kubernetes. While it applies a few dozen steps, the standby stops receiving WAL (its
# primary_conninfo is cleared), a few more steps commit on the primary only, then the primary is
# stopped for good (pg_ctl stop -m immediate) and, after a pause, the standby is promoted. The
# steps the old primary took with it are really lost (the old primary's data directory, started
# again afterwards, holds them; the standby did not), and pgstep must apply them again on the new
# primary: exit 0, every step's history row and side effects exactly once. The moments of the cut,
# of the failover and the pause before the promotion are random, seeded (PGSTEP_SEED, each trial
# prints its own); PGSTEP_TRIALS trials (default 3), each with new servers.
#
# First, without randomness: a listed standby that target_session_attrs turns away is waited
# for until it is promoted, not taken for a server that rejects the password.
. "$(dirname "$0")/../lib/testlib.sh"

seed=${PGSTEP_SEED:-$((($(date +%s%N) / 1000) % 1000000000))}
trials=${PGSTEP_TRIALS:-3}
echo "seed: $seed, trials: $trials"
started=$(t_now_ms)
FO_STEPS=40 # versioned steps per trial, plus one repeatable step
# The servers live in memory: initdb, base backups and removals take seconds less each.
t_tmpfs 1g
export TMPDIR=$T_TMPFS

# fo_pair: a new primary and its streaming standby, in FO_WORK/data and FO_WORK/standby on
# FO_P1 and FO_P2, both stopped and removed when the test ends (or by fo_discard).
fo_pair() {
    pg_throwaway start
    FO_WORK=$PG_WORK FO_P1=$PG_PORT
    t_on_exit "fo_discard '$FO_WORK'"
    FO_P2=$(pg_free_port)
    pg_standby "$FO_P1" "$FO_WORK/standby" "$FO_P2"
    pg_start "$FO_WORK/standby"
    [ "$(pg_psql "$FO_P2" postgres -c 'SELECT pg_is_in_recovery()')" = t ] ||
        t_fail "the standby is not in recovery"
}
fo_discard() {
    pg_stop "$1/standby"
    pg_discard "$1"
}

# fo_conf FILE [libconfig text]: pgstep's configuration for the pair. Outside Kubernetes no
# Service follows the primary: the client lists every server, and target_session_attrs=read-write
# makes libpq skip those that are not writable (the standby before its promotion, an old primary
# that came back as a standby) and go on to the next host. Without it libpq takes the first host
# that accepts connections, and pgstep would wait on a standby listed first until wait.timeout
# while the primary it should use is up further down the list.
fo_conf() {
    local file=$1
    shift
    cat >"$file" <<CONF
connection: {
  conninfo = "host=127.0.0.1,127.0.0.1 port=$FO_P1,$FO_P2 user=postgres dbname=postgres target_session_attrs=read-write";
  password_file = "$PGSTEP_TEST_PASSFILE";
};
$*
CONF
}

fo_stop_primary() {
    pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$FO_WORK/data" -m immediate -w stop >/dev/null ||
        t_fail "pg_ctl stop -m immediate failed"
}
fo_promote() {
    pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$FO_WORK/standby" -w promote >/dev/null ||
        t_fail "the standby was not promoted"
}

# 1. The primary is down and the standby not yet promoted, for longer than wait.auth_grace.
fo_pair
fo_conf "$T_DIR/wait.conf" 'wait: { timeout = 60; auth_grace = 1; };'
fo_stop_primary
t_wait_in_background "$T_DIR/wait.conf"
sleep 1
t_still_waiting 'port '"$FO_P2"' failed: session is read-only'
fo_promote
t_ready_within 2000
t_stderr_lacks 'rejecting'
fo_discard "$FO_WORK"
t_ok "a listed standby was waited for through wait.auth_grace, and used once promoted"

# 2. A listed standby does not hide a host that refuses pgstep for good: the primary's
# pg_hba.conf rejects it, and the run ends after wait.auth_grace with that host's line, not at
# wait.timeout with the standby's.
fo_pair
pg_as_owner sed -i '1i host all all 127.0.0.1/32 reject' "$FO_WORK/data/pg_hba.conf"
pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$FO_WORK/data" reload >/dev/null
fo_conf "$T_DIR/reject.conf" 'wait: { timeout = 60; auth_grace = 1; };'
started_reject=$(t_now_ms)
rc=0
"$PGSTEP_BIN" -c "$T_DIR/reject.conf" wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
waited=$(($(t_now_ms) - started_reject))
[ "$rc" = 69 ] || t_fail "a host rejected by pg_hba.conf beside a standby: exit $rc, expected 69"
[ "$waited" -lt "$(t_ms 15000)" ] ||
    t_fail "a host rejected by pg_hba.conf beside a standby was waited on for $waited ms"
t_stderr_has "port $FO_P1 failed: FATAL: +pg_hba.conf rejects connection"
fo_discard "$FO_WORK"
t_ok "a host that refused pgstep beside a listed standby ended the wait after $waited ms (exit 69)"

# --- Step set: generation and checks, kept apart from the trial's choreography. ---

# fo_stepset DIR: FO_STEPS versioned steps and one repeatable step, each with countable side
# effects: a row in effects naming the step and, for versioned steps, a table (transactional) or
# an index (about one step in eight, no-transaction, built concurrently). Each takes about 0.1 s
# so that the apply is still running when the failover comes. Uses RANDOM.
fo_stepset() {
    local dir=$1 v
    mkdir "$dir"
    printf "CREATE TABLE effects (step text NOT NULL);\nINSERT INTO effects VALUES ('V1');\n" \
        >"$dir/V1__effects.sql"
    for v in $(seq 2 "$FO_STEPS"); do
        if [ $((RANDOM % 8)) = 0 ]; then
            # Idempotent, as a no-transaction step must be; the row is written only when the
            # index is new, so a partial run completed later still counts once.
            cat >"$dir/V${v}__index_$v.sql" <<SQL
-- pgstep: no-transaction
SELECT pg_sleep(0.1);
CREATE INDEX CONCURRENTLY IF NOT EXISTS effects_$v ON effects (step);
INSERT INTO effects SELECT 'V$v' WHERE NOT EXISTS (SELECT FROM effects WHERE step = 'V$v');
SQL
        else
            cat >"$dir/V${v}__table_$v.sql" <<SQL
INSERT INTO effects VALUES ('V$v');
CREATE TABLE table_$v (id int);
SELECT pg_sleep(0.1);
SQL
        fi
    done
    printf "INSERT INTO effects VALUES ('R');\n" >"$dir/R__last.sql"
}

# fo_recorded PORT: the steps the history of the server on PORT holds, one a line ("V7", "R"),
# sorted; nothing if there is no history.
fo_recorded() {
    pg_psql "$1" postgres -c "
        SELECT CASE WHEN pg_catalog.to_regclass('pgstep.history') IS NOT NULL THEN
            (SELECT string_agg(CASE kind WHEN 'V' THEN 'V' || version ELSE 'R' END, E'\n')
             FROM pgstep.history) END" | sort
}

# fo_check_exactly_once PORT DIR: every step of DIR has one history row on the server on PORT,
# one row in effects, and its table or index; nothing else is there.
fo_check_exactly_once() {
    local port=$1 dir=$2 bad
    bad=$(pg_psql "$port" postgres -c "
        WITH expected(step, object) AS (VALUES $(fo_expected_values "$dir")),
        found AS (
            SELECT e.step,
                   (SELECT count(*) FROM pgstep.history h
                    WHERE CASE h.kind WHEN 'V' THEN 'V' || h.version ELSE 'R' END = e.step) AS rows,
                   (SELECT count(*) FROM effects f WHERE f.step = e.step) AS effects,
                   e.object IS NULL OR pg_catalog.to_regclass(e.object) IS NOT NULL AS object
            FROM expected e)
        SELECT string_agg(step || ': ' || rows || ' history rows, ' || effects || ' effects'
                          || CASE WHEN object THEN '' ELSE ', object missing' END, '; ')
        FROM found WHERE rows <> 1 OR effects <> 1 OR NOT object
        UNION ALL
        SELECT 'unexpected history rows: ' || count(*) FROM pgstep.history
        HAVING count(*) <> (SELECT count(*) FROM expected)
        UNION ALL
        SELECT 'unexpected effects: ' || count(*) FROM effects
        HAVING count(*) <> (SELECT count(*) FROM expected)")
    [ -z "$bad" ] || echo "$bad"
}
# The VALUES list of (step, object) for DIR.
fo_expected_values() {
    local f v list="('R', NULL)"
    for f in "$1"/V*.sql; do
        f=$(basename "$f")
        v=${f%%__*}
        case $f in
        V1__*) list+=", ('V1', 'effects')" ;;
        *__index_*) list+=", ('$v', 'effects_${v#V}')" ;;
        *) list+=", ('$v', 'table_${v#V}')" ;;
        esac
    done
    echo "$list"
}

# --- Trials. ---

# fo_history_count PORT: rows in the history of the server on PORT (0 before it exists).
fo_history_count() {
    pg_psql "$1" postgres -c "SELECT CASE WHEN pg_catalog.to_regclass('pgstep.history') IS NULL
                                  THEN 0 ELSE (SELECT count(*) FROM pgstep.history) END" 2>/dev/null ||
        echo -1
}
# fo_wait_committed N: until the primary's history holds at least N rows; fails if pgstep ended.
fo_wait_committed() {
    local n
    for _ in $(seq 1 1500); do
        n=$(fo_history_count "$FO_P1")
        [ "$n" -ge "$1" ] && return 0
        kill -0 "$fo_runner" 2>/dev/null || trial_fail "pgstep ended before $1 steps committed"
        sleep 0.02
    done
    trial_fail "the primary never held $1 history rows (last: $n)"
}
# fo_cut_streaming: the standby stops receiving WAL, as if the network between them went down.
fo_cut_streaming() {
    pg_psql "$FO_P2" postgres -c "ALTER SYSTEM RESET primary_conninfo" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 1 500); do
        [ "$(pg_psql "$FO_P2" postgres -c 'SELECT count(*) FROM pg_stat_wal_receiver')" = 0 ] && return 0
        sleep 0.01
    done
    trial_fail "the standby's WAL receiver did not stop"
}
# fo_standby_settled: until the standby has replayed all the WAL it received: its replay
# position stays put for 0.3 s (the received WAL may end inside a record, which is never
# replayed, so it is not compared with the receive position).
fo_standby_settled() {
    local last='' now same=0
    for _ in $(seq 1 200); do
        now=$(pg_psql "$FO_P2" postgres -c 'SELECT pg_last_wal_replay_lsn()')
        if [ "$now" = "$last" ]; then
            same=$((same + 1))
            [ "$same" -ge 3 ] && return 0
        else
            same=0 last=$now
        fi
        sleep 0.1
    done
    trial_fail "the standby's replay did not come to rest"
}

trial_fail() { t_fail "trial $trial (seed $trial_seed): $*"; }

declare -A outcomes=()
lost_total=0 lost_min='' lost_max=0
for trial in $(seq 1 "$trials"); do
    trial_seed=$((seed + trial - 1))
    RANDOM=$trial_seed
    # Commits without a WAL flush may still be in the old primary's WAL buffers when it stops:
    # at least 5 commits after the cut so that some certainly reached its disk. At most 26 of
    # the 41 steps are done then, leaving pgstep more than a second of work.
    cut_at=$((3 + RANDOM % 14))
    fail_after=$((5 + RANDOM % 6))
    pause_ms=$((RANDOM % 2000))
    echo "trial $trial: seed $trial_seed: streaming cut after $cut_at commits, failover" \
        "$fail_after commits later, promotion ${pause_ms} ms after that"
    rm -rf "$T_DIR/steps"
    fo_stepset "$T_DIR/steps"
    fo_pair
    fo_conf "$T_DIR/pgstep.conf" 'wait: { timeout = 60; auth_grace = 1; };'

    "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
    fo_runner=$!
    t_on_exit "kill $fo_runner 2>/dev/null"
    fo_wait_committed "$cut_at"
    fo_cut_streaming
    # Counted from when the standby stopped receiving: those commits are certainly not on it.
    fo_wait_committed $(($(fo_history_count "$FO_P1") + fail_after))
    fo_stop_primary
    fo_standby_settled
    fo_recorded "$FO_P2" >"$T_DIR/standby.steps"
    sleep "$(printf '%d.%03d' $((pause_ms / 1000)) $((pause_ms % 1000)))"
    fo_promote
    rc=0
    wait "$fo_runner" || rc=$?
    outcomes[$rc]=$((${outcomes[$rc]:-0} + 1))
    [ "$rc" = 0 ] || trial_fail "apply exited $rc after the failover, expected 0"

    # What the old primary had committed: its data directory, started on its own again.
    pg_start "$FO_WORK/data"
    fo_recorded "$FO_P1" >"$T_DIR/old.steps"
    pg_stop "$FO_WORK/data"
    lost=$(comm -23 "$T_DIR/old.steps" "$T_DIR/standby.steps" | wc -l)
    [ "$lost" -gt 0 ] || trial_fail "no step was lost: the standby had received every commit"

    bad=$(fo_check_exactly_once "$FO_P2" "$T_DIR/steps")
    [ -z "$bad" ] || trial_fail "not exactly once on the new primary: $bad"
    [ "$(pg_psql "$FO_P2" postgres -c 'SELECT pg_is_in_recovery()')" = f ] ||
        trial_fail "the server checked is not the promoted one"

    # What pgstep said: the lost connection, the steps it had seen commit that the new primary
    # lacks (those it logged as applied before the loss), and the applies after it.
    grep -q 'retrying .* after a transient error' "$T_DIR/stderr" ||
        trial_fail "pgstep did not log the lost connection"
    sed -n '/retrying .* after a transient error/q;s/.* info: applied \(V[0-9]*\|R\)__.*/\1/p' \
        "$T_DIR/stderr" | sort >"$T_DIR/logged.steps"
    gone=$(comm -23 "$T_DIR/logged.steps" "$T_DIR/standby.steps" | wc -l)
    if [ "$gone" -gt 0 ]; then
        grep -q "warn: $gone of the steps committed before the connection was lost are gone with it" \
            "$T_DIR/stderr" || trial_fail "pgstep did not say that $gone of its steps were gone"
    fi
    grep -q "info: reconnected to 127.0.0.1:$FO_P2 after losing the connection while applying V" \
        "$T_DIR/stderr" || trial_fail "pgstep did not say that it reconnected to the new primary"
    sed -n '/info: reconnected to/,$p' "$T_DIR/stderr" | grep -q 'info: applied V' ||
        trial_fail "pgstep applied nothing after it reconnected"
    grep -q "info: applied $((FO_STEPS + 1)) steps, skipped 0" "$T_DIR/stderr" ||
        trial_fail "the summary does not count $((FO_STEPS + 1)) steps applied"

    echo "trial $trial: seed $trial_seed: exit $rc, $lost lost with the old primary" \
        "($gone that pgstep had seen commit) and applied again"
    lost_total=$((lost_total + lost))
    [ -n "$lost_min" ] && [ "$lost_min" -le "$lost" ] || lost_min=$lost
    [ "$lost_max" -ge "$lost" ] || lost_max=$lost
    fo_discard "$FO_WORK"
done

exits=''
for rc in "${!outcomes[@]}"; do exits+=" exit $rc: ${outcomes[$rc]},"; done
t_ok "failover: $trials trials (seed $seed),${exits} steps lost and applied again: $lost_total" \
    "(${lost_min}..${lost_max} a trial), $((($(t_now_ms) - started) / 1000)) s"
