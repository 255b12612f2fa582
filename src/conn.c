/* The only file that drives libpq's connection and query machinery: connect with a deadline,
 * classify failures, wait for results interruptibly, and run pipelines without deadlocks, handing
 * out replies as they arrive. */
#include "pgstep/conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/secret.h"

/* Waits are sliced so that a signal is noticed within this many milliseconds. */
#define CONN_POLL_SLICE_MS 100
/* How long a cancelled query may take to end before pgstep closes the connection instead. */
#define CONN_CANCEL_GRACE_MS 3000

struct conn {
    PGconn *pg;
    keepalive keepalive; /* in effect on the socket */
    bool broken;         /* out of step with the server: only closing it is safe */
};

/* Keywords and values for PQconnectStartParams; later entries override earlier ones. */
typedef struct conn_params {
    const char *keywords[KEEPALIVE_SETTINGS + 11];
    const char *values[KEEPALIVE_SETTINGS + 11];
    char timeout[16];
} conn_params;

static void conn_params_build(conn_params *p, const pgstep_config *cfg, const char *password,
                              bool service, int timeout_s)
{
    /* First, so that the connection string may set its own. */
    int n = service ? 0 : keepalive_keywords(p->keywords, p->values);

    /* With expand_dbname, the first dbname entry may be a whole connection string or URI. */
    if (cfg->conninfo && cfg->conninfo[0]) {
        p->keywords[n] = "dbname";
        p->values[n++] = cfg->conninfo;
    }
    if (cfg->dbname && cfg->dbname[0]) {
        p->keywords[n] = "dbname";
        p->values[n++] = cfg->dbname;
    }
    if (password) {
        p->keywords[n] = "password";
        p->values[n++] = password;
    }
    p->keywords[n] = "fallback_application_name";
    p->values[n++] = cfg->application_name;
    p->keywords[n] = "client_encoding";
    p->values[n++] = "UTF8";
    snprintf(p->timeout, sizeof(p->timeout), "%d", timeout_s < 1 ? 1 : timeout_s);
    p->keywords[n] = "connect_timeout";
    p->values[n++] = p->timeout;
    p->keywords[n] = NULL;
    p->values[n] = NULL;
}

/* Copies the first line of a libpq message; the rest is usually a generic hint. */
static void conn_first_line(const char *msg, char *out, size_t size)
{
    size_t len = strcspn(msg, "\n");

    if (len >= size)
        len = size - 1;
    memcpy(out, msg, len);
    out[len] = '\0';
}

/* libpq's parse errors quote fragments of the string, which may hold a password, and such a
 * fragment may itself hold quotes and line ends. So everything from the first fragment's opening
 * quote to the message's last quote, libpq's closing one, becomes "...", and only then is the
 * first line taken, so that no cut leaves a fragment open. libpq's own quoted "=" and "]" before
 * the fragment are kept. */
static void conn_redact_quoted(const char *msg, char *out, size_t size)
{
    static const char *const literals[] = {
        "\"=\" after ", "\"=\" in URI query parameter: ", "\"]\" in IPv6 host address in URI: "};
    const char *from = strchr(msg, '"');
    const char *last = strrchr(msg, '"');
    char redacted[ERROR_TEXT_MAX];

    for (size_t i = 0; from && i < sizeof(literals) / sizeof(literals[0]); i++) {
        if (strncmp(from, literals[i], strlen(literals[i])) == 0)
            from = strchr(from + strlen(literals[i]), '"');
    }
    if (!from) {
        conn_first_line(msg, out, size);
        return;
    }
    snprintf(redacted, sizeof(redacted), "%.*s\"...\"%s", (int)(from - msg), msg,
             from == last ? "" : last + 1);
    conn_first_line(redacted, out, size);
}

/* Whether text is an integer as libpq reads one (strtol, white space around it allowed) and
 * within lo..hi. */
