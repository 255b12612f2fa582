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
 * until the server notices, by default hours later, and every other run waits for it. So while
 * the lock is held, the server's side of the session gets the keepalives of pgstep's side
 * ($2..$5, keepalive.h) wherever its own are looser (0 stands for the system's, which SHOW
 * reports in their place), and the unlock restores them. Tied to the lock, in the same
 * statements, because through a transaction-pooling PgBouncer a setting left behind would stay
 * on a server connection that other clients use. */
static const char apply_session_lock_sql[] =
    "WITH l AS (SELECT pg_catalog.pg_try_advisory_lock($1::bigint) AS locked)"
    " SELECT l.locked, CASE WHEN l.locked THEN"
    " (SELECT pg_catalog.count(pg_catalog.set_config(k.name, k.value::text, false))"
    "  FROM (VALUES ('tcp_keepalives_idle', $2::int), ('tcp_keepalives_interval', $3::int),"
    "   ('tcp_keepalives_count', $4::int), ('tcp_user_timeout', $5::int)) AS k(name, value),"
    "  LATERAL (SELECT pg_catalog.current_setting(k.name, true) AS shown) s"
    "  WHERE k.value > 0"
    "   AND CASE WHEN s.shown ~ '^[0-9]+$' THEN s.shown::int NOT BETWEEN 1 AND k.value END)"
    " END FROM l";
static const char apply_session_unlock_sql[] =
    "WITH u AS (SELECT pg_catalog.pg_advisory_unlock($1::bigint) AS unlocked)"
    " SELECT u.unlocked, (SELECT pg_catalog.count(pg_catalog.set_config(s.name, s.reset_val, "
    "false))"
    "  FROM pg_catalog.pg_settings s WHERE s.name IN ('tcp_keepalives_idle',"
    "   'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout'))"
    " FROM u";

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
    keepalive in_effect = conn_keepalive(*ctx->c);
    char values[4][16];
    const char *params[] = {ctx->lock_key, values[0], values[1], values[2], values[3]};
    apply_outcome outcome;
    PGresult *res;
    bool locked;

    snprintf(values[0], sizeof(values[0]), "%d", in_effect.idle_s);
    snprintf(values[1], sizeof(values[1]), "%d", in_effect.interval_s);
    snprintf(values[2], sizeof(values[2]), "%d", in_effect.count);
    snprintf(values[3], sizeof(values[3]), "%d", in_effect.user_timeout_ms);
    ctx->failed = k;
    outcome = apply_exec(ctx, item->step, item->step->nstatements, apply_session_lock_sql, 5,
                         params, &res, err);
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
