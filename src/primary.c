/* Waiting for a writable primary: what CNPG looks like while it restores, starts, replays WAL
 * and promotes, all retried with backoff until wait.timeout. */
#include "pgstep/primary.h"

#include <stdio.h>
#include <string.h>

#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/secret.h"

#define PRIMARY_FIRST_DELAY_MS    50
#define PRIMARY_PROGRESS_EVERY_MS 5000

/* What makes the server unfit for writes. The session keeps its configured search_path: steps
 * run as they would under psql, and pgstep's own statements are schema-qualified instead. */
static const char primary_check_sql[] =
    "SELECT pg_catalog.pg_is_in_recovery(),"
    " pg_catalog.current_setting('transaction_read_only') = 'on'";

typedef struct wait_state {
    const pgstep_config *cfg;
    int64_t start_ms;
    int64_t deadline_ms;       /* 0: none */
    int64_t auth_failed_since; /* when the server first rejected the credentials, or -1 */
    int64_t last_progress_ms;
    char reason[ERROR_TEXT_MAX];
} wait_state;

/* Asks a connected server whether it is writable; fills reason when it is not. A lost
 * connection counts as not ready; a signal sets err. */
static bool primary_writable(conn *c, wait_state *w, pgstep_error *err)
{
    pgstep_error qerr;
    conn_rows *rows;
    const char *in_recovery;
    const char *read_only;
    bool writable = false;

    error_clear(&qerr);
    if (!conn_query(c, primary_check_sql, 0, NULL, &rows, &qerr)) {
        if (qerr.exit_code == PGSTEP_EXIT_INTERRUPT || qerr.exit_code == PGSTEP_EXIT_TERMINATED)
            *err = qerr;
        snprintf(w->reason, sizeof(w->reason), "readiness check failed: %.900s", qerr.message);
        return false;
    }
    in_recovery = conn_rows_value(rows, 0, 0);
    read_only = conn_rows_value(rows, 0, 1);
    if (!in_recovery || strcmp(in_recovery, "t") == 0)
        snprintf(w->reason, sizeof(w->reason), "server is in recovery");
    else if (!read_only || strcmp(read_only, "t") == 0)
        snprintf(w->reason, sizeof(w->reason), "session is read-only");
    else
        writable = true;
    conn_rows_free(rows);
    return writable;
}

/* Decides whether a failed attempt is worth retrying; false with err set when it is not. */
static bool primary_retryable(conn_failure why, wait_state *w, const pgstep_error *attempt,
                              pgstep_error *err)
{
    int64_t now = backoff_now_ms();

    /* An attempt that the overall deadline cut short says nothing new: keep the last reason. */
    if (!(why == CONN_FAIL_TIMEOUT && w->reason[0] && w->deadline_ms > 0 && now >= w->deadline_ms))
        snprintf(w->reason, sizeof(w->reason), "%s", attempt->message);
    switch (why) {
    case CONN_FAIL_INVALID:
    case CONN_FAIL_INTERRUPTED:
        *err = *attempt;
        return false;
    case CONN_FAIL_AUTH:
    case CONN_FAIL_REJECTED:
        /* CNPG sets the passwords a moment after the primary starts: allow a grace period. */
        if (w->auth_failed_since < 0)
            w->auth_failed_since = now;
        if (now - w->auth_failed_since >= (int64_t)w->cfg->wait_auth_grace * 1000) {
            error_set(err, PGSTEP_EXIT_NOT_READY, "%s", attempt->message);
            error_detail(err, "The server kept rejecting the connection for %d s.",
                         w->cfg->wait_auth_grace);
            error_hint(err, "Check the user name, password file and pg_hba.conf.");
            return false;
        }
        return true;
    default:
        return true;
    }
}

static void primary_progress(wait_state *w)
{
    int64_t now = backoff_now_ms();

    log_event(LOG_DEBUG, NULL, 0, "primary not ready: %s", w->reason);
    if (now - w->last_progress_ms >= PRIMARY_PROGRESS_EVERY_MS) {
        log_field fields[] = {LOG_NUM("waited_ms", now - w->start_ms),
                              LOG_NUM("timeout_s", w->cfg->wait_timeout)};

        log_event(LOG_INFO, fields, 2, "waiting for a writable primary (%lld of %d s): %s",
                  (long long)(now - w->start_ms) / 1000, w->cfg->wait_timeout, w->reason);
        w->last_progress_ms = now;
    }
}

/* One connection attempt and readiness check. Returns the connection when ready; otherwise NULL,
 * with err set only when waiting longer cannot help. */
static conn *primary_attempt(wait_state *w, const char *password, pgstep_error *err)
{
    pgstep_error attempt;
    conn_failure why;
    conn *c;

    error_clear(&attempt);
    c = conn_open(w->cfg, password, w->deadline_ms, &why, &attempt);
    if (!c) {
        primary_retryable(why, w, &attempt, err);
        return NULL;
    }
    w->auth_failed_since = -1;
    if (primary_writable(c, w, err))
        return c;
    conn_close(c);
    return NULL;
}

bool primary_wait(const pgstep_config *cfg, conn **out, pgstep_error *err)
{
    wait_state w = {.cfg = cfg, .auth_failed_since = -1};
    char *password = NULL;
    backoff b;
    conn *c = NULL;

    *out = NULL;
    if (cfg->password_file && !secret_read_file(cfg->password_file, &password, err))
        return false;
    w.start_ms = w.last_progress_ms = backoff_now_ms();
    /* wait.timeout = 0 means a single attempt, bounded by connect_timeout alone. */
    w.deadline_ms = cfg->wait_timeout ? w.start_ms + (int64_t)cfg->wait_timeout * 1000 : 0;
    backoff_init(&b, PRIMARY_FIRST_DELAY_MS, cfg->wait_max_interval_ms);
    for (;;) {
        c = primary_attempt(&w, password, err);
        if (c || error_is_set(err))
            break;
        primary_progress(&w);
        if (w.deadline_ms == 0 || backoff_now_ms() >= w.deadline_ms ||
            !backoff_sleep(backoff_next_ms(&b), w.deadline_ms, err) ||
            backoff_now_ms() >= w.deadline_ms) {
            if (!error_is_set(err))
                error_set(err, PGSTEP_EXIT_NOT_READY, "primary not ready after %d s: %s",
                          cfg->wait_timeout, w.reason);
            break;
        }
    }
    secret_free(password);
    if (!c)
        return false;
    log_event(LOG_DEBUG, NULL, 0, "primary is writable after %lld ms",
              (long long)(backoff_now_ms() - w.start_ms));
    *out = c;
    return true;
}
