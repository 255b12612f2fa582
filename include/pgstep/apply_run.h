/* The state of one apply run and what its parts share: apply.c drives the run (the order of
 * the work, retries, lock waits), apply_batch.c sends runs of transactional steps as one batch,
 * apply_no_transaction.c runs a step marked no-transaction under a session lock, apply_doubt.c
 * settles what a lost connection left in doubt. Only these files include it. */
#ifndef PGSTEP_APPLY_RUN_H
#define PGSTEP_APPLY_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/apply.h"
#include "pgstep/batch.h"
#include "pgstep/stepset.h"

typedef enum apply_outcome {
    APPLY_DONE,      /* every step asked for ran, or was found applied */
    APPLY_LOCK_BUSY, /* another runner holds the lock: wait, then resume at ctx->failed */
    APPLY_RESUME,    /* another runner applied ctx->failed meanwhile: resume after it */
    APPLY_RETRY,     /* transient error at ctx->failed: try it again */
    APPLY_FAILED,    /* err says why */
} apply_outcome;

typedef struct apply_ctx {
    conn **c;
    const pgstep_config *cfg;
    const history_sql *sql;
    const plan_item **items; /* the work, in order */
    size_t nitems;
    bool need_bootstrap;
    size_t failed;
    size_t batch_end; /* items [pos, batch_end) went into the last batch */
    batch *batch;
    char lock_key[24];
    char statement_timeout[24];
    char lock_timeout[24];
    char run_id[33];
    char host[256];
    char bootstrap_lock[256]; /* DO block taking the lock before step_begin exists */
    apply_stats *stats;
    bool *mine;          /* mine[k]: this run saw item k commit */
    bool *by_other;      /* by_other[k]: another runner applied item k meanwhile */
    char own_detail[64]; /* PGS02's detail when the row found is this run's */
    /* The connection was lost while items [doubt_from, doubt_end) were sent: their commits may
     * not have been flushed, or not seen. */
    bool in_doubt;
    size_t doubt_from;
    size_t doubt_end;
} apply_ctx;

/* An outcome for an error already in err: interrupted and permanent errors stop, lost
 * connections and transient SQLSTATEs are retried. */
apply_outcome apply_classify(const pgstep_error *err);

/* Whether err says the run was interrupted by a signal. */
bool apply_interrupted(const pgstep_error *err);

/* Names the step file, and the line when one of its statements (stmt < nstatements) failed. */
void apply_locate(const step *s, size_t stmt, pgstep_error *err);

/* Parameters of step_begin. */
void apply_begin_params(const apply_ctx *ctx, const plan_item *item, char version[24],
                        const char *params[7]);

/* Parameters of history_sql.step_end; duration NULL lets the server measure it. */
void apply_end_params(const apply_ctx *ctx, const plan_item *item, const char *duration,
                      char version[24], const char *params[9]);

/* Item ctx->failed turned out to be applied already (PGS02, with detail): by this run, when the
 * row carries its run id (a commit whose result was lost with the connection), or by another
 * runner. Counted once, however often a retry finds it again. */
void apply_found_applied(apply_ctx *ctx, const step *s, const char *detail);

/* The info lines for a step applied, and for one whose commit was confirmed after
 * reconnecting. */
void apply_log_applied(const step *s, const char *duration);
void apply_log_confirmed(const step *s);

/* Sends items [from, to) as one batch bounded in size (with the history's creation first, if
 * needed) and reads the results; ctx->batch_end says how far the batch went. */
apply_outcome apply_segment(apply_ctx *ctx, size_t from, size_t to, pgstep_error *err);

/* A no-transaction step, item k: session lock, re-check, each statement on its own, then the
 * history row, then unlock. */
apply_outcome apply_no_transaction(apply_ctx *ctx, size_t k, pgstep_error *err);

/* The connection was lost while items [from, end) were sent: what they committed is in doubt
 * until the retry has reconnected. */
apply_outcome apply_lost(apply_ctx *ctx, size_t from, size_t end, pgstep_error *err);

/* On the new connection after a lost one: settles which of the run's commits survived and
 * moves ctx->failed to where the run goes on. Losing this connection too leaves that to the
 * next retry; any other failure ends the run. */
bool apply_settle_doubt(apply_ctx *ctx, pgstep_error *err);

#endif /* PGSTEP_APPLY_RUN_H */