static bool conn_integer_in(const char *text, long lo, long hi)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (end == text || errno == ERANGE)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == '\f' ||
           *end == '\v')
        end++;
    return *end == '\0' && value >= lo && value <= hi;
}

/* One port per host, comma-separated; an empty one means the default. */
static bool conn_ports_valid(const char *list)
{
    char port[32];

    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");

        if (n >= sizeof(port))
            return false;
        memcpy(port, p, n);
        port[n] = '\0';
        if (n > 0 && !conn_integer_in(port, 1, 65535))
            return false;
        if (p[n] == '\0')
            return true;
        p += n + 1;
    }
}

/* libpq reads these options' values only while connecting, and a bad one then looks like an
 * unreachable server, retried until wait.timeout: they are checked here instead. Returns the
 * keyword of the first bad one, with what was expected in why. */
static const char *conn_bad_integer(const PQconninfoOption *opts, const char **why)
{
    static const char *const integers[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle",
        "keepalives_count", "tcp_user_timeout", "keepalives_interval",
    };

    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "port") == 0 && !conn_ports_valid(o->val)) {
            *why = "expected a port number from 1 to 65535";
            return o->keyword;
        }
        for (size_t i = 0; i < sizeof(integers) / sizeof(integers[0]); i++) {
            if (strcmp(o->keyword, integers[i]) == 0 &&
                !conn_integer_in(o->val, INT_MIN, INT_MAX)) {
                *why = "expected an integer";
                return o->keyword;
            }
        }
    }
    return NULL;
}

/* Refuses a connection string libpq cannot parse; says whether the connection uses a service
 * (keepalive.h). */
static bool conn_check_conninfo(const pgstep_config *cfg, bool *service, pgstep_error *err)
{
    char reason[ERROR_TEXT_MAX] = "";
    char *errmsg = NULL;
    PQconninfoOption *opts;

    *service = keepalive_uses_service(NULL);
    if (!cfg->conninfo || !cfg->conninfo[0])
        return true;
    opts = PQconninfoParse(cfg->conninfo, &errmsg);
    if (opts) {
        const char *why, *bad = conn_bad_integer(opts, &why);

        *service = keepalive_uses_service(opts);
        if (bad)
            snprintf(reason, sizeof(reason), "option \"%s\": %s", bad, why);
        secret_free_options(opts);
        if (!bad)
            return true;
    }
    if (!opts && errmsg) {
        if (secret_in_conninfo(cfg->conninfo))
            conn_redact_quoted(errmsg, reason, sizeof(reason));
        else
            conn_first_line(errmsg, reason, sizeof(reason));
        PQfreemem(errmsg);
    }
    /* Where the string came from: the configuration file's line, --dsn or PGSTEP_DSN. */
    if (cfg->conninfo_source)
        return error_set(err, PGSTEP_EXIT_CONFIG, "%s: invalid connection string: %s",
                         cfg->conninfo_source, reason);
    return error_set(err, PGSTEP_EXIT_CONFIG, "invalid connection string: %s", reason);
}

/* Waits until fd is ready for events or the deadline passes (0: none), in slices so signals are
 * seen. Returns 1 ready, 0 deadline, -1 interrupted (only when interruptible). */
static int conn_wait_socket_until(int fd, short events, int64_t deadline_ms, bool interruptible)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        int64_t left = deadline_ms > 0 ? deadline_ms - backoff_now_ms() : CONN_POLL_SLICE_MS;
        int rc;

        if (interruptible && interrupt_pending())
            return -1;
        if (left <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)(left < CONN_POLL_SLICE_MS ? left : CONN_POLL_SLICE_MS));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 1; /* let libpq report the socket problem */
    }
}

static int conn_wait_socket(int fd, short events, int64_t deadline_ms)
{
    return conn_wait_socket_until(fd, events, deadline_ms, true);
}

/* Set once libpq has accepted the connection options (they do not change while pgstep runs), so
 * that a failure to connect needs no ping to tell a bad option from a server that is down. */
static bool conn_options_accepted;

