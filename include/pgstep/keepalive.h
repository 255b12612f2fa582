/* How soon a silent connection is given up on. A failover or a partition that leaves an address
 * unreachable sends no reset: without this, pgstep would wait on the dead connection for the
 * system's two hours of TCP keepalive. */
#ifndef PGSTEP_KEEPALIVE_H
#define PGSTEP_KEEPALIVE_H

#include <libpq-fe.h>

/* The settings in effect on a connection; 0 leaves one to the system. */
typedef struct keepalive {
    int idle_s;          /* silence before the first probe */
    int interval_s;      /* between probes */
    int count;           /* unanswered probes that end the connection */
    int user_timeout_ms; /* how long sent data may stay unacknowledged */
} keepalive;

/* Sets pgstep's defaults on the TCP socket of the established connection pg for each of libpq's
 * keepalives_idle, keepalives_interval, keepalives_count and tcp_user_timeout that its options
 * (connection string, service file) leave unset; the keepalive ones not when keepalives=0.
 * Returns what is in effect, for the server's side of the session. */
keepalive keepalive_apply(PGconn *pg);

#endif /* PGSTEP_KEEPALIVE_H */
