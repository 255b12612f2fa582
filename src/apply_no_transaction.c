/* A step marked no-transaction: its statements run one at a time, outside a transaction block,
 * while a session-level advisory lock (polled, never waited for inside a transaction) keeps
 * other runners out; the history row is recorded after the last statement succeeds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgstep/apply_run.h"
#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/log.h"

static const char apply_session_lock_sql[] = "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)";
static const char apply_session_unlock_sql[] = "SELECT pg_catalog.pg_advisory_unlock($1::bigint)";

/* Runs one statement on its own; on error fills err and says what to do. */
static apply_outcome apply_exec(apply_ctx *ctx, const step *s, size_t stmt, const char *sql,
                                int nparams, const char *const *params, PGresult **out,
                                pgstep_error *err)
{
    *out = conn_query(*ctx->c, sql, nparams, params, err);
    if (*out)
        return APPLY_DONE;
    if (err->exit_code == PGSTEP_EXIT_STEP_FAILED)
        apply_locate(s, stmt, err);
    return apply_classify(err);
}

static apply_outcome apply_no_transaction_body(apply_ctx *ctx, const plan_item *item,
                                               pgstep_error *err)
{
    const step *s = item->step;
    const char *begin[7];
    const char *end[9];
    char version[24];
    char duration[24];
    int64_t start = backoff_now_ms();
    apply_outcome outcome;
    PGresult *res;

    /* The same re-check as a transactional step's, on its own: the session lock this step
     * holds makes step_begin's transaction lock a formality, and what it sets for the
     * transaction ends with it, so the statements below run without pgstep's timeouts. */
    apply_begin_params(ctx, item, version, begin);
    outcome = apply_exec(ctx, s, s->nstatements, ctx->sql->step_begin, 7, begin, &res, err);
    PQclear(res);
    if (outcome != APPLY_DONE && strcmp(err->sqlstate, HISTORY_SQLSTATE_APPLIED) == 0) {
        apply_found_applied(ctx, s, err->detail);
        error_clear(err);
        return APPLY_RESUME;
    }
    if (outcome != APPLY_DONE)
        return outcome;
    for (size_t i = 0; i < s->nstatements && outcome == APPLY_DONE; i++) {
        char *text = strndup(s->sql + s->statements[i].offset, s->statements[i].length);

        if (!text)
            return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory"), APPLY_FAILED;
        outcome = apply_exec(ctx, s, i, text, 0, NULL, &res, err);
        free(text);
        PQclear(res);
    }
    if (outcome != APPLY_DONE)
        return outcome;
    snprintf(duration, sizeof(duration), "%lld", (long long)(backoff_now_ms() - start));
    apply_end_params(ctx, item, duration, version, end);
    outcome = apply_exec(ctx, s, s->nstatements, ctx->sql->step_end, 9, end, &res, err);
    PQclear(res);
    if (outcome == APPLY_DONE) {
        apply_log_applied(s, duration);
        ctx->stats->applied++;
        ctx->mine[ctx->failed] = true;
    }
    return outcome;
}

/* Releases the session lock. Through a transaction-pooling PgBouncer the unlock may reach
 * another server session than the lock did, which leaves the lock held: say so loudly. */
static void apply_session_unlock(apply_ctx *ctx, const step *s)
{
    const char *key[] = {ctx->lock_key};
    pgstep_error unlock_err;
    PGresult *res;

    error_clear(&unlock_err);
    res = conn_query(*ctx->c, apply_session_unlock_sql, 1, key, &unlock_err);
    if (!res || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        log_field fields[] = {LOG_STR("step", s->file_name),
                              LOG_STR("hint", "Connect directly to the primary, not through a "
                                              "transaction-pooling PgBouncer, to apply "
                                              "no-transaction steps.")};

        log_event(LOG_WARN, fields, 2,
                  "the session advisory lock taken for %s was not released by this session",
                  s->file_name);
    }
    PQclear(res);
}

apply_outcome apply_no_transaction(apply_ctx *ctx, size_t k, pgstep_error *err)
{
    const plan_item *item = ctx->items[k];
    const char *key[] = {ctx->lock_key};
    apply_outcome outcome;
    PGresult *res;
    bool locked;

    ctx->failed = k;
    outcome = apply_exec(ctx, item->step, item->step->nstatements, apply_session_lock_sql, 1, key,
                         &res, err);
    if (outcome != APPLY_DONE)
        return outcome;
    locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!locked)
        return APPLY_LOCK_BUSY;
    outcome = apply_no_transaction_body(ctx, item, err);
    /* After a signal the connection is closed, which releases the lock anyway. */
    if (!conn_is_broken(*ctx->c) && !apply_interrupted(err))
        apply_session_unlock(ctx, item->step);
    return outcome;
}
