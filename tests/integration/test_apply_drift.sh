#!/usr/bin/env bash
# Drift: an applied versioned step whose file changed or disappeared is refused with exit 65
# before anything is applied, unless --allow-drift turns it into a warning.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db drift)
t_conf "$T_DIR/pgstep.conf" "$db"
steps=$T_DIR/steps
mkdir "$steps"
printf 'CREATE TABLE a (id int);\n' >"$steps/V1__a.sql"
printf 'CREATE TABLE b (id int);\n' >"$steps/V2__b.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply

printf 'CREATE TABLE a (id bigint);\n' >"$steps/V1__a.sql"
printf 'CREATE TABLE c (id int);\n' >"$steps/V3__c.sql"
t_run 65 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "V1__a.sql was changed after it was applied"
t_stderr_has "1 applied step was changed or missing"
[ -z "$(t_psql "$db" "SELECT to_regclass('c')")" ] || t_fail "a pending step ran despite drift"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status
t_stdout_has "^changed +V1__a.sql"
t_stdout_has "^pending +V3__c.sql"

t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply --allow-drift
t_stderr_has "warn: V1__a.sql was changed after it was applied"
t_stderr_has "applied V3__c.sql"

rm "$steps/V2__b.sql"
t_run 65 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "V2__b.sql was applied but its file is gone"
t_stderr_has "2 applied steps were changed or missing"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status --json
python3 -c "
import json
doc = json.load(open('$T_DIR/stdout'))
states = {s['file']: s['state'] for s in doc['steps']}
assert states == {'V1__a.sql': 'changed', 'V2__b.sql': 'missing', 'V3__c.sql': 'applied'}, states
assert doc['summary'] == {'applied': 1, 'pending': 0, 'rerun': 0, 'changed': 1, 'missing': 1}, doc
"
t_ok "changed and missing steps refused (65), allowed with --allow-drift"

# A recorded file name with control characters (the history may hold anything) is escaped in
# the status table and the plan, one line per step, and valid JSON in status --json.
t_psql "$db" "UPDATE pgstep.history SET file_name = E'V2__b\\n\\x1b[2J\\x7f.sql' WHERE version = 2" \
    >/dev/null
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status
t_stdout_has '^missing +V2__b\\x0a\\x1b\[2J\\x7f\.sql '
[ "$(wc -l <"$T_DIR/stdout")" = 6 ] || t_fail "status: expected the step set's verification, a header, 3 steps and a summary"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" --allow-drift apply --dry-run
t_stdout_has '^missing +V2__b\\x0a\\x1b\[2J\\x7f\.sql '
! grep -q "$(printf '\033')" "$T_DIR/stdout" || t_fail "an escape character reached the output"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status --json
python3 -c "
import json, sys
doc = json.load(open(sys.argv[1]))
assert [s['file'] for s in doc['steps'] if s['state'] == 'missing'] == ['V2__b\n\x1b[2J\x7f.sql'], doc
" "$T_DIR/stdout" || t_fail "status --json: the recorded name is not escaped as expected"
t_ok "recorded file names with control characters are escaped in every output"
