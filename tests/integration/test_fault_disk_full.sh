#!/usr/bin/env bash
# The server's disk fills up during an apply, on small tmpfs mounts:
#  tablespace  a step fills a tablespace: the step fails with SQLSTATE 53100 (could not extend
#              file), pgstep exits 1 with one line naming the step's file and line and the
#              server's message; nothing of that step is committed, earlier steps stay.
#  wal-step    a step fills pg_wal: the backend cannot write WAL and PANICs, sending its error
#              (53100, could not write to file "pg_wal/xlogtemp.N") before it aborts, so pgstep
#              exits 1 with that line, marked PANIC. Crash recovery then needs a new WAL segment too, fails, and
#              the server stays down. (Should another process, such as the WAL writer, be the one
#              to PANIC, pgstep only loses its connection: the case below.)
#  wal-other   another session fills pg_wal while pgstep's step runs: its PANIC ends every
#              backend, pgstep loses its connection, waits for the primary, which does not come
#              back, and exits 69 at wait.timeout, naming the step it was applying.
# In every case the database is consistent afterwards (each step's effects are there exactly
# when its history row is), and once space is freed (the tmpfs remounted bigger, the server
# started again where it went down) the next apply exits 0 with every step exactly once. The
# steps before the full disk and the filler's size are random, seeded (PGSTEP_SEED; each round
# prints its own); PGSTEP_ROUNDS rounds of the three cases (default 1).
. "$(dirname "$0")/../lib/testlib.sh"

seed=${PGSTEP_SEED:-$((($(date +%s%N) / 1000) % 1000000000))}
rounds=${PGSTEP_ROUNDS:-1}
echo "seed: $seed, rounds: $rounds"
started=$(t_now_ms)
# The servers live in memory (initdb's fsync costs nothing there); each full disk is a tmpfs of
# its own inside that one.
t_tmpfs 2g
export TMPDIR=$T_TMPFS

# --- Step set: generation and checks, kept apart from each case's choreography. ---

# df_stepset DIR BEFORE FILLER: BEFORE small steps (V1 creates the table effects), then the
# step FILLER (its SQL on stdin) as V<BEFORE+1>__filler.sql, then one more small step. Each small
# step writes a row naming itself into effects and creates a table; the filler's SQL writes its
# row first. Prints the filler's file name.
df_stepset() {
    local dir=$1 before=$2 v
    mkdir "$dir"
    printf 'CREATE TABLE effects (step text NOT NULL);\n' >"$dir/V1__effects.sql"
    for v in $(seq 1 $((before + 2))); do
        [ "$v" = $((before + 1)) ] && continue
        printf "INSERT INTO effects VALUES ('V%d');\nCREATE TABLE table_%d (id int);\n" "$v" "$v" \
            >>"$dir/V${v}__$([ "$v" = 1 ] && echo effects || echo "table_$v").sql"
    done
    {
        printf "INSERT INTO effects VALUES ('V%d');\n" $((before + 1))
        cat
    } >"$dir/V$((before + 1))__filler.sql"
    echo "V$((before + 1))__filler.sql"
}

# df_inconsistent PORT: the steps whose effects disagree with the history on the server on PORT
# (a row in effects and a history row, both once, or neither), empty if none.
df_inconsistent() {
    pg_psql "$1" postgres -c "
        WITH h AS (SELECT 'V' || version AS step, count(*) AS n FROM pgstep.history GROUP BY 1),
             e AS (SELECT step, count(*) AS n FROM effects GROUP BY 1)
        SELECT string_agg(coalesce(h.step, e.step) || ': ' || coalesce(h.n, 0) || ' history rows, '
                          || coalesce(e.n, 0) || ' effects', '; ')
        FROM h FULL JOIN e USING (step)
        WHERE h.n IS DISTINCT FROM e.n OR h.n > 1"
}
# df_recorded PORT: the versions the history holds, comma-separated, in order.
df_recorded() {
    pg_psql "$1" postgres -c "SELECT string_agg(version::text, ',' ORDER BY version) FROM pgstep.history"
}
# df_check_all_once PORT DIR: every step of DIR recorded once, with its row in effects.
df_check_all_once() {
    local want
    want=$(find "$2" -name 'V*.sql' -printf '%f\n' | sed 's/^V\([0-9]*\)__.*/\1/' | sort -n | paste -sd,)
    [ "$(df_recorded "$1")" = "$want" ] || round_fail "$3: history after freeing space: $(df_recorded "$1"), expected $want"
    [ -z "$(df_inconsistent "$1")" ] || round_fail "$3: inconsistent after freeing space: $(df_inconsistent "$1")"
}

