#!/usr/bin/env bash
# JSON logs are one valid JSON object per line with time, level and message; a password never
# appears in any log line, whether it came from a DSN, a URI or a password file.
. "$(dirname "$0")/../lib/testlib.sh"

port=$(pg_free_port)
secret=$(cat "$PGSTEP_TEST_PASSFILE")
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres password=$secret"; };
wait: { timeout = 1; };
log: { format = "json"; level = "debug"; };
CONF
t_run 69 -c "$T_DIR/pgstep.conf" wait
python3 - "$T_DIR/stderr" <<'PY'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 2, lines
for line in lines:
    event = json.loads(line)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", event["time"]), event
    assert event["level"] in ("debug", "info", "warn", "error"), event
    assert event["message"], event
assert json.loads(lines[-1])["exit_code"] == 69
PY
t_stderr_lacks "$secret"
t_run 69 --log-format json --dsn "postgresql://postgres:$secret@127.0.0.1:$port/postgres" -c "$T_DIR/pgstep.conf" wait
t_stderr_lacks "$secret"

# A password given with --dsn disappears from the process's command line.
"$PGSTEP_BIN" --dsn "host=127.0.0.1 port=$port user=postgres password=$secret" -c "$T_DIR/pgstep.conf" wait \
    >/dev/null 2>&1 &
pid=$!
sleep 0.5
tr '\0' ' ' <"/proc/$pid/cmdline" >"$T_DIR/cmdline"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
grep -q -- "--dsn" "$T_DIR/cmdline" || t_fail "could not read the command line"
! grep -q -- "$secret" "$T_DIR/cmdline" || t_fail "the password shows in the process's command line"

# So do the passwords of every --dsn given, and one under a percent-encoded parameter name,
# which libpq decodes.
"$PGSTEP_BIN" --dsn "host=127.0.0.1 port=$port user=postgres password=${secret}1" \
    --dsn "postgresql://postgres:${secret}2@127.0.0.1:$port/postgres" \
    --dsn "postgresql://127.0.0.1:$port/postgres?user=postgres&%70assword=${secret}3" \
    -c "$T_DIR/pgstep.conf" wait >/dev/null 2>&1 &
pid=$!
sleep 0.5
tr '\0' ' ' <"/proc/$pid/cmdline" >"$T_DIR/cmdline"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[ "$(grep -o -- "--dsn" "$T_DIR/cmdline" | wc -l)" = 3 ] || t_fail "could not read the command line"
! grep -q -- "$secret" "$T_DIR/cmdline" || t_fail "a password shows in the process's command line"

# Server errors come with sqlstate, file and line fields.
db=$(t_db json)
mkdir "$T_DIR/steps"
printf 'SELECT 1;\nSELECT * FROM no_such_table;\n' >"$T_DIR/steps/V1__broken.sql"
t_conf "$T_DIR/ok.conf" "$db" 'log: { format = "json"; };'
t_run 1 -c "$T_DIR/ok.conf" -d "$T_DIR/steps" apply
python3 - "$T_DIR/stderr" <<'PY'
import json, sys
event = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert event["sqlstate"] == "42P01", event
assert event["file"] == "V1__broken.sql" and event["line"] == 2, event
PY
t_stderr_lacks "$secret"

# The password file is wiped and never leaks through --verbose either.
t_conf "$T_DIR/verbose.conf" "$db"
t_run 0 -c "$T_DIR/verbose.conf" --verbose wait
t_stderr_lacks "$secret"
t_ok "JSON lines valid, no password in any log line"
