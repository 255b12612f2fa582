#!/usr/bin/env bash
# Every step-set error exits 65 with one line per problem naming the file (and line), is found
# before connecting (the target is a tripwire that records any connection), and verify finds
# exactly the same problems without connecting.
. "$(dirname "$0")/../lib/testlib.sh"

t_tripwire
port=$T_TRIPWIRE_PORT
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; };
wait: { timeout = 1; };
CONF

# check NAME PATTERN: the steps directory $T_DIR/NAME must be prepared by the caller.
check() {
    local name=$1 pattern=$2 cmd
    for cmd in verify apply status; do
        t_run 65 -c "$T_DIR/pgstep.conf" -d "$T_DIR/$name" "$cmd"
        t_stderr_has "$pattern"
        t_stderr_has "step set \".*$name\" is invalid"
        t_no_connection "$name/$cmd"
    done
}
mk() { mkdir -p "$T_DIR/$1"; printf '%b' "$3" >"$T_DIR/$1/$2"; }

mk bad_name v1_foo.sql 'SELECT 1;\n'
check bad_name 'v1_foo.sql'
mk bad_name2 V1_foo.sql 'SELECT 1;\n'
check bad_name2 'V1_foo.sql'
mk zero V0__zero.sql 'SELECT 1;\n'
check zero 'V0__zero.sql'
mk dup V1__a.sql 'SELECT 1;\n'
mk dup V001__b.sql 'SELECT 2;\n'
check dup 'V001__b.sql.*V1__a.sql|V1__a.sql.*V001__b.sql'
mk empty V1__empty.sql '  \n\n'
check empty 'V1__empty.sql'
mk utf8 V1__latin1.sql "SELECT 'caf\xe9';\n"
check utf8 'V1__latin1.sql:1: invalid byte sequence for encoding "UTF8"'
mk malformed V1__idx.sql '-- pgstep no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n'
check malformed 'V1__idx.sql:1: malformed pgstep directive'
mk nul V1__nul.sql 'SELECT 1;\nSELECT \x00;\n'
check nul 'V1__nul.sql.*line.*2|V1__nul.sql:2'
mkdir -p "$T_DIR/outside"
printf 'SELECT 1;\n' >"$T_DIR/outside/elsewhere.sql"
mkdir -p "$T_DIR/link"
ln -s "$T_DIR/outside/elsewhere.sql" "$T_DIR/link/V1__link.sql"
check link 'V1__link.sql'
mk directive V1__d.sql '-- pgstep: no-transactions\nSELECT 1;\n'
check directive 'V1__d.sql:1.*no-transactions'
mk rerun_v V1__r.sql '-- pgstep: rerun-when SELECT 1\nSELECT 1;\n'
check rerun_v 'V1__r.sql:1.*rerun-when'
mk undefined V1__u.sql 'SELECT 1;\nSELECT :'"'"'nobody'"'"';\n'
check undefined 'V1__u.sql:2.*undefined variable "nobody"'
mk unterminated V1__q.sql "SELECT 1;\nSELECT 'open\n;\n"
check unterminated "V1__q.sql:2.*unterminated"
mk dollar V1__dq.sql 'SELECT 1;\n\nSELECT $x$ never closed;\n'
check dollar 'V1__dq.sql:3.*unterminated'
mk commit V1__c.sql 'BEGIN;\nSELECT 1;\nCOMMIT;\n'
check commit 'V1__c.sql:1.*transaction control'
mk only_comments V1__oc.sql '-- nothing here\n/* nor here */\n'
check only_comments 'V1__oc.sql'

# Several problems: one line each.
mk several V1__ok.sql 'SELECT 1;\n'
mk several v2__bad.sql 'SELECT 1;\n'
mk several V3__empty.sql ''
t_run 65 -c "$T_DIR/pgstep.conf" -d "$T_DIR/several" verify
[ "$(grep -c "error: " "$T_DIR/stderr")" = 3 ] || t_fail "expected two problem lines and a summary"

# File names that are not valid UTF-8 or hold control characters are refused, and shown
# escaped: the raw bytes would reach terminals, and break JSON and the status table.
mk bad_utf8_name "$(printf 'R__bad\xff.sql')" 'SELECT 1;\n'
check bad_utf8_name 'invalid step file name "R__bad\\xff.sql": it is not valid UTF-8'
mk escape_name "$(printf 'R__\033[2Jx.sql')" 'SELECT 1;\n'
check escape_name 'invalid step file name "R__\\x1b\[2Jx.sql": it holds a control character'
mk newline_name "$(printf 'V1__a\nb.sql')" 'SELECT 1;\n'
check newline_name 'invalid step file name "V1__a\\x0ab.sql": it holds a control character'
for name in bad_utf8_name escape_name newline_name; do
    t_run 65 -c "$T_DIR/pgstep.conf" -d "$T_DIR/$name" --log-format json verify
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$T_DIR/stderr" ||
        t_fail "$name: a JSON log line is not valid JSON"
    ! grep -q "$(printf '\033')" "$T_DIR/stderr" || t_fail "$name: an escape character was logged"
done

# Substitution is capped like a step file: 200 references to a 100 kB value would be 20 MB.
mkdir "$T_DIR/huge"
{
    printf 'SELECT 1;\nSELECT '
    for _ in $(seq 1 200); do printf ":'big', "; done
    printf '1;\n'
} >"$T_DIR/huge/V1__huge.sql"
{
    cat "$T_DIR/pgstep.conf"
    printf 'variables: { big = "%s"; };\n' "$(head -c 100000 /dev/zero | tr '\0' x)"
} >"$T_DIR/huge.conf"
t_run 65 -c "$T_DIR/huge.conf" -d "$T_DIR/huge" verify
t_stderr_has 'V1__huge.sql:2: the step with its variables substituted is larger than the limit of 16 MiB'
t_no_connection "huge substitution"

# Running out of memory while loading is exit 71, not an invalid step set. The memory is
# limited with ulimit, or in a sanitizer build (whose runtime needs a vast address space)
# through the allocator's own limit.
mkdir "$T_DIR/oom"
{ yes 'SELECT 1;' || true; } | head -c $((15 * 1024 * 1024)) >"$T_DIR/oom/V1__big.sql"
if grep -qa __asan_init "$PGSTEP_BIN"; then
    ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=4 \
        t_run 71 -c "$T_DIR/pgstep.conf" -d "$T_DIR/oom" verify
else
    (
        ulimit -v 60000
        t_run 71 -c "$T_DIR/pgstep.conf" -d "$T_DIR/oom" verify
    )
fi
t_stderr_has 'out of memory while loading step set ".*oom"'
rm -r "$T_DIR/oom"

t_run 65 -c "$T_DIR/pgstep.conf" -d "$T_DIR/no_such_dir" verify
t_stderr_has "no_such_dir"

# A link inside the directory, other files and subdirectories are fine.
mkdir -p "$T_DIR/fine/sub"
printf 'SELECT 1;\n' >"$T_DIR/fine/V1__real.sql"
printf 'junk' >"$T_DIR/fine/notes.txt"
printf 'junk' >"$T_DIR/fine/sub/V9__nested.sql"
ln -s V1__real.sql "$T_DIR/fine/R__alias.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/fine" verify
t_stderr_has "is valid: 2 steps"
t_ok "every step-set error exits 65 naming the file, before connecting"