# --- The cases. ---

round_fail() { t_fail "round $round (seed $round_seed): $*"; }
declare -A outcomes=()
df_outcome() { outcomes[$1]="${outcomes[$1]:-} $2"; }

# df_server: a server of its own, in memory; DF_WORK, DF_PORT, DF_DATA.
df_server() {
    t_own_server "$@"
    DF_WORK=$T_SERVER_WORK DF_PORT=$T_SERVER_PORT DF_DATA=$T_SERVER_WORK/data
    cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$DF_PORT")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = $DF_WAIT_S; };
CONF
}
DF_WAIT_S=5
df_apply() { "$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr"; }
df_is_up() { pg_psql "$DF_PORT" postgres -c 'SELECT 1' >/dev/null 2>&1; }
# df_free_space MOUNT: the disk is made bigger, and the server started if it went down.
df_free_space() {
    mount -o remount,size=1g "$1" || round_fail "could not remount $1 bigger"
    df_is_up || pg_start "$DF_DATA"
}
# df_rerun CASE: after space is freed, a new apply completes and every step is there once.
df_rerun() {
    local rc=0
    df_apply || rc=$?
    [ "$rc" = 0 ] || round_fail "$1: apply after freeing space exited $rc, expected 0: $(tail -n 3 "$T_DIR/stderr")"
    df_check_all_once "$DF_PORT" "$T_DIR/steps" "$1"
}
# df_error_line: the one error line pgstep wrote; fails if there is not exactly one.
df_error_line() {
    local n
    n=$(grep -c ' error: ' "$T_DIR/stderr" || true)
    [ "$n" = 1 ] || round_fail "$1: $n error lines, expected one: $(cat "$T_DIR/stderr")"
    grep ' error: ' "$T_DIR/stderr"
}

# tablespace: a step fills a tablespace on a 16 MB tmpfs.
df_tablespace() {
    local before=$1 rows=$2 filler rc=0 line
    t_tmpfs 16m
    local space=$T_TMPFS
    df_server
    pg_as_owner mkdir "$space/ts"
    pg_psql "$DF_PORT" postgres -c "CREATE TABLESPACE fill LOCATION '$space/ts'"
    rm -rf "$T_DIR/steps"
    filler=$(df_stepset "$T_DIR/steps" "$before" <<SQL
CREATE TABLE filler (x text) TABLESPACE fill;
INSERT INTO filler SELECT repeat(md5(i::text), 30) FROM generate_series(1, $rows) i;
SQL
    )
    df_apply || rc=$?
    df_outcome tablespace "$rc"
    [ "$rc" = 1 ] || round_fail "tablespace: apply exited $rc, expected 1: $(tail -n 3 "$T_DIR/stderr")"
    line=$(df_error_line tablespace)
    [[ $line == *" error: $filler:3: could not extend file \"pg_tblspc/"*'": No space left on device (SQLSTATE 53100). Hint: Check free disk space. Exit code 1.' ]] ||
        round_fail "tablespace: the error line is not the one expected: $line"
    [ "$(df_recorded "$DF_PORT")" = "$(seq -s, 1 "$before")" ] ||
        round_fail "tablespace: history $(df_recorded "$DF_PORT"), expected the $before steps before the filler"
    [ -z "$(pg_psql "$DF_PORT" postgres -c "SELECT to_regclass('public.filler')")" ] ||
        round_fail "tablespace: the filler's table was committed"
    [ -z "$(df_inconsistent "$DF_PORT")" ] || round_fail "tablespace: inconsistent: $(df_inconsistent "$DF_PORT")"
    df_free_space "$space"
    df_rerun tablespace
    [ "$(pg_psql "$DF_PORT" postgres -c 'SELECT count(*) FROM filler')" = "$rows" ] ||
        round_fail "tablespace: the filler's rows are not all there"
    df_discard "$space"
}
# df_discard MOUNT: the case's server and full disk go.
df_discard() {
    pg_discard "$DF_WORK"
    t_tmpfs_remove "$1"
}

