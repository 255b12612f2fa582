/* Waiting for a writable primary: what CNPG looks like while it restores, starts, replays WAL
 * and promotes, all retried until wait.timeout at a pace that depends on what an attempt cost. */
#include "pgstep/primary.h"

#include <stdio.h>
#include <string.h>

#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/secret.h"

/* Paces, from the start of one connection attempt to the start of the next, each stretched by
 * up to a quarter for jitter and never longer than wait.max_interval_ms. A connection nobody
 * answered (refused, no route, a name that does not resolve) costs the server nothing: a steady
 * 100 ms, at most 10 attempts a second. A server that answered "not now" (57P03) was asked twice,
 * the attempt and libpq's ping that tells why, so 200 ms keeps that at 10 connections a second
 * too. A rejection (authentication, pg_hba.conf, a missing database) or a connection that
 * turned out not writable cost the server a process: from 200 ms, doubling up to the cap. */
#define PRIMARY_UNREACHED_PACE_MS 100
#define PRIMARY_ANSWERED_PACE_MS  200
/* A server in recovery is asked again on the same connection this often: a query, not a new
 * connection, so a promotion is seen within about this long. */
#define PRIMARY_REASK_MS          50
#define PRIMARY_PROGRESS_EVERY_MS 5000

/* What makes the server unfit for writes. The session keeps its configured search_path: steps
 * run as they would under psql, and pgstep's own statements are schema-qualified instead. */
static const char primary_check_sql[] =
    "SELECT pg_catalog.pg_is_in_recovery(),"
    " pg_catalog.current_setting('transaction_read_only') = 'on'";

typedef enum primary_state {
    PRIMARY_WRITABLE,
    PRIMARY_NOT_WRITABLE, /* answered: in recovery, or the session is read-only */
    PRIMARY_CHECK_FAILED, /* the question itself failed; the connection is not worth keeping */
} primary_state;

typedef struct wait_state {
    const pgstep_config *cfg;
    int64_t start_ms;
    int64_t deadline_ms;       /* 0: none */
    int64_t auth_failed_since; /* when the server first rejected the credentials, or -1 */
    int64_t last_progress_ms;
    int attempts;         /* connection attempts so far */
    int64_t attempt_ms;   /* when the last one started */
    backoff rejected;     /* the pace after attempts that cost the server a start-up */
    bool rejected_streak; /* whether the last attempt was one of those */
    char reason[ERROR_TEXT_MAX];
} wait_state;

/* Asks a connected server whether it is writable; fills reason when it is not. A lost
 * connection counts as a failed check; a signal sets err. */
static primary_state primary_writable(conn *c, wait_state *w, pgstep_error *err)
{
    pgstep_error qerr;
    conn_rows *rows;
    const char *in_recovery;
    const char *read_only;
    primary_state state = PRIMARY_NOT_WRITABLE;

    error_clear(&qerr);
    if (!conn_query(c, primary_check_sql, 0, NULL, &rows, &qerr)) {
        if (qerr.exit_code == PGSTEP_EXIT_INTERRUPT || qerr.exit_code == PGSTEP_EXIT_TERMINATED)
            *err = qerr;
        snprintf(w->reason, sizeof(w->reason), "readiness check failed: %.900s", qerr.message);
        return PRIMARY_CHECK_FAILED;
    }
    in_recovery = conn_rows_value(rows, 0, 0);
    read_only = conn_rows_value(rows, 0, 1);
    if (!in_recovery || strcmp(in_recovery, "t") == 0)
        snprintf(w->reason, sizeof(w->reason), "server is in recovery");
    else if (!read_only || strcmp(read_only, "t") == 0)
        snprintf(w->reason, sizeof(w->reason), "session is read-only");
    else
        state = PRIMARY_WRITABLE;
    conn_rows_free(rows);
    return state;
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
    case CONN_FAIL_TLS:
        /* A certificate may be in the middle of its renewal; after the same grace, waiting
         * longer would only hide a wrong CA, host name or sslmode. */
        if (w->auth_failed_since < 0)
            w->auth_failed_since = now;
        if (now - w->auth_failed_since >= (int64_t)w->cfg->wait_auth_grace * 1000) {
            error_set(err, PGSTEP_EXIT_CONFIG, "%s", attempt->message);
            error_detail(err, "TLS kept failing for %d s.", w->cfg->wait_auth_grace);
            error_hint(err, "Check sslrootcert, the host name the server's certificate is for, "
                            "and sslmode.");
            return false;
        }
        return true;
    case CONN_FAIL_NOT_WRITABLE:
        /* That standby accepted the password: a later rejection starts its grace anew. */
        w->auth_failed_since = -1;
        return true;
    default:
        return true;
    }
}

/* The info line, at most every PRIMARY_PROGRESS_EVERY_MS. */
static void primary_progress(wait_state *w)
{
    int64_t now = backoff_now_ms();

    if (now - w->last_progress_ms >= PRIMARY_PROGRESS_EVERY_MS) {
        log_field fields[] = {LOG_NUM("waited_ms", now - w->start_ms),
                              LOG_NUM("timeout_s", w->cfg->wait_timeout)};

        log_event(LOG_INFO, fields, 2, "waiting for a writable primary (%lld of %d s): %s",
                  (long long)(now - w->start_ms) / 1000, w->cfg->wait_timeout, w->reason);
        w->last_progress_ms = now;
    }
}

