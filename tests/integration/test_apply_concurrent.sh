#!/usr/bin/env bash
# Eight runners started at once on one database apply each step exactly once and all exit 0;
# with a no-transaction CREATE INDEX CONCURRENTLY in the middle of the set (on a table with
# data), two runners at once both finish promptly instead of deadlocking.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db many)
t_conf "$T_DIR/pgstep.conf" "$db" 'lock: { timeout = 120; };'
steps=$T_DIR/steps
mkdir "$steps"
printf 'CREATE TABLE counter (step int, n int);\n' >"$steps/V1__counter.sql"
for v in $(seq 2 40); do
    # Not idempotent on purpose: a second application would show as a second row.
    printf 'INSERT INTO counter VALUES (%d, 1);\n' "$v" >"$steps/V${v}__count_$v.sql"
done
printf 'INSERT INTO counter VALUES (0, 1);\n' >"$steps/R__count.sql"

t_run_together 8 -c "$T_DIR/pgstep.conf" -d "$steps" apply
[ "$(t_psql "$db" "SELECT count(*), count(DISTINCT step), max(n) FROM counter")" = "40|40|1" ] ||
    t_fail "steps were not applied exactly once: $(t_psql "$db" "SELECT step, count(*) FROM counter GROUP BY 1 HAVING count(*) > 1")"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 41 ] || t_fail "history has duplicates"
applied=$(cat "$T_DIR"/err.* | grep -c "info: applied [VR]" || true)
[ "$applied" = 41 ] || t_fail "runners report $applied applications, expected 41"

# CREATE INDEX CONCURRENTLY between transactional steps, two runners at once.
db2=$(t_db cic)
t_conf "$T_DIR/cic.conf" "$db2" 'lock: { timeout = 60; };'
t_psql "$db2" "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g" >/dev/null
mkdir "$T_DIR/cic"
printf 'ALTER TABLE big ADD COLUMN IF NOT EXISTS note text;\n' >"$T_DIR/cic/V1__column.sql"
printf -- '-- pgstep: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS big_v_idx ON big (v);\n' >"$T_DIR/cic/V2__index.sql"
printf 'UPDATE big SET note = %s WHERE id = 1;\n' "'indexed'" >"$T_DIR/cic/V3__note.sql"
start=$(t_now_ms)
"$PGSTEP_BIN" -c "$T_DIR/cic.conf" -d "$T_DIR/cic" apply >"$T_DIR/cic.1" 2>&1 &
p1=$!
"$PGSTEP_BIN" -c "$T_DIR/cic.conf" -d "$T_DIR/cic" apply >"$T_DIR/cic.2" 2>&1 &
p2=$!
rc1=0 rc2=0
wait $p1 || rc1=$?
wait $p2 || rc2=$?
elapsed=$(($(t_now_ms) - start))
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] || { cat "$T_DIR"/cic.* >&2; t_fail "CIC runners exited $rc1 and $rc2"; }
[ "$elapsed" -lt 30000 ] || t_fail "two runners with CREATE INDEX CONCURRENTLY took ${elapsed} ms"
[ "$(t_psql "$db2" "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass")" = t ] ||
    t_fail "the concurrent index is not valid"
[ "$(t_psql "$db2" "SELECT count(*) FROM pgstep.history")" = 3 ] || t_fail "CIC set not recorded once"
t_ok "8 runners: 41 steps applied exactly once; 2 runners with CIC done in ${elapsed} ms"
