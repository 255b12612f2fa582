#!/usr/bin/env bash
# Builds the image from container/Containerfile with podman, exactly as container/README.md
# tells users to (with a local Debian 12 base made by debian-base.sh, since no registry is
# reachable), and runs it the way the Kubernetes Job does: as uid 65532, read-only root file
# system, no capabilities, no privilege escalation, the configuration directory and the password
# file mounted read-only, /dev/termination-log writable. Against the shared loopback test
# server: wait, apply, apply again (nothing to do), status --json, and an invalid step set
# (exit 65 with a termination message). The demo step set is mounted over the image's steps
# directory for the runs that connect (the shipped set needs DocumentDB); the shipped set itself
# is checked with verify, with the Kubernetes pgstep.conf.
#
# Environment: PGSTEP_TEST_HOST, PGSTEP_TEST_PORT, PGSTEP_TEST_PASSFILE (read from
# $PGSTEP_TEST_STATE/env if unset), PGSTEP_TEST_USER (postgres). PGSTEP_IMAGE_CACHE: see
# debian-base.sh. Needs root (podman's storage); installs podman and runc if missing.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $(id -u) -eq 0 ]] || die "needs root: podman builds and runs the image from root's storage"
reroot_if_chroot "$@"
load_test_server_env
host=${PGSTEP_TEST_HOST:-}
port=${PGSTEP_TEST_PORT:-}
passfile=${PGSTEP_TEST_PASSFILE:-}
user=${PGSTEP_TEST_USER:-postgres}
[[ -n $host && -n $port ]] || die "PGSTEP_TEST_HOST and PGSTEP_TEST_PORT must name the test server"
[[ -n $passfile && -r $passfile ]] || die "PGSTEP_TEST_PASSFILE must name a readable password file"
case $host in
127.* | ::1) ;;
*) die "PGSTEP_TEST_HOST=$host: only loopback addresses are allowed as targets" ;;
esac
need_command podman
need_command runc
need_command psql postgresql-client
need_command python3

# runc, not crun: crun fails on hybrid cgroup hierarchies. Host networking: the runs reach the
# loopback test server, and the build stage reaches Debian's mirror without a bridge and
# firewall rules being set up on the machine for it.
podman=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)

db=pgstep_image_$$
role=pgstep_image_app_$$
tag=localhost/pgstep:test-$$
admin() {
    PGPASSWORD=$(head -n1 "$passfile") PGCONNECT_TIMEOUT=10 psql -X -q -v ON_ERROR_STOP=1 \
        -h "$host" -p "$port" -U "$user" -d postgres "$@"
}
work=$(mktemp -d)
cleanup() {
    admin -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
    "${podman[@]}" rmi "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- build ------------------------------------------------------------------------------------
base=$(bash "$container_tests_dir/debian-base.sh") || die "could not make the Debian 12 base image"
ok "Debian 12 base image $base"
revision=$(git -C "$repo_root" rev-parse HEAD 2>/dev/null || echo unknown)
start=$SECONDS
(cd "$repo_root" && "${podman[@]}" build --network host \
    -f container/Containerfile --ignorefile container/Containerfile.dockerignore \
    --build-arg BASE_IMAGE="$base" --build-arg VERSION=0.1.0 --build-arg REVISION="$revision" \
    -t "$tag" .) >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; die "podman build of container/Containerfile failed"; }
build_seconds=$((SECONDS - start))
ok "podman build container/Containerfile in ${build_seconds} s"

"${podman[@]}" image inspect "$tag" >"$work/inspect.json"
python3 - "$work/inspect.json" <<'PY' || die "the image's configuration is not what the Job relies on"
import json, sys
img = json.load(open(sys.argv[1]))[0]
cfg, problems = img["Config"], []
def check(cond, msg):
    if not cond:
        problems.append(msg)
check(cfg.get("User") == "65532:65532", f"User 65532:65532 (found {cfg.get('User')})")
check(cfg.get("Entrypoint") == ["/usr/local/bin/pgstep"], f"Entrypoint (found {cfg.get('Entrypoint')})")
check(cfg.get("Cmd") == ["apply"], f"Cmd [\"apply\"] (found {cfg.get('Cmd')})")
labels = cfg.get("Labels") or {}
# Only that the labels are there: podman 4.3 (buildah 1.28) reuses a cached LABEL layer when
# only a --build-arg value changed, so a rebuild on the same machine may keep an older revision.
for key in ("title", "version", "revision", "created"):
    check(f"org.opencontainers.image.{key}" in labels, f"label org.opencontainers.image.{key}")
check(len(img["RootFS"]["Layers"]) == 1, f"one layer (found {len(img['RootFS']['Layers'])})")
check(img["Size"] < 16 * 1024 * 1024, f"smaller than 16 MiB (found {img['Size']} bytes)")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"image size {img['Size']} bytes ({img['Size'] / 1e6:.1f} MB), one layer")
PY
ok "image: uid 65532, entrypoint pgstep, CMD apply, labels, one small layer"

