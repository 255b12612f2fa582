# Shared helpers for tests/container/*.sh (sourced, not run).
# shellcheck shell=bash

# Debian's python3 (with python3-yaml, from scripts/install-deps.sh), not another one on PATH.
export PATH="/usr/bin:$PATH"

container_tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
repo_root=$(cd "$container_tests_dir/../.." && pwd)
checks=0

die() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

ok() {
    checks=$((checks + 1))
    printf 'ok: %s\n' "$*"
}

finish() {
    printf '%s: %d checks passed\n' "$(basename "$0" .sh)" "$checks"
}

# Runs "$@" and requires that it fails with output matching the regular expression $expect.
expect_failure() {
    local what=$1 expect=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        die "$what: expected a failure, but it passed"
    fi
    if ! grep -Eq -- "$expect" <<<"$out"; then
        printf '%s\n' "$out" >&2
        die "$what: failed, but without a message matching /$expect/"
    fi
    ok "$what is rejected"
}

# Makes sure a command exists, installing its Debian package (without recommends) if we are
# root; tests never skip for a missing tool.
need_command() {
    local cmd=$1 pkg=${2:-$1}
    command -v "$cmd" >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || die "$cmd is missing; install the Debian package $pkg"
    echo "installing $pkg" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "$pkg" >/dev/null; } ||
        die "could not install $pkg"
    command -v "$cmd" >/dev/null || die "$pkg did not provide $cmd"
}

# Installs the npm packages pinned by tests/container/package-lock.json into $PGSTEP_NPM_DIR
# (default /var/cache/pgstep-npm; never inside the repository) with npm ci, once per lock file.
npm_setup() {
    need_command node nodejs
    need_command npm npm
    export PGSTEP_NPM_DIR=${PGSTEP_NPM_DIR:-/var/cache/pgstep-npm}
    local want
    want=$(cat "$container_tests_dir/package.json" "$container_tests_dir/package-lock.json" |
           sha256sum | cut -d' ' -f1)
    mkdir -p "$PGSTEP_NPM_DIR"
    (
        flock 9
        if [[ $(cat "$PGSTEP_NPM_DIR/.installed" 2>/dev/null) != "$want" ||
              ! -d $PGSTEP_NPM_DIR/node_modules ]]; then
            echo "npm ci in $PGSTEP_NPM_DIR" >&2
            cp "$container_tests_dir/package.json" "$container_tests_dir/package-lock.json" \
                "$PGSTEP_NPM_DIR/"
            (cd "$PGSTEP_NPM_DIR" && npm ci --no-audit --no-fund --ignore-scripts \
                --loglevel=error >/dev/null) || die "npm ci failed in $PGSTEP_NPM_DIR"
            echo "$want" >"$PGSTEP_NPM_DIR/.installed"
        fi
    ) 9>"$PGSTEP_NPM_DIR/.lock"
}

# Prints the path of Debian 12's kubectl (package kubernetes-client, kustomize v2): /usr/bin/kubectl
# when that package is installed, else the copy scripts/install-deps.sh unpacks into
# $PGSTEP_KUBECTL_DIR (default /var/cache/pgstep-kubectl) where another kubectl owns that path.
debian_kubectl() {
    local dir=${PGSTEP_KUBECTL_DIR:-/var/cache/pgstep-kubectl} k
    if [[ $(dpkg-query -W -f='${db:Status-Status}' kubernetes-client 2>/dev/null) == installed ]]; then
        k=/usr/bin/kubectl
    elif [[ -x $dir/usr/bin/kubectl ]]; then
        k=$dir/usr/bin/kubectl
    else
        die "Debian's kubectl (kubernetes-client) is missing: run scripts/install-deps.sh as root"
    fi
    "$k" version --client >/dev/null 2>&1 || die "$k does not run"
    printf '%s\n' "$k"
}

# Tests that mount things or run containers need / to be a mount point: unshare's
# --propagation private remounts it, podman's layer extraction too, and runc pivots out of it.
# Inside a chroot whose root is a plain directory (a fresh root made with debootstrap to try the
# install steps, say) it is not, so this re-runs the calling script, with its arguments, in a
# mount namespace of its own whose root is a recursive bind mount of the chroot, made private at
# once. It refuses when some mount is shared, since the one bind mount could then show up
# outside. Call it first; it returns only where / already is a mount point.
reroot_if_chroot() {
    awk '$5 == "/" { found = 1 } END { exit !found }' /proc/self/mountinfo && return 0
    [[ -z ${PGSTEP_REROOTED:-} ]] || die "/ is still no mount point after re-rooting"
    [[ $(id -u) -eq 0 ]] || die "/ is no mount point (a chroot?), and re-rooting needs root"
    ! grep -q ' shared:' /proc/self/mountinfo ||
        die "/ is no mount point (a chroot?) and some mounts are shared; enter the chroot from a private mount namespace (unshare --mount --propagation private)"
    local self dir rc=0
    self=$(readlink -f "$0")
    dir=$(mktemp -d)
    echo "/ is no mount point (a chroot): re-running in a bind mount of it" >&2
    # shellcheck disable=SC2016 # expanded by the inner shells
    unshare --mount --propagation unchanged bash -c '
        dir=$1 cwd=$2
        shift 2
        mount --rbind / "$dir" && mount --make-rprivate "$dir" && cd "$dir" &&
            exec env PGSTEP_REROOTED=1 chroot . bash -c '\''cd "$1" && shift && exec bash "$@"'\'' _ "$cwd" "$@"
    ' _ "$dir" "$PWD" "$self" "$@" || rc=$?
    rmdir "$dir"
    exit "$rc"
}

# load_test_server_env: the shared test server's address and password file from ctest's fixture
# ($PGSTEP_TEST_STATE/env), unless PGSTEP_TEST_HOST names a server already.
load_test_server_env() {
    if [[ -z ${PGSTEP_TEST_HOST:-} && -n ${PGSTEP_TEST_STATE:-} && -f $PGSTEP_TEST_STATE/env ]]; then
        # shellcheck disable=SC1091
        . "$PGSTEP_TEST_STATE/env"
    fi
}
