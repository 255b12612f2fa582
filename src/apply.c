/* Applying the plan: the driver of a run. It owns the run's position and counters, decides the
 * order of the work, waits for the lock, retries transient errors (reconnecting, and settling
 * what a lost connection left in doubt), and hands each piece of work to a part (apply_part.h):
 * a run of consecutive transactional steps goes to the server as one pipeline; a step marked
 * no-transaction runs on its own under a session lock. */
#include "pgstep/apply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/apply_part.h"
#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/primary.h"
#include "pgstep/wal.h"

#define APPLY_LOCK_FIRST_DELAY_MS  10
#define APPLY_LOCK_MAX_DELAY_MS    500
#define APPLY_RETRY_FIRST_DELAY_MS 100

/* The run's state; only this file changes it. */
typedef struct apply_run {
    apply_env env;
    const plan_item **work; /* env.items, owned */
    conn **c;
    apply_stats *stats;
    bool need_bootstrap;
    bool *mine;     /* mine[k]: this run saw item k commit */
    bool *by_other; /* by_other[k]: another runner applied item k meanwhile */
    /* The connection was lost while items [doubt_from, doubt_end) were sent: their commits may
     * not have been flushed, or not seen. */
    bool in_doubt;
    size_t doubt_from;
    size_t doubt_end;
} apply_run;

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

static const plan_item **apply_collect_work(const plan *p, size_t *n)
{
    const plan_item **items = calloc(plan_work(p) + 1, sizeof(plan_item *));

    *n = 0;
    for (size_t i = 0; items && i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        if (item->state == PLAN_PENDING || item->state == PLAN_RERUN)
            items[(*n)++] = item;
    }
    return items;
}

/* Where the next pipeline ends: before the next no-transaction step. */
static size_t apply_segment_end(const apply_run *r, size_t pos)
{
    while (pos < r->env.nitems && !r->env.items[pos]->step->no_transaction)
        pos++;
    return pos;
}

static void apply_committed(apply_run *r, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++) {
        /* Another runner's commit of k that a failover took back, applied again by this run. */
        if (r->by_other[k]) {
            r->by_other[k] = false;
            r->stats->applied_by_other--;
        }
        r->mine[k] = true;
        r->stats->applied++;
    }
}

static void apply_log_confirmed(const step *s)
{
    log_field fields[] = {LOG_STR("step", s->file_name)};

    log_event(LOG_INFO, fields, 1, "applied %s (its commit was confirmed after reconnecting)",
              s->file_name);
}

/* Item k turned out to be applied already: by this run (a commit whose reply was lost with the
 * connection) or by another runner. Counted once, however often a retry finds it again. */
static void apply_found_applied(apply_run *r, size_t k, bool by_this_run)
{
    const step *s = r->env.items[k]->step;

    if (r->mine[k] || r->by_other[k])
        return;
    if (by_this_run) {
        r->mine[k] = true;
        r->stats->applied++;
        apply_log_confirmed(s);
    } else {
        log_field fields[] = {LOG_STR("step", s->file_name)};

        r->by_other[k] = true;
        r->stats->applied_by_other++;
        log_event(LOG_INFO, fields, 1, "%s was applied by another runner meanwhile", s->file_name);
    }
}

/* On a new connection after a lost one: which of the run's commits survived, and where the run
 * goes on (*pos). Losing this connection too leaves that to the next retry. */
