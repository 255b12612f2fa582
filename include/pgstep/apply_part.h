/* What the driver of an apply run (apply.c) hands its parts and what they hand back: a run of
 * transactional steps in one pipeline (apply_steps.c), a no-transaction step under the session
 * lock (apply_no_transaction.c), and the settling of what a lost connection left in doubt
 * (apply_doubt.c). The parts log each step as it commits; only the driver keeps the run's
 * counters and position. Only these files include it. */
#ifndef PGSTEP_APPLY_PART_H
#define PGSTEP_APPLY_PART_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"
#include "pgstep/history.h"
#include "pgstep/plan.h"
#include "pgstep/progress.h"

/* The run's fixed inputs. */
typedef struct apply_env {
    const pgstep_config *cfg;
    const history_sql *sql;
    const history_run *run;
    const plan_item *const *items; /* the work, in order */
    size_t nitems;
    progress *progress;
} apply_env;

typedef enum apply_outcome {
    APPLY_DONE,             /* every step asked for committed */
    APPLY_LOCK_BUSY,        /* another runner holds the lock: wait, then resume at position */
    APPLY_APPLIED_BY_RUN,   /* position was applied by this run: its reply was lost before */
    APPLY_APPLIED_BY_OTHER, /* another runner applied position meanwhile */
    APPLY_RETRY,            /* transient error at position: err says which */
    APPLY_FAILED,           /* err says why */
} apply_outcome;

typedef struct apply_result {
    apply_outcome outcome;
    size_t position; /* items [from, position) committed; the outcome is about item position */
    size_t sent_end; /* items [from, sent_end) reached the server: in doubt if the link broke */
} apply_result;

/* Items [from, to), all transactional, in one pipeline bounded in size (the result says how far
 * it went): each step in its own transaction, its statements sent one by one, its history row
 * recorded before its commit. */
apply_result apply_steps(const apply_env *env, conn *c, size_t from, size_t to, pgstep_error *err);

/* Item k, marked no-transaction: session lock, re-check, each statement on its own, the history
 * row, unlock. */
apply_result apply_no_transaction(const apply_env *env, conn *c, size_t k, pgstep_error *err);

/* On a new connection after a lost one, while items [from, end) were in doubt: reads the run's
 * rows and updates mine[] (recover.h); *resume is where the run goes on and *installed whether
 * the history objects exist. */
bool apply_doubt_settle(const apply_env *env, conn *c, size_t from, size_t end, bool *mine,
                        size_t *resume, bool *installed, pgstep_error *err);

/* How an error already in err decides the outcome: interrupted and permanent errors stop, lost
 * connections and transient SQLSTATEs are retried. */
apply_outcome apply_classify(const pgstep_error *err);

/* Whether err says the run was interrupted by a signal. */
bool apply_interrupted(const pgstep_error *err);

/* What step_begin's reply for step s means for the run; a failure fills err, located in s. */
apply_outcome apply_begin_outcome(const apply_env *env, const step *s, const conn_reply *reply,
                                  pgstep_error *err);

/* The line for a step that committed, with the duration recorded. */
void apply_log_applied(const step *s, long long duration_ms);

#endif /* PGSTEP_APPLY_PART_H */
