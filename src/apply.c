/* Applying the plan: setting up the run (apply_run.h holds its state), the order of the work,
 * retries and lock waits, and the helpers its parts share (error classification and location,
 * step_begin/step_end parameters, log lines). A run of consecutive transactional steps goes to
 * the server as one batch (apply_batch.c); a step marked no-transaction runs on its own under a
 * session lock (apply_no_transaction.c); after a lost connection the run settles which of its
 * commits survived before it goes on (apply_doubt.c). */
#include "pgstep/apply.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "pgstep/apply_run.h"
#include "pgstep/backoff.h"
#include "pgstep/batch.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/lexer.h"
#include "pgstep/log.h"
#include "pgstep/primary.h"

#define APPLY_LOCK_FIRST_DELAY_MS  10
#define APPLY_LOCK_MAX_DELAY_MS    500
#define APPLY_RETRY_FIRST_DELAY_MS 100

void apply_lock_key(const char *name, char out[24])
{
    unsigned char hash[8];
    uint64_t key = 0;

    /* Namespaced so that pgstep's keys do not collide with small integers other tools use. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(hash));
    crypto_generichash_update(&st, (const unsigned char *)"pgstep lock ", 12);
    crypto_generichash_update(&st, (const unsigned char *)name, strlen(name));
    crypto_generichash_final(&st, hash, sizeof(hash));
    for (size_t i = 0; i < sizeof(hash); i++)
        key = key << 8 | hash[i];
    snprintf(out, 24, "%" PRId64, (int64_t)key);
}

static void apply_ctx_init(apply_ctx *ctx, conn **c, const pgstep_config *cfg,
                           const history_sql *sql, apply_stats *stats)
{
    unsigned char id[16];

    memset(ctx, 0, sizeof(*ctx));
    ctx->c = c;
    ctx->cfg = cfg;
    ctx->sql = sql;
    ctx->stats = stats;
    apply_lock_key(cfg->lock_name, ctx->lock_key);
    /* The key is pgstep's own decimal number, safe to put in the text. */
    snprintf(ctx->bootstrap_lock, sizeof(ctx->bootstrap_lock),
             "DO $pgstep$ BEGIN IF NOT pg_catalog.pg_try_advisory_xact_lock(%s) THEN"
             " RAISE EXCEPTION 'pgstep: advisory lock %s is held by another runner'"
             " USING ERRCODE = '" HISTORY_SQLSTATE_LOCK_BUSY "'; END IF; END $pgstep$",
             ctx->lock_key, ctx->lock_key);
    snprintf(ctx->statement_timeout, sizeof(ctx->statement_timeout), "%ds", cfg->statement_timeout);
    snprintf(ctx->lock_timeout, sizeof(ctx->lock_timeout), "%ds", cfg->apply_lock_timeout);
    randombytes_buf(id, sizeof(id));
    sodium_bin2hex(ctx->run_id, sizeof(ctx->run_id), id, sizeof(id));
    snprintf(ctx->own_detail, sizeof(ctx->own_detail), HISTORY_APPLIED_BY "%s.", ctx->run_id);
    if (gethostname(ctx->host, sizeof(ctx->host)) != 0)
        ctx->host[0] = '\0';
    ctx->host[sizeof(ctx->host) - 1] = '\0';
}

/* The line of the file where a server error points: the statement's first line plus the
 * newlines before the error position (a 1-based character index into the statement). */
static int apply_error_line(const step *s, size_t stmt, int position)
{
    const lexer_statement *st = &s->statements[stmt];
    const char *p = s->sql + st->offset;
    const char *end = p + st->length;
    int line = st->line;

    for (int chars = 1; p < end && chars < position; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (*p == '\n')
            line++;
    }
    return line;
}

apply_outcome apply_classify(const pgstep_error *err)
{
    if (apply_interrupted(err))
        return APPLY_FAILED;
    if (err->exit_code == PGSTEP_EXIT_TEMPFAIL || conn_sqlstate_retryable(err->sqlstate))
        return APPLY_RETRY;
    return APPLY_FAILED;
}

void apply_locate(const step *s, size_t stmt, pgstep_error *err)
{
    error_location(err, s->file_name,
                   stmt < s->nstatements ? apply_error_line(s, stmt, err->position) : 0);
}

static void apply_version_text(const step *s, char out[24])
{
    snprintf(out, 24, "%lld", s->version);
}

