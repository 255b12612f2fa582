#!/usr/bin/env bash
# At the deadline wait exits 69 with the last reason; a silent endpoint is bounded by
# connect_timeout instead of eating the whole deadline.
. "$(dirname "$0")/../lib/testlib.sh"

port=$(pg_free_port)
cat >"$T_DIR/refused.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 2; };
CONF
start=$(t_now_ms)
t_run 69 -c "$T_DIR/refused.conf" wait
elapsed=$(($(t_now_ms) - start))
t_stderr_has "primary not ready after 2 s: .*Connection refused"
t_stderr_has "Exit code 69\."
[ "$elapsed" -ge 1900 ] && [ "$elapsed" -lt "$(t_ms 4000)" ] || t_fail "deadline of 2 s took ${elapsed} ms"

# A listener that accepts TCP connections and never answers.
# The kernel picks its port (no race with other tests) and it is written to a file.
python3 -c "
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64)
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))
__import__('os').rename(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(30)" "$T_DIR/silent.port" &
listener=$!
t_on_exit "kill $listener 2>/dev/null"
for _ in $(seq 1 100); do [ -s "$T_DIR/silent.port" ] && break; sleep 0.1; done
silent_port=$(cat "$T_DIR/silent.port")
t_wait_listening "$silent_port"
cat >"$T_DIR/silent.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$silent_port")"; connect_timeout = 1; };
wait: { timeout = 3; };
CONF
start=$(t_now_ms)
t_run 69 -c "$T_DIR/silent.conf" --verbose wait
elapsed=$(($(t_now_ms) - start))
attempts=$(grep -c "timed out after 1[0-9][0-9][0-9] ms" "$T_DIR/stderr" || true)
[ "$attempts" -ge 2 ] || t_fail "expected several 1 s attempts within the 3 s deadline, saw $attempts"
[ "$elapsed" -lt "$(t_ms 5000)" ] || t_fail "deadline of 3 s took ${elapsed} ms"
t_ok "refused: exit 69 after ${elapsed} ms; silent endpoint: $attempts bounded attempts"
