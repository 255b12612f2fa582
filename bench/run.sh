#!/usr/bin/env bash
# Side-by-side benchmark of pgstep against the tools users would otherwise pick, on throwaway
# servers, with the same 1,000 one-statement steps in each tool's own format:
# - the no-op path (everything applied): psql's bare "select 1", pgstep, dbmate, sql-migrate;
# - a fresh apply on an empty database: "psql -f" of the same statements, pgstep, dbmate,
#   sql-migrate;
# - peak RSS of each, from /usr/bin/time;
# - the no-op path over three databases (steps.databases) in one run, against three runs, one per
#   database;
# - wait latency: from "pg_ctl -w start" returning to "pgstep wait" (started against the stopped
#   server) exiting, and the same from "pg_ctl -w promote" of a hot standby; pg_ctl looks every
#   100 ms, so pgstep may notice first (a negative figure); plus pgstep's connection attempts a
#   second against a stopped server and against a standby in recovery.
# Usage: bench/run.sh [STEPS] [RUNS]; RUNS is also the number of starts and of promotions timed.
# The server is durable, as PostgreSQL is by default (fsync, synchronous_commit,
# full_page_writes on); PGSTEP_BENCH_DURABLE=0 turns that off, so that the figures show each
# tool's work and round trips rather than the disk.
# PGSTEP_BENCH_STATIC=build-static/pgstep adds the static binary (-DPGSTEP_STATIC=ON).
# dbmate (the npm package, which carries dbmate's static Go binary) and sql-migrate (Debian's
# package, unpacked, not installed) are fetched once into $PGSTEP_BENCH_CACHE (default
# ${XDG_CACHE_HOME:-/var/cache}/pgstep-bench, or ~/.cache/pgstep-bench when not root), never
# installed system-wide; PGSTEP_BENCH_OTHERS=0 leaves them out. PGSTEP_BENCH_BASELINE=BINARY
# adds another pgstep build, e.g. one of an earlier version, to the no-op, fresh-apply and
# wait-latency comparisons, side by side in the same run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps=${1:-1000}
runs=${2:-20}
others=${PGSTEP_BENCH_OTHERS:-1}
dbmate_version=${PGSTEP_BENCH_DBMATE_VERSION:-2.36.0}
if [ -n "${PGSTEP_BENCH_CACHE:-}" ]; then
    cache=$PGSTEP_BENCH_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/pgstep-bench
elif [ "$(id -u)" = 0 ]; then
    cache=/var/cache/pgstep-bench
else
    cache=$HOME/.cache/pgstep-bench
fi
cd "$root"

command -v hyperfine >/dev/null || { echo "bench: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: install GNU time (apt-get install time)" >&2; exit 1; }

# dbmate: npm's dbmate package pulls in the binary for this platform (@dbmate/linux-x64, ...);
# the benchmark runs that binary itself, without node's start-up in front of it.
install_dbmate() {
    local bin
    bin=$(find "$cache/npm/node_modules/@dbmate" -path '*/bin/dbmate' -type f 2>/dev/null | head -n 1)
    if [ -z "$bin" ] || ! "$bin" --version 2>/dev/null | grep -qF " $dbmate_version"; then
        command -v npm >/dev/null || { echo "bench: install npm (apt-get install npm), or set PGSTEP_BENCH_OTHERS=0" >&2; exit 1; }
        mkdir -p "$cache/npm"
        npm install --prefix "$cache/npm" --no-audit --no-fund --loglevel=error "dbmate@$dbmate_version" >&2
        bin=$(find "$cache/npm/node_modules/@dbmate" -path '*/bin/dbmate' -type f | head -n 1)
    fi
    [ -x "$bin" ] || { echo "bench: no dbmate binary under $cache/npm" >&2; exit 1; }
    echo "$bin"
}

# sql-migrate: Debian's package, downloaded and unpacked into the cache, not installed.
install_sql_migrate() {
    local bin=$cache/sql-migrate/usr/bin/sql-migrate deb
    if [ ! -x "$bin" ]; then
        mkdir -p "$cache/deb"
        (cd "$cache/deb" && apt-get download sql-migrate >&2 2>/dev/null) ||
            { echo "bench: apt-get download sql-migrate failed (apt-get update first?)" >&2; exit 1; }
        deb=$(ls -t "$cache"/deb/sql-migrate_*.deb | head -n 1)
        rm -rf "$cache/sql-migrate"
        dpkg-deb -x "$deb" "$cache/sql-migrate"
    fi
    # Its only library beyond libc; present on most systems.
    ldd "$bin" | grep -q 'not found' &&
        { echo "bench: sql-migrate needs libsqlite3 (apt-get install libsqlite3-0)" >&2; exit 1; }
    echo "$bin"
}