/* True once libpq has a connected socket to some server: past the TCP (or Unix socket) connect,
 * so any failure from then on may be the server's answer. */
static bool conn_reached(PGconn *pg)
{
    ConnStatusType status = PQstatus(pg);

    return status != CONNECTION_BAD && status != CONNECTION_STARTED && status != CONNECTION_NEEDED;
}

/* libpq's messages for a server whose certificate is not trusted (unknown CA, expired) or not
 * for the host, a missing CA file, or a server without TLS where sslmode requires it. libpq
 * gives no code for these; nothing clears them but a changed certificate or setting. */
static bool conn_tls_failed(const char *msg)
{
    static const char *const signs[] = {
        "SSL error: certificate verify failed",
        "does not match host name",
        "could not get server's host name from server certificate",
        "server does not support SSL, but SSL was required",
        "root certificate file",
        "SSL certificate's name",
        "SSL certificate's address",
    };

    for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++) {
        if (strstr(msg, signs[i]))
            return true;
    }
    return false;
}

/* Whether needle occurs in the line of len bytes that starts at line. */
static bool conn_line_has(const char *line, size_t len, const char *needle)
{
    const char *hit = strstr(line, needle);

    return hit && hit < line + len;
}

/* Calls visit on each line of libpq's message (one per host tried, with several hosts) until it
 * returns true; returns that line, or NULL. */
static const char *conn_find_line(const char *msg, bool (*visit)(const char *, size_t))
{
    for (const char *line = msg; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (visit(line, strcspn(line, "\n")))
            return line;
    }
    return NULL;
}

/* A line of a server that target_session_attrs turned away after connecting (a standby, a
 * read-only session): it may be promoted, so it is waited for like one in recovery. */
static bool conn_line_not_writable(const char *line, size_t len)
{
    static const char *const signs[] = {
        "server is in hot standby mode",
        "server is not in hot standby mode",
        "session is read-only",
        "session is not read-only",
    };

    for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++) {
        if (conn_line_has(line, len, signs[i]))
            return true;
    }
    return false;
}

/* A line of a server that refused pgstep in a way waiting does not mend: a FATAL other than
 * 57P03's "the database system is starting up" (or shutting down, in recovery, ...), which
 * covers passwords, pg_hba.conf and a missing database, or a TLS failure. */
static bool conn_line_refused(const char *line, size_t len)
{
    char copy[512];

    if (conn_line_has(line, len, "FATAL:") && !conn_line_has(line, len, "the database system is"))
        return true;
    snprintf(copy, sizeof(copy), "%.*s", (int)(len < sizeof(copy) ? len : sizeof(copy) - 1), line);
    return conn_tls_failed(copy);
}

static conn_failure conn_classify(PGconn *pg, const pgstep_config *cfg, const char *password,
                                  bool service, bool reached, int64_t attempt_end)
{
    int64_t left_s = (attempt_end - backoff_now_ms()) / 1000;
    conn_params ping;

    /* Before the password test, since the standby libpq turned away had accepted the
     * password; but only when no other host refused pgstep for good: waiting would hide that
     * host's reason until wait.timeout. */
    if (conn_find_line(PQerrorMessage(pg), conn_line_not_writable) &&
        !conn_find_line(PQerrorMessage(pg), conn_line_refused))
        return CONN_FAIL_NOT_WRITABLE;
    if (PQconnectionUsedPassword(pg) || PQconnectionNeedsPassword(pg))
        return CONN_FAIL_AUTH;
    if (interrupt_pending())
        return CONN_FAIL_INTERRUPTED;
    /* The server answered, but not in a way TLS accepts: no ping needed to tell. */
    if (reached && conn_tls_failed(PQerrorMessage(pg)))
        return CONN_FAIL_TLS;
    /* No server was ever connected to (name not resolvable, refused, no route): nothing to ask,
     * and asking would double the connection attempts against a server that is down. Only
     * whether libpq accepts the options at all needs the ping, once. */
    if (!reached && conn_options_accepted)
        return CONN_FAIL_UNREACHABLE;
    /* The server's SQLSTATE is not exposed for failed connections; PQping tells whether it
     * answered, and whether it answered "cannot connect now". It blocks, so it gets only what
     * is left of this attempt's time. */
    if (left_s < 1)
        return CONN_FAIL_UNREACHABLE;
    conn_params_build(&ping, cfg, password, service,
                      left_s < cfg->connect_timeout ? (int)left_s : cfg->connect_timeout);
    switch (PQpingParams(ping.keywords, ping.values, 1)) {
    case PQPING_REJECT:
        conn_options_accepted = true;
        return CONN_FAIL_STARTING;
    case PQPING_OK:
        conn_options_accepted = true;
        return CONN_FAIL_REJECTED;
    case PQPING_NO_ATTEMPT:
        return CONN_FAIL_INVALID;
    case PQPING_NO_RESPONSE:
    default:
        conn_options_accepted = true;
        return CONN_FAIL_UNREACHABLE;
    }
}

