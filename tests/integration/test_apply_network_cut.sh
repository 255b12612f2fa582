#!/usr/bin/env bash
# The network goes silent under a running no-transaction step: every packet of pgstep's
# connection is dropped both ways (nftables), as when a failover or a partition leaves an address
# unreachable, while new connections get through. pgstep notices within its keepalive time
# instead of the system's two hours, reconnects, and waits for the session lock its old backend
# still holds. That backend, given the same keepalives, ends about 30 s after the result it sent
# went unacknowledged, which releases the lock instead of after 15 minutes of retransmissions;
# the step runs again and every step is recorded exactly once.
. "$(dirname "$0")/../lib/testlib.sh"

# The server's side of pgstep's session: pgstep's values where the server's are looser, the
# server's where they are stricter (here, a database setting).
shown=$(t_db shown)
t_psql postgres "ALTER DATABASE \"$shown\" SET tcp_keepalives_idle = 5" >/dev/null
mkdir "$T_DIR/show"
cat >"$T_DIR/show/V1__show.sql" <<'SQL'
DO $$ BEGIN RAISE NOTICE 'keepalives % % % %', current_setting('tcp_keepalives_idle'),
  current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'),
  current_setting('tcp_user_timeout'); END $$;
SQL
t_conf "$T_DIR/show.conf" "$shown"
t_run 0 -c "$T_DIR/show.conf" -d "$T_DIR/show" apply
t_stderr_has 'keepalives 5 5 3 30000'

db=$(t_db cut)
mkdir "$T_DIR/steps"
printf 'CREATE TABLE t_1 (id int);\n' >"$T_DIR/steps/V1__t_1.sql"
printf -- '-- pgstep: no-transaction\nSELECT pg_sleep(2);\n' >"$T_DIR/steps/V2__sleep.sql"
printf 'CREATE TABLE t_3 (id int);\n' >"$T_DIR/steps/V3__t_3.sql"
t_conf "$T_DIR/pgstep.conf" "$db" 'lock: { timeout = 120; }; wait: { timeout = 60; };'

"$PGSTEP_BIN" -c "$T_DIR/pgstep.conf" -d "$T_DIR/steps" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
t_on_exit "kill $runner 2>/dev/null"
client_port=''
for _ in $(seq 1 400); do
    client_port=$(t_psql "$db" "SELECT client_port FROM pg_stat_activity
                                WHERE application_name = 'pgstep' AND query = 'SELECT pg_sleep(2)'")
    [ -n "$client_port" ] && break
    sleep 0.02
done
[ -n "$client_port" ] || t_fail "pgstep never ran the no-transaction step"

table=pgstep_cut_$$
nft add table inet "$table" || t_fail "nft could not add a table (needs root and nftables)"
t_on_exit "nft delete table inet $table"
nft add chain inet "$table" out '{ type filter hook output priority 0; }'
nft add rule inet "$table" out tcp sport "$client_port" drop
nft add rule inet "$table" out tcp dport "$client_port" drop
cut_at=$(t_now_ms)

rc=0
wait "$runner" || rc=$?
took_ms=$(($(t_now_ms) - cut_at))
[ "$rc" = 0 ] || { cat "$T_DIR/stderr" >&2; t_fail "apply exited $rc after the cut, expected 0"; }
t_stderr_has 'retrying V2__sleep.sql after a transient error'
t_stderr_has 'waiting for the advisory lock'
t_stderr_has 'applied V3__t_3.sql'
# Keepalives on both sides: about 30 s for pgstep to notice, the old backend gone soon after.
[ "$took_ms" -lt 75000 ] || t_fail "the run took ${took_ms} ms after the cut"
history=$(t_psql "$db" "SELECT string_agg(version::text, ',' ORDER BY id) FROM pgstep.history")
[ "$history" = 1,2,3 ] || t_fail "history after the cut: $history"
t_ok "silent connection noticed, old session lock released, run finished ${took_ms} ms after the cut"
