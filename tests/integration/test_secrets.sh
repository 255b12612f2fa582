#!/usr/bin/env bash
# A password holding '"', "'", '\', spaces and '=' never shows: not in pgstep's output, not in
# its /proc/<pid>/cmdline or environ when it came from a file, not in pg_stat_activity, not in a
# server log that records every statement and connection; on success and on every error path
# (wrong password, a connection string libpq cannot parse, in key=value and URI form).
. "$(dirname "$0")/../lib/testlib.sh"

logging() {
    pg_as_owner tee -a "$1/postgresql.conf" >/dev/null <<CONF
log_statement = 'all'
log_connections = on
log_disconnections = on
log_min_messages = info
CONF
}
t_own_server logging
port=$T_SERVER_PORT
log=$T_SERVER_WORK/data/server.log

# Six distinctive pieces between the characters that break quoting.
pieces=(zq1Kp xv2Lm wk3Nb jm4Hc ny5Gd pt6Fe)
pw="${pieces[0]}\"${pieces[1]}'${pieces[2]}\\${pieces[3]} ${pieces[4]}=${pieces[5]}"
# Set without logging the statement that carries it.
printf '%s\n' "SET log_statement = 'none';" "ALTER ROLE postgres PASSWORD :'pw';" |
    pg_psql "$port" postgres -v pw="$pw" >/dev/null
printf '%s\n' "$pw" >"$T_DIR/password"
chmod 600 "$T_DIR/password"
printf '%s\n' "${pw}-wrong" >"$T_DIR/wrong"
# shellcheck disable=SC2034 # read by pg_psql (pg.sh); not exported, so pgstep never inherits it
PG_SUPERUSER_PASSWORD=$pw

# leaks FILE...: fails when any piece of the password shows in the files.
leaks() {
    local piece
    for piece in "${pieces[@]}"; do
        ! grep -q -- "$piece" "$@" || t_fail "a piece of the password ($piece) shows in: $(grep -l -- "$piece" "$@")"
    done
}

mkdir "$T_DIR/steps"
printf 'CREATE TABLE t (id int);\nSELECT pg_sleep(2);\n' >"$T_DIR/steps/V1__slow.sql"
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres dbname=postgres";
              password_file = "$T_DIR/password"; };
log: { level = "debug"; };
CONF

# While the step runs: the process's command line and environment, and every column of every
# row of pg_stat_activity.
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
for _ in $(seq 1 50); do
    [ "$(pg_psql "$port" postgres -c "SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'pgstep' AND query LIKE '%pg_sleep%'")" = 1 ] && break
    sleep 0.1
done
tr '\0' '\n' <"/proc/$pid/cmdline" >"$T_DIR/cmdline"
tr '\0' '\n' <"/proc/$pid/environ" >"$T_DIR/environ"
pg_psql "$port" postgres -c "SELECT row_to_json(a)::text FROM pg_stat_activity a" >"$T_DIR/activity"
grep -q pg_sleep "$T_DIR/activity" || t_fail "pgstep's step was not seen in pg_stat_activity"
grep -q -- apply "$T_DIR/cmdline" || t_fail "could not read pgstep's command line"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || t_fail "apply with the password file exited $rc"
leaks "$T_DIR/cmdline" "$T_DIR/environ" "$T_DIR/activity" "$T_DIR/stdout" "$T_DIR/stderr"
t_ok "the password from a file: not in argv, environ, pg_stat_activity or the output"

# The same password inside the connection string, quoted as libpq wants, works too.
quoted=$(sed "s/[\\\\']/\\\\&/g" <<<"$pw")
cat >"$T_DIR/inline.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres dbname=postgres password='$(sed 's/[\\"]/\\&/g' <<<"$quoted")'"; };
log: { level = "debug"; };
CONF
t_run 0 -c "$T_DIR/inline.conf" -d "$T_DIR/steps" --log-format json status
leaks "$T_DIR/stdout" "$T_DIR/stderr"

# Error paths. A wrong password: rejected, reported, not shown.
cat >"$T_DIR/wrong.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres dbname=postgres";
              password_file = "$T_DIR/wrong"; };
wait: { timeout = 5; auth_grace = 0; };
log: { level = "debug"; };
CONF
t_run 69 -c "$T_DIR/wrong.conf" wait
t_stderr_has 'password authentication failed for user "postgres"'
leaks "$T_DIR/stdout" "$T_DIR/stderr"
t_run 69 -c "$T_DIR/wrong.conf" --log-format json wait
leaks "$T_DIR/stdout" "$T_DIR/stderr"

# Connection strings libpq cannot parse, holding the password: quoted, raw (its quote and
# spaces break the string), in a URI, and followed by a broken option; one clear line, exit 78.
t_tripwire
printf 'wait: { timeout = 1; };\n' >"$T_DIR/w.conf"
enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$pw")
n=0
while IFS= read -r dsn; do
    n=$((n + 1))
    t_run 78 -c "$T_DIR/w.conf" --dsn "$dsn" wait
    t_stderr_has 'option --dsn: invalid connection string'
    [ "$(grep -c . "$T_DIR/stderr")" = 1 ] || t_fail "bad conninfo $n: expected one line"
    leaks "$T_DIR/stdout" "$T_DIR/stderr"
    printf 'wait: { timeout = 1; };\nconnection: { conninfo = "%s"; };\n' "$(sed 's/[\\"]/\\&/g' <<<"$dsn")" >"$T_DIR/bad.conf"
    t_run 78 -c "$T_DIR/bad.conf" --log-format json wait
    t_stderr_has 'bad.conf:2: key \\"connection.conninfo\\": invalid connection string'
    leaks "$T_DIR/stdout" "$T_DIR/stderr"
done <<DSNS
host=127.0.0.1 port=$T_TRIPWIRE_PORT password=$pw
host=127.0.0.1 port=$T_TRIPWIRE_PORT password='$quoted' broken
host=127.0.0.1 password='$quoted
host=127.0.0.1 port=$T_TRIPWIRE_PORT password=${pieces[0]} ${pieces[1]}"${pieces[2]}
host=127.0.0.1 port=$T_TRIPWIRE_PORT password=${pieces[0]} ${pieces[1]}"${pieces[2]}=x
postgresql://postgres:$pw@127.0.0.1:$T_TRIPWIRE_PORT/postgres?x"${pieces[3]}=1
postgresql://postgres:$enc@127.0.0.1:$T_TRIPWIRE_PORT/postgres?sslmode=require&${pieces[4]}
postgresql://127.0.0.1:$T_TRIPWIRE_PORT/postgres?password=$enc&${pieces[5]}"${pieces[0]}
postgresql://127.0.0.1:$T_TRIPWIRE_PORT/postgres?password=${pieces[0]}%zz${pieces[1]}
DSNS
t_no_connection "connection strings that do not parse"
t_ok "wrong password and $n unparsable connection strings: exit 69 / 78, the password not shown"

# Nothing of it reached the server log, which records every statement and connection.
grep -q 'connection authorized' "$log" || t_fail "the server log does not record connections"
grep -q 'statement: ' "$log" || t_fail "the server log does not record statements"
leaks "$log"
t_ok "the server log holds no piece of the password"
