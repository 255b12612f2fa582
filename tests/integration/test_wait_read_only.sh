#!/usr/bin/env bash
# wait keeps waiting while the session is read-only (here a database's
# default_transaction_read_only, which only a new session sees change), and succeeds promptly
# once that is reset: the connection kept open to re-ask is replaced within wait.max_interval_ms.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db ro)
t_psql postgres "ALTER DATABASE \"$db\" SET default_transaction_read_only = on" >/dev/null
t_conf "$T_DIR/pgstep.conf" "$db" 'wait: { timeout = 60; };'
t_wait_in_background "$T_DIR/pgstep.conf"
t_still_waiting "session is read-only"
t_psql postgres "ALTER DATABASE \"$db\" RESET default_transaction_read_only" >/dev/null
t_ready_within 2000
attempts=$(grep -c 'debug: primary not ready: session is read-only' "$T_DIR/stderr" || true)
t_ok "read-only session: $attempts connections, writable noticed ${T_NOTICED_MS} ms after the reset"
