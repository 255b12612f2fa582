#!/usr/bin/env bash
# The static pgstep works the way the FROM scratch image runs it: from an otherwise empty root
# (no /etc/passwd, no libraries, no nsswitch.conf), read-only, as uid 65532, with an empty
# environment, the configuration and a password file mounted, and /dev/termination-log
# writable, against a loopback server. It waits, applies the demo step set, applies again
# (nothing to do) and reports status; by IP and by localhost (through the /etc/hosts that
# Kubernetes mounts). Without a hosts entry, localhost does not resolve: static glibc falls back
# to DNS, which is why the image relies on the runtime's /etc/hosts and never on its own.
#
# Environment: PGSTEP_BIN (the static binary), PGSTEP_TEST_HOST, PGSTEP_TEST_PORT and
# PGSTEP_TEST_PASSFILE (the server; read from $PGSTEP_TEST_STATE/env if unset), optionally
# PGSTEP_TEST_USER (postgres) and PGSTEP_TEST_SSLROOTCERT (then sslmode=verify-full).
# Needs root (chroot, a private mount namespace). Fails, never skips, when something is missing.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $(id -u) -eq 0 ]] || die "needs root: chroot and a private mount namespace"
reroot_if_chroot "$@"
load_test_server_env
bin=${PGSTEP_BIN:-}
host=${PGSTEP_TEST_HOST:-}
port=${PGSTEP_TEST_PORT:-}
passfile=${PGSTEP_TEST_PASSFILE:-}
user=${PGSTEP_TEST_USER:-postgres}
[[ -n $bin && -x $bin ]] || die "PGSTEP_BIN must name the static pgstep binary (a PGSTEP_STATIC=ON build)"
[[ -n $host ]] || die "PGSTEP_TEST_HOST is not set (the test server's address)"
[[ -n $port ]] || die "PGSTEP_TEST_PORT is not set (the test server's port)"
[[ -n $passfile && -r $passfile ]] || die "PGSTEP_TEST_PASSFILE must name a readable password file"
case $host in
127.* | ::1 | localhost) ;;
*) die "PGSTEP_TEST_HOST=$host: only loopback addresses are allowed as targets" ;;
esac
need_command file
need_command psql postgresql-client
file -L "$bin" | grep -q 'statically linked' || die "$bin is not statically linked: $(file -L "$bin")"

tls=""
if [[ -n ${PGSTEP_TEST_SSLROOTCERT:-} ]]; then
    tls="sslmode=verify-full sslrootcert=/etc/pgstep/ca.crt"
fi

db=pgstep_scratch_$$
role=pgstep_scratch_app_$$
admin() {
    PGPASSWORD=$(head -n1 "$passfile") PGCONNECT_TIMEOUT=10 psql -X -q -v ON_ERROR_STOP=1 \
        -h "$host" -p "$port" -U "$user" -d postgres "$@"
}
work=$(mktemp -d)
cleanup() {
    admin -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
admin -c "CREATE DATABASE $db" || die "cannot create database $db on $host:$port"

# --- the root: only what the image ships and Kubernetes mounts -----------------------------------
root=$work/root
install -D -m 0755 "$bin" "$root/usr/local/bin/pgstep"
mkdir -p "$root/usr/share/pgstep/steps" "$root/etc/pgstep" "$root/run/secrets/pgstep" "$root/dev"
cp "$repo_root"/sql/demo/demo/*.sql "$root/usr/share/pgstep/steps/"
install -m 0400 -o 65532 -g 65532 "$passfile" "$root/run/secrets/pgstep/password"
if [[ -n ${PGSTEP_TEST_SSLROOTCERT:-} ]]; then
    install -m 0444 "$PGSTEP_TEST_SSLROOTCERT" "$root/etc/pgstep/ca.crt"
fi
conf() { # HOST WAIT_TIMEOUT
    cat <<CONF
connection: {
  conninfo = "host=$1 port=$port user=$user $tls";
  password_file = "/run/secrets/pgstep/password";
  dbname = "$db";
  connect_timeout = 5;
};
wait: { timeout = $2; };
steps: { directory = "/usr/share/pgstep/steps"; };
variables: { app_role = "$role"; };
log: { format = "json"; termination_log = "/dev/termination-log"; };
CONF
}
conf "$host" 60 >"$root/etc/pgstep/pgstep.conf"
conf localhost 60 >"$root/etc/pgstep/localhost.conf"
conf localhost 1 >"$root/etc/pgstep/localhost-nohosts.conf"
# Mount points for what the runtime mounts: /etc/hosts and /dev/termination-log.
: >"$root/etc/hosts"
: >"$root/dev/termination-log"
chmod -R a+rX,go-w "$root"
[[ ! -e $root/etc/passwd && ! -e $root/etc/nsswitch.conf && ! -e $root/lib ]] ||
    die "the root must hold no passwd, nsswitch.conf or libraries"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$work/hosts"
chmod 0644 "$work/hosts"
termlog=$work/termination-log

# Runs pgstep in the root: read-only bind mount, uid/gid 65532, empty environment. With
# HOSTS=file, that file is mounted at /etc/hosts (Kubernetes mounts one into every pod).
in_root() {
    : >"$termlog"
    chown 65532:65532 "$termlog"
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare --mount --propagation private -- bash -euc '
        r=$1 t=$2 h=$3
        shift 3
        mount --bind "$r" "$r"
        mount -o remount,bind,ro "$r"
        mount --bind "$t" "$r/dev/termination-log"
        [[ -z $h ]] || mount --bind "$h" "$r/etc/hosts"
        exec env -i /usr/sbin/chroot --userspec=65532:65532 "$r" /usr/local/bin/pgstep "$@"
    ' in_root "$root" "$termlog" "${HOSTS:-}" "$@"
}

expect_exit() { # WANT DESCRIPTION ARGS...
    local want=$1 what=$2 rc=0
    shift 2
    in_root "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ $rc -ne $want ]]; then
        cat "$work/out" "$work/err" >&2
        die "$what: exit $rc, expected $want"
    fi
    ok "$what (exit $rc)"
}

one_line_summary() {
    [[ -s $termlog && $(wc -l <"$termlog") -le 1 && $(tr -d '\n' <"$termlog") != "" ]] ||
        die "$1: /dev/termination-log should hold a one-line summary, found: $(cat "$termlog")"
    ok "$1 wrote a one-line termination summary: $(head -c 120 "$termlog")"
}

expect_exit 0 "pgstep --version in an empty root" --version
expect_exit 0 "verify" verify
expect_exit 0 "wait for the primary by IP ($host)" wait
expect_exit 0 "apply the demo step set" apply
one_line_summary "apply"
[[ $(admin -d "$db" -tAc "SELECT count(*) FROM app.accounts") == 0 ]] ||
    die "apply did not create app.accounts"
ok "the steps' objects exist"
expect_exit 0 "apply again (nothing to do)" apply
one_line_summary "the second apply"
expect_exit 0 "status --json" status --json
python3 -m json.tool <"$work/out" >/dev/null || die "status --json did not print JSON: $(cat "$work/out")"
ok "status --json prints JSON"

HOSTS=$work/hosts expect_exit 0 "wait by localhost with the runtime's /etc/hosts" \
    -c /etc/pgstep/localhost.conf wait
expect_exit 69 "localhost without a hosts entry is not ready before the deadline" \
    -c /etc/pgstep/localhost-nohosts.conf wait
grep -q 'translate host name' "$work/err" || die "expected a name resolution failure: $(cat "$work/err")"
ok "without /etc/hosts, localhost fails to resolve (static glibc asks DNS)"

finish
