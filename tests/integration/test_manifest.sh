#!/usr/bin/env bash
# pgstep.sum: "pgstep manifest" lists every step file with its BLAKE2b-256; verify, apply and
# status refuse a set that differs from it (a step edited by one byte, added, removed, renamed,
# truncated; the manifest replaced or cut) with exit 65, naming each file, before connecting
# (the target is a tripwire); a missing manifest is fine unless steps.require_manifest is set.
# A matching set applies, and status reports that the manifest verified it.
. "$(dirname "$0")/../lib/testlib.sh"

t_tripwire
cat >"$T_DIR/tripwire.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$T_TRIPWIRE_PORT")"; };
wait: { timeout = 1; };
CONF
cat >"$T_DIR/require.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$T_TRIPWIRE_PORT")"; };
wait: { timeout = 1; };
steps: { require_manifest = true; };
CONF

# fresh NAME: a step set in $T_DIR/NAME with its manifest.
fresh() {
    local dir=$T_DIR/$1
    mkdir -p "$dir"
    printf 'CREATE TABLE t1 (id int);\n' >"$dir/V1__t1.sql"
    printf 'CREATE TABLE t2 (id int);\n' >"$dir/V2__t2.sql"
    printf 'CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n' >"$dir/R__v.sql"
    printf 'not a step\n' >"$dir/README.md"
    t_run 0 -c "$T_DIR/tripwire.conf" -d "$dir" manifest
    t_stderr_has "wrote .*pgstep.sum: 3 files"
}

# refused NAME CONF PATTERN...: verify, apply and status all exit 65 with each PATTERN on stderr
# and never connect.
refused() {
    local name=$1 conf=$2 cmd pattern
    shift 2
    for cmd in verify apply status; do
        t_run 65 -c "$T_DIR/$conf" -d "$T_DIR/$name" "$cmd"
        for pattern in "$@"; do t_stderr_has "$pattern"; done
        t_no_connection "$name/$cmd"
    done
}

# The manifest's format: header, one line per .sql file in byte order, closing checksum; b2sum
# agrees with every file's hash.
fresh format
sum=$T_DIR/format/pgstep.sum
[ "$(head -n 1 "$sum")" = "pgstep-manifest 1" ] || t_fail "first line: $(head -n 1 "$sum")"
[ "$(sed -n '2,4p' "$sum" | cut -c67-)" = "$(printf 'R__v.sql\nV1__t1.sql\nV2__t2.sql')" ] ||
    t_fail "listed files: $(cat "$sum")"
grep -q README "$sum" && t_fail "a file that is not a step is listed"
[ "$(tail -n 1 "$sum" | cut -c1-4)" = "sum " ] || t_fail "last line: $(tail -n 1 "$sum")"
[ "$(tail -n 1 "$sum" | cut -c5-)" = "$(head -n 4 "$sum" | b2sum -l 256 | cut -c1-64)" ] ||
    t_fail "the closing checksum is not BLAKE2b-256 of the lines before it"
(cd "$T_DIR/format" && sed -n '2,4p' pgstep.sum | b2sum -l 256 -c --quiet) ||
    t_fail "b2sum disagrees with the listed hashes"
# Byte for byte: writing it again gives the same file.
cp "$sum" "$T_DIR/format.sum"
t_run 0 -c "$T_DIR/tripwire.conf" -d "$T_DIR/format" manifest
cmp -s "$sum" "$T_DIR/format.sum" || t_fail "the manifest is not stable"
t_run 0 -c "$T_DIR/tripwire.conf" -d "$T_DIR/format" verify
t_stderr_has "step set matches pgstep.sum \(3 files\)"
t_no_connection "format/verify"
t_ok "format"

fresh byte
printf 'CREATE TABLE t1 (id bigint);\n' >"$T_DIR/byte/V1__t1.sql"
refused byte tripwire.conf "V1__t1.sql: file content differs from pgstep.sum" "1 changed"
# A CRLF checkout changes the bytes too, though not the SQL.
fresh crlf
printf 'CREATE TABLE t2 (id int);\r\n' >"$T_DIR/crlf/V2__t2.sql"
refused crlf tripwire.conf "V2__t2.sql: file content differs"
fresh added
printf 'CREATE TABLE t3 (id int);\n' >"$T_DIR/added/V3__t3.sql"
refused added tripwire.conf "V3__t3.sql: file is not listed in pgstep.sum" "1 unexpected"
fresh removed
rm "$T_DIR/removed/V2__t2.sql"
refused removed tripwire.conf "V2__t2.sql: file is listed in pgstep.sum but missing" "1 missing"
fresh renamed
mv "$T_DIR/renamed/V2__t2.sql" "$T_DIR/renamed/V2__t2_renamed.sql"
refused renamed tripwire.conf "V2__t2.sql: file is listed .* but missing" \
    "V2__t2_renamed.sql: file is not listed" "1 missing, 1 unexpected"
fresh truncated
truncate -s 10 "$T_DIR/truncated/V1__t1.sql"
refused truncated tripwire.conf "V1__t1.sql: file content differs"
fresh several
rm "$T_DIR/several/V1__t1.sql"
printf 'SELECT 1;\n' >"$T_DIR/several/V9__late.sql"
printf 'SELECT 2;\n' >>"$T_DIR/several/R__v.sql"
refused several tripwire.conf "R__v.sql: file content" "V1__t1.sql: .*missing" "V9__late.sql: .*not listed" \
    "1 missing, 1 unexpected, 1 changed"
t_ok "a changed, added, removed, renamed or truncated step is refused by name"

