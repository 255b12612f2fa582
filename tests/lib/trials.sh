# shellcheck shell=bash
# Seeded fault trials: a step set of 56 mixed steps, seeds, random moments, the invariant every
# trial ends with, and the summary line. Source it after testlib.sh.
#
# Seeds: PGSTEP_SEED (default: from the clock) is the first trial's seed, printed as "seed: N";
# each later trial's seed follows from the one before, so "PGSTEP_SEED=<trial seed>
# PGSTEP_TRIALS=1" replays one trial alone. Each trial sets RANDOM to its seed, and every random
# choice of the trial comes from RANDOM in a fixed order.

# tr_init DEFAULT_TRIALS: reads PGSTEP_SEED and PGSTEP_TRIALS (default DEFAULT_TRIALS), prints
# the seed, starts the clock of the summary.
tr_init() {
    TR_SEED=${PGSTEP_SEED:-$(($(date +%s%N) / 1000 % 1000000007))}
    TR_TRIALS=${PGSTEP_TRIALS:-$1}
    [[ "$TR_SEED" =~ ^[0-9]+$ ]] || t_fail "PGSTEP_SEED must be a non-negative integer"
    [[ "$TR_TRIALS" =~ ^[1-9][0-9]*$ ]] || t_fail "PGSTEP_TRIALS must be a positive integer"
    echo "seed: $TR_SEED trials: $TR_TRIALS"
    TR_STARTED=$(t_now_ms)
    TR_TRIAL=0 TR_TRIAL_SEED='' TR_NEXT_SEED=$TR_SEED
    declare -gA TR_COUNTS=()
}

# tr_trial I: starts trial I: its seed (the first trial's is PGSTEP_SEED, each next one a step of
# a linear congruential generator on the one before) seeds RANDOM, and is printed.
tr_trial() {
    TR_TRIAL=$1 TR_TRIAL_SEED=$TR_NEXT_SEED
    TR_NEXT_SEED=$(((TR_TRIAL_SEED * 1103515245 + 12345) % 2147483648))
    RANDOM=$TR_TRIAL_SEED
    echo "trial $TR_TRIAL seed $TR_TRIAL_SEED"
}

# tr_random_ms MAX: sets TR_MS to a random whole number of milliseconds in [0, MAX], from RANDOM.
# Not for $(...): a subshell's RANDOM does not advance the caller's, so a seed would not replay.
# shellcheck disable=SC2034 # read by the tests
tr_random_ms() { TR_MS=$(((RANDOM * 32768 + RANDOM) % ($1 + 1))); }

# tr_sleep_ms MS: sleeps MS milliseconds.
tr_sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# tr_fail MESSAGE: fails the test naming the trial and its seed, with how to replay it (with
# TR_REPLAY, settings a test chose for the trial by its number rather than its seed, in front).
tr_fail() {
    t_fail "trial $TR_TRIAL (seed $TR_TRIAL_SEED; replay: ${TR_REPLAY:+$TR_REPLAY }PGSTEP_SEED=$TR_TRIAL_SEED PGSTEP_TRIALS=1): $*"
}

# tr_count KEY: one more of KEY for the summary (e.g. "exit=0", "fault=mid").
tr_count() { TR_COUNTS[$1]=$((${TR_COUNTS[$1]:-0} + 1)); }

# tr_summary TEXT: the one-line summary: trials, the counted outcomes, elapsed seconds, TEXT.
tr_summary() {
    local k counts=''
    for k in $(printf '%s\n' "${!TR_COUNTS[@]}" | sort); do counts+=" $k:${TR_COUNTS[$k]}"; done
    echo "summary [$T_NAME, PostgreSQL $PGSTEP_TEST_SERVER_MAJOR]: seed $TR_SEED, $TR_TRIALS trials,$counts, $(((($(t_now_ms) - TR_STARTED) + 500) / 1000)) s${1:+, $1}"
}

