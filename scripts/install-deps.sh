#!/usr/bin/env bash
# Installs what building and testing pgstep needs on Debian 12, with apt-get, only when something
# is missing (a second run does no apt work). Must run as root when anything is missing.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libpq-dev libconfig-dev libsodium-dev libcmocka-dev
    postgresql-15 postgresql-client-15
    pgbouncer valgrind python3 python3-yaml file clang-format shellcheck nftables time
    yamllint docker-compose minisign
    podman runc debootstrap
)

# Debian's kubectl (kubernetes-client) renders container/kubernetes in the tests. Where another
# kubectl already owns /usr/bin/kubectl (a cloud SDK's, say), installing it would clash, so the
# same Debian package is unpacked into $PGSTEP_KUBECTL_DIR instead, where the tests look for it.
kubectl_dir=${PGSTEP_KUBECTL_DIR:-/var/cache/pgstep-kubectl}
unpack_kubectl=0
kubectl_owner=$(dpkg-query -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || true)
if [ -e /usr/bin/kubectl ] && [ "$kubectl_owner" != kubernetes-client ]; then
    [ -x "$kubectl_dir/usr/bin/kubectl" ] || unpack_kubectl=1
else
    packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
# The machine image may bring its own Node.js (with npm); Debian's is the fallback.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && [ $unpack_kubectl = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    [ $unpack_kubectl = 0 ] || missing+=("kubernetes-client (into $kubectl_dir)")
    echo "install-deps: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ $unpack_kubectl = 1 ]; then
    echo "install-deps: /usr/bin/kubectl belongs to ${kubectl_owner:-no package}; unpacking Debian's kubernetes-client into $kubectl_dir"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root kubernetes-client >/dev/null)
    rm -rf "$kubectl_dir.new"
    dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$kubectl_dir.new"
    rm -rf "$tmp" "$kubectl_dir"
    mv "$kubectl_dir.new" "$kubectl_dir"
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster and pgbouncer for the packages; pgstep's tests run their own.
if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
        pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
fi
