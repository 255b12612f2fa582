#!/usr/bin/env bash
# The catalogue of hostile and broken input, one case each: configuration, step sets, the
# command line and variables. Each error case must end in bounded time, by itself (no signal),
# with its documented exit code and a first error line naming the culprit, having connected to
# nothing (the target is a tripwire that records any connection). Each variable case must
# arrive verbatim in the database and leave the statement as written.
. "$(dirname "$0")/../lib/testlib.sh"

t_tripwire
tw=$T_TRIPWIRE_PORT
limit=$((20 * ${PGSTEP_TEST_SLOWDOWN:-1}))
# Files some cases make unreadable: as root, pgstep runs as nobody for those, so $T_DIR must be
# reachable by it.
chmod 711 "$T_DIR"
as_nobody=()
if [ "$(id -u)" = 0 ]; then
    as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
cases=0

dsn=$(t_dsn postgres "$tw")
base="wait: { timeout = 1; };
connection: { conninfo = \"$dsn\"; };"
printf '%s\n' "$base" >"$T_DIR/base.conf"
chmod 644 "$T_DIR/base.conf"
mkdir -m 755 "$T_DIR/empty"

# run NAME RUNNER...: pgstep under timeout, in $T_DIR/stdout and stderr; its exit code in rc.
run() {
    local name=$1
    shift
    rc=0
    timeout -k 5 "$limit" "$@" >"$T_DIR/stdout" 2>"$T_DIR/stderr" </dev/null || rc=$?
    [ "$rc" != 124 ] && [ "$rc" != 137 ] || t_fail "$name: still running after $limit s"
    [ "$rc" -lt 128 ] || t_fail "$name: ended by signal $((rc - 128))"
}

# case NAME EXIT PATTERN [pgstep args...]: an error case. The first error line must match
# PATTERN; a usage or configuration error is that one line, a step-set error that line and the
# summary.
case_err() {
    local name=$1 want=$2 pattern=$3 first lines
    shift 3
    run "$name" "${runner[@]}" "$PGSTEP_BIN" "$@"
    [ "$rc" = "$want" ] || t_fail "$name: exited $rc, expected $want"
    first=$(grep -m1 ' error: ' "$T_DIR/stderr" | cut -d' ' -f3-) || t_fail "$name: no error line"
    grep -Eq -- "$pattern" <<<"$first" || t_fail "$name: the error line lacks /$pattern/: $first"
    lines=$(grep -c . "$T_DIR/stderr")
    if [ "$want" = 65 ]; then
        [ "$lines" = 1 ] || { [ "$lines" = 2 ] && grep -q 'step set ".*" is invalid: 1 problem' "$T_DIR/stderr"; } ||
            t_fail "$name: expected the problem and the summary, $lines lines"
    else
        [ "$lines" = 1 ] || t_fail "$name: expected one line on stderr, got $lines"
    fi
    t_no_connection "$name"
    cases=$((cases + 1))
}
runner=()

# conf NAME TEXT [CONNECTION]: $T_DIR/NAME.conf, the wait group, then the connection group
# (the tripwire, or CONNECTION as the group's body), then TEXT from line 3.
conf() {
    printf 'wait: { timeout = 1; };\nconnection: { %s };\n%s\n' \
        "${3:-conninfo = \"$dsn\";}" "$2" >"$T_DIR/$1.conf"
}
# cfg NAME PATTERN TEXT [CONNECTION]: a configuration case, exit 78, run as "wait".
cfg() {
    conf "$1" "$3" "${4:-}"
    case_err "config/$1" 78 "$2" -c "$T_DIR/$1.conf" -d "$T_DIR/empty" wait
}

# --- configuration ----------------------------------------------------------------------------
cfg syntax '^.*/syntax.conf:3: syntax error' 'lock: { timeout = = 1; };'
cfg unterminated '^.*/unterminated.conf:4: syntax error' 'lock: { name = "open };'
cfg unknown_group 'unknown_group.conf:3: "lok": unknown group' 'lok: { timeout = 1; };'
cfg unknown_key 'unknown_key.conf:3: key "lock.timout": unknown key' 'lock: { timout = 1; };'
cfg duplicate 'duplicate.conf:3: syntax error: duplicate setting name' \
    'lock: { timeout = 1; timeout = 2; };'
cfg string_for_int 'key "lock.timeout": expected an integer' 'lock: { timeout = "ten"; };'
cfg float_for_int 'key "lock.timeout": expected an integer' 'lock: { timeout = 1.5; };'
cfg bool_for_int 'key "apply.retries": expected an integer' 'apply: { retries = true; };'
cfg int_for_string 'key "steps.schema": expected a string' 'steps: { schema = 5; };'
cfg list_for_string 'key "steps.directory": expected a string' 'steps: { directory = ("a"); };'
cfg not_a_group '"lock": expected a group' 'lock = 5;'
cfg negative 'key "lock.timeout": value -1 is out of range 0..86400' 'lock: { timeout = -1; };'
cfg huge 'key "lock.timeout": value 86401 is out of range 0..86400' 'lock: { timeout = 86401; };'
cfg overflow_32 'key "lock.timeout": value 4294967296 is out of range' \
    'lock: { timeout = 4294967296; };'
cfg overflow_64 'key "apply.retries": value 9223372036854775808 is out of range' \
    'apply: { retries = 9223372036854775808; };'
cfg overflow_digits 'key "lock.timeout": value 99999999999999999999999 is out of range' \
    'lock: { timeout = 99999999999999999999999; };'
cfg zero_connect_timeout 'key "connection.connect_timeout": value 0 is out of range 1..3600' \
    '' "conninfo = \"$dsn\"; connect_timeout = 0;"
cfg bad_enum 'key "log.level": expected debug, info, warn or error' 'log: { level = "loud"; };'
cfg empty_schema 'key "steps.schema": must not be empty' 'steps: { schema = ""; };'
cfg nul_escape 'nul_escape.conf:3: a string holds the escape \\x00' \
    'variables: { v = "a\x00b"; };'
cfg variable_name 'key "variables.a-b": invalid variable name' 'variables: { a-b = "x"; };'
cfg variable_latin1 'key "variables.v": the value is not valid UTF-8' \
    "$(printf 'variables: { v = "caf\xe9"; };')"
cfg variable_group 'key "variables.v": expected a string' 'variables: { v = { w = "x"; }; };'
cfg include_loop 'include_loop.conf:3: @include ".*include_loop.conf" is nested more than 10 deep' \
    "@include \"$T_DIR/include_loop.conf\""
cfg conninfo_unparsable 'key "connection.conninfo": invalid connection string: missing "=" after "port"' \
    '' 'conninfo = "host=127.0.0.1 port";'
cfg conninfo_bad_port 'invalid connection string: option "port": expected a port number' \
    '' 'conninfo = "host=127.0.0.1 port=99999";'

printf '%s\nlock: { timeout = 1; };\0 wait: { timeout = 600; };\n' "$base" >"$T_DIR/nul.conf"
case_err config/nul_byte 78 'nul.conf:3: the file holds a NUL byte' -c "$T_DIR/nul.conf" wait
case_err config/missing 78 'could not read configuration file ".*/absent.conf": no such file' \
    -c "$T_DIR/absent.conf" wait
case_err config/directory 78 'configuration file ".*/empty" is not a regular file' \
    -c "$T_DIR/empty" wait
mkfifo "$T_DIR/fifo"
case_err config/fifo 78 'configuration file ".*/fifo" is not a regular file' -c "$T_DIR/fifo" wait
case_err config/dev_zero 78 'configuration file "/dev/zero" is not a regular file' -c /dev/zero wait
{
    printf '%s\nvariables: { big = "' "$base"
    head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' x
    printf '"; };\n'
} >"$T_DIR/large.conf"
case_err config/too_large 78 'configuration file ".*large.conf" is larger than the limit of 1 MiB' \
    -c "$T_DIR/large.conf" wait
rm "$T_DIR/large.conf"

# The password file.
pw() { # NAME PATTERN PATH
    conf "$1" "" "conninfo = \"$dsn\"; password_file = \"$3\";"
    case_err "password/$1" 78 "$2" -c "$T_DIR/$1.conf" wait
}
pw missing 'could not read password file ".*/absent": no such file or directory' "$T_DIR/absent"
: >"$T_DIR/pw-empty"
pw empty 'password file ".*/pw-empty" is empty' "$T_DIR/pw-empty"
printf '\n' >"$T_DIR/pw-newline"
pw only_newline 'password file ".*/pw-newline" is empty' "$T_DIR/pw-newline"
printf 'se\0cret\n' >"$T_DIR/pw-nul"
pw nul_byte 'password file ".*/pw-nul" contains a NUL byte' "$T_DIR/pw-nul"
head -c 5000 /dev/zero | tr '\0' x >"$T_DIR/pw-large"
pw too_large 'password file ".*/pw-large" is larger than the limit of 4096 bytes' "$T_DIR/pw-large"
pw directory 'password file ".*/empty" is not a regular file' "$T_DIR/empty"
pw fifo 'password file ".*/fifo" is not a regular file' "$T_DIR/fifo"
pw dev_zero 'password file "/dev/zero" is not a regular file' /dev/zero
printf 'secret\n' >"$T_DIR/pw-unreadable"
chmod 000 "$T_DIR/pw-unreadable"
conf unreadable_pw "" "conninfo = \"$dsn\"; password_file = \"$T_DIR/pw-unreadable\";"
chmod 644 "$T_DIR/unreadable_pw.conf"
runner=("${as_nobody[@]}")
case_err password/unreadable 78 'could not read password file ".*/pw-unreadable": permission denied' \
    -c "$T_DIR/unreadable_pw.conf" wait
conf unreadable "lock: { timeout = 1; };"
chmod 000 "$T_DIR/unreadable.conf"
case_err config/unreadable 78 'could not read configuration file ".*/unreadable.conf": permission denied' \
    -c "$T_DIR/unreadable.conf" wait
runner=()
t_ok "configuration and password file: $cases cases"

# --- step sets --------------------------------------------------------------------------------
n_before=$cases
# steps NAME FILE CONTENT: a step directory $T_DIR/s-NAME with one file (printf %b CONTENT).
steps() {
    mkdir -p "$T_DIR/s-$1"
    printf '%b' "$3" >"$T_DIR/s-$1/$2"
}
# set_case NAME PATTERN: the step set $T_DIR/s-NAME is invalid (65), found before connecting.
set_case() {
    case_err "steps/$1" 65 "$2" -c "$T_DIR/base.conf" -d "$T_DIR/s-$1" apply
}
steps bad_name v1_foo.sql 'SELECT 1;\n'
set_case bad_name 'invalid step file name "v1_foo.sql"'
steps no_description V1.sql 'SELECT 1;\n'
set_case no_description 'invalid step file name "V1.sql"'
steps empty_description R__.sql 'SELECT 1;\n'
set_case empty_description 'invalid step file name "R__.sql": the description is empty'
steps version_zero V0__zero.sql 'SELECT 1;\n'
set_case version_zero 'V0__zero.sql'
steps version_overflow V18446744073709551616__x.sql 'SELECT 1;\n'
set_case version_overflow 'invalid step file name "V18446744073709551616__x.sql": the version is out of range'
steps version_int64 V9223372036854775808__x.sql 'SELECT 1;\n'
set_case version_int64 'invalid step file name "V9223372036854775808__x.sql": the version is out of range'
steps duplicate V1__a.sql 'SELECT 1;\n'
steps duplicate V001__b.sql 'SELECT 2;\n'
set_case duplicate 'version 1 is used by both "V001__b.sql" and "V1__a.sql"'
steps empty V1__empty.sql ''
set_case empty 'V1__empty.sql'
steps blank V1__blank.sql '  \n\t\n'
set_case blank 'V1__blank.sql'
steps comments_only V1__oc.sql '-- nothing\n/* here */\n'
set_case comments_only 'V1__oc.sql'
steps nul V1__nul.sql 'SELECT 1;\nSELECT \x00;\n'
set_case nul 'V1__nul.sql:2'
steps latin1 V1__latin1.sql "SELECT 'caf\xe9';\n"
set_case latin1 'V1__latin1.sql:1: invalid byte sequence for encoding "UTF8"'
steps bom V1__bom.sql '\xef\xbb\xbfSELECT 1;\n'
set_case bom 'V1__bom.sql:1: step file starts with a byte order mark'
steps bad_utf8_name "$(printf 'R__bad\xff.sql')" 'SELECT 1;\n'
set_case bad_utf8_name 'invalid step file name "R__bad\\xff.sql": it is not valid UTF-8'
steps control_name "$(printf 'R__\033[2Jx.sql')" 'SELECT 1;\n'
set_case control_name 'invalid step file name "R__\\x1b\[2Jx.sql": it holds a control character'
steps quote V1__q.sql "SELECT 1;\nSELECT 'open;\n"
set_case quote 'V1__q.sql:2: unterminated'
steps escape_quote V1__e.sql "SELECT E'it\\\\'s;\n"
set_case escape_quote 'V1__e.sql:1: unterminated'
steps dollar V1__dq.sql 'SELECT 1;\n\nSELECT $x$ never closed;\n'
set_case dollar 'V1__dq.sql:3: unterminated'
steps identifier V1__i.sql 'SELECT "open;\n'
set_case identifier 'V1__i.sql:1: unterminated quoted identifier'
steps comment V1__c.sql 'SELECT 1;\n/* a /* nested */ comment\n'
set_case comment 'V1__c.sql:2: unterminated /\* comment'
steps unknown_directive V1__d.sql '-- pgstep: no-transactions\nSELECT 1;\n'
set_case unknown_directive 'V1__d.sql:1: .*no-transactions'
steps malformed_directive V1__m.sql '-- pgstep no-transaction\nSELECT 1;\n'
set_case malformed_directive 'V1__m.sql:1: malformed pgstep directive'
steps late_directive V1__l.sql 'SELECT 1;\n-- pgstep: no-transaction\nSELECT 2;\n'
set_case late_directive 'V1__l.sql:2: pgstep directive after the start of the SQL is not allowed'
steps rerun_on_versioned V1__r.sql '-- pgstep: rerun-when SELECT 1\nSELECT 1;\n'
set_case rerun_on_versioned 'V1__r.sql:1: .*rerun-when'
steps undefined V1__u.sql "SELECT 1;\nSELECT :'nobody';\n"
set_case undefined 'V1__u.sql:2: .*undefined variable "nobody"'
steps transaction V1__t.sql 'SELECT 1;\nCOMMIT;\n'
set_case transaction 'V1__t.sql:2: transaction control statement "COMMIT"'
steps copy V1__copy.sql 'COPY t FROM STDIN;\n'
set_case copy 'V1__copy.sql:1: COPY FROM STDIN'
mkdir -m 755 "$T_DIR/s-link_loop"
ln -s V1__loop.sql "$T_DIR/s-link_loop/V1__loop.sql"
set_case link_loop 'V1__loop.sql: could not resolve symbolic link: too many levels'
mkdir -m 755 "$T_DIR/s-link_dangling"
ln -s nowhere.sql "$T_DIR/s-link_dangling/V1__gone.sql"
set_case link_dangling 'V1__gone.sql: could not resolve symbolic link: no such file'
mkdir -m 755 "$T_DIR/s-link_escape" "$T_DIR/outside"
printf 'SELECT 1;\n' >"$T_DIR/outside/elsewhere.sql"
ln -s ../outside/elsewhere.sql "$T_DIR/s-link_escape/V1__escape.sql"
set_case link_escape 'V1__escape.sql: symbolic link points outside the step directory'
mkdir -m 755 "$T_DIR/s-link_dev_zero"
ln -s /dev/zero "$T_DIR/s-link_dev_zero/V1__zero.sql"
set_case link_dev_zero 'V1__zero.sql: symbolic link points outside the step directory, to "/dev/zero"'
mkdir -p "$T_DIR/s-directory/V1__dir.sql"
set_case directory 'V1__dir.sql: not a regular file'
mkdir -m 755 "$T_DIR/s-fifo"
mkfifo "$T_DIR/s-fifo/V1__fifo.sql"
set_case fifo 'V1__fifo.sql: not a regular file'
steps unreadable V1__secret.sql 'SELECT 1;\n'
chmod 000 "$T_DIR/s-unreadable/V1__secret.sql"
runner=("${as_nobody[@]}")
set_case unreadable 'V1__secret.sql: .*permission denied'
runner=()
# 100 MB, sparse: refused by its size, without reading it.
mkdir -m 755 "$T_DIR/s-100mb"
truncate -s 100M "$T_DIR/s-100mb/V1__big.sql"
set_case 100mb 'V1__big.sql: step file is larger than the limit of 16 MiB'
rm -r "$T_DIR/s-100mb"
case_err steps/missing_dir 65 'could not open step directory ".*/s-absent": no such file' \
    -c "$T_DIR/base.conf" -d "$T_DIR/s-absent" apply
printf 'SELECT 1;\n' >"$T_DIR/V1__file.sql"
case_err steps/file_as_dir 65 'step directory ".*/V1__file.sql" is not a directory' \
    -c "$T_DIR/base.conf" -d "$T_DIR/V1__file.sql" apply
# 100,000 steps (hard links, 50,000 to a file: a file may have only so many), the last name a
# duplicate version.
mkdir -m 755 "$T_DIR/s-many"
python3 -c '
import os, sys
d = sys.argv[1]
for i in range(1, 100001):
    name = "%s/V%d__s.sql" % (d, i)
    if i % 50000 == 1:
        first = name
        with open(first, "w") as f: f.write("SELECT 1;\n")
    else:
        os.link(first, name)
os.link(first, d + "/V0100000__again.sql")' "$T_DIR/s-many"
set_case many 'version 100000 is used by both "V0100000__again.sql" and "V100000__s.sql"'
rm -r "$T_DIR/s-many"
t_ok "step sets: $((cases - n_before)) cases"

# --- command line -----------------------------------------------------------------------------
n_before=$cases
cli() { # NAME PATTERN ARGS...
    local name=$1 pattern=$2
    shift 2
    case_err "cli/$name" 64 "$pattern" "$@"
}
cli no_command 'no command given'
cli unknown_command 'unknown command "frobnicate"' frobnicate
cli two_commands 'unexpected argument "apply"' wait apply
cli unknown_option 'unknown option "--frobnicate"' --frobnicate wait
cli unknown_short 'unknown option "-x"' -x wait
cli missing_value 'option "-c" requires an argument' wait -c
cli missing_value_long 'option "--dsn" requires an argument' --dsn
cli value_on_flag 'option "--verbose" does not take an argument' --verbose=yes wait
cli quiet_verbose 'options --quiet and --verbose cannot be used together' --quiet --verbose wait
cli verbose_quiet 'options --quiet and --verbose cannot be used together' --verbose -q wait
cli dry_run_status 'option --dry-run is only valid with apply' --dry-run status
cli json_apply 'option --json is only valid with status' --json apply
cli unencrypted_password 'options --unencrypted and --password-file cannot be used together' \
    --unencrypted --password-file /dev/null keygen
cli log_format 'invalid value for option --log-format: expected text or json' --log-format xml wait
cli set_no_equals 'invalid argument for option -v/--set: expected NAME=VALUE' -v novalue wait
cli set_bad_name 'invalid variable name in option -v/--set' -v 'a;b=1' wait
cli set_latin1 'invalid value in option -v/--set: it is not valid UTF-8' -v "$(printf 'v=caf\xe9')" wait
cli empty_dir 'option -d/--dir: directory must not be empty' -d '' verify
# An option given twice: the last one counts, as in psql (documented); the earlier one is not
# even read.
run cli/config_twice "$PGSTEP_BIN" -c "$T_DIR/absent.conf" -c "$T_DIR/base.conf" -d "$T_DIR/empty" verify
[ "$rc" = 0 ] || t_fail "cli/config_twice: exited $rc, expected 0 (the last -c counts)"
run cli/dir_twice "$PGSTEP_BIN" -c "$T_DIR/base.conf" -d "$T_DIR/s-bad_name" -d "$T_DIR/empty" verify
[ "$rc" = 0 ] || t_fail "cli/dir_twice: exited $rc, expected 0 (the last -d counts)"
t_no_connection "options given twice"
cases=$((cases + 2))
t_ok "command line: $((cases - n_before)) cases"

# --- variables: verbatim, never changing the statement ------------------------------------------
n_before=$cases
db=$(t_db hostile)
t_conf "$T_DIR/db.conf" "$db"
mkdir -m 755 "$T_DIR/vars"
# Each case records the value as a literal and as part of an identifier, in its own history
# schema, so that one database serves them all.
cat >"$T_DIR/vars/V1__values.sql" <<'SQL'
CREATE TABLE :"tbl" (v text);
INSERT INTO :"tbl" VALUES (:'v');
CREATE TABLE :"ident" (id int);
SQL
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
q() { t_psql "$db" "$1"; }
# var NAME VALUE [how: arg|conf]: the value arrives verbatim, and exactly the three statements ran.
var() {
    local name=$1 value=$2 how=${3:-arg} tbl="v_$1" ident got
    ident="i_$1 $value"
    ident=${ident:0:63}
    if [ "$how" = conf ]; then
        t_conf "$T_DIR/v.conf" "$db" "steps: { schema = \"h_$name\"; };
variables: { v = \"$(sed 's/[\\"]/\\&/g' <<<"$value" | sed ':a;N;$!ba;s/\n/\\n/g')\"; };"
        run "vars/$name" "$PGSTEP_BIN" -c "$T_DIR/v.conf" -d "$T_DIR/vars" \
            -v "tbl=$tbl" -v "ident=$ident" apply
    else
        t_conf "$T_DIR/v.conf" "$db" "steps: { schema = \"h_$name\"; };"
        run "vars/$name" "$PGSTEP_BIN" -c "$T_DIR/v.conf" -d "$T_DIR/vars" \
            -v "tbl=$tbl" -v "v=$value" -v "ident=$ident" apply
    fi
    [ "$rc" = 0 ] || t_fail "vars/$name: exited $rc"
    got=$(q "SELECT encode(convert_to(string_agg(v, ''), 'UTF8'), 'hex') || '/' || count(*) FROM \"$tbl\"")
    [ "$got" = "$(hex "$value")/1" ] || t_fail "vars/$name: the value did not arrive verbatim"
    got=$(q "SELECT encode(convert_to(relname, 'UTF8'), 'hex') FROM pg_class
             WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND starts_with(relname, 'i_$name ')")
    [ "$got" = "$(hex "$ident")" ] || t_fail "vars/$name: the identifier did not arrive verbatim"
    cases=$((cases + 1))
}
var single_quotes "it's 'quoted' ''twice''"
var double_quotes 'say "hi" and ""'
var backslashes 'C:\dir\n\t\\ end\'
var semicolon "x'); DROP TABLE v_semicolon; --"
var newline "$(printf 'line one\nline two\n;\nDROP TABLE x')"
var dollar_quotes 'a $$ b $tag$ c $$; DROP TABLE x; $$'
var comment_openers "/* -- */ x */ /* and -- more"
var nul_escapes '\0 \x00 \u0000 \000 %00 E'"'"'\\000'"'"' ^@'
var psql_syntax ":'v' :\"v\" :v \\set x"
var unicode "café ☃ 𝄞 ‮rtl"
var from_config_quotes "it's a \"test\"; \\ done" conf
var from_config_newline "$(printf 'a\nb;')" conf
var long "$(head -c 100000 /dev/zero | tr '\0' x)'; DROP TABLE x; --"
# With standard_conforming_strings off, a backslash in a plain literal is an escape: the value
# must still arrive verbatim.
q "ALTER DATABASE \"$db\" SET standard_conforming_strings = off" >/dev/null
var non_standard_strings 'back\\slash \'"'"' quote'
[ "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = $((2 * (cases - n_before))) ] ||
    t_fail "the variable cases created other tables than their own"
t_ok "variables: $((cases - n_before)) cases arrive verbatim"

[ "$cases" -ge 60 ] || t_fail "the catalogue holds only $cases cases"
t_ok "the catalogue: $cases cases"