/* The debug line of each connection attempt, then the info line when it is due. */
static void primary_attempt_failed(wait_state *w)
{
    log_field fields[] = {LOG_NUM("attempt", w->attempts),
                          LOG_NUM("started_ms", w->attempt_ms - w->start_ms)};

    log_event(LOG_DEBUG, fields, 2, "primary not ready: %s", w->reason);
    primary_progress(w);
}

/* Keeps asking an open connection to a server in recovery (or with a read-only session) every
 * PRIMARY_REASK_MS, until it is writable, the question fails, the deadline passes, or
 * wait.max_interval_ms has gone by since connected_ms: then a new connection sees whatever only a
 * new connection can (a Service that moved, a role's default_transaction_read_only). True when
 * writable; err is set only by a signal. */
static bool primary_hold(conn *c, wait_state *w, int64_t connected_ms, pgstep_error *err)
{
    int64_t until = connected_ms + w->cfg->wait_max_interval_ms;
    char before[sizeof(w->reason)];

    if (w->deadline_ms > 0 && w->deadline_ms < until)
        until = w->deadline_ms;
    for (;;) {
        int64_t now = backoff_now_ms();
        int64_t pause = backoff_jitter_ms(PRIMARY_REASK_MS);
        primary_state state;

        if (now + pause >= until || !backoff_sleep(pause, until, err))
            return false;
        snprintf(before, sizeof(before), "%s", w->reason);
        state = primary_writable(c, w, err);
        if (state == PRIMARY_WRITABLE)
            return true;
        if (strcmp(before, w->reason) != 0)
            log_event(LOG_DEBUG, NULL, 0, "primary not ready: %s", w->reason);
        if (state == PRIMARY_CHECK_FAILED || error_is_set(err))
            return false;
        primary_progress(w);
    }
}

/* How long after the start of a failed attempt the next one may start. */
static int64_t primary_pace_ms(wait_state *w, conn_failure why)
{
    int64_t cap = w->cfg->wait_max_interval_ms;
    int64_t pace;

    switch (why) {
    case CONN_FAIL_UNREACHABLE:
    case CONN_FAIL_TIMEOUT:
        pace = backoff_jitter_ms(PRIMARY_UNREACHED_PACE_MS);
        break;
    case CONN_FAIL_STARTING:
        pace = backoff_jitter_ms(PRIMARY_ANSWERED_PACE_MS);
        break;
    default: /* rejected after a start-up, or a standby or read-only session (CONN_OK, or
              * CONN_FAIL_NOT_WRITABLE when target_session_attrs turned it away) */
        if (!w->rejected_streak)
            backoff_init(&w->rejected, 2 * PRIMARY_ANSWERED_PACE_MS, cap);
        pace = backoff_next_ms(&w->rejected);
        if (pace < PRIMARY_ANSWERED_PACE_MS)
            pace = PRIMARY_ANSWERED_PACE_MS;
        break;
    }
    w->rejected_streak =
        why != CONN_FAIL_UNREACHABLE && why != CONN_FAIL_TIMEOUT && why != CONN_FAIL_STARTING;
    return pace < cap ? pace : cap;
}

/* One connection attempt and readiness check. Returns the connection when ready; otherwise NULL
 * with *why telling what the attempt ran into (CONN_OK: connected, not writable), and err set
 * only when waiting longer cannot help. */
static conn *primary_attempt(wait_state *w, const char *password, conn_failure *why,
                             pgstep_error *err)
{
    pgstep_error attempt;
    primary_state state;
    int64_t connected_ms;
    conn *c;

    error_clear(&attempt);
    w->attempts++;
    w->attempt_ms = backoff_now_ms();
    c = conn_open(w->cfg, password, w->deadline_ms, why, &attempt);
    if (!c) {
        if (primary_retryable(*why, w, &attempt, err))
            primary_attempt_failed(w);
        return NULL;
    }
    connected_ms = backoff_now_ms();
    w->auth_failed_since = -1;
    state = primary_writable(c, w, err);
    if (state == PRIMARY_WRITABLE)
        return c;
    primary_attempt_failed(w);
    /* wait.timeout = 0 asks once. */
    if (state == PRIMARY_NOT_WRITABLE && !error_is_set(err) && w->deadline_ms > 0 &&
        primary_hold(c, w, connected_ms, err))
        return c;
    conn_close(c);
    return NULL;
}

bool primary_wait(const pgstep_config *cfg, conn **out, pgstep_error *err)
{
    wait_state w = {.cfg = cfg, .auth_failed_since = -1};
    char *password = NULL;
    conn *c = NULL;

    *out = NULL;
    if (cfg->password_file && !secret_read_file(cfg->password_file, &password, err))
        return false;
    w.start_ms = w.last_progress_ms = backoff_now_ms();
    /* wait.timeout = 0 means a single attempt, bounded by connect_timeout alone. */
    w.deadline_ms = cfg->wait_timeout ? w.start_ms + (int64_t)cfg->wait_timeout * 1000 : 0;
    for (;;) {
        conn_failure why = CONN_OK;
        int64_t next;

        c = primary_attempt(&w, password, &why, err);
        if (c || error_is_set(err))
            break;
        next = w.attempt_ms + primary_pace_ms(&w, why);
        if (w.deadline_ms == 0 || backoff_now_ms() >= w.deadline_ms ||
            !backoff_sleep(next - backoff_now_ms(), w.deadline_ms, err) ||
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
    {
        log_field fields[] = {LOG_NUM("attempts", w.attempts)};

        log_event(LOG_DEBUG, fields, 1, "primary is writable after %lld ms",
                  (long long)(backoff_now_ms() - w.start_ms));
    }
    *out = c;
    return true;
}