static conn *conn_fail(PGconn *pg, conn_failure why, conn_failure *failure, pgstep_error *err,
                       const char *fallback)
{
    const char *msg = pg ? PQerrorMessage(pg) : "";

    /* With several hosts, the reason is the line of the host that decided the failure rather
     * than the first host's: the one that may yet become writable, or the one that refused. */
    if (why == CONN_FAIL_NOT_WRITABLE)
        msg = conn_find_line(msg, conn_line_not_writable);
    else if (conn_find_line(msg, conn_line_refused))
        msg = conn_find_line(msg, conn_line_refused);
    *failure = why;
    error_set(err, why == CONN_FAIL_INVALID ? PGSTEP_EXIT_CONFIG : PGSTEP_EXIT_NOT_READY, "%s",
              fallback);
    if (msg && msg[0])
        conn_first_line(msg, err->message, sizeof(err->message));
    if (why == CONN_FAIL_INTERRUPTED)
        interrupt_check(err);
    PQfinish(pg);
    return NULL;
}

/* Server notices (NOTICE, WARNING, ...) become log events instead of raw lines on stderr. */
static void conn_notice_receiver(void *arg, const PGresult *res)
{
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    log_level level = LOG_INFO;
    log_field fields[2];
    int n = 0;

    (void)arg;
    if (severity && strcmp(severity, "WARNING") == 0)
        level = LOG_WARN;
    else if (severity && (strcmp(severity, "DEBUG") == 0 || strcmp(severity, "LOG") == 0))
        level = LOG_DEBUG;
    if (sqlstate)
        fields[n++] = LOG_STR("sqlstate", sqlstate);
    fields[n++] = LOG_STR("severity", severity ? severity : "NOTICE");
    log_event(level, fields, n, "server %s: %s", level == LOG_WARN ? "warning" : "notice",
              primary ? primary : PQresultErrorMessage(res));
}

/* Pins p to the server c is connected to, after everything that could name another. */
static void conn_params_pin(conn_params *p, const conn *c)
{
    const char *pinned[][2] = {
        {"host", PQhost(c->pg)}, {"hostaddr", PQhostaddr(c->pg)}, {"port", PQport(c->pg)}};
    int n = 0;

    while (p->keywords[n])
        n++;
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
        if (pinned[i][1] && pinned[i][1][0]) {
            p->keywords[n] = pinned[i][0];
            p->values[n++] = pinned[i][1];
        }
    }
    p->keywords[n] = NULL;
    p->values[n] = NULL;
}

static conn *conn_open_at(const conn *beside, const pgstep_config *cfg, const char *password,
                          int64_t deadline_ms, conn_failure *failure, pgstep_error *err);

conn *conn_open(const pgstep_config *cfg, const char *password, int64_t deadline_ms,
                conn_failure *failure, pgstep_error *err)
{
    return conn_open_at(NULL, cfg, password, deadline_ms, failure, err);
}