# The manifest replaced by another set's, edited by hand, or cut short.
fresh replaced
fresh other
printf 'SELECT 3;\n' >"$T_DIR/other/V3__more.sql"
t_run 0 -c "$T_DIR/tripwire.conf" -d "$T_DIR/other" manifest
cp "$T_DIR/other/pgstep.sum" "$T_DIR/replaced/pgstep.sum"
refused replaced tripwire.conf "V3__more.sql: file is listed in pgstep.sum but missing"
fresh edited
hash=$(b2sum -l 256 "$T_DIR/edited/V1__t1.sql" | cut -c1-64)
printf 'CREATE TABLE t1 (id text);\n' >"$T_DIR/edited/V1__t1.sql"
new=$(b2sum -l 256 "$T_DIR/edited/V1__t1.sql" | cut -c1-64)
sed -i "s/$hash/$new/" "$T_DIR/edited/pgstep.sum"
refused edited tripwire.conf "pgstep.sum:5: malformed manifest: the closing checksum does not match"
fresh cut
head -c 100 "$T_DIR/cut/pgstep.sum" >"$T_DIR/cut/pgstep.sum.part"
mv "$T_DIR/cut/pgstep.sum.part" "$T_DIR/cut/pgstep.sum"
refused cut tripwire.conf "pgstep.sum:3: malformed manifest: the last line is incomplete"
fresh cut_at_line
head -n 3 "$T_DIR/cut_at_line/pgstep.sum" >"$T_DIR/cut_at_line/pgstep.sum.part"
mv "$T_DIR/cut_at_line/pgstep.sum.part" "$T_DIR/cut_at_line/pgstep.sum"
refused cut_at_line tripwire.conf "malformed manifest: the closing \"sum\" line is missing"
t_ok "a replaced, edited or cut manifest is refused"

# Missing manifest: fine by default, an error with steps.require_manifest.
fresh missing
rm "$T_DIR/missing/pgstep.sum"
t_run 0 -c "$T_DIR/tripwire.conf" -d "$T_DIR/missing" verify
t_no_connection "missing/verify"
refused missing require.conf "step set \".*missing\" has no manifest pgstep.sum" \
    "steps.require_manifest requires one"
t_run 0 -c "$T_DIR/require.conf" -d "$T_DIR/format" verify
t_no_connection "format/verify with require_manifest"
printf 'steps: { require_manifest = "yes"; };\n' >"$T_DIR/badbool.conf"
t_run 78 -c "$T_DIR/badbool.conf" -d "$T_DIR/format" verify
t_stderr_has "key \"steps.require_manifest\": expected true or false"
t_ok "a missing manifest is an error only when required"

# A matching set applies; status says how it was verified, in text and JSON.
db=$(t_db applied)
t_conf "$T_DIR/pgstep.conf" "$db" 'steps: { require_manifest = true; };'
fresh good
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/good" apply
t_stderr_has "step set matches pgstep.sum \(3 files\)"
t_stderr_has "applied 3 steps"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/good" status
t_stdout_has "^Step set: verified by pgstep.sum \(3 files\), not signed$"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/good" status --json
python3 - "$T_DIR/stdout" <<'PY' || t_fail "status --json lacks the integrity object"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["integrity"] == {"manifest": True, "files": 3, "signed": False, "key_id": None,
                            "trusted_comment": None}, doc["integrity"]
assert doc["summary"]["applied"] == 3
PY
rm "$T_DIR/good/pgstep.sum"
t_conf "$T_DIR/plain.conf" "$db"
t_run 0 -c "$T_DIR/plain.conf" -d "$T_DIR/good" status
t_stdout_has "^Step set: not verified \(no pgstep.sum\)$"
t_ok "a verified set applies and status reports the manifest"

# With steps.databases, one manifest covers every database's files, listed as "database/file".
first=$(t_db multi_first) second=$(t_db multi_second)
mkdir -p "$T_DIR/multi/$first" "$T_DIR/multi/$second"
printf 'CREATE TABLE m1 (id int);\n' >"$T_DIR/multi/$first/V1__m1.sql"
printf 'CREATE TABLE m2 (id int);\n' >"$T_DIR/multi/$second/V1__m2.sql"
printf 'CREATE OR REPLACE VIEW mv AS SELECT 1 AS one;\n' >"$T_DIR/multi/$second/R__mv.sql"
databases="steps: { databases = [\"$first\", \"$second\"]; require_manifest = true; };"
printf 'connection: { conninfo = "%s"; };\nwait: { timeout = 1; };\n%s\n' \
    "$(t_dsn postgres "$T_TRIPWIRE_PORT")" "$databases" >"$T_DIR/multi-tripwire.conf"
t_run 0 -c "$T_DIR/multi-tripwire.conf" -d "$T_DIR/multi" manifest
t_stderr_has "wrote .*pgstep.sum: 3 files"
grep -q "  $second/R__mv.sql\$" "$T_DIR/multi/pgstep.sum" || t_fail "the manifest lacks $second/R__mv.sql"
printf 'SELECT 1;\n' >"$T_DIR/multi/$first/V2__late.sql"
t_run 65 -c "$T_DIR/multi-tripwire.conf" -d "$T_DIR/multi" verify
t_stderr_has "$first/V2__late.sql: file is not listed in pgstep.sum"
t_no_connection "multi/verify"
rm "$T_DIR/multi/$first/V2__late.sql"
t_conf "$T_DIR/multi.conf" postgres "$databases"
t_run 0 -c "$T_DIR/multi.conf" -d "$T_DIR/multi" apply
t_stderr_has "applied 3 steps"
t_ok "one manifest covers every database's steps"
