/* Progress lines for slow steps, with the sessions that block them (progress.h). */
#include "pgstep/progress.h"

#include <stdio.h>
#include <string.h>

#include "pgstep/activity.h"
#include "pgstep/backoff.h"
#include "pgstep/log.h"
#include "pgstep/secret.h"

void progress_init(progress *p, const pgstep_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
}

void progress_end(progress *p)
{
    conn_close(p->side);
    p->side = NULL;
    p->side_failed = false;
}

void progress_step(progress *p, const char *file)
{
    progress_end(p);
    p->file = file;
    p->started_ms = backoff_now_ms();
    p->next_ms = p->started_ms + PROGRESS_EVERY_MS;
}

/* The second connection, to the server c is on, opened on first need; NULL (once, with a debug
 * line) if it cannot be. */
static conn *progress_side(progress *p, const conn *c)
{
    pgstep_error err;
    conn_failure why;
    char *password = NULL;

    if (p->side || p->side_failed)
        return p->side;
    error_clear(&err);
    if (!p->cfg->password_file || secret_read_file(p->cfg->password_file, &password, &err))
        p->side = conn_open_beside(c, p->cfg, password,
                                   backoff_now_ms() + 1000LL * p->cfg->connect_timeout, &why, &err);
    secret_free(password);
    if (!p->side) {
        p->side_failed = true;
        log_debug("could not open a second connection to see what %s waits for: %s", p->file,
                  err.message);
    }
    return p->side;
}

/* "pid 123 (psql, idle in transaction: LOCK TABLE t)" for each blocker, joined by "; ". */
static void progress_blockers(const activity *a, char *out, size_t size)
{
    size_t n = 0;

    out[0] = '\0';
    for (int i = 0; i < a->nblockers && n < size; i++) {
        const activity_blocker *b = &a->blockers[i];
        int w = snprintf(out + n, size - n, "%spid %d (%s%s%s%s%s)", i ? "; " : "", b->pid,
                         b->application_name[0] ? b->application_name : "no application name",
                         b->state[0] ? ", " : "", b->state, b->query[0] ? ": " : "", b->query);

        n += w > 0 ? (size_t)w : 0;
    }
}

static void progress_report(progress *p, conn *c)
{
    long long elapsed_s = (backoff_now_ms() - p->started_ms) / 1000;
    conn *side = progress_side(p, c);
    activity a;
    pgstep_error err;
    char blockers[1024];

    error_clear(&err);
    memset(&a, 0, sizeof(a));
    if (side && !activity_read(side, conn_backend_pid(c), &a, &err)) {
        log_debug("could not read what %s waits for: %s", p->file, err.message);
        progress_end(p);
        p->side_failed = true;
    }
    progress_blockers(&a, blockers, sizeof(blockers));
    {
        log_field fields[] = {LOG_STR("step", p->file), LOG_NUM("elapsed_s", elapsed_s),
                              LOG_STR("wait_event", a.wait_event), LOG_STR("blocked_by", blockers)};

        if (a.on_lock && a.nblockers > 0)
            log_event(LOG_INFO, fields, 4,
                      "still running %s: %lld s, waiting for a lock held by %s", p->file, elapsed_s,
                      blockers);
        else if (a.on_lock)
            log_event(LOG_INFO, fields, 3, "still running %s: %lld s, waiting for a lock (%s)",
                      p->file, elapsed_s, a.wait_event);
        else
            log_event(LOG_INFO, fields, 2, "still running %s: %lld s", p->file, elapsed_s);
    }
}

conn_wait progress_next(progress *p, conn *c, conn_reply *reply, pgstep_error *err)
{
    for (;;) {
        conn_wait w = conn_pipeline_next(c, p->file ? p->next_ms : 0, reply, err);

        if (w != CONN_WAIT_TIMEOUT)
            return w;
        progress_report(p, c);
        p->next_ms += PROGRESS_EVERY_MS;
    }
}