void apply_begin_params(const apply_ctx *ctx, const plan_item *item, char version[24],
                        const char *params[7])
{
    const step *s = item->step;

    apply_version_text(s, version);
    params[0] = ctx->lock_key;
    params[1] = s->kind == STEP_VERSIONED ? "V" : "R";
    params[2] = s->kind == STEP_VERSIONED ? version : NULL;
    params[3] = s->description;
    params[4] = item->checksum;
    params[5] = ctx->statement_timeout;
    params[6] = ctx->lock_timeout;
}

void apply_end_params(const apply_ctx *ctx, const plan_item *item, const char *duration,
                      char version[24], const char *params[9])
{
    const step *s = item->step;

    apply_version_text(s, version);
    params[0] = s->kind == STEP_VERSIONED ? "V" : "R";
    params[1] = s->kind == STEP_VERSIONED ? version : NULL;
    params[2] = s->description;
    params[3] = s->file_name;
    params[4] = item->checksum;
    params[5] = duration;
    params[6] = ctx->run_id;
    params[7] = PGSTEP_VERSION;
    params[8] = ctx->host;
}

void apply_log_confirmed(const step *s)
{
    log_info("applied %s (its commit was confirmed after reconnecting)", s->file_name);
}

void apply_found_applied(apply_ctx *ctx, const step *s, const char *detail)
{
    size_t k = ctx->failed;

    if (ctx->mine[k] || ctx->by_other[k])
        return;
    if (detail && strcmp(detail, ctx->own_detail) == 0) {
        ctx->mine[k] = true;
        ctx->stats->applied++;
        apply_log_confirmed(s);
    } else {
        log_field fields[] = {LOG_STR("step", s->file_name)};

        ctx->by_other[k] = true;
        ctx->stats->applied_by_other++;
        log_event(LOG_INFO, fields, 1, "%s was applied by another runner meanwhile", s->file_name);
    }
}

void apply_log_applied(const step *s, const char *duration)
{
    log_field fields[] = {LOG_STR("step", s->file_name),
                          LOG_NUM("duration_ms", strtoll(duration, NULL, 10))};

    log_event(LOG_INFO, fields, 2, "applied %s", s->file_name);
}

bool apply_interrupted(const pgstep_error *err)
{
    return err->exit_code == PGSTEP_EXIT_INTERRUPT || err->exit_code == PGSTEP_EXIT_TERMINATED;
}

/* Waits before another try at the lock; false with err set once lock.timeout has passed. */
static bool apply_wait_lock(apply_ctx *ctx, int64_t *since, backoff *b, pgstep_error *err)
{
    int64_t now = backoff_now_ms();
    int64_t deadline;

    if (*since < 0) {
        *since = now;
        backoff_init(b, APPLY_LOCK_FIRST_DELAY_MS, APPLY_LOCK_MAX_DELAY_MS);
        log_info("waiting for the advisory lock held by another runner");
    }
    deadline = *since + (int64_t)ctx->cfg->lock_timeout * 1000;
    if (now >= deadline) {
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "could not obtain the advisory lock within %d s",
                  ctx->cfg->lock_timeout);
        error_detail(err, "Another runner held lock \"%s\" (key %s) all along.",
                     ctx->cfg->lock_name, ctx->lock_key);
        return false;
    }
    return backoff_sleep(backoff_next_ms(b), deadline, err);
}

/* Waits before retrying a transient failure, reconnecting when the connection was lost. */
static bool apply_wait_retry(apply_ctx *ctx, int *attempts, backoff *b, pgstep_error *err)
{
    const step *s = ctx->items[ctx->failed]->step;

    if (interrupt_check(err))
        return false;
    if (*attempts == 0)
        backoff_init(b, APPLY_RETRY_FIRST_DELAY_MS, ctx->cfg->wait_max_interval_ms);
    if (++*attempts > ctx->cfg->retries) {
        err->exit_code = PGSTEP_EXIT_TEMPFAIL;
        error_detail(err, "Gave up on %s after %d retries.", s->file_name, ctx->cfg->retries);
        return false;
    }
    {
        log_field fields[] = {LOG_STR("step", s->file_name), LOG_STR("sqlstate", err->sqlstate),
                              LOG_NUM("attempt", *attempts)};

        log_event(LOG_WARN, fields, 3, "retrying %s after a transient error: %s", s->file_name,
                  err->message);
    }
    if (!backoff_sleep(backoff_next_ms(b), 0, err))
        return false;
    if (conn_is_broken(*ctx->c)) {
        char lost[sizeof(err->message)];

        snprintf(lost, sizeof(lost), "%s", err->message);
        conn_close(*ctx->c);
        *ctx->c = NULL;
        error_clear(err); /* primary_wait stops at an attempt that leaves an error set */
        if (!primary_wait(ctx->cfg, ctx->c, err)) {
            char prior[sizeof(err->detail)];

            snprintf(prior, sizeof(prior), "%s", err->detail);
            error_detail(err, "%s%sThe connection was lost while applying %s: %s", prior,
                         *prior ? " " : "", s->file_name, lost);
            return false;
        }
        if (ctx->in_doubt && !apply_settle_doubt(ctx, err))
            return false;
    }
    error_clear(err);
    return true;
}

