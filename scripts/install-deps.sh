#!/usr/bin/env bash
# Installs what building and testing pgstep needs on Debian 12, with apt-get, only when something
# is missing (a second run does no apt work). Must run as root when anything is missing.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libpq-dev libconfig-dev libsodium-dev libcmocka-dev
    postgresql-15 postgresql-client-15
    pgbouncer valgrind python3 python3-yaml file clang-format shellcheck nftables
    yamllint docker-compose minisign
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
# The machine image may bring its own Node.js (with npm); Debian's is the fallback.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster and pgbouncer for the packages; pgstep's tests run their own.
if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
        pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
fi
