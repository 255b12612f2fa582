#!/usr/bin/env bash
# Through pgbouncer in transaction pooling mode, two pgstep runners started at once apply a set
# of 20 transactional steps: both exit 0 and every step runs and is recorded exactly once.
. "$(dirname "$0")/../lib/testlib.sh"

command -v pgbouncer >/dev/null || t_fail "pgbouncer is not installed (apt-get install pgbouncer)"
db=$(t_db main)
t_psql "$db" "CREATE TABLE ran (version int NOT NULL, backend int NOT NULL)" >/dev/null

# pgbouncer refuses to run as root and must read its files: a directory owned by postgres.
bdir=$(pg_make_dir)
bport=$(pg_free_port)
t_on_exit "rm -rf '$bdir'"
printf '"postgres" "%s"\n' "$PG_SUPERUSER_PASSWORD" >"$bdir/userlist.txt"
cat >"$bdir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PGSTEP_TEST_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $bdir/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 50
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
INI
pg_as_owner touch "$bdir/pgbouncer.log"
[ "$(id -u)" != 0 ] || chown -R "$PG_OWNER:" "$bdir"
chmod 600 "$bdir/userlist.txt"
pg_as_owner pgbouncer -d "$bdir/pgbouncer.ini" >"$T_DIR/pgbouncer.out" 2>&1 ||
    t_fail "pgbouncer did not start: $(cat "$T_DIR/pgbouncer.out" "$bdir/pgbouncer.log")"
for _ in $(seq 1 50); do
    [ -s "$bdir/pgbouncer.pid" ] && break
    sleep 0.1
done
[ -s "$bdir/pgbouncer.pid" ] || t_fail "pgbouncer wrote no pid file: $(cat "$bdir/pgbouncer.log")"
bpid=$(cat "$bdir/pgbouncer.pid")
t_on_exit "kill $bpid 2>/dev/null; for _ in \$(seq 1 50); do kill -0 $bpid 2>/dev/null || break; sleep 0.1; done"
ok=0
for _ in $(seq 1 50); do
    [ "$(pg_psql "$bport" "$db" -c 'SELECT 1' 2>/dev/null)" = 1 ] && { ok=1; break; }
    sleep 0.1
done
[ "$ok" = 1 ] || t_fail "no query through pgbouncer on port $bport: $(tail -n 20 "$bdir/pgbouncer.log")"

mkdir "$T_DIR/steps"
for v in $(seq 1 20); do
    printf 'INSERT INTO ran VALUES (%d, pg_backend_pid());\nSELECT pg_sleep(0.05);\n' "$v" \
        >"$T_DIR/steps/V${v}__step_$v.sql"
done
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn "$db" "$bport")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
lock: { timeout = 60; };
CONF

start=$(t_now_ms)
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/a.out" 2>"$T_DIR/a.err" &
pid_a=$!
"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/b.out" 2>"$T_DIR/b.err" &
pid_b=$!
t_on_exit "kill $pid_a $pid_b 2>/dev/null"
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
took=$(($(t_now_ms) - start))
cp "$T_DIR/a.err" "$T_DIR/stderr"
[ "$rc_a" = 0 ] || t_fail "runner a exited $rc_a (runner b: $rc_b)"
cp "$T_DIR/b.err" "$T_DIR/stderr"
[ "$rc_b" = 0 ] || t_fail "runner b exited $rc_b"
cat "$T_DIR/a.err" "$T_DIR/b.err" >"$T_DIR/stderr"

[ "$(t_psql "$db" "SELECT count(*), count(DISTINCT version), min(version), max(version)
                   FROM pgstep.history WHERE kind = 'V'")" = "20|20|1|20" ] ||
    t_fail "history is not one row for each of V1..V20: $(t_psql "$db" "SELECT version, count(*) FROM pgstep.history GROUP BY 1 ORDER BY 1")"
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 20 ] || t_fail "history has extra rows"
[ "$(t_psql "$db" "SELECT count(*), count(DISTINCT version) FROM ran")" = "20|20" ] ||
    t_fail "the steps did not run exactly once each: $(t_psql "$db" "SELECT version, count(*) FROM ran GROUP BY 1 HAVING count(*) <> 1")"
applied=0
for r in a b; do
    n=$(sed -nE 's/.*info: applied ([0-9]+) steps?, skipped .*/\1/p; s/.*info: nothing to apply: .*/0/p' "$T_DIR/$r.err" | tail -n 1)
    [ -n "$n" ] || t_fail "runner $r logged no summary"
    applied=$((applied + n))
done
[ "$applied" = 20 ] || t_fail "the runners report $applied applications in all, expected 20"
# Both ran at the same time: one of them met the other's lock or work.
contention=$(grep -Ec 'waiting for the advisory lock|applied by another runner meanwhile' \
    "$T_DIR/a.err" "$T_DIR/b.err" | awk -F: '{ s += $2 } END { print s }')
[ "$contention" -ge 1 ] || t_fail "the two runners never met: the test did not run them concurrently"
t_ok "two runners through pgbouncer (transaction pooling): 20 steps once each in ${took} ms," \
    "$contention contention events"
