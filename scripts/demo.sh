#!/usr/bin/env bash
# The end-to-end demo: build pgstep, start a throwaway PostgreSQL on a free loopback port, and
# apply the demo step set (sql/demo) twice: an extension in the postgres database, then the
# application's schema, role and grants in the demo database. The first run applies every step,
# the second finds nothing to do. Everything is removed afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target pgstep >/dev/null

# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh
pg_throwaway start
work=$PG_WORK port=$PG_PORT
trap 'pg_discard "$work"' EXIT
pg_psql "$port" postgres -c "CREATE DATABASE demo"

umask 077
printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$work/password"
cat >"$work/pgstep.conf" <<CONF
connection: {
  conninfo = "host=127.0.0.1 port=$port user=postgres";
  password_file = "$work/password";
};
steps: { directory = "$root/sql/demo"; databases = ["postgres", "demo"]; };
variables: { app_role = "demo_app"; };
CONF

run() {
    echo
    echo "\$ pgstep $*"
    build/pgstep -c "$work/pgstep.conf" "$@"
}
run wait
run apply
run apply
run status
