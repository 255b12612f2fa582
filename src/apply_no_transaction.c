/* A step marked no-transaction: its statements run one at a time, outside a transaction block,
 * each with a sync point of its own, while a session-level advisory lock (tried, never waited for
 * inside a transaction) keeps other runners out; the history row is recorded after the last
 * statement succeeds. */
#include <stdlib.h>

#include "pgstep/apply_part.h"
#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/lock.h"
#include "pgstep/log.h"
#include "pgstep/steptext.h"

/* Reads the reply to what was queued before the sync point, then the sync point itself. */
static bool apply_nt_read(const apply_env *env, conn *c, conn_reply *reply, pgstep_error *err)
{
    conn_reply sync;

    if (progress_next(env->progress, c, reply, err) != CONN_WAIT_REPLY)
        return false;
    if (conn_pipeline_next(c, 0, &sync, err) != CONN_WAIT_REPLY) {
        conn_reply_clear(reply);
        return false;
    }
    conn_reply_clear(&sync);
    return true;
}

/* Runs statement stmt of s on its own. */
static apply_outcome apply_nt_statement(const apply_env *env, conn *c, const step *s, size_t stmt,
                                        pgstep_error *err)
{
    char *text = steptext_statement(s, stmt);
    conn_reply reply;
    bool sent;

    if (!text)
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory"), APPLY_FAILED;
    sent = conn_pipeline_send(c, text, 0, NULL, err) && conn_pipeline_sync(c, err);
    free(text);
    if (!sent || !apply_nt_read(env, c, &reply, err))
        return apply_classify(err);
    conn_reply_clear(&reply);
    if (reply.kind == CONN_REPLY_OK)
        return APPLY_DONE;
    *err = reply.error;
    steptext_locate(s, stmt, err);
    return apply_classify(err);
}

static apply_outcome apply_nt_begin(const apply_env *env, conn *c, const plan_item *item,
                                    pgstep_error *err)
{
    const step *s = item->step;
    conn_reply reply;
    apply_outcome outcome;

    if (!history_send_step_begin(c, env->sql, env->run, s, item->checksum, err) ||
        !conn_pipeline_sync(c, err) || !apply_nt_read(env, c, &reply, err))
        return apply_classify(err);
    outcome = apply_begin_outcome(env, item->step, &reply, err);
    conn_reply_clear(&reply);
    return outcome;
}

static apply_outcome apply_nt_end(const apply_env *env, conn *c, const plan_item *item,
                                  long long duration, pgstep_error *err)
{
    conn_reply reply;

    if (!history_send_step_end(c, env->sql, env->run, item->step, item->checksum, duration, err) ||
        !conn_pipeline_sync(c, err) || !apply_nt_read(env, c, &reply, err))
        return apply_classify(err);
    conn_reply_clear(&reply);
    if (reply.kind == CONN_REPLY_OK)
        return APPLY_DONE;
    *err = reply.error;
    steptext_locate(item->step, item->step->nstatements, err);
    return apply_classify(err);
}

/* The same re-check as a transactional step's, on its own: the session lock this step holds
 * makes step_begin's transaction lock a formality, and what it sets for the transaction ends
 * with it, so the statements run without pgstep's timeouts. */
static apply_outcome apply_nt_body(const apply_env *env, conn *c, const plan_item *item,
                                   pgstep_error *err)
{
    const step *s = item->step;
    int64_t start = backoff_now_ms();
    long long duration;
    apply_outcome outcome;

    progress_step(env->progress, s->file_name);
    if (!conn_pipeline_enter(c, err))
        return apply_classify(err);
    outcome = apply_nt_begin(env, c, item, err);
    for (size_t i = 0; outcome == APPLY_DONE && i < s->nstatements; i++)
        outcome = apply_nt_statement(env, c, s, i, err);
    duration = backoff_now_ms() - start;
    if (outcome == APPLY_DONE)
        outcome = apply_nt_end(env, c, item, duration, err);
    progress_step(env->progress, NULL);
    if (!conn_is_broken(c) && !apply_interrupted(err) &&
        !conn_pipeline_exit(c, error_is_set(err) ? &(pgstep_error){0} : err))
        outcome = apply_classify(err);
    if (outcome == APPLY_DONE)
        apply_log_applied(s, duration);
    return outcome;
}

/* Through a transaction-pooling PgBouncer the unlock may reach another server session than the
 * lock did, which leaves the lock held: say so loudly. */
static void apply_nt_unlock(const apply_env *env, conn *c, const step *s, const char *tightened)
{
    pgstep_error unlock_err;
    bool released = false;

    error_clear(&unlock_err);
    if (!lock_session_release(c, env->run->lock_key, tightened, &released, &unlock_err) &&
        conn_is_broken(c))
        return; /* the closed connection releases the lock */
    if (!released) {
        log_field fields[] = {LOG_STR("step", s->file_name)};

        log_event(LOG_WARN, fields, 1,
                  "the session advisory lock taken for %s was not released by this session;"
                  " connect directly to the primary, not through a transaction-pooling"
                  " PgBouncer, to apply no-transaction steps",
                  s->file_name);
    }
}

apply_result apply_no_transaction(const apply_env *env, conn *c, size_t k, pgstep_error *err)
{
    const plan_item *item = env->items[k];
    apply_result r = {.outcome = APPLY_DONE, .position = k, .sent_end = k};
    char *tightened = NULL;
    bool locked = false;

    if (!lock_session_take(c, env->run->lock_key, conn_keepalive(c), &locked, &tightened, err)) {
        steptext_locate(item->step, item->step->nstatements, err);
        r.outcome = apply_classify(err);
        return r;
    }
    if (!locked) {
        r.outcome = APPLY_LOCK_BUSY;
        return r;
    }
    r.sent_end = k + 1;
    r.outcome = apply_nt_body(env, c, item, err);
    if (r.outcome == APPLY_DONE)
        r.position = k + 1;
    /* After a signal the connection is closed, which releases the lock anyway. */
    if (!conn_is_broken(c) && !apply_interrupted(err))
        apply_nt_unlock(env, c, item->step, tightened);
    free(tightened);
    return r;
}
