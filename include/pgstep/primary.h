/* Waiting until the primary is writable: connected, not in recovery, session not read-only. */
#ifndef PGSTEP_PRIMARY_H
#define PGSTEP_PRIMARY_H

#include <stdbool.h>

#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"

/* Retries until the deadline (wait.timeout), paced by what each attempt cost the server (a server
 * in recovery is asked again on the same connection), then returns an open connection to a
 * writable primary. The password file, if any, is read for this
 * call only and wiped before returning. At the deadline err holds the last reason with
 * PGSTEP_EXIT_NOT_READY. */
bool primary_wait(const pgstep_config *cfg, conn **out, pgstep_error *err);

#endif /* PGSTEP_PRIMARY_H */
