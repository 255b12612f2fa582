#!/usr/bin/env bash
# While waiting, pgstep never tries to connect more than 10 times a second: not against a port
# nobody listens on (from the debug event of each attempt, which says when it started), and not
# against a server that answers every connection with "the database system is starting up"
# (57P03; counted by that server, which also sees the ping libpq needs to tell why a connection
# failed).
. "$(dirname "$0")/../lib/testlib.sh"

# most_in_a_second FILE: the largest number of the millisecond timestamps in FILE (one a line)
# that fall within one second of each other.
most_in_a_second() {
    sort -n "$1" | awk '{ t[NR] = $1 } END {
        best = 0; first = 1
        for (i = 1; i <= NR; i++) {
            while (t[i] - t[first] >= 1000) first++
            if (i - first + 1 > best) best = i - first + 1
        }
        print best }'
}

# 1. Nothing listens: one debug line per attempt, with the time it started.
port=$(pg_free_port)
cat >"$T_DIR/down.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 4; };
CONF
t_run 69 -c "$T_DIR/down.conf" --verbose --log-format json wait
grep '"message":"primary not ready: .*Connection refused' "$T_DIR/stderr" |
    sed -nE 's/.*"attempt":[0-9]+,"started_ms":([0-9]+).*/\1/p' >"$T_DIR/down.times"
attempts=$(wc -l <"$T_DIR/down.times")
down_peak=$(most_in_a_second "$T_DIR/down.times")
[ "$attempts" -ge 8 ] || t_fail "only $attempts attempts in 4 s against a port nobody listens on"
[ "$down_peak" -le 10 ] || t_fail "$down_peak connection attempts within one second against a down server"

# 2. A server that is always starting up: it records the time of every connection it accepts.
python3 -c "
import os, socket, struct, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64)
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
def read(c, n):
    b = b''
    while len(b) < n:
        more = c.recv(n - len(b))
        if not more:
            raise EOFError
        b += more
    return b
fields = b'SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0'
while True:
    c, _ = s.accept()
    with open(sys.argv[2], 'a') as log:
        log.write('%d\n' % (time.clock_gettime(time.CLOCK_MONOTONIC) * 1000))
    try:
        while True:
            size, = struct.unpack('!i', read(c, 4))
            body = read(c, size - 4)
            if struct.unpack('!i', body[:4])[0] in (80877103, 80877104):  # SSL, GSS encryption
                c.sendall(b'N')
                continue
            c.sendall(b'E' + struct.pack('!i', 4 + len(fields)) + fields)
            break
    except (EOFError, OSError):
        pass
    c.close()" "$T_DIR/starting.port" "$T_DIR/starting.times" </dev/null >/dev/null 2>&1 &
t_on_exit "kill $! 2>/dev/null"
for _ in $(seq 1 100); do [ -s "$T_DIR/starting.port" ] && break; sleep 0.1; done
starting_port=$(cat "$T_DIR/starting.port")
t_wait_listening "$starting_port"
: >"$T_DIR/starting.times" # forget the probe that found it listening
cat >"$T_DIR/starting.conf" <<CONF
connection: { conninfo = "$(t_dsn postgres "$starting_port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 4; };
CONF
t_run 69 -c "$T_DIR/starting.conf" --verbose wait
t_stderr_has 'primary not ready after 4 s: .*starting up'
connections=$(wc -l <"$T_DIR/starting.times")
starting_peak=$(most_in_a_second "$T_DIR/starting.times")
[ "$connections" -ge 8 ] || t_fail "only $connections connections in 4 s to a server starting up"
[ "$connections" -le 40 ] || t_fail "$connections connections in 4 s to a server starting up"
# The listener's clock is when it accepted: on a busy machine it may accept a connection late,
# and so count it in the next second; as pgstep waits for each answer, only ever one.
[ "$starting_peak" -le 11 ] || t_fail "$starting_peak connections within one second to a server starting up"
t_ok "down: $attempts attempts in 4 s, at most $down_peak in a second;" \
    "starting up: $connections connections, at most $starting_peak in a second"