# tr_stepset DIR: writes the step set into DIR and its expectations into TR_EXPECT (one line per
# step: ledger key, file, tx or nt, object kind, object name). Every step writes its key into
# the table ledger (which the trial makes before the run, see tr_database), in the transaction
# of its other effects, so a duplicate application shows as a second row; the no-transaction
# ones (index builds, a VACUUM) write it idempotently after their last statement. A few steps
# take measurable time (pg_sleep, updates of 3,000 rows, index builds over 40,000 rows), so a
# random moment lands inside steps as well as between them.
#
# PGSTEP_TRIAL_INDEX=if-not-exists writes the index steps as "CREATE INDEX CONCURRENTLY IF NOT
# EXISTS" alone, which an interrupted build defeats (README, no-transaction steps): the
# invariant then reports the invalid index a later run records as applied.
tr_stepset() {
    local dir=$1 k file key col cols=(a b c d e) ci=0
    mkdir -p "$dir"
    TR_EXPECT=$dir.expect
    : >"$TR_EXPECT"
    for k in $(seq 1 52); do
        key="V$k"
        if [ "$k" = 1 ]; then
            file=V1__big.sql
            printf '%s\n' "CREATE TABLE big (id int, a int, b int, c int, d int, e int);" \
                "INSERT INTO big SELECT g, g % 97, g % 89, g % 83, g % 79, g % 73 FROM generate_series(1, 40000) g;" \
                "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx table big" >>"$TR_EXPECT"
        elif [ $((k % 12)) = 7 ] || [ "$k" = 50 ]; then
            col=${cols[ci]}
            ci=$((ci + 1))
            file=V${k}__index_$col.sql
            {
                echo "-- pgstep: no-transaction"
                if [ "${PGSTEP_TRIAL_INDEX:-}" = if-not-exists ]; then
                    echo "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_${col}_idx ON big ($col);"
                else
                    echo "-- An interrupted build leaves an invalid index: drop it, then build."
                    echo "DROP INDEX CONCURRENTLY IF EXISTS big_${col}_idx;"
                    echo "CREATE INDEX CONCURRENTLY big_${col}_idx ON big ($col);"
                fi
                echo "INSERT INTO ledger (step) SELECT '$key' WHERE NOT EXISTS (SELECT FROM ledger WHERE step = '$key');"
            } >"$dir/$file"
            echo "$key $file nt index big_${col}_idx" >>"$TR_EXPECT"
        elif [ "$k" = 25 ]; then
            file=V25__vacuum.sql
            printf '%s\n' "-- pgstep: no-transaction" "VACUUM (ANALYZE) big;" \
                "INSERT INTO ledger (step) SELECT '$key' WHERE NOT EXISTS (SELECT FROM ledger WHERE step = '$key');" \
                >"$dir/$file"
            echo "$key $file nt none -" >>"$TR_EXPECT"
        elif [ $((k % 10)) = 0 ]; then
            file=V${k}__sleep.sql
            printf '%s\n' "SELECT pg_sleep(0.08);" "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx none -" >>"$TR_EXPECT"
        elif [ $((k % 10)) = 5 ]; then
            file=V${k}__update.sql
            printf '%s\n' "UPDATE big SET b = b + 1 WHERE id % 13 = $((k % 13));" \
                "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx none -" >>"$TR_EXPECT"
        elif [ $((k % 3)) = 0 ]; then
            file=V${k}__table.sql
            printf '%s\n' "CREATE TABLE t_$k (id int PRIMARY KEY, note text);" \
                "INSERT INTO t_$k VALUES ($k, 'step $k');" \
                "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx table t_$k" >>"$TR_EXPECT"
        elif [ $((k % 3)) = 1 ]; then
            file=V${k}__function.sql
            printf '%s\n' "CREATE FUNCTION f_$k() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $k';" \
                "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx function f_$k" >>"$TR_EXPECT"
        else
            file=V${k}__row.sql
            printf '%s\n' "INSERT INTO ledger (step) VALUES ('$key');" >"$dir/$file"
            echo "$key $file tx none -" >>"$TR_EXPECT"
        fi
    done
    printf '%s\n' "COMMENT ON TABLE big IS 'fault trials';" \
        "INSERT INTO ledger (step) VALUES ('R__comment');" >"$dir/R__comment.sql"
    printf '%s\n' "CREATE OR REPLACE FUNCTION ledger_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM public.ledger';" \
        "INSERT INTO ledger (step) VALUES ('R__function');" >"$dir/R__function.sql"
    printf '%s\n' "SELECT pg_sleep(0.05);" "INSERT INTO ledger (step) VALUES ('R__sleep');" >"$dir/R__sleep.sql"
    printf '%s\n' "CREATE OR REPLACE VIEW ledger_steps AS SELECT step, count(*) AS n FROM ledger GROUP BY step;" \
        "INSERT INTO ledger (step) VALUES ('R__view');" >"$dir/R__view.sql"
    {
        echo "R__comment R__comment.sql tx none -"
        echo "R__function R__function.sql tx function ledger_count"
        echo "R__sleep R__sleep.sql tx none -"
        echo "R__view R__view.sql tx view ledger_steps"
    } >>"$TR_EXPECT"
    # shellcheck disable=SC2034 # read by the tests
    TR_STEPS=$(wc -l <"$TR_EXPECT")
}