# --- what Kubernetes mounts ---------------------------------------------------------------------
admin -c "CREATE DATABASE $db" || die "cannot create database $db on $host:$port"
mkdir -p "$work/config" "$work/secret" "$work/k8s-config" "$work/broken"
cat >"$work/config/pgstep.conf" <<CONF
connection: {
  conninfo = "host=$host port=$port user=$user";
  password_file = "/run/secrets/pgstep/password";
  dbname = "$db";
  connect_timeout = 5;
};
wait: { timeout = 60; };
variables: { app_role = "$role"; };
log: { format = "json"; termination_log = "/dev/termination-log"; };
CONF
cp "$repo_root/container/kubernetes/base/pgstep.conf" "$work/k8s-config/"
# The secret volume: group 65532 (the pod's fsGroup), mode 0440 (the Job's defaultMode).
install -m 0440 -g 65532 "$passfile" "$work/secret/password"
cp "$repo_root"/sql/demo/demo/*.sql "$work/broken/"
printf 'SELECT 1;\n' >"$work/broken/v5_lowercase.sql"
chmod -R a+rX "$work/config" "$work/k8s-config" "$work/broken"
chmod 0755 "$work" "$work/secret"
termlog=$work/termination-log

# Runs the image as the Job's pod spec does; STEPS=DIR mounts DIR over the shipped step set and
# CONFIG=DIR another configuration directory.
run_image() {
    : >"$termlog"
    chown 65532:65532 "$termlog"
    local mounts=(-v "${CONFIG:-$work/config}:/etc/pgstep:ro"
                  -v "$work/secret/password:/run/secrets/pgstep/password:ro"
                  -v "$termlog:/dev/termination-log:rw")
    [[ -z ${STEPS:-} ]] || mounts+=(-v "$STEPS:/usr/share/pgstep/steps:ro")
    "${podman[@]}" run --rm --network host --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
        --user 65532:65532 --read-only --read-only-tmpfs=false --cap-drop ALL \
        --security-opt no-new-privileges "${mounts[@]}" "$tag" "$@"
}

expect_exit() { # WANT DESCRIPTION ARGS...
    local want=$1 what=$2 rc=0
    shift 2
    run_image "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ $rc -ne $want ]]; then
        cat "$work/out" "$work/err" >&2
        die "$what: exit $rc, expected $want"
    fi
    ok "$what (exit $rc)"
}

termination_message() { # DESCRIPTION [REGEX]
    [[ -s $termlog && $(wc -l <"$termlog") -le 1 ]] ||
        die "$1: the termination message file should hold one line, found: $(cat "$termlog")"
    [[ -z ${2:-} ]] || grep -Eq -- "$2" "$termlog" ||
        die "$1: the termination message does not match /$2/: $(cat "$termlog")"
    ok "$1 wrote its termination message: $(head -c 160 "$termlog")"
}

applied() { admin -d "$db" -tAc "SELECT count(*) FROM pgstep.history"; }

# --- runs -------------------------------------------------------------------------------------
expect_exit 0 "pgstep --version" --version
grep -q '^pgstep 0\.1\.0' "$work/out" || die "unexpected version: $(cat "$work/out")"
CONFIG=$work/k8s-config expect_exit 0 "verify: the shipped step set with the Kubernetes pgstep.conf" verify
STEPS=$repo_root/sql/demo/demo expect_exit 0 "wait for the primary" wait
STEPS=$repo_root/sql/demo/demo expect_exit 0 "apply (the Job's args)" apply
termination_message "apply" 'appl'
count=$(applied)
[[ $count -eq 5 ]] || die "apply recorded $count steps, expected the 5 demo steps"
[[ $(admin -d "$db" -tAc "SELECT count(*) FROM app.accounts") == 0 ]] ||
    die "apply did not create app.accounts"
ok "the demo steps are applied and recorded"
STEPS=$repo_root/sql/demo/demo expect_exit 0 "apply again, by the image's CMD (nothing to do)"
termination_message "the second apply"
[[ $(applied) -eq $count ]] || die "the second apply recorded steps again"
ok "the second apply recorded nothing"
STEPS=$repo_root/sql/demo/demo expect_exit 0 "status --json" status --json
python3 - "$work/out" <<'PY' || die "status --json: $(cat "$work/out")"
import json, sys
doc = json.load(open(sys.argv[1]))
s = doc["summary"]
assert s["applied"] == 5 and s["pending"] == 0 and s["changed"] == 0, s
assert all(step["state"] == "applied" for step in doc["steps"]), doc["steps"]
PY
ok "status --json: 5 applied, nothing pending"
STEPS=$work/broken expect_exit 65 "apply with an invalid step file" apply
grep -q 'v5_lowercase.sql' "$work/err" || die "the error does not name the file: $(cat "$work/err")"
termination_message "the invalid step set" 'v5_lowercase\.sql|65'
[[ $(applied) -eq $count ]] || die "an invalid step set changed the history"
ok "nothing was applied from the invalid step set"

echo "image build: ${build_seconds} s; size: $("${podman[@]}" image inspect --format '{{.Size}}' "$tag") bytes"
finish
