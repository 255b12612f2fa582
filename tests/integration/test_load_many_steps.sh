#!/usr/bin/env bash
# Many steps: a set of 10,000 steps applied to a fresh database, then a second run that applies
# nothing, each timed and its peak RSS measured (GNU time's %M). Memory stays bounded: the same
# two runs with 1,000 steps give the growth of peak RSS per step, which may be at most 3 times
# the step's own text (file name and contents: what pgstep reads, substitutes and sends) plus
# 1 KiB for the bookkeeping of one step (its record, its plan entry, its history row as libpq
# returns it and as pgstep keeps it, each allocation's overhead). A sanitizer build gives every
# allocation a redzone and keeps freed memory in a quarantine: there the quarantine is off and
# the bookkeeping margin is 1.5 KiB.
. "$(dirname "$0")/../lib/testlib.sh"

[ -x /usr/bin/time ] || t_fail "GNU time is not installed (apt-get install time)"
margin=1024
if grep -qa __asan_init "$PGSTEP_BIN"; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
    margin=1536
fi

# steps DIR N: N one-statement steps in DIR, each inserting its own row into a ledger whose
# primary key would refuse a second application; prints the bytes of their names and contents.
steps() {
    local dir=$1 n=$2 v
    mkdir "$dir"
    printf 'CREATE TABLE ledger (version int PRIMARY KEY, file text NOT NULL);\n' >"$dir/V1__ledger.sql"
    for v in $(seq 2 "$n"); do
        printf -- "-- one of many small steps\nINSERT INTO ledger VALUES (%d, 'V%d__step_%d.sql');\n" \
            "$v" "$v" "$v" >"$dir/V${v}__step_$v.sql"
    done
    echo $(($(cat "$dir"/*.sql | wc -c) + $(find "$dir" -name '*.sql' -printf '%f' | wc -c)))
}

# measure NAME ARGS...: runs pgstep ARGS, which must exit 0; its time in ms and peak RSS in KiB
# are in MS and KIB, and what it logged in $T_DIR/NAME.log.
measure() {
    local name=$1 start rc=0
    shift
    start=$(t_now_ms)
    /usr/bin/time -f %M -o "$T_DIR/rss" "$PGSTEP_BIN" "$@" >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
    MS=$(($(t_now_ms) - start))
    cp "$T_DIR/stderr" "$T_DIR/$name.log"
    [ "$rc" = 0 ] || t_fail "$name: pgstep $* exited $rc"
    KIB=$(tail -n 1 "$T_DIR/rss")
    [[ $KIB =~ ^[0-9]+$ ]] || t_fail "$name: no peak RSS from GNU time: $(cat "$T_DIR/rss")"
}

# run_set N: a fresh database, N steps applied, then applied again; the time and peak RSS of
# each run are in MSEC[fresh,N], RSS[fresh,N], MSEC[noop,N] and RSS[noop,N], the bytes of the
# steps' text in BYTES.
declare -A MSEC RSS
run_set() {
    local n=$1 db
    db=$(t_db "s$n")
    BYTES=$(steps "$T_DIR/steps$n" "$n")
    t_conf "$T_DIR/pgstep$n.conf" "$db"
    measure "fresh$n" -c "$T_DIR/pgstep$n.conf" -d "$T_DIR/steps$n" apply
    MSEC[fresh,$n]=$MS RSS[fresh,$n]=$KIB
    t_stderr_has "info: applied $n steps, skipped 0 "
    [ "$(t_psql "$db" "SELECT count(*), count(DISTINCT file_name) FROM pgstep.history")" = "$n|$n" ] ||
        t_fail "$n steps: the history does not hold each step once"
    [ "$(t_psql "$db" "SELECT count(*) FROM ledger")" = $((n - 1)) ] || t_fail "$n steps: the ledger is not complete"
    measure "noop$n" -c "$T_DIR/pgstep$n.conf" -d "$T_DIR/steps$n" apply
    MSEC[noop,$n]=$MS RSS[noop,$n]=$KIB
    t_stderr_has "info: nothing to apply: $n steps already applied"
    echo "$n steps ($((BYTES / n)) bytes of text each): fresh apply ${MSEC[fresh,$n]} ms," \
        "${RSS[fresh,$n]} KiB peak RSS; no-op ${MSEC[noop,$n]} ms, ${RSS[noop,$n]} KiB"
}

run_set 1000
run_set 10000
[ "${MSEC[fresh,10000]}" -lt "$(t_ms 60000)" ] ||
    t_fail "the fresh apply of 10,000 steps took ${MSEC[fresh,10000]} ms"
[ "${MSEC[noop,10000]}" -lt "$(t_ms 10000)" ] ||
    t_fail "the no-op run over 10,000 steps took ${MSEC[noop,10000]} ms"

# In bytes per step: the bound, and each kind of run's growth from 1,000 to 10,000 steps.
text=$((BYTES / 10000))
bound=$((3 * text + margin))
kib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1024 }'; }
for kind in fresh noop; do
    growth=$(((RSS[$kind,10000] - RSS[$kind,1000]) * 1024 / 9000))
    echo "$kind: peak RSS ${RSS[$kind,1000]} KiB at 1,000 steps, ${RSS[$kind,10000]} KiB at 10,000:" \
        "$(kib "$growth") KiB per step (bound $(kib "$bound") KiB: 3 x $text bytes of step text + $margin bytes)"
    [ "$growth" -le "$bound" ] ||
        t_fail "$kind run: peak RSS grows by $(kib "$growth") KiB per step, more than $(kib "$bound") KiB"
done
t_ok "10,000 steps: fresh apply in ${MSEC[fresh,10000]} ms (${RSS[fresh,10000]} KiB peak RSS)," \
    "no-op in ${MSEC[noop,10000]} ms (${RSS[noop,10000]} KiB); memory per step within the bound"
