/* Runs of consecutive transactional steps, sent as one batch (a single simple Query message):
 * for each step, BEGIN; step_begin (take the transaction lock or fail, re-check the history or
 * fail); the step's statements; step_end (the history row); COMMIT. The first failure makes the
 * server skip everything after it, so later steps are never attempted, and no transaction is
 * open while pgstep waits for the lock.
 *
 * Durability: step_begin lets its transaction commit without waiting for the WAL flush (and for
 * synchronous standbys). The last transaction of a batch restores the configured setting before
 * it commits, and a batch cut short is followed by a flush of its own, so everything a batch
 * committed is as durable as that setting says before pgstep goes on or exits; one flush per
 * batch instead of one per step. A server crash can still take back such commits while a batch
 * runs: see apply_doubt.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgstep/apply_run.h"
#include "pgstep/batch.h"
#include "pgstep/exitcode.h"
#include "pgstep/lexer.h"
#include "pgstep/log.h"

/* A batch closes after the step that takes it past this size: one message, bounded memory, and
 * a bounded statement in the server log should it fail. */
#define APPLY_BATCH_MAX_BYTES (1024 * 1024)
/* Labels of pgstep's own statements in a batch. */
#define APPLY_OWN SIZE_MAX

/* The re-check in step_begin must see what other runners committed before it took the lock:
 * under REPEATABLE READ (a database's default may say so) its snapshot would be older. */
static const char apply_begin_sql[] = "BEGIN ISOLATION LEVEL READ COMMITTED";
/* Makes the batch's last commit wait for the WAL flush again; WAL is written in order, so that
 * covers every commit of the batch before it. */
static const char apply_durable_sql[] = "SET LOCAL synchronous_commit TO DEFAULT";
/* Flushes the WAL: a commit waits for the flush only if its transaction wrote WAL, and a
 * transactional message is the smallest such write any role may make. The setting is restored
 * here too: through a transaction-pooling PgBouncer this may be another server session. */
static const char apply_flush_sql[] =
    "BEGIN; SET LOCAL synchronous_commit TO DEFAULT;"
    " SELECT pg_catalog.pg_logical_emit_message(true, 'pgstep', 'flush'); COMMIT";

/* The SQLSTATE of an error result, or "". */
static const char *apply_sqlstate(const PGresult *res)
{
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return sqlstate ? sqlstate : "";
}

/* A statement of a batch failed: a step's own (stmt < nstatements) or pgstep's around it (s is
 * NULL for the history's creation). The server's position, counted in the whole batch, names
 * the statement best: a syntax error rejects the whole batch before anything runs, so it comes
 * back as the first result whatever step it is in. */
static apply_outcome apply_step_error(apply_ctx *ctx, const step *s, const PGresult *res,
                                      size_t stmt, pgstep_error *err)
{
    size_t owner;
    size_t at;
    int relative;

    conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
    if (batch_locate(ctx->batch, err->position, &owner, &at, &relative) && owner != APPLY_OWN &&
        at != APPLY_OWN) {
        s = ctx->items[owner]->step;
        stmt = at;
        err->position = relative;
    }
    if (s)
        apply_locate(s, stmt, err);
    return apply_classify(err);
}

/* Appends "SELECT fn(args)" with every argument quoted as a literal (NULL stays NULL). */
static bool apply_batch_call(apply_ctx *ctx, const char *fn, const char *const *args, int nargs,
                             size_t owner)
{
    size_t len = strlen(fn) + 16;
    char **quoted = calloc((size_t)nargs, sizeof(char *));
    char *text = NULL;
    bool ok = quoted != NULL;

    for (int i = 0; ok && i < nargs; i++) {
        ok = !args[i] || (quoted[i] = lexer_quote_literal(args[i])) != NULL;
        len += (quoted[i] ? strlen(quoted[i]) : 4) + 2;
    }
    if (ok && (text = malloc(len))) {
        size_t n = (size_t)snprintf(text, len, "SELECT %s(", fn);

        for (int i = 0; i < nargs; i++)
            n += (size_t)snprintf(text + n, len - n, "%s%s", i ? ", " : "",
                                  quoted[i] ? quoted[i] : "NULL");
        n += (size_t)snprintf(text + n, len - n, ")");
        ok = batch_append(ctx->batch, text, n, owner, APPLY_OWN);
    } else {
        ok = false;
    }
    for (int i = 0; quoted && i < nargs; i++)
        free(quoted[i]);
    free(quoted);
    free(text);
    return ok;
}

