#!/usr/bin/env bash
# minisign signatures of pgstep.sum, with Debian's minisign in both directions: pgstep's keys
# and signatures (prehashed) pass "minisign -V -H", minisign's (prehashed and legacy, encrypted
# keys and unencrypted) pass pgstep. With steps.trusted_keys every tampering is exit 65 naming
# what failed, before connecting (the target is a tripwire): a signature missing, truncated,
# made by an untrusted key or another key with the same id, made for another manifest; the
# manifest edited after signing; the trusted comment altered. Secret keys are written 0600,
# never overwritten; passwords come from a file or the terminal and are never shown.
. "$(dirname "$0")/../lib/testlib.sh"

command -v minisign >/dev/null || t_fail "minisign is not installed (scripts/install-deps.sh)"

t_tripwire
# conf NAME KEYS: a configuration that trusts KEYS (libconfig list items) and points at the
# tripwire.
conf() {
    cat >"$T_DIR/$1.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$T_TRIPWIRE_PORT")"; };
wait: { timeout = 1; };
steps: { trusted_keys = [ $2 ]; };
CONF
}
printf 'correct horse battery\n' >"$T_DIR/password"
printf 'wrong horse\n' >"$T_DIR/wrong-password"
keys=$T_DIR/keys
mkdir "$keys"

# fresh NAME: a step set in $T_DIR/NAME with its manifest.
fresh() {
    local dir=$T_DIR/$1
    mkdir -p "$dir"
    printf 'CREATE TABLE t1 (id int);\n' >"$dir/V1__t1.sql"
    printf 'CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n' >"$dir/R__v.sql"
    "$PGSTEP_BIN" -c /dev/null -d "$dir" manifest 2>/dev/null || t_fail "manifest of $1"
}
# pgstep_sign NAME KEY [ARGS...]: pgstep signs NAME's manifest with KEY (password file).
pgstep_sign() {
    local name=$1 key=$2
    shift 2
    t_run 0 -c /dev/null -d "$T_DIR/$name" sign --secret-key "$key" --password-file "$T_DIR/password" "$@"
}
# refused NAME CONF PATTERN: verify, apply and status exit 65 with PATTERN, never connecting.
refused() {
    local cmd
    for cmd in verify apply status; do
        t_run 65 -c "$T_DIR/$2.conf" -d "$T_DIR/$1" "$cmd"
        t_stderr_has "$3"
        t_no_connection "$1/$cmd"
    done
}

# ---- pgstep's keys and signatures, checked by minisign ----
t_run 0 -c /dev/null keygen --public-key "$keys/ci.pub" --secret-key "$keys/ci.key" \
    --password-file "$T_DIR/password"
