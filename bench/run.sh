#!/usr/bin/env bash
# Side-by-side benchmark of pgstep against the psql binary on one throwaway server, with the
# same 1,000 one-statement steps: the no-op path (everything applied) against psql's bare
# "select 1", and a fresh apply against "psql -f" of the same statements. Peak RSS from
# /usr/bin/time. Usage: bench/run.sh [STEPS] [RUNS]. The server is durable, as PostgreSQL is by
# default (fsync, synchronous_commit, full_page_writes on); PGSTEP_BENCH_DURABLE=0 turns that off,
# so that the figures show each tool's work and round trips rather than the disk.
# PGSTEP_BENCH_STATIC=build-static/pgstep adds the static binary (-DPGSTEP_STATIC=ON).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps=${1:-1000}
runs=${2:-20}
cd "$root"

command -v hyperfine >/dev/null || { echo "bench: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DPGSTEP_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target pgstep >/dev/null
pgstep=$root/build-bench/pgstep

# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh
pg_throwaway
work=$PG_WORK port=$PG_PORT
trap 'pg_discard "$work"' EXIT
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
mkdir "$work/steps"
for i in $(seq 1 "$steps"); do
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >"$work/steps/V${i}__t_$i.sql"
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >>"$work/all.sql"
done
cat >"$work/pgstep.conf" <<CONF
connection: { conninfo = "host=127.0.0.1 port=$port user=postgres"; password_file = "$work/password"; };
steps: { directory = "$work/steps"; };
CONF
psql=$PG_BINDIR/psql
export PGPASSFILE=$work/pgpass
sql() { "$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
fresh_db() { sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)" && sql "CREATE DATABASE $1"; }
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
echo "== no-op: $steps steps, all applied"
hyperfine -N -w 3 -r "$runs" \
    -n "psql select 1" "$psql -X -q -h 127.0.0.1 -p $port -U postgres -d noop -c 'select 1'" \
    -n "pgstep apply (no-op)" "$pgstep -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=noop' --quiet apply" \
    "${static[@]}"

durability="durable server"
[ "${PGSTEP_BENCH_DURABLE:-1}" = 1 ] || durability="fsync off"
echo "== fresh apply: $steps steps on an empty database, $durability"
export -f sql fresh_db
export psql port
hyperfine --shell=bash -w 1 -r "$((runs / 2 > 3 ? runs / 2 : 3))" \
    -n "psql -f" --prepare "fresh_db fresh" \
    "$psql -X -q -h 127.0.0.1 -p $port -U postgres -d fresh -f $work/all.sql" \
    -n "pgstep apply (fresh)" --prepare "fresh_db fresh" \
    "$pgstep -c $work/pgstep.conf --dsn 'host=127.0.0.1 port=$port user=postgres dbname=fresh' --quiet apply" \
    "${static_fresh[@]}"

echo "== peak RSS"
fresh_db fresh
/usr/bin/time -f "pgstep apply (fresh): %M KB max RSS, %e s" \
    "$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
/usr/bin/time -f "pgstep apply (no-op): %M KB max RSS, %e s" \
    "$pgstep" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
if [ -n "${PGSTEP_BENCH_STATIC:-}" ]; then
    fresh_db fresh
    /usr/bin/time -f "static pgstep apply (fresh): %M KB max RSS, %e s" \
        "$PGSTEP_BENCH_STATIC" -c "$work/pgstep.conf" --dsn "host=127.0.0.1 port=$port user=postgres dbname=fresh" --quiet apply
fi
fresh_db fresh
/usr/bin/time -f "psql -f: %M KB max RSS, %e s" \
    "$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d fresh -f "$work/all.sql"
