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
t_run 64 --frobnicate wait
t_stderr_has 'unknown option "--frobnicate"'
t_run 64 wait apply
t_stderr_has 'unexpected argument "apply"'
t_run 64 --log-format xml wait
t_stderr_has 'invalid value "xml" for option --log-format'
t_run 64 -v novalue wait
t_stderr_has 'invalid variable assignment "novalue"'
t_run 64 -v 'bad-name=1' wait
t_stderr_has "invalid variable name"
t_run 64 --dry-run status
t_stderr_has "only valid with apply"
t_run 64 --json apply
t_stderr_has "only valid with status"
t_run 64 wait -c
t_stderr_has "requires an argument"
t_ok "usage errors exit 64"
