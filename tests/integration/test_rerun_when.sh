#!/usr/bin/env bash
# A repeatable step with "-- pgstep: rerun-when QUERY" runs again when the query's result
# changes (the way ALTER EXTENSION ... UPDATE must follow a new default_version), and not on
# every run; the query is read in the same round trip as the history.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db rerun)
t_conf "$T_DIR/pgstep.conf" "$db"
t_psql postgres "ALTER DATABASE \"$db\" SET pgstep_test.fact = 'v1'" >/dev/null
steps=$T_DIR/steps
mkdir "$steps"
printf 'CREATE TABLE runs (fact text);\n' >"$steps/V1__runs.sql"
cat >"$steps/R__follow.sql" <<'SQL'
-- pgstep: rerun-when SELECT pg_catalog.current_setting('pgstep_test.fact', true)
INSERT INTO runs VALUES (current_setting('pgstep_test.fact', true));
SQL
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply"
[ "$(t_psql "$db" "SELECT string_agg(fact, ',') FROM runs")" = "v1" ] || t_fail "ran more than once"

t_psql postgres "ALTER DATABASE \"$db\" SET pgstep_test.fact = 'v2'" >/dev/null
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status
t_stdout_has "^rerun +R__follow.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied R__follow.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply"
[ "$(t_psql "$db" "SELECT string_agg(fact, ',' ORDER BY fact) FROM runs")" = "v1,v2" ] ||
    t_fail "did not run exactly once per fact"

# A NULL result is a fact of its own.
t_psql postgres "ALTER DATABASE \"$db\" RESET pgstep_test.fact" >/dev/null
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied R__follow.sql"

# A failing rerun-when query names its step and exits 1.
printf -- '-- pgstep: rerun-when SELECT no_such_column FROM pg_class\nSELECT 1;\n' >"$steps/R__follow.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has 'R__follow.sql:1: column "no_such_column" does not exist'
t_ok "rerun-when re-applies on a changed fact only"
