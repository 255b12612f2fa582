#!/usr/bin/env bash
# After a physical restore (a base backup started and promoted, as in a CNPG
# bootstrap.recovery) apply finds every step recorded and applies nothing again, leaving the
# history exactly as it was; while the copy is still a standby in recovery, apply exits 69 with
# reason "in recovery".
. "$(dirname "$0")/../lib/testlib.sh"

t_own_server
work=$T_SERVER_WORK primary_port=$T_SERVER_PORT
t_on_exit "pg_stop '$work/copy'"

mkdir "$T_DIR/steps"
printf 'CREATE TABLE accounts (id int PRIMARY KEY, email text);\n' >"$T_DIR/steps/V1__accounts.sql"
printf "INSERT INTO accounts VALUES (1, 'a@example.org');\n" >"$T_DIR/steps/V2__seed.sql"
printf -- '-- pgstep: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email);\n' \
    >"$T_DIR/steps/V3__email_index.sql"
printf 'CREATE OR REPLACE VIEW account_emails AS SELECT email FROM accounts;\n' \
    >"$T_DIR/steps/R__views.sql"
conf() {
    cat >"$1" <<CONF
connection: { conninfo = "$(t_dsn postgres "$2")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = $3; };
CONF
}
history_dump() {
    pg_psql "$1" postgres -c "SELECT id, kind, version, description, file_name, checksum,
                                     applied_at, duration_ms, applied_by, run_id, pgstep_version,
                                     client_host
                              FROM pgstep.history ORDER BY id"
}

conf "$T_DIR/primary.conf" "$primary_port" 10
t_run 0 -c "$T_DIR/primary.conf" -d "$T_DIR/steps" apply
t_stderr_has 'applied 4 steps'
before=$(history_dump "$primary_port")
[ "$(printf '%s\n' "$before" | wc -l)" = 4 ] || t_fail "the primary's history is not 4 rows: $before"

# The base backup, taken while the primary runs; then the primary goes away, as in a restore.
copy_port=$(pg_free_port)
pg_standby "$primary_port" "$work/copy" "$copy_port"
pg_stop "$work/data"
pg_start "$work/copy"
[ "$(pg_psql "$copy_port" postgres -c 'SELECT pg_is_in_recovery()')" = t ] ||
    t_fail "the restored copy is not in recovery before promotion"

# Still in recovery: not ready.
conf "$T_DIR/copy.conf" "$copy_port" 2
start=$(t_now_ms)
t_run 69 -c "$T_DIR/copy.conf" -d "$T_DIR/steps" apply
waited=$(($(t_now_ms) - start))
t_stderr_has 'error: primary not ready after 2 s: server is in recovery'
[ "$waited" -lt 5000 ] || t_fail "apply against the standby took ${waited} ms with wait.timeout = 2"
[ "$(history_dump "$copy_port")" = "$before" ] || t_fail "the standby's history differs"

# Promoted: nothing to apply, history unchanged.
pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$work/copy" -w promote >/dev/null
conf "$T_DIR/copy.conf" "$copy_port" 30
t_run 0 -c "$T_DIR/copy.conf" -d "$T_DIR/steps" apply
t_stderr_has 'nothing to apply: 4 steps already applied'
t_stderr_lacks 'info: applied '
after=$(history_dump "$copy_port")
[ "$after" = "$before" ] || t_fail "history changed by the restore: before
$before
after
$after"
t_run 0 -c "$T_DIR/copy.conf" -d "$T_DIR/steps" status --json
states=$(grep -o '"state":"[a-z]*"' "$T_DIR/stdout" | sort | uniq -c | tr -s ' ')
[ "$states" = ' 4 "state":"applied"' ] || t_fail "status after the restore: $states"
t_stdout_has '"summary":\{"applied":4,"pending":0,"rerun":0,"changed":0,"missing":0\}'
[ "$(pg_psql "$copy_port" postgres -c 'SELECT count(*) FROM accounts')" = 1 ] ||
    t_fail "V2's row is not there exactly once on the restored copy"
t_ok "standby: exit 69 after ${waited} ms (in recovery); promoted copy: nothing applied, history identical"