# tr_database PORT DB: DB made afresh on the server at PORT, with the table ledger the steps
# write into (an application's table that exists before the run).
tr_database() {
    pg_psql "$1" postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$2\" WITH (FORCE)" -c "CREATE DATABASE \"$2\"" >/dev/null
    # Committed durably, so that a server crash right after does not take it back.
    pg_psql "$1" "$2" -c "SET synchronous_commit = on" \
        -c "CREATE TABLE ledger (step text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null
}

# tr_conf FILE PORT DB [extra libconfig text]: pgstep's configuration for DB at PORT.
tr_conf() {
    local file=$1 port=$2 db=$3
    shift 3
    cat >"$file" <<CONF
connection: { conninfo = "$(t_dsn "$db" "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
$*
CONF
}

# tr_shared_setup DEFAULT_TRIALS: what a trial test on the shared test server starts with:
# tr_init, the step set in T_DIR/steps, the trial database TR_DB (dropped when the test ends),
# T_DIR/pgstep.conf for it, and TR_WINDOW_MS, the span a fault falls in: PGSTEP_FAULT_WINDOW_MS,
# by default 1,300 ms from the start, about one apply (1.1 to 1.2 s here).
tr_shared_setup() {
    tr_init "$1"
    # shellcheck disable=SC2034 # read by the tests
    TR_WINDOW_MS=${PGSTEP_FAULT_WINDOW_MS:-1300}
    tr_stepset "$T_DIR/steps"
    TR_DB=${T_NAME}_trial
    t_on_exit "pg_psql $PGSTEP_TEST_PORT postgres -c 'DROP DATABASE IF EXISTS \"$TR_DB\" WITH (FORCE)' >/dev/null"
    tr_conf "$T_DIR/pgstep.conf" "$PGSTEP_TEST_PORT" "$TR_DB" \
        'wait: { timeout = 60; }; lock: { timeout = 60; };'
    TR_RUNNER=''
    t_on_exit '[ -z "$TR_RUNNER" ] || kill -KILL "$TR_RUNNER" 2>/dev/null'
}

# tr_start_apply I: starts trial I on a fresh TR_DB: pgstep apply in the background (its pid in
# TR_RUNNER, its output in T_DIR/stdout and stderr), then sleeps TR_DELAY_MS, a random moment
# within TR_WINDOW_MS, after which the caller brings the fault.
tr_start_apply() {
    tr_trial "$1"
    tr_database "$PGSTEP_TEST_PORT" "$TR_DB"
    tr_random_ms "$TR_WINDOW_MS"
    TR_DELAY_MS=$TR_MS
    "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
    # shellcheck disable=SC2034 # read by the tests
    TR_RUNNER=$!
    tr_sleep_ms "$TR_DELAY_MS"
}

# tr_check PORT DB PHASE: the invariant, read in one snapshot (the runner may still be going).
# Any PHASE but "final" (e.g. "fault", right after the fault, or "run-end", after the faulted
# run ended): a transactional step's effects (its ledger row and its
# object) are there if and only if its history row is; a no-transaction step's history row
# implies its effects, with its index valid (pg_index.indisvalid): a partial run of one is left
# to the next run by design (README, no-transaction steps). PHASE "final", after the follow-up
# run: every step recorded exactly once, its ledger row and object there exactly once, every
# index valid, and nothing else in the history. A violation fails the test naming the trial, its
# seed, the phase and each step at fault.
tr_check() {
    local port=$1 db=$2 phase=$3 values='' key file mode okind oname problems
    while read -r key file mode okind oname; do
        values+="${values:+,}('$key', '$file', '$mode', '$okind', '$oname')"
    done <"$TR_EXPECT"
    problems=$(pg_psql "$port" "$db" 2>&1 <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'pgstep' AND c.relname = 'history') AS has_history \gset
\if :has_history
CREATE TEMP VIEW h AS SELECT file_name FROM pgstep.history;
\else
CREATE TEMP VIEW h AS SELECT NULL::text AS file_name WHERE false;
\endif
WITH expect(key, file, mode, okind, oname) AS (VALUES $values),
state AS (
    SELECT e.*,
           (SELECT count(*) FROM h WHERE h.file_name = e.file) AS hist,
           (SELECT count(*) FROM ledger l WHERE l.step = e.key) AS led,
           CASE e.okind
               WHEN 'none' THEN NULL
               WHEN 'function' THEN (SELECT count(*) FROM pg_proc p
                                     WHERE p.proname = e.oname AND p.pronamespace = 'public'::regnamespace)
               ELSE (SELECT count(*) FROM pg_class c
                     WHERE c.relname = e.oname AND c.relnamespace = 'public'::regnamespace
                       AND c.relkind = CASE e.okind WHEN 'table' THEN 'r' WHEN 'view' THEN 'v' ELSE 'i' END)
           END AS obj,
           (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE e.okind = 'index' AND c.relname = e.oname AND NOT (i.indisvalid AND i.indisready)) AS invalid
    FROM expect e),
verdict AS (
    SELECT s.*,
           CASE
               WHEN s.hist > 1 OR s.led > 1 OR s.obj > 1 THEN 'applied more than once'
               WHEN s.hist = 1 AND (s.led = 0 OR s.obj = 0) THEN 'recorded, but its effects are missing'
               WHEN s.hist = 1 AND s.invalid > 0 THEN 'recorded, but its index is invalid'
               WHEN '$phase' = 'final' AND s.hist = 0 THEN 'not recorded after the follow-up run'
               WHEN s.mode = 'tx' AND s.hist = 0 AND (s.led > 0 OR s.obj > 0) THEN 'not recorded, but its effects are there'
           END AS problem
    FROM state s)
SELECT file || ': ' || problem || ' (history rows ' || hist || ', ledger rows ' || led
       || coalesce(', ' || okind || ' ' || oname || ': ' || obj, '')
       || CASE WHEN invalid > 0 THEN ', invalid' ELSE '' END || ')'
FROM verdict WHERE problem IS NOT NULL
UNION ALL
SELECT 'history row of an unknown step: ' || file_name FROM h
WHERE file_name NOT IN (SELECT file FROM expect)
UNION ALL
SELECT 'ledger row of an unknown step: ' || step FROM ledger
WHERE step NOT IN (SELECT key FROM expect);
ROLLBACK;
SQL
    ) || tr_fail "$phase: the invariant could not be read: $problems"
    [ -z "$problems" ] || {
        echo "$problems" >&2
        tr_fail "$phase: $(head -n 1 <<<"$problems")$([ "$(wc -l <<<"$problems")" = 1 ] || echo " (and $(($(wc -l <<<"$problems") - 1)) more, above)")"
    }
}

