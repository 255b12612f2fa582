#!/usr/bin/env bash
# ctest fixture: "start STATE_DIR" starts the shared test server and writes STATE_DIR/env for
# the tests; "stop STATE_DIR" stops it and removes its files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/pg.sh
. "$here/pg.sh"

action=$1 state=$2
case "$action" in
start)
    if [ -f "$state/env" ]; then
        # shellcheck disable=SC1091
        . "$state/env"
        pg_stop "$PGSTEP_TEST_DATA"
        rm -rf "$(dirname "$PGSTEP_TEST_DATA")"
    fi
    mkdir -p "$state"
    data=$(pg_make_dir)/data
    pg_as_owner mkdir -m 700 "$data"
    port=$(pg_free_port)
    pg_init "$data" "$port"
    pg_start "$data"
    version=$(pg_psql "$port" postgres -c 'SELECT version()')
    major=$(($(pg_psql "$port" postgres -c 'SHOW server_version_num') / 10000))
    # A matrix run names the major version it wants: never test another one by mistake.
    if [ -n "${PGSTEP_TEST_PG_VERSION:-}" ] && [ "$major" != "$PGSTEP_TEST_PG_VERSION" ]; then
        pg_stop "$data"
        pg_die "expected PostgreSQL $PGSTEP_TEST_PG_VERSION from $PG_SERVER_BINDIR, got: $version"
    fi
    printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$state/password"
    chmod 600 "$state/password"
    cat >"$state/env" <<ENV
PGSTEP_TEST_HOST=127.0.0.1
PGSTEP_TEST_PORT=$port
PGSTEP_TEST_PASSFILE=$state/password
PGSTEP_TEST_DATA=$data
PGSTEP_TEST_SERVER_MAJOR=$major
PGSTEP_TEST_SERVER_VERSION=$(printf '%q' "$version")
ENV
    echo "test server on 127.0.0.1:$port ($data): $version"
    ;;
stop)
    [ -f "$state/env" ] || exit 0
    # shellcheck disable=SC1091
    . "$state/env"
    pg_stop "$PGSTEP_TEST_DATA"
    rm -rf "$(dirname "$PGSTEP_TEST_DATA")" "$state/env" "$state/password"
    ;;
*)
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 64
    ;;
esac
