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
    t_stderr_lacks "$name\.conf:[0-9]+: .*$name\.conf:[0-9]+:"
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
t_stderr_has 'dsn.conf:1: key "connection.conninfo": invalid connection string: missing "=" after "..." in connection info string'
t_no_connection "bad conninfo"
t_stderr_lacks "secretvalue"
# The same from --dsn or PGSTEP_DSN names that.
t_run 78 -c "$T_DIR/dsn.conf" --dsn "host=127.0.0.1 port" wait
t_stderr_has 'option --dsn: invalid connection string'
PGSTEP_DSN="host=127.0.0.1 port" t_run 78 -c "$T_DIR/dsn.conf" wait
t_stderr_has 'environment variable PGSTEP_DSN: invalid connection string'
t_no_connection "bad --dsn"

# Integer options libpq reads only when connecting are configuration errors at once, not an
# unreachable server waited on until wait.timeout.
printf '%s\n' "$base" >"$T_DIR/ints.conf"
for dsn in "port=abc" "port=99999" "port=$port,abc" "keepalives=abc" "keepalives_idle=1x" \
    "connect_timeout=99999999999" "postgresql://127.0.0.1:99999/postgres" \
    "postgresql://127.0.0.1:$port/postgres?tcp_user_timeout=x"; do
    case $dsn in postgresql://*) ;; *) dsn="host=127.0.0.1 user=postgres $dsn" ;; esac
    t_run 78 -c "$T_DIR/ints.conf" --dsn "$dsn" wait
    t_stderr_has 'option --dsn: invalid connection string: option "[a-z_]+": expected (an integer|a port number from 1 to 65535)'
done
t_no_connection "bad integer options"

# A file named with -c (or PGSTEP_CONFIG) must exist; the default path may be absent.
t_run 78 -c "$T_DIR/absent.conf" wait
t_stderr_has "could not read configuration file \".*absent.conf\": no such file or directory"
PGSTEP_CONFIG="$T_DIR/absent.conf" t_run 78 wait
t_stderr_has "absent.conf"
t_ok "12 configuration error classes exit 78 naming file, line and key"

# Integer literals too wide for libconfig's int are out of range, shown as written, not wrapped.
check wide_int 'wide_int.conf:3: key "lock.timeout": value 4294967297 is out of range 0..86400' \
    'lock: { timeout = 4294967297; };'
check wide_zero 'wide_zero.conf:3: key "lock.timeout": value 4294967296 is out of range' \
    'lock: { timeout = 4294967296; };'
check wide_negative 'wide_negative.conf:4: key "apply.retries": value -4294967295 is out of range' \
    'apply: {
  retries = -4294967295; };'
check wide_int64 'wide_int64.conf:3: key "apply.retries": value 9223372036854775808 is out of' \
    'apply: { retries = 9223372036854775808; };'
check wide_hex 'wide_hex.conf:3: key "apply.retries": value 0x100000001 is out of range' \
    'apply: { retries = 0x100000001; };'
check wide_group 'wide_group.conf:3: key "apply.retries": value 4294967297 is out of range' \
    'lock: { timeout = 1; }; apply: { retries = 4294967297; };'
t_ok "integers beyond 32 bits are out of range, not wrapped"

