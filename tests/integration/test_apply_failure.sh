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
t_stderr_has 'error: V2__broken.sql:5: duplicate key value violates unique constraint "t_pkey" \(SQLSTATE 23505\)\. Detail: Key \(id\)=\(1\) already exists\. Exit code 1\.$'
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
t_stderr_has 'V2__broken.sql:4: column "no_such_column" does not exist \(SQLSTATE 42703\)'
printf 'SELECT * FROM t WHERE id = 1::text;\n' >"$steps/V2__broken.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'operator does not exist: integer = text \(SQLSTATE 42883\)\. Hint: No operator matches'

# A failing no-transaction step: statements before the failure stay, nothing is recorded.
printf -- '-- pgstep: no-transaction\nCREATE TABLE IF NOT EXISTS nt (id int);\nSELECT 1/0;\n' >"$steps/V2__broken.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'V2__broken.sql:3: division by zero \(SQLSTATE 22012\)'
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 1 ] || t_fail "failed no-transaction step recorded"
# Fixed, the next run completes it (IF NOT EXISTS makes the partial run harmless).
printf -- '-- pgstep: no-transaction\nCREATE TABLE IF NOT EXISTS nt (id int);\nSELECT 1;\n' >"$steps/V2__broken.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied 3 steps, skipped 1"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 4 ] || t_fail "completed run not recorded"

# A syntax error is found when its statement reaches the server, on a first run too: named by
# file and line; the step before it stays applied, nothing of the broken step is.
db2=$(t_db syntax)
t_conf "$T_DIR/syntax.conf" "$db2"
mkdir "$T_DIR/syntax"
printf 'CREATE TABLE ok_one (id int);\n' >"$T_DIR/syntax/V1__ok.sql"
printf 'SELECT 1;\n\nSELEC 2;\n' >"$T_DIR/syntax/V2__typo.sql"
t_run 1 -c "$T_DIR/syntax.conf" -d "$T_DIR/syntax" apply
t_stderr_has 'V2__typo.sql:3: syntax error at or near "SELEC" \(SQLSTATE 42601\)'
[ "$(t_psql "$db2" "SELECT string_agg(file_name, ',') FROM pgstep.history")" = V1__ok.sql ] ||
    t_fail "history after the syntax error: $(t_psql "$db2" "SELECT string_agg(file_name, ',') FROM pgstep.history")"

# COPY to or from the client is refused when the step set is read, before connecting.
printf 'CREATE TABLE c (id int);\nCOPY c FROM STDIN;\n' >"$T_DIR/syntax/V2__typo.sql"
printf "COPY (SELECT 1) TO stdout WITH (FORMAT csv);\nCOPY c FROM '/tmp/stdin';\n" >"$T_DIR/syntax/V3__out.sql"
t_run 65 -c "$T_DIR/syntax.conf" -d "$T_DIR/syntax" verify
t_stderr_has 'V2__typo.sql:2: COPY FROM STDIN in a step: pgstep sends no COPY data'
t_stderr_has 'V3__out.sql:1: COPY TO STDOUT in a step: pgstep reads no COPY data'
t_stderr_lacks 'V3__out.sql:2'
# Comments and quoted words do not hide one, nor make one up.
rm "$T_DIR/syntax/V3__out.sql"
printf "CREATE TABLE c (id int);\nCOPY c FROM/**/STDIN;\nCOPY c FROM '/tmp/x' WITH (FORMAT csv, NULL 'stdin');\n" >"$T_DIR/syntax/V2__typo.sql"
t_run 65 -c "$T_DIR/syntax.conf" -d "$T_DIR/syntax" verify
t_stderr_has 'V2__typo.sql:2: COPY FROM STDIN in a step'
t_stderr_lacks 'V2__typo.sql:3'
t_ok "syntax errors and COPY to or from the client reported with their file and line"