static bool apply_settle(apply_run *r, size_t *pos, pgstep_error *err)
{
    bool *before = malloc(r->doubt_end + 1);
    size_t gone = 0;
    size_t confirmed = 0;
    size_t resume;
    bool installed;

    if (!before)
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    memcpy(before, r->mine, r->doubt_end);
    if (!apply_doubt_settle(&r->env, *r->c, r->doubt_from, r->doubt_end, r->mine, &resume,
                            &installed, err)) {
        free(before);
        if (!conn_is_broken(*r->c) || apply_interrupted(err))
            return false;
        error_clear(err);
        return true;
    }
    for (size_t k = 0; k < r->doubt_end; k++) {
        if (before[k] && !r->mine[k]) {
            gone++;
            r->stats->applied--;
        } else if (!before[k] && r->mine[k]) {
            apply_committed(r, k, k + 1);
            apply_log_confirmed(r->env.items[k]->step);
            confirmed++;
        }
    }
    if (gone)
        log_warn("%zu of the steps committed before the connection was lost are gone with it;"
                 " applying them again",
                 gone);
    free(before);
    /* A commit whose reply was lost may not have waited for its flush (a synchronous standby's
     * wait cancelled with the connection, say): make sure before counting on it. */
    if (confirmed && !wal_flush(*r->c, err)) {
        if (!conn_is_broken(*r->c) || apply_interrupted(err))
            return false;
        error_clear(err); /* lost again: the next retry settles anew */
        return true;
    }
    r->need_bootstrap = !installed;
    r->in_doubt = false;
    *pos = resume;
    return true;
}

/* Waits before another try at the lock; false with err set once lock.timeout has passed. */
static bool apply_wait_lock(const apply_run *r, int64_t *since, backoff *b, pgstep_error *err)
{
    const pgstep_config *cfg = r->env.cfg;
    int64_t now = backoff_now_ms();
    int64_t deadline;

    if (*since < 0) {
        *since = now;
        backoff_init(b, APPLY_LOCK_FIRST_DELAY_MS, APPLY_LOCK_MAX_DELAY_MS);
        log_info("waiting for the advisory lock held by another runner");
    }
    deadline = *since + (int64_t)cfg->lock_timeout * 1000;
    if (now >= deadline) {
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "could not obtain the advisory lock within %d s",
                  cfg->lock_timeout);
        error_detail(err, "Another runner held lock \"%s\" (key %s) all along.", cfg->lock_name,
                     r->env.run->lock_key);
        return false;
    }
    return backoff_sleep(backoff_next_ms(b), deadline, err);
}

/* Waits before retrying a transient failure at item k, reconnecting when the connection was
 * lost; *pos is where the run goes on. */
static bool apply_wait_retry(apply_run *r, size_t k, size_t *pos, int *attempts, backoff *b,
                             pgstep_error *err)
{
    const pgstep_config *cfg = r->env.cfg;
    const step *s = r->env.items[k]->step;

    *pos = k;
    if (interrupt_check(err))
        return false;
    if (*attempts == 0)
        backoff_init(b, APPLY_RETRY_FIRST_DELAY_MS, cfg->wait_max_interval_ms);
    if (++*attempts > cfg->retries) {
        err->exit_code = PGSTEP_EXIT_TEMPFAIL;
        error_detail(err, "Gave up on %s after %d retries.", s->file_name, cfg->retries);
        return false;
    }
    {
        log_field fields[] = {LOG_STR("step", s->file_name), LOG_STR("sqlstate", err->sqlstate),
                              LOG_NUM("attempt", *attempts)};

        log_event(LOG_WARN, fields, 3,
                  "retrying %s after a transient error (SQLSTATE %s, attempt %d of %d): %s",
                  s->file_name, err->sqlstate[0] ? err->sqlstate : "none", *attempts, cfg->retries,
                  err->message);
    }
    if (!backoff_sleep(backoff_next_ms(b), 0, err))
        return false;
    if (conn_is_broken(*r->c)) {
        char lost[sizeof(err->message)];

        memcpy(lost, err->message, sizeof(lost));
        conn_close(*r->c);
        *r->c = NULL;
        error_clear(err); /* primary_wait stops at an attempt that leaves an error set */
        if (!primary_wait(cfg, r->c, err)) {
            char prior[sizeof(err->detail)];

            memcpy(prior, err->detail, sizeof(prior));
            error_detail(err, "%s%sThe connection was lost while applying %s: %s.", prior,
                         *prior ? " " : "", s->file_name, lost);
            return false;
        }
        {
            char server[256];
            log_field fields[] = {LOG_STR("step", s->file_name), LOG_STR("server", server)};

            conn_server(*r->c, server, sizeof(server));
            log_event(LOG_INFO, fields, 2,
                      "reconnected to %s after losing the connection while applying %s", server,
                      s->file_name);
        }
        if (r->in_doubt && !apply_settle(r, pos, err))
            return false;
    }
    error_clear(err);
    return true;
}

