/* The databases a run applies, as the cluster's catalog tells: right after a restore, CNPG
 * creates the application database only after promotion, so a run may have to wait for it. */
#ifndef PGSTEP_DATABASE_H
#define PGSTEP_DATABASE_H

#include <stddef.h>
#include <stdint.h>

#include "pgstep/conn.h"
#include "pgstep/error.h"

/* Waits, over c, until every database in names exists, until deadline_ms on the monotonic clock
 * (0: one look). A database still missing then is PGSTEP_EXIT_NOT_READY; one that does not allow
 * connections (template0, datallowconn = false) is PGSTEP_EXIT_CONFIG at once; each named. */
bool database_wait(conn *c, char *const *names, size_t n, int64_t deadline_ms, pgstep_error *err);

#endif /* PGSTEP_DATABASE_H */
