# shellcheck shell=bash
# Throwaway PostgreSQL servers for tests: initdb + pg_ctl -w on a free loopback port, run as an
# unprivileged user (PostgreSQL refuses root), with scram-sha-256 password authentication over
# TCP only. Source this file; every function fails loudly.

# PG_BINDIR: Debian's PostgreSQL, whose client tools (psql, pg_basebackup) every test uses.
# PG_SERVER_BINDIR: the server binaries (initdb, pg_ctl, postgres) of the servers tests start:
# Debian's, or another major version's from $PGSTEP_TEST_PG_BINDIR (tests/versions).
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_SERVER_BINDIR=${PGSTEP_TEST_PG_BINDIR:-$PG_BINDIR}
PG_SUPERUSER_PASSWORD=${PG_SUPERUSER_PASSWORD:-pgstep-test-superuser}
PG_OWNER=postgres

pg_die() {
    echo "pg.sh: $*" >&2
    exit 1
}

[ -x "$PG_BINDIR/psql" ] || pg_die "no PostgreSQL client tools found under /usr/lib/postgresql"
[ -x "$PG_SERVER_BINDIR/initdb" ] ||
    pg_die "no PostgreSQL server binaries in $PG_SERVER_BINDIR (run tests/versions/install-servers.sh)"

# Runs a command as the server's owner: postgres when we are root, ourselves otherwise.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

# A directory the server's owner can write: mode 700, owned by that user.
pg_make_dir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-test.XXXXXX") || pg_die "mktemp failed"
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown "$PG_OWNER:" "$dir"
    fi
    echo "$dir"
}