if [ "$others" = 1 ]; then
    dbmate=$(install_dbmate)
    sql_migrate=$(install_sql_migrate)
fi

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DPGSTEP_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target pgstep >/dev/null
pgstep=$root/build-bench/pgstep

# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh
cleanup_dirs=()
cleanup() {
    local dir
    for dir in "${cleanup_dirs[@]}"; do
        [ ! -d "$dir/standby" ] || pg_stop "$dir/standby"
        pg_discard "$dir"
    done
}
trap cleanup EXIT
pg_throwaway
work=$PG_WORK port=$PG_PORT
cleanup_dirs+=("$work")
# The test servers' configuration turns durability off; the benchmark turns it back on.
if [ "${PGSTEP_BENCH_DURABLE:-1}" = 1 ]; then
    pg_as_owner sed -i 's/^fsync = off/fsync = on/; s/^synchronous_commit = off/synchronous_commit = on/;
                       s/^full_page_writes = off/full_page_writes = on/' "$work/data/postgresql.conf"
fi
pg_start "$work/data"

umask 077
printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$work/password"
# psql reads the same password from a passfile.
printf '127.0.0.1:%s:*:postgres:%s\n' "$port" "$PG_SUPERUSER_PASSWORD" >"$work/pgpass"
# The same steps in each tool's format: pgstep's V<n>__ files, one script for psql -f, dbmate's
# "-- migrate:up" files and sql-migrate's "-- +migrate Up" files (both ordered by a numeric
# prefix, zero-padded so that any ordering agrees).
mkdir "$work/steps" "$work/dbmate" "$work/sql-migrate"
for i in $(seq 1 "$steps"); do
    stmt="CREATE TABLE t_$i (id int);"
    printf '%s\n' "$stmt" >"$work/steps/V${i}__t_$i.sql"
    printf '%s\n' "$stmt" >>"$work/all.sql"
    printf -- '-- migrate:up\n%s\n\n-- migrate:down\n' "$stmt" >"$work/dbmate/$(printf '%06d' "$i")_t_$i.sql"
    printf -- '-- +migrate Up\n%s\n' "$stmt" >"$work/sql-migrate/$(printf '%06d' "$i")_t_$i.sql"
done
cat >"$work/pgstep.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres"; password_file = "$work/password"; };
steps: { directory = "$work/steps"; };
CONF
# The Go tools get sslmode=disable: lib/pq, which sql-migrate uses, defaults to sslmode=require,
# and the throwaway server has no TLS.
dbmate_url() { echo "postgres://postgres:$PG_SUPERUSER_PASSWORD@127.0.0.1:$port/$1?sslmode=disable"; }
for db in noop fresh; do
    cat <<YAML
$db:
  dialect: postgres
  datasource: host=127.0.0.1 port=$port user=postgres password=$PG_SUPERUSER_PASSWORD dbname=${db}_sm sslmode=disable
  dir: $work/sql-migrate
YAML
done >"$work/sql-migrate.yml"
dbmate_cmd() { echo "$dbmate --url '$(dbmate_url "$1")' --migrations-dir $work/dbmate --no-dump-schema migrate"; }
sql_migrate_cmd() { echo "$sql_migrate up -config=$work/sql-migrate.yml -env=$1"; }

