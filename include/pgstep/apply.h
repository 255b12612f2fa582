/* Applying a plan: each step in its own transaction under a transaction-level advisory lock,
 * many steps in flight in one pipeline, each logged as it commits; steps marked no-transaction
 * statement by statement under a session-level lock. Exactly once even with several runners at
 * once. */
#ifndef PGSTEP_APPLY_H
#define PGSTEP_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"
#include "pgstep/history.h"
#include "pgstep/plan.h"

typedef struct apply_stats {
    size_t applied;          /* steps this run applied */
    size_t applied_by_other; /* pending steps another runner applied meanwhile */
} apply_stats;

/* Runs every pending and rerun item of p. *c may be replaced when the connection is lost and
 * re-established. installed tells whether the history table and functions exist already. Errors:
 * PGSTEP_EXIT_STEP_FAILED for a step's SQL error (file, line and SQLSTATE in err),
 * PGSTEP_EXIT_TEMPFAIL when the lock was not obtained within lock.timeout or transient errors
 * outlasted apply.retries, 130/143 when interrupted. */
bool apply_plan(conn **c, const pgstep_config *cfg, const history_sql *sql, const plan *p,
                bool installed, apply_stats *stats, pgstep_error *err);

#endif /* PGSTEP_APPLY_H */
