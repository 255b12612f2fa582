/* How soon a silent connection is given up on. A failover or a partition that leaves an address
 * unreachable sends no reset: without this, pgstep would wait on the dead connection for the
 * system's two hours of TCP keepalive. */
#ifndef PGSTEP_KEEPALIVE_H
#define PGSTEP_KEEPALIVE_H

#include <stdbool.h>

#include <libpq-fe.h>

/* libpq's keepalives_idle, keepalives_interval, keepalives_count and tcp_user_timeout, in
 * this order. */
#define KEEPALIVE_SETTINGS 4

/* The values in effect on a connection, in seconds, probes and milliseconds; 0 leaves one to
 * the system. */
typedef struct keepalive {
    int value[KEEPALIVE_SETTINGS];
} keepalive;

/* Whether the connection uses a service: service= in its parsed connection string (options,
 * NULL when there is none) or PGSERVICE. libpq reads a service file only for options still
 * unset, so pgstep's keywords would override it: keepalive_apply sets the defaults on the
 * socket instead. */
bool keepalive_uses_service(const PQconninfoOption *options);

/* Writes pgstep's defaults as libpq keywords and values, to go before the connection string so
 * that it overrides them; returns KEEPALIVE_SETTINGS. Not for a connection that uses a
 * service. */
int keepalive_keywords(const char *keywords[KEEPALIVE_SETTINGS],
                       const char *values[KEEPALIVE_SETTINGS]);

/* For the established connection pg: sets pgstep's default on the TCP socket for each setting
 * its options leave unset (the keepalive ones not when keepalives=0), and returns the values in
 * effect, for the server's side of the session. Nothing for a Unix-domain socket. */
keepalive keepalive_apply(PGconn *pg);

#endif /* PGSTEP_KEEPALIVE_H */
