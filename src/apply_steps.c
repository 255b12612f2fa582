/* Runs of consecutive transactional steps in one pipeline. For each step: BEGIN; step_begin
 * (take the transaction lock or fail, re-check the history or fail); the step's statements, each
 * sent on its own behind a comment naming its file and line; step_end (the history row); COMMIT;
 * then a flush request, so that the server answers each step as it commits. The first failure
 * makes the server skip everything up to the pipeline's one sync point, so later steps are never
 * attempted, and no transaction is open while pgstep waits for the lock.
 *
 * Durability: the last transaction of a pipeline waits for the WAL flush that covers all of it,
 * and a pipeline cut short is followed by a flush of its own (wal.h). A server crash can still
 * take back commits while a pipeline runs: see apply_doubt.c. */
#include <stdlib.h>

#include "pgstep/apply_part.h"
#include "pgstep/exitcode.h"
#include "pgstep/steptext.h"
#include "pgstep/wal.h"

/* A pipeline closes after the step that takes it past this size: bounded memory. libpq holds
 * everything sent until its reply arrives, which for each step is its statements plus pgstep's
 * own messages (BEGIN, step_begin and step_end with their parameters, each statement's comment,
 * COMMIT, and libpq's entry for each query). Counting those too keeps a set of many small steps
 * within the bound: counted by their SQL alone, 10,000 one-line steps went as one pipeline of
 * about 8 MB. */
#define APPLY_STEPS_MAX_BYTES       (1024 * 1024)
#define APPLY_STEPS_STEP_BYTES      512
#define APPLY_STEPS_STATEMENT_BYTES 128

/* Where the pipeline that starts at from ends. */
static size_t apply_steps_end(const apply_env *env, size_t from, size_t to)
{
    size_t bytes = 0;
    size_t k = from;

    while (k < to && (k == from || bytes < APPLY_STEPS_MAX_BYTES)) {
        const step *s = env->items[k++]->step;

        bytes += APPLY_STEPS_STEP_BYTES + s->nstatements * APPLY_STEPS_STATEMENT_BYTES + s->sql_len;
    }
    return k;
}

static bool apply_steps_send_one(const apply_env *env, conn *c, const plan_item *item, bool last,
                                 pgstep_error *err)
{
    const step *s = item->step;
    bool ok = conn_pipeline_begin(c, err) &&
              history_send_step_begin(c, env->sql, env->run, s, item->checksum, err);

    for (size_t i = 0; ok && i < s->nstatements; i++) {
        char *text = steptext_statement(s, i);

        ok = text ? conn_pipeline_send(c, text, 0, NULL, err)
                  : error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        free(text);
    }
    return ok && (!last || wal_send_durable(c, err)) &&
           history_send_step_end(c, env->sql, env->run, s, item->checksum, -1, err) &&
           conn_pipeline_commit(c, err) && conn_pipeline_flush_request(c, err);
}

/* The next reply, which must be a success; otherwise the outcome, with err set and located in
 * step s (statement stmt; nstatements for pgstep's own). */
static bool apply_steps_expect(const apply_env *env, conn *c, const step *s, size_t stmt,
                               conn_reply *reply, apply_outcome *outcome, pgstep_error *err)
{
    if (progress_next(env->progress, c, reply, err) != CONN_WAIT_REPLY) {
        if (err->exit_code == PGSTEP_EXIT_STEP_FAILED) /* the step's own doing, e.g. a COPY */
            steptext_locate(s, stmt, err);
        *outcome = apply_classify(err);
        return false;
    }
    if (reply->kind == CONN_REPLY_OK)
        return true;
    if (reply->kind == CONN_REPLY_ERROR)
        *err = reply->error;
    else
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "the server ended the pipeline early");
    steptext_locate(s, stmt, err);
    *outcome = apply_classify(err);
    conn_reply_clear(reply);
    return false;
}

