# shellcheck shell=bash
# Load tests: rounds of many pgstep runners started together, each round on a fresh database with
# a mixed step set whose every step leaves side effects that can be counted afterwards. Source
# after testlib.sh. Four parts, kept apart: the seed and the rounds (ld_seed, ld_rounds), the step
# set (ld_stepset*), the checks of what a round left behind (ld_check_*), and the round itself
# (ld_round) with the summary (ld_summary).

# ---- Seed and rounds ----

# ld_seed: LD_SEED from PGSTEP_SEED, or derived from the time; printed first. Round R (from 1)
# runs with seed LD_SEED + R - 1, so PGSTEP_SEED=<a round's seed> PGSTEP_ROUNDS=1 replays that
# round alone. Also starts the clock and the tallies ld_summary prints.
ld_seed() {
    LD_SEED=${PGSTEP_SEED:-$(($(date +%s%N) / 1000 % 1000000000))}
    [[ $LD_SEED =~ ^(0|[1-9][0-9]{0,17})$ ]] || t_fail "PGSTEP_SEED must be a non-negative integer, not '$LD_SEED'"
    echo "seed: $LD_SEED"
    LD_START_MS=$(t_now_ms)
    LD_ROUNDS_DONE=0 LD_STEPS_CHECKED=0 LD_SUMMARY_SHOWN=0
    declare -gA LD_EXITS=()
    t_on_exit '[ "$LD_SUMMARY_SHOWN" = 1 ] || ld_summary "stopped after $LD_ROUNDS_DONE rounds"'
}

# ld_rounds DEFAULT: the number of rounds, PGSTEP_ROUNDS or DEFAULT.
ld_rounds() {
    local n=${PGSTEP_ROUNDS:-$1}
    [[ $n =~ ^[1-9][0-9]{0,5}$ ]] || t_fail "PGSTEP_ROUNDS must be a positive integer, not '$n'"
    echo "$n"
}

# ---- The step set ----

# Versioned steps in a set (V1 included); three repeatable steps follow them.
LD_VERSIONED=60

# ld_stepset DIR MODE: writes a step set into DIR (created). V1 creates the ledger and the tables
# the others use, and takes half a second; V2..V$LD_VERSIONED are of kinds drawn from RANDOM; R__a_view, R__b_comment and,
# in MODE "mixed", R__c_index follow. MODE "mixed" includes no-transaction steps (CREATE INDEX
# CONCURRENTLY IF NOT EXISTS); "transactional" leaves them out, as PgBouncer in transaction pooling
# mode requires. Every step inserts one row naming its file into the ledger, which has no unique
# key, so a second application would show as a second row; most also create an object of their
# own without IF NOT EXISTS, so a second application would fail. What each step must leave is in
# DIR.expect, one "FILE KIND TIMES" line per step: TIMES is how often it must have been applied.
ld_stepset() {
    local dir=$1 mode=$2 v kind kinds=(table bump function block index)
    [ "$mode" = transactional ] || kinds+=(cic)
    mkdir "$dir"
    : >"$dir.expect"
    ld_stepset_write "$dir" V1__ledger.sql base 1
    for v in $(seq 2 "$LD_VERSIONED"); do
        kind=${kinds[$((RANDOM % ${#kinds[@]}))]}
        ld_stepset_write "$dir" "V${v}__${kind}_$v.sql" "$kind" "$v"
    done
    ld_stepset_write "$dir" R__a_view.sql view 1
    ld_stepset_write "$dir" R__b_comment.sql comment -
    [ "$mode" = transactional ] || ld_stepset_write "$dir" R__c_index.sql cic ledger_step
}

# ld_stepset_write DIR FILE KIND ARG: one step file of KIND (ARG: its version or object name;
# for the view, the wave it reports, which is also how often it must have been applied) and its
# line in DIR.expect.
ld_stepset_write() {
    local dir=$1 file=$2 kind=$3 arg=$4
    {
        case "$kind" in
        base)
            printf 'CREATE TABLE ledger (step text NOT NULL, backend int NOT NULL DEFAULT pg_backend_pid());\n'
            printf 'CREATE TABLE tally (kind text PRIMARY KEY, n int NOT NULL);\n'
            printf "INSERT INTO tally VALUES ('bump', 0), ('block', 0);\n"
            printf 'CREATE TABLE data AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g;\n'
            # Slow enough that every runner arrives while it runs: otherwise the first runner
            # may finish the set (62 small steps in a pipeline) before the others start.
            printf 'SELECT pg_sleep(0.5);\n'
            ;;
        table)
            printf 'CREATE TABLE obj_%s (id int PRIMARY KEY, note text);\n' "$arg"
            printf "INSERT INTO obj_%s VALUES (%s, '%s');\n" "$arg" "$arg" "$file"
            ;;
        bump) printf "UPDATE tally SET n = n + 1 WHERE kind = 'bump';\n" ;;
        function) printf 'CREATE FUNCTION fn_%s() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT %s $$;\n' "$arg" "$arg" ;;
        block) printf "DO \$\$\nBEGIN\n    UPDATE tally SET n = n + 1 WHERE kind = 'block';\nEND\n\$\$;\n" ;;
        index) printf 'CREATE INDEX idx_%s ON data (v, id);\n' "$arg" ;;
        cic)
            printf -- '-- pgstep: no-transaction\n'
            printf 'CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_%s ON data (id, v);\n' "$arg"
            ;;
        view)
            printf 'CREATE OR REPLACE VIEW ledger_summary AS\n'
            printf '    SELECT %s AS wave, step, count(*) AS n FROM ledger GROUP BY step;\n' "$arg"
            ;;
        comment) printf "COMMENT ON TABLE ledger IS 'one row per application of a step';\n" ;;
        *) t_fail "ld_stepset_write: unknown kind $kind" ;;
        esac
        printf "INSERT INTO ledger (step) VALUES ('%s');\n" "$file"
    } >"$dir/$file"
    sed -i "/^$file /d" "$dir.expect"
    printf '%s %s %s\n' "$file" "$kind" "$([ "$kind" = view ] && echo "$arg" || echo 1)" >>"$dir.expect"
}