/* The history's creation, before the first step: its outcome as a part's. */
static apply_result apply_bootstrap(apply_run *r, size_t pos, pgstep_error *err)
{
    apply_result res = {.outcome = APPLY_DONE, .position = pos, .sent_end = pos};
    bool busy = false;

    if (!history_create(*r->c, r->env.sql, r->env.run, &busy, err))
        res.outcome = apply_classify(err);
    else if (busy)
        res.outcome = APPLY_LOCK_BUSY;
    else
        r->need_bootstrap = false;
    return res;
}

static void apply_run_free(apply_run *r)
{
    free(r->work);
    free(r->mine);
    free(r->by_other);
    progress_end(r->env.progress);
}

bool apply_plan(conn **c, const pgstep_config *cfg, const history_sql *sql, const plan *p,
                bool installed, apply_stats *stats, pgstep_error *err)
{
    history_run run;
    progress watch;
    apply_run r = {.c = c, .stats = stats, .need_bootstrap = !installed};
    size_t pos = 0;
    size_t stuck_at = SIZE_MAX;
    int attempts = 0;
    int64_t lock_since = -1;
    backoff lock_backoff;
    backoff retry_backoff;
    bool ok = true;

    history_run_init(&run, cfg);
    progress_init(&watch, cfg);
    r.env = (apply_env){.cfg = cfg, .sql = sql, .run = &run, .progress = &watch};
    r.env.items = r.work = apply_collect_work(p, &r.env.nitems);
    r.mine = calloc(r.env.nitems + 1, sizeof(bool));
    r.by_other = calloc(r.env.nitems + 1, sizeof(bool));
    if (!r.env.items || !r.mine || !r.by_other) {
        apply_run_free(&r);
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    apply_warn_out_of_order(p);
    while (ok && pos < r.env.nitems) {
        size_t end = apply_segment_end(&r, pos);
        apply_result res = r.need_bootstrap ? apply_bootstrap(&r, pos, err)
                           : end > pos      ? apply_steps(&r.env, *c, pos, end, err)
                                            : apply_no_transaction(&r.env, *c, pos, err);

        apply_committed(&r, pos, res.position);
        if (res.outcome != APPLY_DONE && res.outcome != APPLY_FAILED && conn_is_broken(*c)) {
            r.doubt_from = r.in_doubt && r.doubt_from < pos ? r.doubt_from : pos;
            r.doubt_end = r.in_doubt && r.doubt_end > res.sent_end ? r.doubt_end : res.sent_end;
            r.in_doubt = true;
            if (!error_is_set(err))
                error_set(err, PGSTEP_EXIT_TEMPFAIL, "the connection to the server was lost");
            res.outcome = APPLY_RETRY;
        }
        /* Retries and lock waits are budgeted per step: a new step starts afresh. */
        if (res.outcome != APPLY_DONE && res.position != stuck_at) {
            stuck_at = res.position;
            attempts = 0;
            lock_since = -1;
        }
        switch (res.outcome) {
        case APPLY_DONE:
            pos = res.position;
            break;
        case APPLY_APPLIED_BY_RUN:
        case APPLY_APPLIED_BY_OTHER:
            apply_found_applied(&r, res.position, res.outcome == APPLY_APPLIED_BY_RUN);
            pos = res.position + 1;
            break;
        case APPLY_LOCK_BUSY:
            pos = res.position;
            ok = apply_wait_lock(&r, &lock_since, &lock_backoff, err);
            break;
        case APPLY_RETRY:
            ok = apply_wait_retry(&r, res.position, &pos, &attempts, &retry_backoff, err);
            break;
        case APPLY_FAILED:
            ok = false;
            break;
        }
    }
    apply_run_free(&r);
    return ok;
}