conn *conn_open_beside(const conn *beside, const pgstep_config *cfg, const char *password,
                       int64_t deadline_ms, conn_failure *failure, pgstep_error *err)
{
    return conn_open_at(beside, cfg, password, deadline_ms, failure, err);
}

static conn *conn_open_at(const conn *beside, const pgstep_config *cfg, const char *password,
                          int64_t deadline_ms, conn_failure *failure, pgstep_error *err)
{
    int64_t attempt_start = backoff_now_ms();
    int64_t attempt_end = attempt_start + (int64_t)cfg->connect_timeout * 1000;
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    conn_params params;
    bool service;
    bool reached;
    PGconn *pg;
    conn *c;

    if (!conn_check_conninfo(cfg, &service, err)) {
        *failure = CONN_FAIL_INVALID;
        return NULL;
    }
    if (deadline_ms > 0 && deadline_ms < attempt_end)
        attempt_end = deadline_ms;
    conn_params_build(&params, cfg, password, service, cfg->connect_timeout);
    if (beside)
        conn_params_pin(&params, beside);
    pg = PQconnectStartParams(params.keywords, params.values, 1);
    if (!pg)
        return conn_fail(NULL, CONN_FAIL_UNREACHABLE, failure, err, "out of memory");
    if (PQstatus(pg) == CONNECTION_BAD)
        return conn_fail(pg, conn_classify(pg, cfg, password, service, false, attempt_end), failure,
                         err, "could not connect");
    conn_options_accepted = true;
    reached = conn_reached(pg);
    while (state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED) {
        short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        int ready = conn_wait_socket(PQsocket(pg), events, attempt_end);

        if (ready < 0)
            return conn_fail(pg, CONN_FAIL_INTERRUPTED, failure, err, "interrupted");
        if (ready == 0) {
            PQfinish(pg);
            *failure = CONN_FAIL_TIMEOUT;
            error_set(err, PGSTEP_EXIT_NOT_READY, "connection attempt timed out after %lld ms",
                      (long long)(backoff_now_ms() - attempt_start));
            return NULL;
        }
        state = PQconnectPoll(pg);
        reached = reached || conn_reached(pg);
    }
    if (state == PGRES_POLLING_FAILED)
        return conn_fail(pg, conn_classify(pg, cfg, password, service, reached, attempt_end),
                         failure, err, "could not connect");
    c = malloc(sizeof(*c));
    if (!c)
        return conn_fail(pg, CONN_FAIL_UNREACHABLE, failure, err, "out of memory");
    c->pg = pg;
    c->broken = false;
    c->keepalive = keepalive_apply(pg);
    PQsetNoticeReceiver(pg, conn_notice_receiver, NULL);
    *failure = CONN_OK;
    return c;
}

static void conn_cancel(conn *c)
{
    PGcancel *cancel = PQgetCancel(c->pg);
    char buf[256];

    if (cancel) {
        PQcancel(cancel, buf, sizeof(buf));
        PQfreeCancel(cancel);
    }
}

void conn_close(conn *c)
{
    if (!c)
        return;
    if (PQtransactionStatus(c->pg) == PQTRANS_ACTIVE)
        conn_cancel(c);
    PQfinish(c->pg);
    free(c);
}

keepalive conn_keepalive(const conn *c)
{
    return c->keepalive;
}

bool conn_is_broken(const conn *c)
{
    return c->broken || PQstatus(c->pg) == CONNECTION_BAD;
}

/* A failure of libpq's own machinery: the connection cannot be trusted to be in step with the
 * server any more (lost, or a pipeline it could not leave), so it is given up. */
static bool conn_lost(conn *c, pgstep_error *err)
{
    char line[ERROR_TEXT_MAX];

    c->broken = true;
    conn_first_line(PQerrorMessage(c->pg), line, sizeof(line));
    error_set(err, PGSTEP_EXIT_TEMPFAIL, "connection to the server was lost: %s",
              line[0] ? line : "unknown error");
    snprintf(err->sqlstate, sizeof(err->sqlstate), "08006");
    return false;
}