/* Reads one step's replies; APPLY_DONE once its COMMIT succeeded. */
static apply_outcome apply_steps_read_one(const apply_env *env, conn *c, const plan_item *item,
                                          bool last, pgstep_error *err)
{
    const step *s = item->step;
    apply_outcome outcome = APPLY_DONE;
    long long duration = 0;
    conn_reply reply;

    progress_step(env->progress, s->file_name);
    if (!apply_steps_expect(env, c, s, s->nstatements, &reply, &outcome, err)) /* BEGIN */
        return outcome;
    conn_reply_clear(&reply);
    if (progress_next(env->progress, c, &reply, err) != CONN_WAIT_REPLY)
        return apply_classify(err);
    outcome = apply_begin_outcome(env, s, &reply, err);
    conn_reply_clear(&reply);
    if (outcome != APPLY_DONE)
        return outcome;
    for (size_t i = 0; i < s->nstatements; i++) {
        if (!apply_steps_expect(env, c, s, i, &reply, &outcome, err))
            return outcome;
        conn_reply_clear(&reply);
    }
    if (last && !apply_steps_expect(env, c, s, s->nstatements, &reply, &outcome, err))
        return outcome;
    conn_reply_clear(&reply);
    if (!apply_steps_expect(env, c, s, s->nstatements, &reply, &outcome, err)) /* step_end */
        return outcome;
    duration = history_step_end_duration(&reply);
    conn_reply_clear(&reply);
    if (!apply_steps_expect(env, c, s, s->nstatements, &reply, &outcome, err)) /* COMMIT */
        return outcome;
    conn_reply_clear(&reply);
    apply_log_applied(s, duration); /* only now: COMMIT has succeeded */
    return APPLY_DONE;
}

/* Consumes the replies left up to the sync point, leaves the pipeline, rolls back a transaction
 * a failure left open, and flushes the WAL when the pipeline's last commit never came but this
 * run committed something, or found a step another runner committed maybe just before. A
 * problem here matters only if nothing failed before. */
static void apply_steps_finish(conn *c, bool committed, apply_result *r, pgstep_error *err)
{
    pgstep_error later;
    conn_reply reply;

    if (apply_interrupted(err) || conn_is_broken(c))
        return; /* the connection is closed later, which rolls back */
    error_clear(&later);
    do {
        if (conn_pipeline_next(c, 0, &reply, &later) != CONN_WAIT_REPLY)
            break;
        conn_reply_clear(&reply);
    } while (reply.kind != CONN_REPLY_SYNC);
    if (!error_is_set(&later) && conn_pipeline_exit(c, &later))
        conn_end_transaction(c, &later);
    if (!error_is_set(&later) && r->outcome != APPLY_DONE &&
        (committed || r->outcome == APPLY_APPLIED_BY_OTHER || r->outcome == APPLY_APPLIED_BY_RUN))
        wal_flush(c, &later);
    /* A problem on the way to the sync point matters only where the pipeline stopped early and
     * pgstep goes on with this connection. After every COMMIT succeeded, the last one durable, or
     * after a step's own failure, it is for whatever uses the connection next to notice. */
    if (!error_is_set(&later) ||
        (r->outcome != APPLY_LOCK_BUSY && r->outcome != APPLY_APPLIED_BY_RUN &&
         r->outcome != APPLY_APPLIED_BY_OTHER))
        return;
    *err = later;
    r->outcome = apply_classify(err);
}

apply_result apply_steps(const apply_env *env, conn *c, size_t from, size_t to, pgstep_error *err)
{
    size_t end = apply_steps_end(env, from, to);
    apply_result r = {.outcome = APPLY_DONE, .position = from, .sent_end = from};
    bool sent = conn_pipeline_enter(c, err);

    for (size_t k = from; sent && k < end; k++)
        sent = apply_steps_send_one(env, c, env->items[k], k + 1 == end, err);
    if (!sent || !conn_pipeline_sync(c, err)) {
        r.outcome = apply_classify(err);
        r.sent_end = end;
        if (!conn_is_broken(c))
            conn_pipeline_exit(c, &(pgstep_error){0});
        return r;
    }
    r.sent_end = end;
    while (r.position < end && r.outcome == APPLY_DONE) {
        r.outcome =
            apply_steps_read_one(env, c, env->items[r.position], r.position + 1 == end, err);
        if (r.outcome == APPLY_DONE)
            r.position++;
    }
    progress_step(env->progress, NULL);
    apply_steps_finish(c, r.position > from, &r, err);
    return r;
}
