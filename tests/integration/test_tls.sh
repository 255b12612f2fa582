#!/usr/bin/env bash
# TLS with a CA and certificates made here: sslmode=verify-full succeeds with the right CA and
# host name; a wrong CA, a wrong host name, an expired certificate, and sslmode=require against a
# server without TLS each fail with a clear line and exit 78 once wait.auth_grace has passed,
# having been retried until then (a certificate being renewed). Run with the dynamic binary in
# the plain suites and with the static one, which links its own OpenSSL, in the static suite.
. "$(dirname "$0")/../lib/testlib.sh"

if [ "${PGSTEP_TLS_STATIC:-}" = 1 ]; then
    file -L "$PGSTEP_BIN" | grep -q 'statically linked' || t_fail "$PGSTEP_BIN is not the static binary"
fi
certs=$T_DIR/certs
mkdir "$certs"
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "$@" 2>/dev/null; }
ec -x509 -keyout "$certs/ca.key" -out "$certs/ca.crt" -days 10 -subj /CN=pgstep-test-ca
ec -x509 -keyout "$certs/other-ca.key" -out "$certs/other-ca.crt" -days 10 -subj /CN=pgstep-test-ca
ec -keyout "$certs/server.key" -out "$certs/server.csr" -subj /CN=db.pgstep.test
printf 'subjectAltName=DNS:db.pgstep.test\n' >"$certs/ext"
sign() { # DAYS OUT
    openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
        -CAcreateserial -days "$1" -extfile "$certs/ext" -out "$2" 2>/dev/null
}
sign 10 "$certs/server.crt"
sign -1 "$certs/expired.crt"
openssl verify -CAfile "$certs/ca.crt" "$certs/server.crt" >/dev/null || t_fail "the test certificate does not verify"
! openssl verify -CAfile "$certs/ca.crt" "$certs/expired.crt" >/dev/null 2>&1 || t_fail "the expired certificate verifies"

# The server's owner installs its key and certificates from here (throwaway keys).
chmod 711 "$T_DIR"
chmod 755 "$certs"
chmod 644 "$certs"/*
with_tls() {
    pg_as_owner install -m 600 "$certs/server.key" "$1/server.key"
    pg_as_owner install -m 644 "$certs/server.crt" "$1/server.crt"
    pg_as_owner install -m 644 "$certs/expired.crt" "$1/expired.crt"
    pg_as_owner tee -a "$1/postgresql.conf" >/dev/null <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
CONF
}
t_own_server with_tls
port=$T_SERVER_PORT

# conf NAME CONNINFO_TAIL: a configuration for the TLS server; the certificate's name is
# db.pgstep.test, reached by address so that no resolver is needed.
conf() {
    cat >"$T_DIR/$1.conf" <<CONF
connection: { conninfo = "hostaddr=127.0.0.1 port=$port user=postgres dbname=postgres $2";
              password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; auth_grace = 1; };
CONF
}
# fails NAME PATTERN: exit 78 with one error line matching PATTERN, after the grace and well
# before wait.timeout.
fails() {
    local start elapsed
    start=$(t_now_ms)
    t_run 78 -c "$T_DIR/$1.conf" wait
    elapsed=$(($(t_now_ms) - start))
    t_stderr_has "$2"
    [ "$(grep -c ' error: ' "$T_DIR/stderr")" = 1 ] || t_fail "$1: expected one error line"
    [ "$elapsed" -ge 1000 ] || t_fail "$1: failed after $elapsed ms, before wait.auth_grace"
    [ "$elapsed" -lt "$(t_ms 15000)" ] || t_fail "$1: failed only after $elapsed ms"
    t_stderr_lacks "$(cat "$PGSTEP_TEST_PASSFILE")"
}

conf good "host=db.pgstep.test sslmode=verify-full sslrootcert=$certs/ca.crt"
t_run 0 -c "$T_DIR/good.conf" wait
pg_psql "$port" postgres -c "SELECT count(*) FROM pg_stat_ssl WHERE ssl" >/dev/null
t_ok "verify-full with the right CA and host name"

conf wrong_ca "host=db.pgstep.test sslmode=verify-full sslrootcert=$certs/other-ca.crt"
fails wrong_ca 'certificate verify failed'
conf wrong_host "host=other.pgstep.test sslmode=verify-full sslrootcert=$certs/ca.crt"
fails wrong_host 'server certificate for "db.pgstep.test" does not match host name "other.pgstep.test"'
conf no_ca "host=db.pgstep.test sslmode=verify-full sslrootcert=$certs/absent.crt"
fails no_ca 'root certificate file ".*absent.crt" does not exist'
t_ok "a wrong CA, a wrong host name and a missing CA file: exit 78"

# The certificate is renewed while pgstep retries: it connects.
pg_psql "$port" postgres -c "ALTER SYSTEM SET ssl_cert_file = 'expired.crt'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
fails good 'certificate verify failed'
sed -i 's/auth_grace = 1;/auth_grace = 20;/' "$T_DIR/good.conf"
"$PGSTEP_BIN" -c "$T_DIR/good.conf" wait >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
pid=$!
t_on_exit "kill $pid 2>/dev/null"
sleep 1
pg_psql "$port" postgres -c "ALTER SYSTEM RESET ssl_cert_file" -c "SELECT pg_reload_conf()" >/dev/null
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || t_fail "wait during the renewal exited $rc"
t_ok "an expired certificate: exit 78, or ready once it is renewed within wait.auth_grace"

# sslmode=require against the shared server, which has no TLS.
cat >"$T_DIR/plain.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$PGSTEP_TEST_PORT user=postgres sslmode=require";
              password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 60; auth_grace = 1; };
CONF
fails plain 'server does not support SSL, but SSL was required'
t_ok "sslmode=require against a server without TLS: exit 78"
