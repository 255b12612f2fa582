#!/usr/bin/env bash
# An authentication failure is retried for wait.auth_grace (CNPG sets passwords a moment after
# the primary starts), succeeds if the password starts working meanwhile, and is reported as
# such once the grace period is over.
. "$(dirname "$0")/../lib/testlib.sh"

t_psql postgres "DROP ROLE IF EXISTS wait_auth_app; CREATE ROLE wait_auth_app LOGIN PASSWORD 'old-password'" >/dev/null
t_on_exit "pg_psql $PGSTEP_TEST_PORT postgres -c 'DROP ROLE IF EXISTS wait_auth_app' >/dev/null"
printf 'new-password\n' >"$T_DIR/password"
cat >"$T_DIR/pgstep.conf" <<CONF
connection: {
  conninfo = "host=127.0.0.1 port=$PGSTEP_TEST_PORT user=wait_auth_app dbname=postgres";
  password_file = "$T_DIR/password";
};
wait: { timeout = 30; auth_grace = 2; };
CONF

start=$(t_now_ms)
t_run 69 -c "$T_DIR/pgstep.conf" --verbose wait
elapsed=$(($(t_now_ms) - start))
tries=$(grep -c "password authentication failed" "$T_DIR/stderr" || true)
[ "$tries" -ge 3 ] || t_fail "authentication failure was not retried ($tries attempts)"
t_stderr_has 'error: .*password authentication failed for user "wait_auth_app"'
t_stderr_has "rejecting the connection for 2 s"
[ "$elapsed" -lt "$(t_ms 5000)" ] || t_fail "grace of 2 s took ${elapsed} ms"
t_stderr_lacks "new-password"

# The password is set while pgstep retries within its grace period.
sed -i 's/auth_grace = 2/auth_grace = 20/' "$T_DIR/pgstep.conf"
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
sleep 1
t_psql postgres "ALTER ROLE wait_auth_app PASSWORD 'new-password'" >/dev/null
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || t_fail "wait exited $rc after the password was set"
t_ok "auth failure retried $tries times then exit 69 after ${elapsed} ms; recovered when fixed"
