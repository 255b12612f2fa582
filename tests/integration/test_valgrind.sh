#!/usr/bin/env bash
# No leaks and no memory errors on the main paths: under valgrind (definite and indirect leaks
# are errors), verify, apply (fresh, with V, R and no-transaction steps; again as a no-op;
# --dry-run), status --json, a failing step, a configuration error, an invalid step set, the
# integrity commands (manifest, keygen, sign, a signed apply, a mismatch) and a wait for a closed
# port each end with their normal exit code. Plain builds only.
. "$(dirname "$0")/../lib/testlib.sh"

command -v valgrind >/dev/null || t_fail "valgrind is not installed (apt-get install valgrind)"

# vg EXPECTED_EXIT LABEL ARGS...: pgstep under valgrind, stdout/stderr kept in $T_DIR.
runs=0
vg() {
    local expected=$1 label=$2 rc=0 start
    shift 2
    start=$(t_now_ms)
    valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no \
        --log-file="$T_DIR/valgrind.$label.log" \
        "$PGSTEP_BIN" "$@" >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
    runs=$((runs + 1))
    if [ "$rc" != "$expected" ]; then
        cat "$T_DIR/valgrind.$label.log" >&2
        t_fail "$label: pgstep $* exited $rc under valgrind, expected $expected (99: valgrind errors)"
    fi
    echo "  $label: exit $rc in $(($(t_now_ms) - start)) ms"
}

db=$(t_db main)
mkdir "$T_DIR/steps"
printf 'CREATE TABLE vg_items (id int PRIMARY KEY, name text);\n' >"$T_DIR/steps/V1__items.sql"
printf "INSERT INTO vg_items VALUES (1, :'item');\n" >"$T_DIR/steps/V2__seed.sql"
printf -- '-- pgstep: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS vg_items_name ON vg_items (name);\n' \
    >"$T_DIR/steps/V3__index.sql"
printf 'CREATE OR REPLACE VIEW vg_names AS SELECT name FROM vg_items;\n' >"$T_DIR/steps/R__views.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'variables: { item = "first"; };'

vg 0 verify -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" verify
t_stderr_has 'step set .* is valid: 4 steps'
vg 0 apply-fresh -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
t_stderr_has 'applied 4 steps, skipped 0'
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 4 ] || t_fail "history is not 4 rows"
vg 0 apply-again -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
t_stderr_has 'nothing to apply: 4 steps already applied'
vg 0 status-json -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" status --json
t_stdout_has '"summary":\{"applied":4,'
printf 'CREATE OR REPLACE VIEW vg_names AS SELECT name, id FROM vg_items;\n' >"$T_DIR/steps/R__views.sql"
vg 0 dry-run -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" --log-format json apply --dry-run
t_stdout_has 'R__views.sql'
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 4 ] || t_fail "--dry-run changed the history"

printf 'SELECT 1;\nSELECT * FROM no_such_table;\n' >"$T_DIR/steps/V4__broken.sql"
vg 1 step-fails -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
t_stderr_has 'no_such_table'
rm "$T_DIR/steps/V4__broken.sql"

printf 'apply: { retries = "many"; };\n' >"$T_DIR/bad.conf"
vg 78 config-error -c "$T_DIR/bad.conf" -d "$T_DIR/steps" apply
t_stderr_has 'retries'

mkdir "$T_DIR/invalid"
printf 'SELECT 1;\n' >"$T_DIR/invalid/V1__one.sql"
printf 'SELECT 2;\n' >"$T_DIR/invalid/V1__same_version.sql"
printf "SELECT :'undefined_variable';\n" >"$T_DIR/invalid/V2__vars.sql"
vg 65 invalid-set -c "$T_DIR/pgstep.conf" -d "$T_DIR/invalid" apply
t_stderr_has 'step set .* is invalid: 2 problems'

# Step-set integrity: manifest, key pair, signature, a verified apply, a tampered set. The key is
# unencrypted: scrypt at minisign's cost would take minutes under valgrind.
vg 0 manifest -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" manifest
vg 0 keygen -c /dev/null keygen --unencrypted --public-key "$T_DIR/vg.pub" --secret-key "$T_DIR/vg.key"
vg 0 sign -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" sign --secret-key "$T_DIR/vg.key"
t_conf "$T_DIR/signed.conf" "$db" 'variables: { item = "first"; };' \
    "steps: { trusted_keys = \"$T_DIR/vg.pub\"; };"
vg 0 signed-apply -c "$T_DIR/signed.conf" -d "$T_DIR/steps" apply
t_stderr_has 'step set matches pgstep.sum \(4 files\), signed by key'
vg 0 signed-status -c "$T_DIR/signed.conf" -d "$T_DIR/steps" status --json
t_stdout_has '"integrity":\{"manifest":true,"files":4,"signed":true'
printf 'SELECT 5;\n' >"$T_DIR/steps/V5__late.sql"
vg 65 manifest-mismatch -c "$T_DIR/signed.conf" -d "$T_DIR/steps" verify
t_stderr_has 'V5__late.sql: file is not listed in pgstep.sum'
rm "$T_DIR/steps/V5__late.sql"

port=$(pg_free_port)
cat >"$T_DIR/down.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 1; };
CONF
vg 69 wait-closed-port -c "$T_DIR/down.conf" wait
t_stderr_has 'primary not ready after 1 s'

t_ok "$runs runs under valgrind: normal exit codes, no leaks or memory errors"