int conn_backend_pid(const conn *c)
{
    return PQbackendPID(c->pg);
}

void conn_server(const conn *c, char *out, size_t size)
{
    const char *host = PQhost(c->pg);
    const char *port = PQport(c->pg);

    snprintf(out, size, "%s:%s", host ? host : "?", port ? port : "?");
}

/* Waits until libpq can hand out a result without blocking, sending what is still queued
 * meanwhile, or until until_ms (0: no limit). Returns 1 ready, 0 timed out, -1 failed with err
 * set. On a signal the running query is cancelled first, so the server stops the work and rolls
 * it back. */
static int conn_wait_result(conn *c, int64_t until_ms, pgstep_error *err)
{
    int64_t give_up = 0; /* once cancelled: when to stop waiting for the server */

    for (;;) {
        int unsent = PQflush(c->pg);
        short events = POLLIN;
        int ready;

        if (unsent < 0)
            return conn_lost(c, err), -1;
        /* What arrived before the connection closed is read first: a reply in hand (an error
         * saying why, a COPY that explains the close) is never lost to the close itself. */
        if (!PQconsumeInput(c->pg))
            return PQisBusy(c->pg) ? (conn_lost(c, err), -1) : 1;
        if (!PQisBusy(c->pg))
            return give_up && interrupt_check(err) ? -1 : 1;
        if (unsent > 0)
            events |= POLLOUT; /* the server is reading: keep sending */
        if (give_up) {
            /* A server that does not answer must not keep pgstep from exiting. */
            if (conn_wait_socket_until(PQsocket(c->pg), events, give_up, false) == 0)
                return interrupt_check(err), -1;
            continue;
        }
        ready = conn_wait_socket(PQsocket(c->pg), events, until_ms);
        if (ready < 0) {
            conn_cancel(c);
            give_up = backoff_now_ms() + CONN_CANCEL_GRACE_MS;
        } else if (ready == 0) {
            return 0;
        }
    }
}

/* COPY to or from the client has no place in a step: a COPY FROM STDIN is ended so that it
 * fails, the rows of a COPY TO STDOUT are discarded, and the results move on. Without this,
 * libpq would hand out the COPY state forever. */
