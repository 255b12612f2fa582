/* Applying the plan. A run of consecutive transactional steps goes to the server as one batch
 * (a single simple Query message): for each step, BEGIN; step_begin (take the transaction lock
 * or fail, re-check the history or fail); the step's statements; step_end (the history row);
 * COMMIT. The first failure makes the server skip everything after it, so later steps are never
 * attempted, and no transaction is open while pgstep waits for the lock. Steps marked
 * no-transaction run one statement at a time under a session lock.
 *
 * Durability: step_begin lets its transaction commit without waiting for the WAL flush (and for
 * synchronous standbys). The last transaction of a batch restores the configured setting before
 * it commits, and a batch cut short is followed by a flush of its own, so everything a batch
 * committed is as durable as that setting says before pgstep goes on or exits; one flush per
 * batch instead of one per step. A server crash can still take back such commits while a batch
 * runs; after losing the connection pgstep reads its history rows and applies again what is
 * gone (see apply_settle_doubt). */
#include "pgstep/apply.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "pgstep/backoff.h"
#include "pgstep/batch.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/lexer.h"
#include "pgstep/log.h"
#include "pgstep/primary.h"
#include "pgstep/recover.h"

#define APPLY_LOCK_FIRST_DELAY_MS  10
#define APPLY_LOCK_MAX_DELAY_MS    500
#define APPLY_RETRY_FIRST_DELAY_MS 100
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
static const char apply_session_lock_sql[] = "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)";
static const char apply_session_unlock_sql[] = "SELECT pg_catalog.pg_advisory_unlock($1::bigint)";

/* The SQLSTATE of an error result, or "". */
static const char *apply_sqlstate(const PGresult *res)
{
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return sqlstate ? sqlstate : "";
}

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

/* An outcome for an error already in err: interrupted and permanent errors stop, lost
 * connections and transient SQLSTATEs are retried. */
static bool apply_interrupted(const pgstep_error *err);

static apply_outcome apply_classify(const pgstep_error *err)
{
    if (apply_interrupted(err))
        return APPLY_FAILED;
    if (err->exit_code == PGSTEP_EXIT_TEMPFAIL || conn_sqlstate_retryable(err->sqlstate))
        return APPLY_RETRY;
    return APPLY_FAILED;
}

