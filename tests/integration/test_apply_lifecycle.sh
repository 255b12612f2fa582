#!/usr/bin/env bash
# The life of a step set: a fresh apply applies everything and records it; a second run applies
# nothing; a step added later is applied alone; a repeatable step runs again after an edit and
# not otherwise; dry-run prints the plan and leaves the database untouched.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db life)
t_conf "$T_DIR/pgstep.conf" "$db"
steps=$T_DIR/steps
mkdir "$steps"
printf 'CREATE TABLE items (id int PRIMARY KEY, name text);\n' >"$steps/V1__items.sql"
printf 'INSERT INTO items VALUES (1, %s);\n' "'one'" >"$steps/V002__first_item.sql"
printf 'CREATE OR REPLACE VIEW item_names AS SELECT name FROM items;\n' >"$steps/R__views.sql"
printf 'not sql, not a step\n' >"$steps/README.md"

# Dry run on an empty database: the plan, and no schema created.
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply --dry-run
t_stdout_has "^apply +V1__items.sql +[0-9a-f]{64}$"
t_stdout_has "^apply +R__views.sql"
[ -z "$(t_psql "$db" "SELECT to_regnamespace('pgstep')")" ] || t_fail "dry run created the schema"
[ -z "$(t_psql "$db" "SELECT to_regclass('items')")" ] || t_fail "dry run ran a step"

t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied 3 steps, skipped 0"
[ "$(t_psql "$db" "SELECT string_agg(file_name, ',' ORDER BY id) FROM pgstep.history")" = \
    "V1__items.sql,V002__first_item.sql,R__views.sql" ] || t_fail "history order is wrong"
row=$(t_psql "$db" "SELECT kind, version, description, length(checksum), applied_by,
    length(run_id), pgstep_version, client_host <> '', duration_ms >= 0
    FROM pgstep.history WHERE version = 2")
[ "$row" = "V|2|first_item|64|postgres|32|$("$PGSTEP_BIN" --version | cut -d' ' -f2)|t|t" ] ||
    t_fail "history row is incomplete: $row"
[ "$(t_psql "$db" "SELECT count(DISTINCT run_id) FROM pgstep.history")" = 1 ] ||
    t_fail "one run should have one run id"
checksum=$(t_psql "$db" "SELECT checksum FROM pgstep.history WHERE version = 1")
expected=$(python3 -c "import hashlib,sys;print(hashlib.blake2b(open(sys.argv[1],'rb').read(),digest_size=32).hexdigest())" "$steps/V1__items.sql")
[ "$checksum" = "$expected" ] || t_fail "checksum $checksum is not BLAKE2b-256 of the file"

t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply: 3 steps already applied"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 3 ] || t_fail "second run recorded rows"

printf 'INSERT INTO items VALUES (10, %s);\n' "'ten'" >"$steps/V10__tenth_item.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied V10__tenth_item.sql"
t_stderr_has "applied 1 step, skipped 3"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 4 ] || t_fail "new step not recorded alone"

printf 'CREATE OR REPLACE VIEW item_names AS SELECT name, id FROM items;\n' >"$steps/R__views.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply --dry-run
t_stdout_has "^re-apply +R__views.sql +[0-9a-f]{64} \(recorded [0-9a-f]{64}\)$"
t_stdout_has "^skip +V1__items.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied R__views.sql"
t_stderr_has "applied 1 step, skipped 3"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history WHERE kind = 'R'")" = 2 ] ||
    t_fail "repeatable step not recorded again"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply"

# CRLF line ends do not count as a change.
sed -i 's/$/\r/' "$steps/V1__items.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply"
t_ok "fresh apply, no-op, added step, repeatable re-run, dry run, CRLF"