static bool apply_batch_own(apply_ctx *ctx, const char *sql, size_t owner)
{
    return batch_append(ctx->batch, sql, strlen(sql), owner, APPLY_OWN);
}

/* One step's transaction but its COMMIT; owner is its index in ctx->items. */
static bool apply_batch_step(apply_ctx *ctx, size_t owner)
{
    const plan_item *item = ctx->items[owner];
    const step *s = item->step;
    const char *begin[7];
    const char *end[9];
    char version[24];

    apply_begin_params(ctx, item, version, begin);
    apply_end_params(ctx, item, NULL, version, end);
    if (!apply_batch_own(ctx, apply_begin_sql, owner) ||
        !apply_batch_call(ctx, ctx->sql->begin_fn, begin, 7, owner))
        return false;
    for (size_t i = 0; i < s->nstatements; i++) {
        if (!batch_append(ctx->batch, s->sql + s->statements[i].offset, s->statements[i].length,
                          owner, i))
            return false;
    }
    return apply_batch_call(ctx, ctx->sql->end_fn, end, 9, owner);
}

static bool apply_batch_bootstrap(apply_ctx *ctx)
{
    if (!apply_batch_own(ctx, apply_begin_sql, APPLY_OWN) ||
        !apply_batch_own(ctx, ctx->bootstrap_lock, APPLY_OWN))
        return false;
    for (int i = 0; i < HISTORY_CREATE_COUNT; i++) {
        if (!apply_batch_own(ctx, ctx->sql->create[i], APPLY_OWN))
            return false;
    }
    return apply_batch_own(ctx, "COMMIT", APPLY_OWN);
}

