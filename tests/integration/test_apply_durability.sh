#!/usr/bin/env bash
# Step transactions commit without waiting for the WAL flush, but what apply committed is flushed
# before it exits: by the batch's last commit when the batch succeeds, and by a flush of its own
# when a step fails half-way through a batch. Checked on a durable server (fsync and
# synchronous_commit on) whose WAL writer flushes only every 10 s, so that an asynchronous
# commit stays unflushed long enough to be seen: the WAL flushed up to where it was inserted.
. "$(dirname "$0")/../lib/testlib.sh"

t_slow_flush_server
port=$T_SERVER_PORT

sql() { pg_psql "$port" postgres -c "$1"; }
flushed() { sql "SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()"; }
async_commit() { sql "SET synchronous_commit = off; INSERT INTO wal_writer_primer VALUES ('$1')" >/dev/null; }

async_commit control
[ "$(flushed)" = f ] || t_fail "an asynchronous commit was flushed at once: the check below proves nothing"

mkdir "$T_DIR/steps"
for i in $(seq 1 30); do
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >"$T_DIR/steps/V${i}__t_$i.sql"
done
cat >"$T_DIR/pgstep.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
CONF
t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
t_stderr_has 'applied 30 steps'
[ "$(flushed)" = t ] || t_fail "after a successful apply the WAL is not flushed"

# A failure in the middle of a batch: the four steps before it are committed, and flushed.
async_commit control2
[ "$(flushed)" = f ] || t_fail "the second asynchronous commit was flushed at once"
for i in $(seq 31 34); do
    printf 'CREATE TABLE t_%d (id int);\n' "$i" >"$T_DIR/steps/V${i}__t_$i.sql"
done
printf 'SELECT 1 / 0;\n' >"$T_DIR/steps/V35__fails.sql"
t_run 1 -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply
t_stderr_has 'V35__fails.sql'
t_stderr_lacks 'could not flush'
[ "$(sql 'SELECT count(*) FROM pgstep.history')" = 34 ] || t_fail "the four steps before the failure are not recorded"
[ "$(flushed)" = t ] || t_fail "after a failed apply the WAL of the steps it committed is not flushed"
t_ok "commits are flushed once per batch, and before apply exits"