static void apply_warn_out_of_order(const plan *p)
{
    long long newest = 0;

    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        if (item->recorded && item->recorded->kind == STEP_VERSIONED &&
            item->recorded->version > newest)
            newest = item->recorded->version;
    }
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        if (item->state == PLAN_PENDING && item->step->kind == STEP_VERSIONED &&
            item->step->version < newest)
            log_warn("%s is applied out of order: version %lld was applied before it",
                     item->step->file_name, newest);
    }
}

static bool apply_collect_work(const plan *p, apply_ctx *ctx)
{
    ctx->items = calloc(plan_work(p) + 1, sizeof(plan_item *));
    if (!ctx->items)
        return false;
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        if (item->state == PLAN_PENDING || item->state == PLAN_RERUN)
            ctx->items[ctx->nitems++] = item;
    }
    return true;
}

/* Where the next batch ends: before the next no-transaction step. */
static size_t apply_segment_end(const apply_ctx *ctx, size_t pos)
{
    while (pos < ctx->nitems && !ctx->items[pos]->step->no_transaction)
        pos++;
    return pos;
}

bool apply_plan(conn **c, const pgstep_config *cfg, const history_sql *sql, const plan *p,
                bool installed, apply_stats *stats, pgstep_error *err)
{
    apply_ctx ctx;
    size_t pos = 0;
    size_t stuck_at = SIZE_MAX;
    int attempts = 0;
    int64_t lock_since = -1;
    backoff lock_backoff;
    backoff retry_backoff;
    bool ok = true;

    apply_ctx_init(&ctx, c, cfg, sql, stats);
    ctx.need_bootstrap = !installed;
    ctx.batch = batch_new();
    if (!ctx.batch || !apply_collect_work(p, &ctx) ||
        !(ctx.mine = calloc(ctx.nitems + 1, sizeof(bool))) ||
        !(ctx.by_other = calloc(ctx.nitems + 1, sizeof(bool)))) {
        free(ctx.items);
        free(ctx.mine);
        batch_free(ctx.batch);
        return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    }
    apply_warn_out_of_order(p);
    while (ok && pos < ctx.nitems) {
        size_t end = apply_segment_end(&ctx, pos);
        /* The history table is created in a batch of its own before a first no-transaction
         * step. */
        bool batched = end > pos || ctx.need_bootstrap;
        apply_outcome outcome =
            batched ? apply_segment(&ctx, pos, end, err) : apply_no_transaction(&ctx, pos, err);

        if (outcome != APPLY_DONE && outcome != APPLY_FAILED && conn_is_broken(*c))
            outcome = apply_lost(&ctx, pos, batched ? ctx.batch_end : pos + 1, err);

        /* Retries and lock waits are budgeted per step: a new step starts afresh. */
        if (outcome != APPLY_DONE && ctx.failed != stuck_at) {
            stuck_at = ctx.failed;
            attempts = 0;
            lock_since = -1;
        }
        switch (outcome) {
        case APPLY_DONE:
            pos = batched ? ctx.batch_end : pos + 1;
            break;
        case APPLY_RESUME:
            pos = ctx.failed + 1;
            break;
        case APPLY_LOCK_BUSY:
            pos = ctx.failed;
            ok = apply_wait_lock(&ctx, &lock_since, &lock_backoff, err);
            break;
        case APPLY_RETRY:
            ok = apply_wait_retry(&ctx, &attempts, &retry_backoff, err);
            pos = ctx.failed; /* after the wait: a lost connection may move it back */
            break;
        case APPLY_FAILED:
            ok = false;
            break;
        }
    }
    free(ctx.items);
    free(ctx.mine);
    free(ctx.by_other);
    batch_free(ctx.batch);
    return ok;
}