# Only regular files are read, without blocking: a FIFO (or a link to one) or a directory as
# the configuration file, an included file, the password file or the termination log is an
# error at once, even with no writer on the FIFO.
mkfifo "$T_DIR/fifo"
ln -s "$T_DIR/fifo" "$T_DIR/fifo-link"
mkdir "$T_DIR/dir"
bounded() {
    local expected=$1 rc=0
    shift
    timeout 20 "$PGSTEP_BIN" "$@" >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
    [ "$rc" = "$expected" ] || t_fail "pgstep $* exited $rc, expected $expected"
    [ "$(grep -c . "$T_DIR/stderr")" = 1 ] || t_fail "pgstep $*: expected one line on stderr"
}
bounded 78 -c "$T_DIR/fifo" wait
t_stderr_has "configuration file \".*/fifo\" is not a regular file"
PGSTEP_CONFIG="$T_DIR/fifo-link" bounded 78 wait
t_stderr_has "configuration file \".*/fifo-link\" is not a regular file"
bounded 78 -c "$T_DIR/dir" wait
t_stderr_has "configuration file \".*/dir\" is not a regular file"
printf '%s\n\n@include "%s"\n' "$base" "$T_DIR/fifo" >"$T_DIR/inc-fifo.conf"
bounded 78 -c "$T_DIR/inc-fifo.conf" wait
t_stderr_has "inc-fifo.conf:4: could not read included file \".*/fifo\": not a regular file"
printf '%s\n@include "%s"\n' "$base" "$T_DIR/dir" >"$T_DIR/inc-dir.conf"
bounded 78 -c "$T_DIR/inc-dir.conf" wait
t_stderr_has "inc-dir.conf:3: could not read included file \".*/dir\": not a regular file"
printf '%s\n@include "%s"\n' "$base" "$T_DIR/absent.conf" >"$T_DIR/inc-absent.conf"
bounded 78 -c "$T_DIR/inc-absent.conf" wait
t_stderr_has "inc-absent.conf:3: could not read included file \".*/absent.conf\": no such file"
for pw in fifo fifo-link dir; do
    printf '%s\nconnection: { password_file = "%s"; };\n' "wait: { timeout = 1; };" \
        "$T_DIR/$pw" >"$T_DIR/pw.conf"
    bounded 78 -c "$T_DIR/pw.conf" --dsn "host=127.0.0.1 port=$port user=postgres" wait
    t_stderr_has "password file \".*/$pw\" is not a regular file"
done
printf '%s\nlog: { termination_log = "%s"; };\n' "$base" "$T_DIR/fifo" >"$T_DIR/term.conf"
bounded 78 -c "$T_DIR/term.conf" wait
t_stderr_has 'key "log.termination_log": ".*/fifo" is not a regular file'
t_no_connection "non-regular files"
t_ok "FIFOs, links to them and directories are refused at once"

# An error in an included file names that file and its line.
printf '\nlock: { timeout = = 1; };\n' >"$T_DIR/inc-syntax.conf"
printf '%s\n@include "%s"\n' "$base" "$T_DIR/inc-syntax.conf" >"$T_DIR/inc.conf"
bounded 78 -c "$T_DIR/inc.conf" wait
t_stderr_has "inc-syntax.conf:2: syntax error"
printf '\n\nlock: { timeot = 1; };\n' >"$T_DIR/inc-key.conf"
printf '%s\n@include "%s"\n' "$base" "$T_DIR/inc-key.conf" >"$T_DIR/inc.conf"
bounded 78 -c "$T_DIR/inc.conf" wait
t_stderr_has 'inc-key.conf:3: key "lock.timeot": unknown key'
t_no_connection "included files"
t_ok "errors in included files are located there"

# The configuration is capped, in bytes and in settings, so that parsing it stays quick.
{
    printf '%s\nvariables: { big = "' "$base"
    head -c $((1024 * 1024)) /dev/zero | tr '\0' x
    printf '"; };\n'
} >"$T_DIR/large.conf"
bounded 78 -c "$T_DIR/large.conf" wait
t_stderr_has 'configuration file ".*large.conf" is larger than the limit of 1 MiB'
{
    printf '%s\nvariables: {' "$base"
    for i in $(seq 1 1001); do printf ' v%d = "x";' "$i"; done
    printf ' };\n'
} >"$T_DIR/many.conf"
bounded 78 -c "$T_DIR/many.conf" wait
t_stderr_has 'many.conf:3: the configuration holds more than 1000 settings'
t_no_connection "large files"
t_ok "configuration size and settings are capped"
