#!/usr/bin/env bash
# Usage errors exit 64 with one clear line; --help and --version print to stdout and exit 0.
. "$(dirname "$0")/../lib/testlib.sh"

t_run 0 --help
t_stdout_has "^Usage:"
t_stdout_has "apply +wait for the primary"
t_stdout_has "termination_log"
t_run 0 --version
t_stdout_has "^pgstep [0-9]+\.[0-9]+\.[0-9]+$"
t_run 64
t_stderr_has "no command given"
t_run 64 frobnicate
t_stderr_has 'unknown command "frobnicate"'
t_run 64 "$(printf 'frob\033[2J')"
t_stderr_has 'unknown command "frob\\x1b\[2J"'
t_run 64 --frobnicate wait
t_stderr_has 'unknown option "--frobnicate"'
t_run 64 wait apply
t_stderr_has 'unexpected argument "apply"'
t_run 64 --log-format xml wait
t_stderr_has 'invalid value for option --log-format: expected text or json'
t_run 64 -v novalue wait
t_stderr_has 'invalid argument for option -v/--set: expected NAME=VALUE'
t_run 64 -v 'bad-name=1' wait
t_stderr_has "invalid variable name"
t_run 64 --dry-run status
t_stderr_has "only valid with apply"
t_run 64 --json apply
t_stderr_has "only valid with status"
t_run 64 wait -c
t_stderr_has "requires an argument"
t_run 64 --help=x
t_stderr_has 'option "--help" does not take an argument'
t_run 64 --verb=1 wait
t_stderr_has 'option "--verbose" does not take an argument'
t_run 64 --dsn
t_stderr_has 'option "--dsn" requires an argument'
t_run 64 -d '' verify
t_stderr_has 'option -d/--dir: directory must not be empty'
PGSTEP_DIR='' t_run 78 verify
t_stderr_has 'environment variable PGSTEP_DIR: directory must not be empty'
t_ok "usage errors exit 64"

# A usage error names the option at fault, never another argument: any of them may be a
# connection string with a password.
secret=S3CRET
for args in "--dsn|postgresql://u:$secret@h/db|-xq|verify" \
    "--dsn|host=h password=$secret|-xq|verify" "--dsn=postgresql://u:$secret@h/db|-qx|verify" \
    "-v|postgresql://u:$secret@h/db|verify" \
    "--log-format|postgresql://u:$secret@h/db|verify" "--json=$secret|status" \
    "--frobnicate=$secret|wait" "-v|bad name=$secret|wait"; do
    IFS='|' read -ra argv <<<"$args"
    t_run 64 "${argv[@]}"
    t_stderr_lacks "$secret"
    [ "$(grep -c . "$T_DIR/stderr")" = 1 ] || t_fail "${argv[0]}: expected one line on stderr"
done
t_run 64 --dsn "postgresql://u:$secret@h/db" -xq verify
t_stderr_has 'unknown option "-x"'
t_ok "usage errors never repeat an argument that may hold a password"

# After "--" every word is an operand, the command too.
t_run 0 -d "$T_DIR" -- verify
t_run 64 -- --verify
t_stderr_has 'unknown command "--verify"'
t_ok "the command may follow --"

# Output that cannot be written fails the run with 74, after saying so, whatever the command.
full_run() {
    local rc=0
    "$PGSTEP_BIN" "$@" >/dev/full 2>"$T_DIR/stderr" || rc=$?
    [ "$rc" = 74 ] || t_fail "pgstep $* >/dev/full exited $rc, expected 74"
    t_stderr_has "could not write to standard output: no space left on device"
}
db=$(t_db cli_full)
mkdir "$T_DIR/steps"
printf 'CREATE TABLE t (id int);\n' >"$T_DIR/steps/V1__t.sql"
t_conf "$T_DIR/pgstep.conf" "$db"
full_run --help
full_run --version
full_run -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" status --json
full_run -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" status
full_run -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply --dry-run
t_ok "a failed write to stdout exits 74"