# ld_stepset_rerun DIR WAVE: changes R__a_view.sql to report WAVE, so that it must be applied once
# more (WAVE times in all).
ld_stepset_rerun() {
    ld_stepset_write "$1" R__a_view.sql view "$2"
}

# ld_stepset_count DIR [KIND...]: how many applications DIR.expect asks for, of steps of the
# KINDs given, or of all.
ld_stepset_count() {
    local expect=$1.expect
    shift
    awk -v kinds=" $* " '$0 != "" && (kinds == "  " || index(kinds, " " $2 " ")) { n += $3 }
                         END { print n + 0 }' "$expect"
}

# ---- Checks ----
# Each prints what it found wrong and returns 1, or prints nothing and returns 0.

# ld_check_applied DB DIR: the ledger and the history hold each step exactly as often as
# DIR.expect says, and nothing else.
ld_check_applied() {
    local db=$1 dir=$2 want got
    want=$(awk '{ print $1 " " $3 }' "$dir.expect" | LC_ALL=C sort)
    got=$(t_psql "$db" "SELECT step || ' ' || count(*) FROM ledger GROUP BY step ORDER BY step COLLATE \"C\"")
    [ "$got" = "$want" ] ||
        { echo "the ledger's rows per step differ from the step set's: $(ld_diff "$want" "$got")"; return 1; }
    got=$(t_psql "$db" "SELECT file_name || ' ' || count(*) FROM pgstep.history
                        GROUP BY file_name ORDER BY file_name COLLATE \"C\"")
    [ "$got" = "$want" ] ||
        { echo "the history's rows per step differ from the step set's: $(ld_diff "$want" "$got")"; return 1; }
}