# Prints a loopback TCP port nobody listens on, below the kernel's ephemeral range: a port in it
# may become the local end of some client's connection before the server binds it, and the
# server then fails to start with "Address already in use".
pg_free_port() {
    local port low=32768 _high
    read -r low _high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$low" -gt 11024 ] || pg_die "the ephemeral port range starts at $low, leaving no room for test servers"
    for _ in $(seq 1 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    pg_die "no free port found"
}

# pg_init DATADIR PORT: a new cluster configured for tests, not started.
pg_init() {
    local data=$1 port=$2 pwfile
    pwfile=$(mktemp) || pg_die "mktemp failed"
    printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$pwfile"
    chmod 644 "$pwfile"
    pg_as_owner "$PG_SERVER_BINDIR/initdb" -D "$data" -U postgres --auth=scram-sha-256 \
        --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 ||
        { rm -f "$pwfile"; cat "$data.initdb.log" >&2; pg_die "initdb failed in $data"; }
    rm -f "$pwfile"
    pg_as_owner tee -a "$data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 4
hot_standby = on
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
CONF
    pg_as_owner tee "$data/pg_hba.conf" >/dev/null <<HBA
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
HBA
}

# pg_throwaway [start]: a new cluster in a new directory on a free port, started if asked. Sets
# PG_WORK (the directory; its cluster is $PG_WORK/data) and PG_PORT. pg_discard removes it.
pg_throwaway() {
    PG_WORK=$(pg_make_dir)
    PG_PORT=$(pg_free_port)
    pg_as_owner mkdir -m 700 "$PG_WORK/data"
    pg_init "$PG_WORK/data" "$PG_PORT"
    if [ "${1:-}" = start ]; then
        pg_start "$PG_WORK/data"
    fi
}

# pg_discard DIR: stop the cluster made by pg_throwaway in DIR and remove DIR.
pg_discard() {
    pg_stop "$1/data"
    rm -rf "$1"
}

# pg_start DATADIR: start and wait until it accepts connections.
pg_start() {
    local data=$1
    pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null ||
        { cat "$data/server.log" >&2; pg_die "server in $data did not start"; }
}

# pg_stop DATADIR: fast shutdown; quiet if it is not running.
pg_stop() {
    local data=$1
    [ -f "$data/postmaster.pid" ] || return 0
    pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
}

# pg_standby PRIMARY_PORT DATADIR PORT: a streaming hot standby of the server on PRIMARY_PORT.
# Debian's pg_basebackup refuses servers of a newer major version; of those, a low-level base
# backup is taken instead.
pg_standby() {
    local primary_port=$1 data=$2 port=$3 server_major client_major
    server_major=$(pg_psql "$primary_port" postgres -c 'SHOW server_version_num')
    server_major=$((server_major / 10000))
    client_major=$("$PG_BINDIR/pg_basebackup" --version | sed -E 's/.* ([0-9]+)[.0-9]*.*$/\1/')
    if [ "$server_major" -le "$client_major" ]; then
        pg_as_owner env PGPASSWORD="$PG_SUPERUSER_PASSWORD" "$PG_BINDIR/pg_basebackup" \
            -h 127.0.0.1 -p "$primary_port" -U postgres -D "$data" -R -X stream -c fast \
            >"$data.basebackup.log" 2>&1 || { cat "$data.basebackup.log" >&2; pg_die "pg_basebackup failed"; }
    else
        echo "standby of PostgreSQL $server_major by a low-level base backup (pg_basebackup $client_major refuses newer servers)"
        pg_low_level_backup "$primary_port" "$data"
    fi
    pg_as_owner sed -i "s/^port = .*/port = $port/" "$data/postgresql.conf"
}

# pg_low_level_backup PRIMARY_PORT DATADIR: what pg_basebackup -R -X fetch does, by hand: in one
# session, pg_backup_start, a copy of the data directory, pg_backup_stop (its label becomes
# backup_label), then the WAL written meanwhile, standby.signal and primary_conninfo. The
# primary's data directory must be readable here (it is: these servers are local).
pg_low_level_backup() {
    local primary_port=$1 data=$2 src
    src=$(pg_psql "$primary_port" postgres -c 'SHOW data_directory')
    pg_as_owner mkdir -m 700 "$data"
    rm -f "$data.copied" "$data.label"
    # tar as the data's owner, so the copy is the owner's too; "file changed as we read it"
    # (exit 1) is what a base backup expects, and WAL replay repairs.
    pg_psql "$primary_port" postgres >"$data.basebackup.log" 2>&1 <<SQL ||
SELECT pg_backup_start('pgstep-test-standby', true);
\! $(pg_owner_command) tar -C '$src' -cf - --warning=no-file-changed --warning=no-file-removed --exclude=./postmaster.pid --exclude=./postmaster.opts --exclude=./server.log --exclude='./pg_wal/*' --exclude='./pg_replslot/*' . | $(pg_owner_command) tar -C '$data' -xf - && touch '$data.copied'
\o '$data.label'
SELECT labelfile FROM pg_backup_stop(false);
\o
SQL
        { cat "$data.basebackup.log" >&2; pg_die "low-level base backup failed"; }
    [ -f "$data.copied" ] && [ -s "$data.label" ] ||
        { cat "$data.basebackup.log" >&2; pg_die "low-level base backup: the copy of $src failed"; }
    pg_as_owner tee "$data/backup_label" >/dev/null <"$data.label"
    rm -f "$data.copied" "$data.label"
    # pg_control is rewritten in place at every checkpoint, so the copy above may have read half
    # of a write (the standby then refuses it as corrupt): copy it again until two reads agree.
    local tries
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        pg_as_owner cp "$src/global/pg_control" "$data/global/pg_control.a"
        pg_as_owner cp "$src/global/pg_control" "$data/global/pg_control.b"
        cmp -s "$data/global/pg_control.a" "$data/global/pg_control.b" && break
        [ "$tries" = 10 ] && pg_die "pg_control of $src kept changing while it was copied"
    done
    pg_as_owner mv "$data/global/pg_control.a" "$data/global/pg_control"
    pg_as_owner rm -f "$data/global/pg_control.b"
    { pg_as_owner tar -C "$src/pg_wal" -cf - --warning=no-file-changed --exclude=./archive_status \
        --exclude=./summaries . || [ $? = 1 ]; } |
        pg_as_owner tar -C "$data/pg_wal" -xf - || pg_die "could not copy the WAL of $src"
    pg_as_owner touch "$data/standby.signal"
    pg_as_owner tee -a "$data/postgresql.auto.conf" >/dev/null <<CONF
primary_conninfo = 'host=127.0.0.1 port=$primary_port user=postgres password=$PG_SUPERUSER_PASSWORD'
CONF
}

# The prefix that makes a shell command line run as the server's owner (see pg_as_owner).
pg_owner_command() {
    [ "$(id -u)" != 0 ] || echo "runuser -u $PG_OWNER --"
}

# pg_psql PORT DBNAME [psql args...]: psql as the superuser, unaligned, quiet, stop on error.
pg_psql() {
    local port=$1 db=$2
    shift 2
    PGPASSWORD="$PG_SUPERUSER_PASSWORD" "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# pg_slow_flush DATADIR: durable (fsync, synchronous_commit on) but with a WAL writer that flushes
# only every 10 s and nothing else writing WAL (wal_level = minimal, no autovacuum), so that an
# asynchronous commit stays unflushed long enough to be seen, or lost in a crash. After start,
# pg_prime_wal_writer PORT spends the WAL writer's first round, which flushes everything.
pg_slow_flush() {
    pg_as_owner tee -a "$1/postgresql.conf" >/dev/null <<CONF
fsync = on
synchronous_commit = on
wal_level = minimal
max_wal_senders = 0
autovacuum = off
wal_writer_delay = 10s
wal_writer_flush_after = 1GB
CONF
}

# Pages of asynchronous WAL wake the WAL writer for its first round.
pg_prime_wal_writer() {
    pg_psql "$1" postgres -c "CREATE TABLE wal_writer_primer (note text)" \
        -c "SET synchronous_commit = off" \
        -c "INSERT INTO wal_writer_primer SELECT repeat('x', 100) FROM generate_series(1, 1000)"
    sleep 0.5
}