static bool conn_refuse_copy(conn *c, PGresult *res)
{
    ExecStatusType status = PQresultStatus(res);
    char *buf;

    /* In a pipeline the statements after the COPY are on their way already, and the server
     * reads them as COPY data: nothing but closing the connection brings it back in step. */
    if ((status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) &&
        PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
        return false;
    if (status == PGRES_COPY_IN || status == PGRES_COPY_BOTH)
        return PQputCopyEnd(c->pg, "pgstep does not send COPY data") >= 0 && PQflush(c->pg) >= 0;
    if (status != PGRES_COPY_OUT)
        return true;
    for (;;) {
        int n = PQgetCopyData(c->pg, &buf, 1);

        if (n > 0) {
            PQfreemem(buf);
        } else if (n == 0) {
            if (conn_wait_socket_until(PQsocket(c->pg), POLLIN, 0, false) < 0 ||
                !PQconsumeInput(c->pg))
                return false;
        } else {
            return n == -1;
        }
    }
}

/* PQgetResult once the result is ready, past any COPY state: 1 with *out (NULL at the end of a
 * statement's results), 0 timed out, -1 failed with err set. */
static int conn_get_result(conn *c, int64_t until_ms, PGresult **out, pgstep_error *err)
{
    for (;;) {
        int ready = conn_wait_result(c, until_ms, err);
        ExecStatusType status;

        *out = NULL;
        if (ready <= 0)
            return ready;
        *out = PQgetResult(c->pg);
        if (!*out)
            return 1;
        status = PQresultStatus(*out);
        if (status != PGRES_COPY_IN && status != PGRES_COPY_OUT && status != PGRES_COPY_BOTH)
            return 1;
        if (!conn_refuse_copy(c, *out)) {
            bool copy_in = PQresultStatus(*out) != PGRES_COPY_OUT;

            PQclear(*out);
            *out = NULL;
            conn_lost(c, err);
            if (copy_in)
                error_set(err, PGSTEP_EXIT_STEP_FAILED,
                          "COPY FROM STDIN in a step: pgstep sends no COPY data");
            return -1;
        }
        PQclear(*out);
        until_ms = 0; /* the statement's end follows at once */
    }
}

/* Whether an error result is libpq's own report of a connection that closed (no SQLSTATE, the
 * connection gone), rather than the server's answer to the statement. */
static bool conn_result_is_loss(const conn *c, const PGresult *res)
{
    return PQresultStatus(res) == PGRES_FATAL_ERROR && PQstatus(c->pg) == CONNECTION_BAD &&
           !PQresultErrorField(res, PG_DIAG_SQLSTATE);
}

/* Fills err from an error result: message, detail, hint, sqlstate, position. */
static void conn_result_error(const PGresult *res, int exit_code, pgstep_error *err)
{
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    /* A PANIC is not the step's error alone: the server ended every session to recover, and
     * stays down if it cannot (pg_wal full, say). The SQLSTATE does not tell. */
    bool panic = severity && strcmp(severity, "PANIC") == 0;

    if (!primary)
        primary = PQresultErrorMessage(res);
    error_set(err, exit_code, "%s%s", panic ? "PANIC: " : "",
              primary && primary[0] ? primary : "unknown error");
    if (detail)
        error_detail(err, "%s", detail);
    if (hint)
        error_hint(err, "%s", hint);
    if (sqlstate)
        snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
    err->position = position ? atoi(position) : 0;
}

bool conn_sqlstate_retryable(const char *sqlstate)
{
    static const char *const retryable[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available: apply.lock_timeout expired */
        "57P01", /* admin_shutdown */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now */
    };

    if (!sqlstate)
        return false;
    if (strncmp(sqlstate, "08", 2) == 0) /* connection exceptions */
        return true;
    for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++) {
        if (strcmp(sqlstate, retryable[i]) == 0)
            return true;
    }
    return false;
}

struct conn_rows {
    PGresult *res;
};

int conn_rows_count(const conn_rows *rows)
{
    return rows ? PQntuples(rows->res) : 0;
}

const char *conn_rows_value(const conn_rows *rows, int row, int col)
{
    if (!rows || row >= PQntuples(rows->res) || col >= PQnfields(rows->res) ||
        PQgetisnull(rows->res, row, col))
        return NULL;
    return PQgetvalue(rows->res, row, col);
}

void conn_rows_free(conn_rows *rows)
{
    if (!rows)
        return;
    PQclear(rows->res);
    free(rows);
}

/* Hands res over as rows (it is cleared either way); NULL only when out of memory. */
static conn_rows *conn_rows_take(PGresult *res)
{
    conn_rows *rows = malloc(sizeof(*rows));

    if (!rows) {
        PQclear(res);
        return NULL;
    }
    rows->res = res;
    return rows;
}

static bool conn_out_of_memory(pgstep_error *err)
{
    return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
}

bool conn_query(conn *c, const char *sql, int nparams, const char *const *params, conn_rows **rows,
                pgstep_error *err)
{
    PGresult *last = NULL;
    PGresult *res;

    if (rows)
        *rows = NULL;
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0))
        return conn_lost(c, err);
    while (conn_get_result(c, 0, &res, err) > 0 && res) {
        PQclear(last);
        last = res;
    }
    if (error_is_set(err)) {
        PQclear(last);
        return false;
    }
    if (!last || conn_is_broken(c)) {
        PQclear(last);
        return conn_lost(c, err);
    }
    if (conn_result_is_loss(c, last)) {
        PQclear(last);
        return conn_lost(c, err);
    }
    if (PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK) {
        conn_result_error(last, PGSTEP_EXIT_STEP_FAILED, err);
        PQclear(last);
        return false;
    }
    if (!rows) {
        PQclear(last);
        return true;
    }
    return (*rows = conn_rows_take(last)) != NULL || conn_out_of_memory(err);
}