# tr_applied PORT DB: how many steps the history holds (0 before it exists).
tr_applied() {
    pg_psql "$1" "$2" -c "SELECT CASE WHEN to_regclass('pgstep.history') IS NULL THEN 0
                          ELSE (SELECT count(*) FROM pgstep.history) END" 2>/dev/null || echo '?'
}

# tr_follow_up CONF DIR: the next plain apply, which must exit 0; its duration is in TR_FOLLOW_MS,
# its output in $T_DIR/follow.out and follow.err.
tr_follow_up() {
    local since rc=0
    since=$(t_now_ms)
    "$PGSTEP_BIN" -c "$1" -d "$2" apply >"$T_DIR/follow.out" 2>"$T_DIR/follow.err" || rc=$?
    # shellcheck disable=SC2034 # read by the tests
    TR_FOLLOW_MS=$(($(t_now_ms) - since))
    [ "$rc" = 0 ] || { tail -n 20 "$T_DIR/follow.err" >&2; tr_fail "the follow-up apply exited $rc, expected 0"; }
}

# tr_lock_wait_ms: how long the follow-up apply waited for the advisory lock (from its line
# "waiting for the advisory lock" to its next line), in ms; empty if it did not wait.
tr_lock_wait_ms() {
    awk '
        function ms(t) { split(substr(t, 12, 12), a, ":"); return int((a[1] * 3600 + a[2] * 60 + a[3]) * 1000 + 0.5) }
        waiting { d = ms($1) - since; if (d < 0) d += 86400000; print d; exit }
        /waiting for the advisory lock/ { waiting = 1; since = ms($1) }' "$T_DIR/follow.err"
}
