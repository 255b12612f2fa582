#!/usr/bin/env bash
# Every class of configuration error exits 78 with one line naming the file, line and key, and
# no connection is attempted (the target is a tripwire that records any connection).
. "$(dirname "$0")/../lib/testlib.sh"

t_tripwire
port=$T_TRIPWIRE_PORT
base="connection: { conninfo = \"$(t_dsn postgres "$port")\"; };
wait: { timeout = 1; };"

# check NAME EXPECTED_PATTERN CONFIG_TEXT (which starts on line 3 of the file)
check() {
    local name=$1 pattern=$2
    printf '%s\n%s\n' "$base" "$3" >"$T_DIR/$name.conf"
    t_run 78 -c "$T_DIR/$name.conf" wait
    t_stderr_has "$pattern"
    [ "$(grep -c . "$T_DIR/stderr")" = 1 ] || t_fail "$name: expected exactly one line on stderr"
    t_no_connection "$name"
}

check unknown_group 'unknown_group.conf:3: "conection": unknown group' \
    'conection: { conninfo = "x"; };'
check unknown_key 'unknown_key.conf:4: key "steps.directry": unknown key' \
    'steps: {
  directry = "/tmp"; };'
check wrong_type_int 'wrong_type_int.conf:3: key "lock.timeout": expected an integer' \
    'lock: { timeout = "ten"; };'
check wrong_type_str 'wrong_type_str.conf:3: key "steps.schema": expected a string' \
    'steps: { schema = 5; };'
check out_of_range 'out_of_range.conf:3: key "apply.retries": value 1000 is out of range 0..100' \
    'apply: { retries = 1000; };'
check negative 'negative.conf:3: key "lock.timeout": value -1 is out of range 0..86400' \
    'lock: { timeout = -1; };'
check bad_enum 'bad_enum.conf:3: key "log.format": expected text or json' \
    'log: { format = "xml"; };'
check syntax 'syntax.conf:3: syntax error' \
    'apply: { retries = = 3; };'
check variable_type 'variable_type.conf:3: key "variables.app": expected a string' \
    'variables: { app = 7; };'
check not_a_group 'not_a_group.conf:3: "lock": expected a group' \
    'lock = 5;'
check empty_schema 'key "steps.schema": must not be empty' \
    'steps: { schema = ""; };'

# A connection string libpq cannot parse; the password it holds is not echoed.
printf 'connection: { conninfo = "host=127.0.0.1 password secretvalue"; };\n' >"$T_DIR/dsn.conf"
t_run 78 -c "$T_DIR/dsn.conf" wait
t_stderr_has "invalid connection string"
t_no_connection "bad conninfo"
t_stderr_lacks "secretvalue"

# A file named with -c (or PGSTEP_CONFIG) must exist; the default path may be absent.
t_run 78 -c "$T_DIR/absent.conf" wait
t_stderr_has "could not read configuration file \".*absent.conf\""
PGSTEP_CONFIG="$T_DIR/absent.conf" t_run 78 wait
t_stderr_has "absent.conf"
t_ok "12 configuration error classes exit 78 naming file, line and key"
