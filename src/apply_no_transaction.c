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

/* Should pgstep vanish silently while it holds the session lock, its backend keeps the lock
 * until the server notices, by default hours later, and every other run waits for it. So the
 * statement that takes the lock also gives the server's side of the session the keepalives of
 * pgstep's side ($2..$5, keepalive.h) wherever its own are looser (0 stands for the system's,
 * which SHOW reports in their place), and returns the names it set; the statement that releases
 * the lock restores those ($2) to the session's reset values, so that they live as long as the
 * lock, on the session that holds it. The lateral reference to l makes the lock come first. */
static const char apply_session_lock_sql[] =
    "WITH l AS (SELECT pg_catalog.pg_try_advisory_lock($1::bigint) AS locked)"
    " SELECT l.locked, t.names FROM l, LATERAL"
    " (SELECT pg_catalog.array_agg(k.name)"
    "   FILTER (WHERE pg_catalog.set_config(k.name, k.value::text, false) IS NOT NULL) AS names"
    "  FROM (VALUES ('tcp_keepalives_idle', $2::int), ('tcp_keepalives_interval', $3::int),"
    "   ('tcp_keepalives_count', $4::int), ('tcp_user_timeout', $5::int)) AS k(name, value),"
    "  LATERAL (SELECT pg_catalog.current_setting(k.name, true) AS shown) s"
    "  WHERE l.locked AND k.value > 0"
    "   AND CASE WHEN s.shown ~ '^[0-9]+$' THEN s.shown::int NOT BETWEEN 1 AND k.value END) t";
static const char apply_session_unlock_sql[] =
    "WITH u AS (SELECT pg_catalog.pg_advisory_unlock($1::bigint) AS unlocked)"
    " SELECT u.unlocked, t.restored FROM u, LATERAL"
    " (SELECT pg_catalog.count(pg_catalog.set_config(s.name, s.reset_val, false)) AS restored"
    "  FROM pg_catalog.pg_settings s WHERE u.unlocked AND s.name = ANY ($2::text[])) t";

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

/* Releases the session lock and restores the settings named in tightened (an array literal, or
 * NULL) that taking it changed. Through a transaction-pooling PgBouncer the unlock may reach
 * another server session than the lock did, which leaves the lock held: say so loudly. */
static void apply_session_unlock(apply_ctx *ctx, const step *s, const char *tightened)
{
    const char *params[] = {ctx->lock_key, tightened};
    pgstep_error unlock_err;
    PGresult *res;

    error_clear(&unlock_err);
    res = conn_query(*ctx->c, apply_session_unlock_sql, 2, params, &unlock_err);
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
    keepalive in_effect = conn_keepalive(*ctx->c);
    char values[KEEPALIVE_SETTINGS][16];
    const char *params[KEEPALIVE_SETTINGS + 1] = {ctx->lock_key};
    apply_outcome outcome;
    PGresult *res;
    char *tightened;
    bool locked;

    for (int i = 0; i < KEEPALIVE_SETTINGS; i++) {
        snprintf(values[i], sizeof(values[i]), "%d", in_effect.value[i]);
        params[i + 1] = values[i];
    }
    ctx->failed = k;
    outcome = apply_exec(ctx, item->step, item->step->nstatements, apply_session_lock_sql, 5,
                         params, &res, err);
    if (outcome != APPLY_DONE)
        return outcome;
    locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    tightened = PQgetisnull(res, 0, 1) ? NULL : strdup(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (!locked)
        return APPLY_LOCK_BUSY;
    outcome = apply_no_transaction_body(ctx, item, err);
    /* After a signal the connection is closed, which releases the lock anyway. */
    if (!conn_is_broken(*ctx->c) && !apply_interrupted(err))
        apply_session_unlock(ctx, item->step, tightened);
    free(tightened);
    return outcome;
}
