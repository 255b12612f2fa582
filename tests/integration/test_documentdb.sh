#!/usr/bin/env bash
# The shipped step set (sql/documentdb) against the real DocumentDB: applied as the superuser
# to a fresh cluster twice (the second run applies nothing), then the application role can use
# what it was granted. Needs tests/documentdb/build-deps.sh to have installed DocumentDB.
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/documentdb/server.sh
. "$PGSTEP_SOURCE_DIR/tests/documentdb/server.sh"

[ -f "$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension/documentdb.control" ] ||
    t_fail "DocumentDB is not installed: run tests/documentdb/build-deps.sh"
work=$(pg_make_dir)
port=$(pg_free_port)
t_on_exit "documentdb_server_destroy '$work/server' >/dev/null 2>&1; rm -rf '$work'"
documentdb_server_start "$work/server" "$port" >/dev/null
app_password=app-password-$RANDOM
PG_SUPERUSER_PASSWORD=$(documentdb_server_password "$work/server") pg_psql "$port" postgres \
    -c "CREATE ROLE app LOGIN PASSWORD '$app_password'"

documentdb_server_password "$work/server" >"$T_DIR/password"
cat >"$T_DIR/pgstep.conf" <<CONF
connection: {
  conninfo = "host=127.0.0.1 port=$port user=postgres dbname=*";
  dbname = "postgres";
  password_file = "$T_DIR/password";
};
steps: { directory = "$PGSTEP_SOURCE_DIR/sql/documentdb"; };
variables: { app_role = "app"; };
CONF
t_run 0 -c "$T_DIR/pgstep.conf" apply
t_stderr_has "applied 3 steps"
t_run 0 -c "$T_DIR/pgstep.conf" apply
t_stderr_has "nothing to apply: 3 steps already applied"
t_run 0 -c "$T_DIR/pgstep.conf" status --json
python3 -c "
import json, sys
doc = json.load(open('$T_DIR/stdout'))
states = {s['file']: s['state'] for s in doc['steps']}
assert set(states.values()) == {'applied'}, states
assert [s for s in doc['steps'] if s['file'] == 'R__documentdb_extension_update.sql'][0]['rerun_when']
"

app() {
    PGPASSWORD=$app_password "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U app -d postgres -c "SET documentdb_core.bsonUseEJson = true" \
        -c "$1" 2>"$T_DIR/app.err" || t_fail "as app: $1: $(cat "$T_DIR/app.err")"
}
[ "$(app "SELECT pg_has_role('app', 'documentdb_admin_role', 'member')")" = t ] ||
    t_fail "app is not a member of documentdb_admin_role"
[ "$(app "SELECT has_parameter_privilege('app', 'documentdb.maxuserlimit', 'SET')")" = t ] ||
    t_fail "app may not set documentdb.maxuserlimit"
app "SELECT documentdb_api.insert_one('pgstep', 'things', '{\"name\": \"step\", \"n\": 1}')" |
    grep -Fq '{ "n" : { "$numberInt" : "1" }, "ok" : { "$numberDouble" : "1.0" } }' ||
    t_fail "insert_one as app did not insert one document"
app "SELECT cursorpage FROM documentdb_api.find_cursor_first_page('pgstep',
        '{ \"find\" : \"things\", \"filter\" : {\"n\": 1} }')" |
    grep -Fq '"name" : "step"' || t_fail "find as app did not return the document"
t_ok "DocumentDB set applied once, app role can insert and find"
