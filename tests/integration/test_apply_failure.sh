#!/usr/bin/env bash
# A failing step rolls back and records nothing, earlier steps stay recorded, later steps are
# not attempted, and the error names the file, the line, the SQLSTATE and the server's message,
# detail and hint; exit 1.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db fail)
t_conf "$T_DIR/pgstep.conf" "$db"
steps=$T_DIR/steps
mkdir "$steps"
printf 'CREATE TABLE t (id int PRIMARY KEY);\n' >"$steps/V1__t.sql"
cat >"$steps/V2__broken.sql" <<'SQL'
-- a comment line
INSERT INTO t VALUES (1);
CREATE TABLE half_done (id int);

INSERT INTO t
VALUES (1);
SQL
printf 'CREATE TABLE later (id int);\n' >"$steps/V3__later.sql"
printf 'CREATE TABLE later_r (id int);\n' >"$steps/R__later.sql"

t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'error: duplicate key value violates unique constraint "t_pkey" file=V2__broken.sql line=5 sqlstate=23505 detail="Key \(id\)=\(1\) already exists\." exit_code=1'
[ "$(t_psql "$db" "SELECT string_agg(file_name, ',') FROM pgstep.history")" = "V1__t.sql" ] ||
    t_fail "history is not just V1"
[ -z "$(t_psql "$db" "SELECT to_regclass('half_done')")" ] || t_fail "the failed step was not rolled back"
[ "$(t_psql "$db" "SELECT count(*) FROM t")" = 0 ] || t_fail "the failed step left rows"
[ -z "$(t_psql "$db" "SELECT to_regclass('later')")" ] || t_fail "a later step was attempted"
[ -z "$(t_psql "$db" "SELECT to_regclass('later_r')")" ] || t_fail "a later repeatable step was attempted"

# Position inside a statement that spans lines, and a hint from the server.
cat >"$steps/V2__broken.sql" <<'SQL'
SELECT 1;
SELECT
  id,
  no_such_column
FROM t;
SQL
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'column "no_such_column" does not exist file=V2__broken.sql line=4 sqlstate=42703'
printf 'SELECT * FROM t WHERE id = 1::text;\n' >"$steps/V2__broken.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'operator does not exist: integer = text .*sqlstate=42883 hint="No operator matches'

# A failing no-transaction step: statements before the failure stay, nothing is recorded.
printf -- '-- pgstep: no-transaction\nCREATE TABLE IF NOT EXISTS nt (id int);\nSELECT 1/0;\n' >"$steps/V2__broken.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'division by zero file=V2__broken.sql line=3 sqlstate=22012'
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 1 ] || t_fail "failed no-transaction step recorded"
# Fixed, the next run completes it (IF NOT EXISTS makes the partial run harmless).
printf -- '-- pgstep: no-transaction\nCREATE TABLE IF NOT EXISTS nt (id int);\nSELECT 1;\n' >"$steps/V2__broken.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied 3 steps, skipped 1"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 4 ] || t_fail "completed run not recorded"

# A syntax error is found by the server before anything in the batch runs, on a first run too
# (the history's creation is in the same batch): still named by file and line, nothing created.
db2=$(t_db syntax)
t_conf "$T_DIR/syntax.conf" "$db2"
mkdir "$T_DIR/syntax"
printf 'CREATE TABLE ok_one (id int);\n' >"$T_DIR/syntax/V1__ok.sql"
printf 'SELECT 1;\n\nSELEC 2;\n' >"$T_DIR/syntax/V2__typo.sql"
t_run 1 -c "$T_DIR/syntax.conf" -d "$T_DIR/syntax" apply
t_stderr_has 'syntax error at or near "SELEC" file=V2__typo.sql line=3 sqlstate=42601'
[ -z "$(t_psql "$db2" "SELECT to_regclass('ok_one')")" ] || t_fail "a step ran despite the syntax error"

# COPY to or from the client is refused instead of hanging.
printf 'CREATE TABLE c (id int);\nCOPY c FROM STDIN;\n' >"$T_DIR/syntax/V2__typo.sql"
t_run 1 -c "$T_DIR/syntax.conf" -d "$T_DIR/syntax" apply
t_stderr_has 'pgstep does not send COPY data.* file=V2__typo.sql'
t_ok "syntax errors and COPY FROM STDIN reported with their file"