/* Names the step file, and the line when one of its statements (stmt < nstatements) failed. */
static void apply_locate(const step *s, size_t stmt, pgstep_error *err)
{
    error_location(err, s->file_name,
                   stmt < s->nstatements ? apply_error_line(s, stmt, err->position) : 0);
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

static void apply_version_text(const step *s, char out[24])
{
    snprintf(out, 24, "%lld", s->version);
}

/* Parameters of step_begin. */
static void apply_begin_params(const apply_ctx *ctx, const plan_item *item, char version[24],
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

/* Parameters of history_sql.step_end; duration NULL lets the server measure it. */
static void apply_end_params(const apply_ctx *ctx, const plan_item *item, const char *duration,
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

/* This run's commit of s, whose result never arrived, was found after reconnecting. */
static void apply_log_confirmed(const step *s)
{
    log_info("applied %s (its commit was confirmed after reconnecting)", s->file_name);
}

/* Item ctx->failed turned out to be applied already (PGS02, with detail): by this run, when the
 * row carries its run id (a commit whose result was lost with the connection), or by another
 * runner. Counted once, however often a retry finds it again. */
static void apply_found_applied(apply_ctx *ctx, const step *s, const char *detail)
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

static void apply_log_applied(const step *s, const char *duration)
{
    log_field fields[] = {LOG_STR("step", s->file_name),
                          LOG_NUM("duration_ms", strtoll(duration, NULL, 10))};

    log_event(LOG_INFO, fields, 2, "applied %s", s->file_name);
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

static bool apply_interrupted(const pgstep_error *err)
{
    return err->exit_code == PGSTEP_EXIT_INTERRUPT || err->exit_code == PGSTEP_EXIT_TERMINATED;
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

/* Sends items [from, to) as one batch bounded in size (with the history's creation first, if
 * needed) and reads the results; ctx->batch_end says how far the batch went. */
static apply_outcome apply_segment(apply_ctx *ctx, size_t from, size_t to, pgstep_error *err)
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

/* A no-transaction step: session lock (polled, never waited for inside a transaction), re-check,
 * each statement on its own, then the history row, then unlock. */
static apply_outcome apply_no_transaction(apply_ctx *ctx, size_t k, pgstep_error *err)
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

/* Whether the history table exists; it may not after a connection lost during its creation. */
static bool apply_history_exists(apply_ctx *ctx, bool *exists, pgstep_error *err)
{
    PGresult *res = conn_query(*ctx->c, ctx->sql->exists, 0, NULL, err);

    if (!res)
        return false;
    *exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    ctx->need_bootstrap = !*exists || strcmp(PQgetvalue(res, 0, 1), "t") != 0;
    PQclear(res);
    return true;
}

/* Moves ctx->failed to where the run goes on, from the rows in res (NULL: no history at all);
 * see recover.h. */
static bool apply_recover(apply_ctx *ctx, const PGresult *res)
{
    int nrows = res ? PQntuples(res) : 0;
    recover_row *rows = calloc((size_t)nrows + 1, sizeof(*rows));
    bool *before = malloc(ctx->doubt_end + 1);
    size_t gone = 0;

    if (!rows || !before) {
        free(rows);
        free(before);
        return false;
    }
    for (int i = 0; i < nrows; i++)
        rows[i] = (recover_row){
            .kind = PQgetvalue(res, i, 0)[0] == 'V' ? STEP_VERSIONED : STEP_REPEATABLE,
            .version = strtoll(PQgetvalue(res, i, 1), NULL, 10),
            .description = PQgetvalue(res, i, 2),
            .checksum = PQgetvalue(res, i, 3),
        };
    memcpy(before, ctx->mine, ctx->doubt_end);
    ctx->failed =
        recover_resume(ctx->items, ctx->doubt_from, ctx->doubt_end, ctx->mine, rows, (size_t)nrows);
    for (size_t k = 0; k < ctx->doubt_end; k++) {
        if (before[k] && !ctx->mine[k]) {
            gone++;
            ctx->stats->applied--;
        } else if (!before[k] && ctx->mine[k]) {
            ctx->stats->applied++;
            apply_log_confirmed(ctx->items[k]->step);
        }
    }
    if (gone)
        log_warn("%zu of the steps committed before the connection was lost are gone with it;"
                 " applying them again",
                 gone);
    free(rows);
    free(before);
    return true;
}

/* After the connection was lost, on the new connection: settles which of the run's commits
 * survived (recover.h) and where it goes on. Losing this connection too leaves that to the next
 * retry; any other failure ends the run. */
static bool apply_settle_doubt(apply_ctx *ctx, pgstep_error *err)
{
    const char *params[] = {ctx->run_id};
    bool exists = true;
    PGresult *res = NULL;
    bool ok;

    /* Even a history created in an earlier batch may be gone, with a lossy failover. */
    ok = apply_history_exists(ctx, &exists, err) &&
         (!exists || (res = conn_query(*ctx->c, ctx->sql->run_rows, 1, params, err)));
    if (!ok) {
        if (!conn_is_broken(*ctx->c) || apply_interrupted(err))
            return false;
        error_clear(err);
        return true;
    }
    if (!apply_recover(ctx, res))
        ok = error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    PQclear(res);
    ctx->in_doubt = !ok;
    return ok;
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

/* The connection was lost while items [from, end) were sent: what they committed is in doubt
 * until the retry has reconnected. */
static apply_outcome apply_lost(apply_ctx *ctx, size_t from, size_t end, pgstep_error *err)
{
    ctx->doubt_from = ctx->in_doubt && ctx->doubt_from < from ? ctx->doubt_from : from;
    ctx->doubt_end = ctx->in_doubt && ctx->doubt_end > end ? ctx->doubt_end : end;
    ctx->in_doubt = true;
    if (!error_is_set(err))
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "the connection to the server was lost");
    return APPLY_RETRY;
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