[ "$(stat -c %a "$keys/ci.key")" = 600 ] || t_fail "secret key mode $(stat -c %a "$keys/ci.key")"
ci_id=$(sed -n 's/^untrusted comment: minisign public key //p' "$keys/ci.pub")
[ ${#ci_id} = 16 ] || t_fail "public key file: $(cat "$keys/ci.pub")"
t_stderr_has "wrote key pair $ci_id"
grep -q '^untrusted comment: minisign encrypted secret key$' "$keys/ci.key" || t_fail "secret key header"
t_stderr_lacks "horse"
fresh set
pgstep_sign set "$keys/ci.key"
t_stderr_has "signed pgstep.sum with key $ci_id"
t_stderr_lacks "horse"
minisign -V -H -p "$keys/ci.pub" -m "$T_DIR/set/pgstep.sum" >"$T_DIR/minisign.out" 2>&1 ||
    t_fail "minisign rejects pgstep's signature: $(cat "$T_DIR/minisign.out")"
grep -Eq "^Trusted comment: timestamp:[0-9]+	file:pgstep.sum	hashed$" "$T_DIR/minisign.out" ||
    t_fail "trusted comment: $(cat "$T_DIR/minisign.out")"
pgstep_sign set "$keys/ci.key" --trusted-comment "release 1.2 of the app schema"
minisign -Q -V -P "$(sed -n 2p "$keys/ci.pub")" -m "$T_DIR/set/pgstep.sum" >"$T_DIR/minisign.out" ||
    t_fail "minisign -P rejects pgstep's signature"
[ "$(cat "$T_DIR/minisign.out")" = "release 1.2 of the app schema" ] || t_fail "custom trusted comment"
# minisign signs with pgstep's encrypted secret key.
printf 'correct horse battery\n' | minisign -S -s "$keys/ci.key" -m "$T_DIR/set/pgstep.sum" \
    -x "$T_DIR/by-minisign.minisig" >/dev/null 2>&1 || t_fail "minisign cannot use pgstep's secret key"
conf ci "\"$keys/ci.pub\""
t_run 0 -c "$T_DIR/ci.conf" -d "$T_DIR/set" verify
t_stderr_has "step set matches pgstep.sum \(2 files\), signed by key $ci_id"
t_no_connection "set/verify"
# Inline key, among others.
conf inline "\"$(sed -n 2p "$keys/ci.pub")\""
t_run 0 -c "$T_DIR/inline.conf" -d "$T_DIR/set" verify
t_ok "pgstep's keys and signatures work with minisign"

# ---- minisign's keys and signatures, checked by pgstep ----
printf 'ms-password\nms-password\n' | minisign -G -p "$keys/ms.pub" -s "$keys/ms.key" >/dev/null 2>&1 ||
    t_fail "minisign -G"
ms_id=$(sed -n 's/^untrusted comment: minisign public key //p' "$keys/ms.pub")
# minisign's comment drops leading zeros of the key id; pgstep prints all 16 digits.
while [ ${#ms_id} -lt 16 ]; do ms_id=0$ms_id; done
conf ms "\"$keys/ms.pub\""
fresh by_ms
printf 'ms-password\n' | minisign -S -s "$keys/ms.key" -m "$T_DIR/by_ms/pgstep.sum" >/dev/null 2>&1 ||
    t_fail "minisign -S"
grep -q "hashed$" "$T_DIR/by_ms/pgstep.sum.minisig" || t_fail "minisign did not prehash"
t_run 0 -c "$T_DIR/ms.conf" -d "$T_DIR/by_ms" verify
t_stderr_has "signed by key $ms_id"
printf 'ms-password\n' | minisign -S -l -s "$keys/ms.key" -m "$T_DIR/by_ms/pgstep.sum" >/dev/null 2>&1 ||
    t_fail "minisign -S -l"
grep -q "hashed$" "$T_DIR/by_ms/pgstep.sum.minisig" && t_fail "minisign -l prehashed"
t_run 0 -c "$T_DIR/ms.conf" -d "$T_DIR/by_ms" verify
t_stderr_has "signed by key $ms_id"
# pgstep signs with minisign's encrypted secret key (and refuses a wrong password).
printf 'ms-password\n' >"$T_DIR/ms-password"
t_run 0 -c /dev/null -d "$T_DIR/by_ms" sign --secret-key "$keys/ms.key" --password-file "$T_DIR/ms-password"
t_run 0 -c "$T_DIR/ms.conf" -d "$T_DIR/by_ms" verify
t_run 78 -c /dev/null -d "$T_DIR/by_ms" sign --secret-key "$keys/ms.key" --password-file "$T_DIR/wrong-password"
t_stderr_has "secret key file \".*ms.key\": wrong password"
t_stderr_lacks "horse"
# Unencrypted keys, both ways (minisign -W; pgstep --unencrypted).
minisign -G -W -p "$keys/msw.pub" -s "$keys/msw.key" >/dev/null 2>&1 || t_fail "minisign -G -W"
t_run 0 -c /dev/null -d "$T_DIR/by_ms" sign --secret-key "$keys/msw.key"
conf msw "\"$keys/msw.pub\""
t_run 0 -c "$T_DIR/msw.conf" -d "$T_DIR/by_ms" verify
t_run 0 -c /dev/null keygen --unencrypted --public-key "$keys/plain.pub" --secret-key "$keys/plain.key"
[ "$(stat -c %a "$keys/plain.key")" = 600 ] || t_fail "unencrypted secret key mode"
minisign -S -W -s "$keys/plain.key" -m "$T_DIR/by_ms/pgstep.sum" >/dev/null 2>&1 ||
    t_fail "minisign cannot use pgstep's unencrypted key"
conf plain "\"$keys/plain.pub\""
t_run 0 -c "$T_DIR/plain.conf" -d "$T_DIR/by_ms" verify
t_ok "minisign's keys and signatures (prehashed, legacy, unencrypted) work with pgstep"

# ---- tampering ----
# With the unencrypted key, to spare a key derivation per signature.
plain_id=$(sed -n 's/^untrusted comment: minisign public key //p' "$keys/plain.pub")
quick_sign() { t_run 0 -c /dev/null -d "$T_DIR/$1" sign --secret-key "$keys/plain.key"; }
conf trusted "\"$keys/ci.pub\", \"$keys/plain.pub\""
fresh other_key
printf 'ms-password\n' | minisign -S -s "$keys/ms.key" -m "$T_DIR/other_key/pgstep.sum" >/dev/null 2>&1
refused other_key trusted "signature \"pgstep.sum.minisig\" was made by key $ms_id, which is not in steps.trusted_keys"

fresh unsigned
refused unsigned trusted "step set \".*unsigned\" is not signed: pgstep.sum.minisig is missing"
rm "$T_DIR/unsigned/pgstep.sum"
refused unsigned trusted "has no manifest pgstep.sum"

fresh truncated
quick_sign truncated
sig=$T_DIR/truncated/pgstep.sum.minisig
for bytes in 0 60 150 $(($(stat -c %s "$sig") - 10)); do
    head -c "$bytes" "$sig" >"$T_DIR/sig.part"
    cp "$T_DIR/sig.part" "$sig"
    refused truncated trusted "signature \"pgstep.sum.minisig\" is malformed"
    quick_sign truncated
done

fresh replaced
fresh elsewhere
printf 'SELECT 2;\n' >"$T_DIR/elsewhere/V2__two.sql"
"$PGSTEP_BIN" -c /dev/null -d "$T_DIR/elsewhere" manifest 2>/dev/null
quick_sign elsewhere
cp "$T_DIR/elsewhere/pgstep.sum.minisig" "$T_DIR/replaced/"
refused replaced trusted "signature \"pgstep.sum.minisig\" does not verify pgstep.sum with trusted key $plain_id"

fresh edited_after
quick_sign edited_after
printf 'SELECT 3;\n' >"$T_DIR/edited_after/V3__three.sql"
"$PGSTEP_BIN" -c /dev/null -d "$T_DIR/edited_after" manifest 2>"$T_DIR/stderr" || t_fail "manifest"
t_stderr_has "pgstep.sum.minisig no longer matches the new manifest: sign it again"
refused edited_after trusted "does not verify pgstep.sum with trusted key $plain_id"
# The whole set swapped, manifest and signature included, for one signed by another key.
cp "$T_DIR/other_key/"* "$T_DIR/edited_after/"
refused edited_after trusted "made by key $ms_id, which is not in steps.trusted_keys"

fresh comment
quick_sign comment
sed -i 's/^trusted comment: timestamp:[0-9]*/trusted comment: timestamp:1/' "$T_DIR/comment/pgstep.sum.minisig"
refused comment trusted "the trusted comment of signature \"pgstep.sum.minisig\" was altered after signing"

# A public key with the trusted key's id but another key.
python3 - "$keys/ci.pub" "$keys/ms.pub" "$keys/impostor.pub" <<'PY'
import base64, sys
ci = base64.b64decode(open(sys.argv[1]).read().split("\n")[1])
ms = base64.b64decode(open(sys.argv[2]).read().split("\n")[1])
open(sys.argv[3], "w").write("untrusted comment: impostor\n" +
                             base64.b64encode(ci[:10] + ms[10:]).decode() + "\n")
PY
conf impostor "\"$keys/impostor.pub\""
refused set impostor "does not verify pgstep.sum with trusted key $ci_id"

# A step changed while manifest and signature stay: the manifest check still catches it.
fresh step_changed
quick_sign step_changed
printf 'DROP TABLE t1;\n' >"$T_DIR/step_changed/V1__t1.sql"
refused step_changed trusted "V1__t1.sql: file content differs from pgstep.sum"
t_ok "every tampering is refused before connecting"

# ---- keys that cannot be used ----
printf 'steps: { trusted_keys = [ "RWQnotakey" ]; };\n' >"$T_DIR/badkey.conf"
t_run 78 -c "$T_DIR/badkey.conf" -d "$T_DIR/set" verify
t_stderr_has "key \"steps.trusted_keys\", element 1: not a minisign public key"
printf 'steps: { trusted_keys = [ ]; };\n' >"$T_DIR/nokeys.conf"
t_run 78 -c "$T_DIR/nokeys.conf" -d "$T_DIR/set" verify
t_stderr_has "key \"steps.trusted_keys\": the list is empty"
printf 'steps: { trusted_keys = [ "%s" ]; };\n' "$keys/absent.pub" >"$T_DIR/absentkey.conf"
t_run 78 -c "$T_DIR/absentkey.conf" -d "$T_DIR/set" verify
t_stderr_has "could not open public key file \".*absent.pub\""
t_run 73 -c /dev/null keygen --unencrypted --public-key "$keys/new.pub" --secret-key "$keys/ci.key"
t_stderr_has "key file \".*ci.key\" already exists"
[ ! -e "$keys/new.pub" ] || t_fail "keygen left a public key behind"
t_run 64 -c /dev/null keygen --unencrypted --password-file "$T_DIR/password"
for f in "$keys"/*tmp*; do [ ! -e "$f" ] || t_fail "temporary file $f was left behind"; done
# No terminal and no password file.
rc=0
setsid -w "$PGSTEP_BIN" -c /dev/null keygen --public-key "$keys/tty.pub" --secret-key "$keys/tty.key" \
    </dev/null >"$T_DIR/stdout" 2>"$T_DIR/stderr" || rc=$?
[ "$rc" = 64 ] || t_fail "keygen without a terminal exited $rc"
t_stderr_has "no terminal to read the password from"
t_ok "unusable keys and passwords are refused"

# ---- the terminal: the password is asked twice, without echo ----
(sleep 1; printf 'typed secret\n'; sleep 1; printf 'typed secret\n'; sleep 3) |
    script -qec "$PGSTEP_BIN -c /dev/null keygen --public-key $keys/tty.pub --secret-key $keys/tty.key" \
        /dev/null >"$T_DIR/tty.out" 2>&1 || t_fail "keygen on a terminal: $(cat "$T_DIR/tty.out")"
grep -q "Password (again)" "$T_DIR/tty.out" || t_fail "no second prompt: $(cat "$T_DIR/tty.out")"
grep -q "typed secret" "$T_DIR/tty.out" && t_fail "the password was echoed"
printf 'typed secret\n' | minisign -S -s "$keys/tty.key" -m "$T_DIR/set/pgstep.sum" \
    -x "$T_DIR/tty.minisig" >/dev/null 2>&1 || t_fail "the terminal password did not encrypt the key"
t_ok "passwords are read from the terminal without echo"

# ---- status says which key verified the set ----
db=$(t_db signed)
t_conf "$T_DIR/pgstep.conf" "$db" "steps: { trusted_keys = \"$keys/ci.pub\"; };"
fresh applied
pgstep_sign applied "$keys/ci.key" --trusted-comment "schema 7"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/applied" apply
t_stderr_has "signed by key $ci_id"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/applied" status
t_stdout_has "^Step set: verified by pgstep.sum \(2 files\), signed by key $ci_id$"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/applied" status --json
python3 - "$T_DIR/stdout" "$ci_id" <<'PY' || t_fail "status --json: $(cat "$T_DIR/stdout")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["integrity"] == {"manifest": True, "files": 2, "signed": True, "key_id": sys.argv[2],
                            "trusted_comment": "schema 7"}, doc["integrity"]
PY
t_ok "status reports the key that signed the set"