# pg_wal of the server in DATADIR moves to DF_WAL (a tmpfs), before the server first starts.
df_move_wal() {
    pg_as_owner cp -a "$1/pg_wal/." "$DF_WAL/"
    pg_as_owner rm -rf "$1/pg_wal"
    pg_as_owner ln -s "$DF_WAL" "$1/pg_wal"
}
# WAL of about 1 kB a row, more than the 48 MB tmpfs holds after the first 16 MB segment.
df_wal_filler() {
    echo "CREATE TABLE $1 (x text);"
    echo "INSERT INTO $1 SELECT repeat(md5(i::text), 30) FROM generate_series(1, $2) i;"
}

# wal-step: the filler itself writes more WAL than pg_wal can hold.
df_wal_step() {
    local before=$1 rows=$2 filler rc=0 line
    t_tmpfs 48m
    DF_WAL=$T_TMPFS
    df_server df_move_wal
    rm -rf "$T_DIR/steps"
    filler=$(df_wal_filler filler "$rows" | df_stepset "$T_DIR/steps" "$before")
    df_apply || rc=$?
    df_outcome wal-step "$rc"
    case $rc in
    1)
        line=$(df_error_line wal-step)
        [[ $line == *" error: $filler:3: PANIC: could not write to file \"pg_wal/xlogtemp."*'": No space left on device (SQLSTATE 53100). Exit code 1.' ]] ||
            round_fail "wal-step: the error line is not the one expected: $line"
        ;;
    69) df_expect_lost wal-step "$filler" ;;
    *) round_fail "wal-step: apply exited $rc, expected 1 (or 69): $(tail -n 3 "$T_DIR/stderr")" ;;
    esac
    df_expect_down wal-step
    df_free_space "$DF_WAL"
    [ -z "$(df_inconsistent "$DF_PORT")" ] || round_fail "wal-step: inconsistent: $(df_inconsistent "$DF_PORT")"
    df_rerun wal-step
    df_discard "$DF_WAL"
}