psql=$PG_BINDIR/psql
export PGPASSFILE=$work/pgpass
sql() { PGOPTIONS='-c client_min_messages=warning' "$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
fresh_db() { sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)" && sql "CREATE DATABASE $1"; }
# Each tool's no-op database holds its own 1,000 tables and its own history.
fresh_db noop
"$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=noop" --quiet apply

static=()
static_fresh=()
if [ -n "${PGSTEP_BENCH_STATIC:-}" ]; then
    static_bin=$(realpath "$PGSTEP_BENCH_STATIC")
    static=(-n "static pgstep apply (no-op)"
        "$static_bin -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=noop' --quiet apply")
    static_fresh=(-n "static pgstep apply (fresh)" --prepare "fresh_db fresh"
        "$static_bin -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=fresh' --quiet apply")
fi
baseline=()
baseline_fresh=()
if [ -n "${PGSTEP_BENCH_BASELINE:-}" ]; then
    baseline_bin=$(realpath "$PGSTEP_BENCH_BASELINE")
    baseline=(-n "baseline pgstep apply (no-op)"
        "$baseline_bin -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=noop' --quiet apply")
    baseline_fresh=(-n "baseline pgstep apply (fresh)" --prepare "fresh_db fresh"
        "$baseline_bin -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=fresh' --quiet apply")
fi
other=()
other_fresh=()
if [ "$others" = 1 ]; then
    fresh_db noop_dm
    eval "$(dbmate_cmd noop_dm)" >/dev/null
    fresh_db noop_sm
    eval "$(sql_migrate_cmd noop)" >/dev/null
    other=(-n "dbmate migrate (no-op)" "$(dbmate_cmd noop_dm)"
        -n "sql-migrate up (no-op)" "$(sql_migrate_cmd noop)")
    other_fresh=(-n "dbmate migrate (fresh)" --prepare "fresh_db fresh" "$(dbmate_cmd fresh)"
        -n "sql-migrate up (fresh)" --prepare "fresh_db fresh_sm" "$(sql_migrate_cmd fresh)")
fi
# medians JSON: hyperfine prints means; the README quotes medians, from its JSON export.
medians() {
    python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("  %-30s median %7.1f ms (min %.1f, max %.1f)"
          % (r["command"], r["median"] * 1000, r["min"] * 1000, r["max"] * 1000))' "$1"
}
echo "== no-op: $steps steps, all applied"
hyperfine -N -w 3 -r "$runs" --export-json "$work/noop.json" \
    -n "psql select 1" "$psql -X -q -h 127.0.0.1 -p $port -U postgres -d noop -c 'select 1'" \
    -n "pgstep apply (no-op)" "$pgstep -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=noop' --quiet apply" \
    "${static[@]}" "${baseline[@]}" "${other[@]}"
medians "$work/noop.json"

durability="durable server"
[ "${PGSTEP_BENCH_DURABLE:-1}" = 1 ] || durability="fsync off"
echo "== fresh apply: $steps steps on an empty database, $durability"
export -f sql fresh_db
export psql port
hyperfine --shell=bash -w 1 -r "$((runs / 2 > 3 ? runs / 2 : 3))" --export-json "$work/fresh.json" \
    -n "psql -f" --prepare "fresh_db fresh" \
    "$psql -X -q -h 127.0.0.1 -p $port -U postgres -d fresh -f $work/all.sql" \
    -n "pgstep apply (fresh)" --prepare "fresh_db fresh" \
    "$pgstep -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=fresh' --quiet apply" \
    "${static_fresh[@]}" "${baseline_fresh[@]}" "${other_fresh[@]}"
medians "$work/fresh.json"

# Three databases with the same steps, all applied: one run over all three (steps.databases),
# against three runs, one per database; both through bash, so that both pay its start once.
echo "== no-op: 3 databases of $steps steps each, all applied"
for db in multi_a multi_b multi_c; do
    fresh_db "$db"
    mkdir -p "$work/multi/$db"
    cp "$work"/steps/*.sql "$work/multi/$db/"
    "$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=$db" --quiet apply
done
cat >"$work/multi.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres dbname=postgres"; password_file = "$work/password"; };
steps: { directory = "$work/multi"; databases = ["multi_a", "multi_b", "multi_c"]; };
CONF
separate=""
for db in multi_a multi_b multi_c; do
    separate+="${separate:+ && }$pgstep -c $work/pgstep.conf -d $work/multi/$db --dsn 'host=127.0.0.1 port=$port user=postgres dbname=$db' --quiet apply"
done
hyperfine --shell=bash -w 3 -r "$runs" --export-json "$work/multi.json" \
    -n "pgstep, 3 databases in one run" "$pgstep -c $work/multi.conf --quiet apply" \
    -n "pgstep, 3 runs of one database" "$separate"
medians "$work/multi.json"

echo "== peak RSS"
# rss LABEL DB COMMAND...: a fresh database DB, then COMMAND under /usr/bin/time.
rss() {
    local label=$1 db=$2
    shift 2
    fresh_db "$db"
    /usr/bin/time -f "$label: %M KB max RSS, %e s" "$@" >/dev/null
}
rss "pgstep apply (fresh)" fresh \
    "$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
/usr/bin/time -f "pgstep apply (no-op): %M KB max RSS, %e s" \
    "$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
if [ -n "${PGSTEP_BENCH_STATIC:-}" ]; then
    rss "static pgstep apply (fresh)" fresh \
        "$static_bin" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
fi
rss "psql -f" fresh "$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d fresh -f "$work/all.sql"
if [ "$others" = 1 ]; then
    rss "dbmate migrate (fresh)" fresh \
        "$dbmate" --url "$(dbmate_url fresh)" --migrations-dir "$work/dbmate" --no-dump-schema migrate
    rss "sql-migrate up (fresh)" fresh_sm "$sql_migrate" up -config="$work/sql-migrate.yml" -env=fresh
fi

# Wait latency, on a server of its own that is stopped, started and given standbys to promote.
# Times come from bash's EPOCHREALTIME, read without forking.
pg_throwaway
lat=$PG_WORK lat_port=$PG_PORT
cleanup_dirs+=("$lat")
pg_start "$lat/data"
printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$lat/password"
# ms_since START END: milliseconds from one EPOCHREALTIME reading to another (may be negative).
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f\n", (b - a) * 1000 }'; }
# summary FILE: median, minimum and maximum of the numbers in FILE.
summary() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median %.0f ms (min %d, max %d, %d runs)\n", m, v[1], v[NR], NR }'
}
# attempts LOG: the connection attempts pgstep logged (one debug line each).
attempts() { grep -c 'debug: primary not ready:' "$1" || true; }
# waiter BIN PORT TAG [TIMEOUT]: "BIN wait" in the background against PORT, logging to
# $lat/TAG.log and writing its exit time and status to $lat/TAG.exit; its pid is in waiter_pid.
waiter() {
    cat >"$lat/$3.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$2 user=postgres dbname=postgres"; password_file = "$lat/password"; };
wait: { timeout = ${4:-60}; };
CONF
    rm -f "$lat/$3.exit"
    {
        rc=0
        "$1" -c "$lat/$3.conf" --verbose wait 2>"$lat/$3.log" || rc=$?
        echo "$EPOCHREALTIME $rc" >"$lat/$3.exit"
    } &
    waiter_pid=$!
}
# exited TAG: when the waiter TAG exited; it must have succeeded.
exited() {
    local when rc
    read -r when rc <"$lat/$1.exit"
    [ "$rc" = 0 ] || { tail -n 5 "$lat/$1.log" >&2; echo "bench: wait ($1) exited $rc" >&2; exit 1; }
    echo "$when"
}
# A pause of 1.5 to 2.5 s before the event: pgstep has been waiting a while, as a Job started
# before its server has, and the event falls anywhere in its cycle of attempts.
settle() { sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 1.5 + r / 32768 }')"; }

# wait_latency LABEL BIN
wait_latency() {
    local label=$1 bin=$2 i started promoted ended standby_port began
    : >"$lat/start.ms"
    : >"$lat/promote.ms"
    : >"$lat/recovery.rate"
    for i in $(seq 1 "$runs"); do
        pg_stop "$lat/data"
        waiter "$bin" "$lat_port" start
        settle
        pg_start "$lat/data"
        started=$EPOCHREALTIME
        wait "$waiter_pid"
        ended=$(exited start)
        ms_since "$started" "$ended" >>"$lat/start.ms"

        standby_port=$(pg_free_port)
        pg_standby "$lat_port" "$lat/standby" "$standby_port"
        pg_start "$lat/standby"
        began=$EPOCHREALTIME
        waiter "$bin" "$standby_port" promote
        settle
        pg_as_owner "$PG_SERVER_BINDIR/pg_ctl" -D "$lat/standby" -w promote >/dev/null
        promoted=$EPOCHREALTIME
        wait "$waiter_pid"
        ended=$(exited promote)
        ms_since "$promoted" "$ended" >>"$lat/promote.ms"
        awk -v n="$(attempts "$lat/promote.log")" -v ms="$(ms_since "$began" "$promoted")" \
            'BEGIN { printf "%.1f\n", n * 1000 / ms }' >>"$lat/recovery.rate"
        pg_stop "$lat/standby"
        rm -rf "$lat/standby" "$lat/standby.basebackup.log"
    done
    echo "$label, from pg_ctl -w start returning to wait exiting: $(summary "$lat/start.ms")"
    echo "$label, from pg_ctl -w promote returning to wait exiting: $(summary "$lat/promote.ms")"
    echo "$label, connection attempts a second against a standby in recovery: median" \
        "$(sort -n "$lat/recovery.rate" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"

    # A stopped server for 5 s: attempts a second, and the most within any one second.
    pg_stop "$lat/data"
    waiter "$bin" "$lat_port" down 5
    wait "$waiter_pid"
    grep 'debug: primary not ready:' "$lat/down.log" |
        sed -E 's/^[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' |
        awk '{ print ((($1 * 60) + $2) * 60 + $3) * 1000 + $4 }' | sort -n |
        awk -v label="$label" '{ t[NR] = $1 } END {
            best = 0; first = 1
            for (i = 1; i <= NR; i++) {
                while (t[i] - t[first] >= 1000) first++
                if (i - first + 1 > best) best = i - first + 1
            }
            printf "%s, connection attempts against a stopped server: %d in 5 s (%.1f a second), at most %d within one second\n",
                label, NR, NR / 5, best }'
    pg_start "$lat/data"
}

echo "== wait latency: $runs starts and $runs promotions"
wait_latency "pgstep" "$pgstep"
if [ -n "${PGSTEP_BENCH_BASELINE:-}" ]; then
    wait_latency "baseline pgstep" "$baseline_bin"
fi
