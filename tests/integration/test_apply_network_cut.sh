#!/usr/bin/env bash
# The network goes silent under a running no-transaction step: every packet of pgstep's
# connection is dropped both ways (nftables), as when a failover or a partition leaves an address
# unreachable, while new connections get through. pgstep notices within its keepalive time
# instead of the system's two hours, reconnects, and waits for the session lock its old backend
# still holds. That backend, given the same keepalives while it holds the lock, ends about 30 s
# after the result it sent went unacknowledged, which releases the lock instead of after 15
# minutes of retransmissions; the step runs again and every step is recorded exactly once.
. "$(dirname "$0")/../lib/testlib.sh"

# The server's side of pgstep's session while a no-transaction step holds the session lock:
# pgstep's keepalives, or the connection's own from a service file, where the server's are
# looser; the server's where they are stricter (a database setting); restored after the unlock.
mkdir "$T_DIR/show"
for when in during after; do
    {
        [ "$when" = during ] && echo '-- pgstep: no-transaction'
        echo "DO \$\$ BEGIN RAISE NOTICE '$when % % % %', current_setting('tcp_keepalives_idle'),"
        echo "  current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'),"
        echo "  current_setting('tcp_user_timeout'); END \$\$;"
    } >"$T_DIR/show/V$([ "$when" = during ] && echo 1 || echo 2)__$when.sql"
done
# shown DB: what a TCP session of psql's on DB has, as the steps print it.
shown() {
    t_psql "$1" "SELECT concat_ws(' ', current_setting('tcp_keepalives_idle'),
                   current_setting('tcp_keepalives_interval'),
                   current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout'))"
}
plain=$(t_db plain)
t_conf "$T_DIR/show.conf" "$plain"
t_run 0 -c "$T_DIR/show.conf" -d "$T_DIR/show" apply
t_stderr_has 'during 10 5 3 30000'
t_stderr_has "after $(shown "$plain")\$"
stricter=$(t_db stricter)
t_psql postgres "ALTER DATABASE \"$stricter\" SET tcp_keepalives_idle = 5" >/dev/null
t_conf "$T_DIR/show.conf" "$stricter"
t_run 0 -c "$T_DIR/show.conf" -d "$T_DIR/show" apply
t_stderr_has 'during 5 5 3 30000'
t_stderr_has "after $(shown "$stricter")\$"
[[ $(shown "$stricter") == "5 "* ]] || t_fail "the database setting did not reach psql's session"
service=$(t_db service)
printf '[pgstep_test]\nkeepalives_idle=20\ntcp_user_timeout=60000\n' >"$T_DIR/pg_service.conf"
cat >"$T_DIR/show.conf" <<CONF
connection: { conninfo = "service=pgstep_test $(t_dsn "$service")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
CONF
PGSERVICEFILE=$T_DIR/pg_service.conf t_run 0 -c "$T_DIR/show.conf" -d "$T_DIR/show" apply
t_stderr_has 'during 20 5 3 60000'

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
                                WHERE datname = current_database() AND application_name = 'pgstep'
                                  AND query = '/* pgstep V2__sleep.sql:2 */ SELECT pg_sleep(2)'")
    [ -n "$client_port" ] && break
    sleep 0.02
done
[ -n "$client_port" ] || t_fail "pgstep never ran the no-transaction step"

table=pgstep_cut_$$
nft add table inet "$table" || t_fail "nft could not add a table (needs root and nftables)"
t_on_exit "nft delete table inet $table"
nft add chain inet "$table" out '{ type filter hook output priority 0; }'
# Only this connection's packets, so that a rule left behind harms nothing else.
nft add rule inet "$table" out tcp sport "$client_port" tcp dport "$PGSTEP_TEST_PORT" drop
nft add rule inet "$table" out tcp sport "$PGSTEP_TEST_PORT" tcp dport "$client_port" drop
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