/* Reads the next result and says whether it succeeded; *res is kept for the caller to clear. */
static bool apply_next_ok(apply_ctx *ctx, PGresult **res, pgstep_error *err)
{
    ExecStatusType status;

    *res = conn_batch_next(*ctx->c, err);
    if (!*res) {
        if (!error_is_set(err))
            error_set(err, PGSTEP_EXIT_TEMPFAIL, "the server ended the batch early");
        return false;
    }
    status = PQresultStatus(*res);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

/* Reads BEGIN and what took the lock: step_begin for step s, the bootstrap's DO block when s is
 * NULL. */
static apply_outcome apply_read_begin(apply_ctx *ctx, const step *s, pgstep_error *err)
{
    apply_outcome outcome = APPLY_DONE;
    PGresult *res;

    for (int i = 0; i < 2 && outcome == APPLY_DONE; i++) {
        const char *sqlstate;

        if (apply_next_ok(ctx, &res, err)) {
            PQclear(res);
            continue;
        }
        if (!res)
            return apply_classify(err);
        sqlstate = apply_sqlstate(res);
        if (strcmp(sqlstate, HISTORY_SQLSTATE_LOCK_BUSY) == 0) {
            outcome = APPLY_LOCK_BUSY;
        } else if (s && strcmp(sqlstate, HISTORY_SQLSTATE_APPLIED) == 0) {
            apply_found_applied(ctx, s, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
            outcome = APPLY_RESUME;
        } else {
            outcome = apply_step_error(ctx, s, res, s ? s->nstatements : 0, err);
        }
        PQclear(res);
    }
    return outcome;
}

static apply_outcome apply_read_bootstrap(apply_ctx *ctx, pgstep_error *err)
{
    apply_outcome outcome = apply_read_begin(ctx, NULL, err);
    PGresult *res;

    /* The objects, then COMMIT. */
    for (int i = 0; i <= HISTORY_CREATE_COUNT && outcome == APPLY_DONE; i++) {
        if (!apply_next_ok(ctx, &res, err)) {
            if (res) {
                conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
                error_hint(err, "pgstep could not create its history table.");
            }
            outcome = apply_classify(err);
        }
        PQclear(res);
    }
    if (outcome == APPLY_DONE)
        ctx->need_bootstrap = false;
    return outcome;
}

/* Reads one step's results: BEGIN, step_begin, statements, step_end, the batch's durable
 * setting when last, COMMIT. */
static apply_outcome apply_read_step(apply_ctx *ctx, const plan_item *item, bool last,
                                     pgstep_error *err)
{
    const step *s = item->step;
    apply_outcome outcome = apply_read_begin(ctx, s, err);
    PGresult *res;

    char duration[24] = "0";

    for (size_t i = 0; outcome == APPLY_DONE && i <= s->nstatements + 1 + last; i++) {
        if (!apply_next_ok(ctx, &res, err))
            outcome = res ? apply_step_error(ctx, s, res, i, err) : apply_classify(err);
        else if (i == s->nstatements)
            snprintf(duration, sizeof(duration), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (outcome != APPLY_DONE)
        return outcome;
    apply_log_applied(s, duration); /* only now: COMMIT has succeeded */
    ctx->stats->applied++;
    ctx->mine[ctx->failed] = true;
    return APPLY_DONE;
}

/* Flushes the WAL of what this run committed. Failing to is worth a warning, not the run, unless
 * the connection was lost or the run interrupted: then false, with err set. */
static bool apply_flush(apply_ctx *ctx, pgstep_error *err)
{
    pgstep_error flush_err;
    pgstep_error drained;
    PGresult *res;

    error_clear(&flush_err);
    if (conn_batch_send(*ctx->c, apply_flush_sql, &flush_err)) {
        error_clear(&drained);
        while ((res = conn_batch_next(*ctx->c, &drained))) {
            if (PQresultStatus(res) == PGRES_FATAL_ERROR && !error_is_set(&flush_err))
                conn_result_error(res, PGSTEP_EXIT_TEMPFAIL, &flush_err);
            PQclear(res);
        }
        if (error_is_set(&drained) && !error_is_set(&flush_err))
            flush_err = drained;
    }
    if (!error_is_set(&flush_err))
        return true;
    if (apply_interrupted(&flush_err) || conn_is_broken(*ctx->c)) {
        *err = flush_err;
        return false;
    }
    conn_end_transaction(*ctx->c, &drained);
    log_warn("could not flush the WAL of the steps applied so far: %s", flush_err.message);
    return true;
}

/* Consumes the rest of the batch's results, rolls back a transaction a failure left open, and
 * flushes the WAL if the batch's last commit never came but this run committed something, or
 * found a step another runner committed maybe just before. A problem here matters only if
 * nothing failed before. */
static apply_outcome apply_finish_batch(apply_ctx *ctx, apply_outcome outcome, bool committed,
                                        pgstep_error *err)
{
    pgstep_error later;
    PGresult *res;

    if (apply_interrupted(err) || conn_is_broken(*ctx->c))
        return outcome; /* the connection is closed later, which rolls back */
    error_clear(&later);
    while ((res = conn_batch_next(*ctx->c, &later)))
        PQclear(res);
    if (!error_is_set(&later))
        conn_end_transaction(*ctx->c, &later);
    if (!error_is_set(&later) && outcome != APPLY_DONE && (committed || outcome == APPLY_RESUME) &&
        !apply_flush(ctx, err))
        return apply_classify(err);
    if (!error_is_set(&later) || outcome == APPLY_RETRY || outcome == APPLY_FAILED)
        return outcome;
    *err = later;
    return apply_classify(err);
}

apply_outcome apply_segment(apply_ctx *ctx, size_t from, size_t to, pgstep_error *err)
{
    apply_outcome outcome = APPLY_DONE;
    size_t applied = ctx->stats->applied;
    bool built;
    size_t k;

    batch_reset(ctx->batch);
    ctx->failed = from;
    built = !ctx->need_bootstrap || apply_batch_bootstrap(ctx);
    for (k = from;
         built && k < to && (k == from || batch_bytes(ctx->batch) < APPLY_BATCH_MAX_BYTES); k++)
        built = (k == from || apply_batch_own(ctx, "COMMIT", k - 1)) && apply_batch_step(ctx, k);
    /* Before a first no-transaction step the batch is the history's creation alone. */
    if (built && k > from)
        built =
            apply_batch_own(ctx, apply_durable_sql, k - 1) && apply_batch_own(ctx, "COMMIT", k - 1);
    if (!built) {
        error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
        return APPLY_FAILED;
    }
    ctx->batch_end = k;
    if (!conn_batch_send(*ctx->c, batch_text(ctx->batch), err))
        return apply_classify(err);
    if (ctx->need_bootstrap)
        outcome = apply_read_bootstrap(ctx, err);
    for (k = from; outcome == APPLY_DONE && k < ctx->batch_end; k++) {
        ctx->failed = k;
        outcome = apply_read_step(ctx, ctx->items[k], k + 1 == ctx->batch_end, err);
    }
    return apply_finish_batch(ctx, outcome, ctx->stats->applied > applied, err);
}
