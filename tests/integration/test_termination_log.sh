#!/usr/bin/env bash
# log.termination_log receives a one-line summary of the run, success or failure, for the
# Kubernetes termination message; a file that cannot be written does not change the exit code.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db term)
mkdir "$T_DIR/steps"
printf 'CREATE TABLE t (id int);\n' >"$T_DIR/steps/V1__t.sql"
t_conf "$T_DIR/pgstep.conf" "$db" "log: { termination_log = \"$T_DIR/termination\"; };"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
[ "$(cat "$T_DIR/termination")" = "applied 1 step, skipped 0" ] ||
    t_fail "summary: $(cat "$T_DIR/termination")"
[ "$(wc -l <"$T_DIR/termination")" = 1 ] || t_fail "the summary is not one line"

printf 'SELECT 1/0;\n' >"$T_DIR/steps/V2__boom.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
[ "$(cat "$T_DIR/termination")" = "failed (exit 1): V2__boom.sql: division by zero" ] ||
    t_fail "failure summary: $(cat "$T_DIR/termination")"

t_conf "$T_DIR/bad.conf" "$db" 'log: { termination_log = "/nonexistent/dir/termination"; };'
rm "$T_DIR/steps/V2__boom.sql"
t_run 0 -c "$T_DIR/bad.conf" -d "$T_DIR/steps" apply
t_stderr_has 'warn: could not write termination log "/nonexistent/dir/termination"'
t_ok "one-line summaries written; an unwritable file only warns"