# wal-other: while pgstep's step sleeps, another session writes more WAL than pg_wal can hold.
df_wal_other() {
    local before=$1 rows=$2 filler rc=0 runner since took
    t_tmpfs 48m
    DF_WAL=$T_TMPFS
    df_server df_move_wal
    rm -rf "$T_DIR/steps"
    filler=$(printf 'CREATE TABLE asleep (id int);\nSELECT pg_sleep(4);\n' |
        df_stepset "$T_DIR/steps" "$before")
    df_apply &
    runner=$!
    t_on_exit "kill $runner 2>/dev/null"
    for _ in $(seq 1 300); do
        df_asleep && break
        sleep 0.02
    done
    df_asleep || round_fail "wal-other: pgstep never ran $filler"
    # The other session's own backend PANICs; psql reports its lost connection.
    { df_wal_filler bystander "$rows" | pg_psql "$DF_PORT" postgres; } >/dev/null 2>&1 &&
        round_fail "wal-other: the other session's insert succeeded: pg_wal did not fill"
    since=$(t_now_ms)
    wait "$runner" || rc=$?
    took=$(($(t_now_ms) - since))
    df_outcome wal-other "$rc"
    [ "$rc" = 69 ] || round_fail "wal-other: apply exited $rc, expected 69: $(tail -n 3 "$T_DIR/stderr")"
    df_expect_lost wal-other "$filler"
    [ "$took" -lt "$(t_ms $((DF_WAIT_S * 1000 + 3000)))" ] ||
        round_fail "wal-other: apply ended $took ms after the crash, wait.timeout is $DF_WAIT_S s"
    df_expect_down wal-other
    df_free_space "$DF_WAL"
    [ -z "$(df_inconsistent "$DF_PORT")" ] || round_fail "wal-other: inconsistent: $(df_inconsistent "$DF_PORT")"
    df_rerun wal-other
    df_discard "$DF_WAL"
}
df_asleep() {
    [ "$(pg_psql "$DF_PORT" postgres -c "SELECT count(*) FROM pg_stat_activity
                                         WHERE application_name = 'pgstep' AND wait_event = 'PgSleep'")" = 1 ]
}
# df_expect_lost CASE STEP: pgstep retried STEP after losing its connection, waited, and exited
# 69 naming the step and the lost connection.
df_expect_lost() {
    local line
    grep -q "retrying $2 after a transient error" "$T_DIR/stderr" ||
        round_fail "$1: pgstep did not say that it lost its connection during $2"
    line=$(df_error_line "$1")
    [[ $line == *" error: primary not ready after $DF_WAIT_S s: "*"The connection was lost while applying $2: "*". Exit code 69." ]] ||
        round_fail "$1: the error line is not the one expected: $line"
}
# df_expect_down CASE: after its PANIC the server goes down for good: crash recovery needs a new
# WAL segment too and finds no room either.
df_expect_down() {
    for _ in $(seq 1 200); do
        [ -f "$DF_DATA/postmaster.pid" ] || break
        sleep 0.05
    done
    [ ! -f "$DF_DATA/postmaster.pid" ] || round_fail "$1: the server is still running with pg_wal full"
    grep -q 'PANIC: .*could not write to file "pg_wal/xlogtemp\.[0-9]*": No space left on device' \
        "$DF_DATA/server.log" || round_fail "$1: the server log lacks the PANIC"
    # "aborting startup" on 14, where the startup process PANICs rather than failing.
    grep -Eq '(shutting down|aborting startup) due to startup process failure' "$DF_DATA/server.log" ||
        round_fail "$1: the server log does not say that recovery failed"
}

for round in $(seq 1 "$rounds"); do
    round_seed=$((seed + round - 1))
    RANDOM=$round_seed
    before=$((1 + RANDOM % 6))
    ts_rows=$((30000 + RANDOM % 20000)) # 35 to 60 MB into a 16 MB tablespace
    wal_rows=$((60000 + RANDOM % 20000)) # 70 to 90 MB of WAL into 48 MB
    echo "round $round: seed $round_seed: $before steps before the filler, $ts_rows rows into the" \
        "tablespace, $wal_rows rows of WAL"
    df_tablespace "$before" "$ts_rows"
    df_wal_step "$before" "$wal_rows"
    df_wal_other "$before" "$wal_rows"
    echo "round $round: seed $round_seed: exits:${outcomes[tablespace]##* }" \
        "(tablespace),${outcomes[wal-step]##* } (wal-step),${outcomes[wal-other]##* } (wal-other)"
done

summary=''
for c in tablespace wal-step wal-other; do
    summary+=" $c:$(tr ' ' '\n' <<<"${outcomes[$c]}" | sed '/^$/d' | sort | uniq -c |
        awk '{printf " exit %s x%s", $2, $1}'),"
done
t_ok "disk full: $rounds rounds (seed $seed),$summary $((($(t_now_ms) - started) / 1000)) s"