# ld_check_objects DB DIR: each step's own object is there, once: tables, functions, valid
# indexes, the tally's counters, the view reporting the last wave, the comment.
ld_check_objects() {
    local db=$1 dir=$2 want got
    want="tables $(ld_stepset_count "$dir" table), functions $(ld_stepset_count "$dir" function)"
    want+=", valid indexes $(ld_stepset_count "$dir" index cic), bumps $(ld_stepset_count "$dir" bump)"
    want+=", blocks $(ld_stepset_count "$dir" block), view wave $(ld_stepset_count "$dir" view)"
    want+=", comment $(ld_stepset_count "$dir" comment)"
    got=$(t_psql "$db" "SELECT
        'tables ' || (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'obj\\_%')
        || ', functions ' || (SELECT count(*) FROM pg_proc WHERE proname LIKE 'fn\\_%')
        || ', valid indexes ' || (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                  WHERE c.relname LIKE 'idx\\_%' AND i.indisvalid AND i.indisready)
        || ', bumps ' || (SELECT n FROM tally WHERE kind = 'bump')
        || ', blocks ' || (SELECT n FROM tally WHERE kind = 'block')
        || ', view wave ' || coalesce((SELECT max(wave) FROM ledger_summary), 0)
        || ', comment ' || (obj_description('ledger'::regclass, 'pg_class') IS NOT NULL)::int")
    [ "$got" = "$want" ] || { echo "objects: expected $want; found ${got:-nothing}"; return 1; }
}

# ld_check_runners WANT_APPLIED: every runner of the last wave exited 0, logged its summary and
# no warning or error, and together they report WANT_APPLIED applications.
ld_check_runners() {
    local want=$1 i rc n applied=0
    for i in "${!T_TOGETHER_RCS[@]}"; do
        rc=${T_TOGETHER_RCS[$i]}
        [ "$rc" = 0 ] || { echo "runner $((i + 1)) exited $rc"; return 1; }
        n=$(t_applied_in "$T_DIR/err.$((i + 1))")
        [ -n "$n" ] || { echo "runner $((i + 1)) logged no summary"; return 1; }
        ! grep -Eq ' (warn|error): ' "$T_DIR/err.$((i + 1))" ||
            { echo "runner $((i + 1)) logged: $(grep -E ' (warn|error): ' "$T_DIR/err.$((i + 1))" | head -n 1)"; return 1; }
        applied=$((applied + n))
    done
    [ "$applied" = "$want" ] || { echo "the runners report $applied applications, expected $want"; return 1; }
}

# ld_diff WANT GOT: the first lines where two listings differ, on one line.
ld_diff() {
    diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | grep '^[<>]' | head -n 6 |
        sed 's/^</expected/; s/^>/found/' | paste -sd ';' - | sed 's/;/; /g'
}

# ---- Rounds ----

# ld_round ROUND MODE PORT RUNNERS JITTER_MS [CHECK_FN]: round ROUND with its own seed (see
# ld_seed) on a fresh database of the shared server, reached through PORT: a MODE step set (see
# ld_stepset); RUNNERS runners started together, each after a random delay below JITTER_MS; the
# checks, among them that the runners met (one waited for the lock or found a step applied by
# another). Then R__a_view.sql changes and RUNNERS runners start again: it must be applied once
# more, and nothing else. CHECK_FN DB, if given, checks more and prints what it found wrong. A
# failure names the round and its seed.
ld_round() {
    local round=$1 mode=$2 port=$3 runners=$4 jitter=$5 check=${6:-} seed db dir started wave why
    local applied_by waits found rc want
    LD_RUNNERS=$runners
    seed=$((LD_SEED + round - 1))
    RANDOM=$seed
    started=$(t_now_ms)
    db=$(t_db "r$round")
    dir=$T_DIR/steps.$round
    ld_stepset "$dir" "$mode"
    cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn "$db" "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
lock: { timeout = 120; };
CONF
    applied_by=() waits=0 found=0
    for wave in 1 2; do
        [ "$wave" = 1 ] || ld_stepset_rerun "$dir" "$wave"
        t_start_together "$runners" "$jitter" -c "$T_DIR/pgstep.conf" -d "$dir" apply
        t_wait_together
        for rc in "${T_TOGETHER_RCS[@]}"; do
            LD_EXITS[$rc]=$((${LD_EXITS[$rc]:-0} + 1))
        done
        want=1
        [ "$wave" != 1 ] || want=$(ld_stepset_count "$dir")
        why=$(ld_check_runners "$want") || ld_round_fail "$round" "$seed" "wave $wave: $why"
        applied_by+=("$(grep -l 'info: applied [VR]' "$T_DIR"/err.* | wc -l || true)")
        waits=$((waits + $(cat "$T_DIR"/err.* | grep -c 'waiting for the advisory lock' || true)))
        found=$((found + $(cat "$T_DIR"/err.* | grep -c 'applied by another runner meanwhile' || true)))
    done
    [ $((waits + found)) -gt 0 ] ||
        ld_round_fail "$round" "$seed" "the runners never met a lock or a step another one applied: they did not run together"
    why=$(ld_check_applied "$db" "$dir") || ld_round_fail "$round" "$seed" "$why"
    why=$(ld_check_objects "$db" "$dir") || ld_round_fail "$round" "$seed" "$why"
    if [ -n "$check" ]; then
        why=$("$check" "$db") || ld_round_fail "$round" "$seed" "$why"
    fi
    LD_ROUNDS_DONE=$((LD_ROUNDS_DONE + 1))
    LD_STEPS_CHECKED=$((LD_STEPS_CHECKED + $(ld_stepset_count "$dir")))
    echo "round $round (seed $seed): $(ld_stepset_count "$dir") applications of $(wc -l <"$dir.expect") steps" \
        "($(ld_stepset_count "$dir" cic) no-transaction) checked; $runners runners a wave, steps applied by" \
        "${applied_by[0]} of them, then by ${applied_by[1]}; $waits waits for the lock, $found steps found" \
        "applied by another runner meanwhile;" \
        "$(($(t_now_ms) - started)) ms"
    t_psql postgres "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null
    rm -rf "$dir" "$dir.expect"
}

# ld_round_fail ROUND SEED WHAT: fails naming the round, its seed and how to replay it.
ld_round_fail() {
    local i
    for i in "${!T_TOGETHER_RCS[@]}"; do
        [ "${T_TOGETHER_RCS[$i]}" = 0 ] || { cp "$T_DIR/err.$((i + 1))" "$T_DIR/stderr"; break; }
    done
    t_fail "round $1 (seed $2): $3; replay it alone with PGSTEP_SEED=$2 PGSTEP_ROUNDS=1"
}

# ld_summary [NOTE]: the one-line summary: rounds, runners, runs by exit code, steps checked,
# elapsed time.
ld_summary() {
    local code exits=''
    for code in $(printf '%s\n' "${!LD_EXITS[@]}" | sort -n); do
        exits+="${exits:+, }exit $code: ${LD_EXITS[$code]}"
    done
    # shellcheck disable=SC2034 # read by the exit hook ld_seed registers
    LD_SUMMARY_SHOWN=1
    echo "summary: seed $LD_SEED, $LD_ROUNDS_DONE rounds, $LD_RUNNERS runners a wave, runs by exit code:" \
        "${exits:-none}; $LD_STEPS_CHECKED step applications checked; $((($(t_now_ms) - LD_START_MS) / 1000)) s${1:+ ($1)}"
}