bool conn_pipeline_enter(conn *c, pgstep_error *err)
{
    /* Non-blocking, so that waiting for replies can go on sending while the server reads. */
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg))
        return conn_lost(c, err);
    return true;
}

bool conn_pipeline_exit(conn *c, pgstep_error *err)
{
    if (!PQexitPipelineMode(c->pg) || PQsetnonblocking(c->pg, 0) != 0)
        return conn_lost(c, err);
    return true;
}

bool conn_pipeline_send(conn *c, const char *sql, int nparams, const char *const *params,
                        pgstep_error *err)
{
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0))
        return conn_lost(c, err);
    return true;
}

bool conn_pipeline_begin(conn *c, pgstep_error *err)
{
    return conn_pipeline_send(c, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, err);
}

bool conn_pipeline_commit(conn *c, pgstep_error *err)
{
    return conn_pipeline_send(c, "COMMIT", 0, NULL, err);
}

bool conn_pipeline_flush_request(conn *c, pgstep_error *err)
{
    if (!PQsendFlushRequest(c->pg))
        return conn_lost(c, err);
    return true;
}

bool conn_pipeline_sync(conn *c, pgstep_error *err)
{
    if (!PQpipelineSync(c->pg))
        return conn_lost(c, err);
    return true;
}

conn_wait conn_pipeline_next(conn *c, int64_t until_ms, conn_reply *reply, pgstep_error *err)
{
    PGresult *res;
    PGresult *end;
    int got = conn_get_result(c, until_ms, &res, err);

    memset(reply, 0, sizeof(*reply));
    if (got == 0)
        return CONN_WAIT_TIMEOUT;
    if (got < 0 || !res) {
        if (!error_is_set(err))
            conn_lost(c, err);
        return CONN_WAIT_FAILED;
    }
    /* Each statement's results end with a NULL, which libpq hands out at once in pipeline mode,
     * without reading: a reply in hand is never lost to a connection that closes right after. */
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && (end = PQgetResult(c->pg))) {
        PQclear(end);
        conn_lost(c, err);
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "the server sent more results than statements");
    }
    if (error_is_set(err)) {
        PQclear(res);
        return CONN_WAIT_FAILED;
    }
    switch (PQresultStatus(res)) {
    case PGRES_PIPELINE_SYNC:
        reply->kind = CONN_REPLY_SYNC;
        break;
    case PGRES_PIPELINE_ABORTED:
        reply->kind = CONN_REPLY_SKIPPED;
        break;
    case PGRES_TUPLES_OK:
        reply->kind = CONN_REPLY_OK;
        if (!(reply->rows = conn_rows_take(res)))
            return conn_out_of_memory(err), CONN_WAIT_FAILED;
        return CONN_WAIT_REPLY;
    case PGRES_COMMAND_OK:
        reply->kind = CONN_REPLY_OK;
        break;
    default:
        if (conn_result_is_loss(c, res)) {
            PQclear(res);
            conn_lost(c, err);
            return CONN_WAIT_FAILED;
        }
        reply->kind = CONN_REPLY_ERROR;
        conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, &reply->error);
        break;
    }
    PQclear(res);
    return CONN_WAIT_REPLY;
}

void conn_reply_clear(conn_reply *reply)
{
    conn_rows_free(reply->rows);
    reply->rows = NULL;
}

bool conn_end_transaction(conn *c, pgstep_error *err)
{
    PGTransactionStatusType status = PQtransactionStatus(c->pg);

    if (status != PQTRANS_INTRANS && status != PQTRANS_INERROR)
        return true;
    return conn_query(c, "ROLLBACK", 0, NULL, NULL, err);
}
