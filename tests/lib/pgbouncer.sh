# shellcheck shell=bash
# PgBouncer in front of the shared test server, for tests that source testlib.sh first.

# t_pgbouncer POOL_MODE POOL_SIZE: starts pgbouncer on a free loopback port in front of every
# database of the shared server, with POOL_SIZE server connections per database and user, and
# waits until a query goes through it; stopped when the test ends. Sets T_BOUNCER_PORT and
# T_BOUNCER_LOG. pgbouncer refuses to run as root and must read its files: they live in a
# directory owned by the server's owner.
t_pgbouncer() {
    local mode=$1 size=$2 dir port pid ok=0
    command -v pgbouncer >/dev/null || t_fail "pgbouncer is not installed (apt-get install pgbouncer)"
    dir=$(pg_make_dir)
    port=$(pg_free_port)
    t_on_exit "rm -rf '$dir'"
    printf '"postgres" "%s"\n' "$PG_SUPERUSER_PASSWORD" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PGSTEP_TEST_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = $mode
default_pool_size = $size
max_client_conn = 100
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    pg_as_owner touch "$dir/pgbouncer.log"
    [ "$(id -u)" != 0 ] || chown -R "$PG_OWNER:" "$dir"
    chmod 600 "$dir/userlist.txt"
    pg_as_owner pgbouncer -d "$dir/pgbouncer.ini" >"$T_DIR/pgbouncer.out" 2>&1 ||
        t_fail "pgbouncer did not start: $(cat "$T_DIR/pgbouncer.out" "$dir/pgbouncer.log")"
    for _ in $(seq 1 50); do
        [ -s "$dir/pgbouncer.pid" ] && break
        sleep 0.1
    done
    [ -s "$dir/pgbouncer.pid" ] || t_fail "pgbouncer wrote no pid file: $(cat "$dir/pgbouncer.log")"
    pid=$(cat "$dir/pgbouncer.pid")
    t_on_exit "kill $pid 2>/dev/null; for _ in \$(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done"
    for _ in $(seq 1 50); do
        [ "$(pg_psql "$port" postgres -c 'SELECT 1' 2>/dev/null)" = 1 ] && { ok=1; break; }
        sleep 0.1
    done
    [ "$ok" = 1 ] || t_fail "no query through pgbouncer on port $port: $(tail -n 20 "$dir/pgbouncer.log")"
    # shellcheck disable=SC2034 # read by the tests that source this file
    T_BOUNCER_PORT=$port T_BOUNCER_LOG=$dir/pgbouncer.log
}
