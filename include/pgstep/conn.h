/* Connections: interruptible connect with a per-attempt timeout, failure classification for the
 * wait loop, pgstep's own queries with their rows as text, and pipeline mode (many statements in
 * flight, each reply read as it arrives). libpq's result objects never leave conn.c. */
#ifndef PGSTEP_CONN_H
#define PGSTEP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgstep/config.h"
#include "pgstep/error.h"
#include "pgstep/keepalive.h"

typedef struct conn conn;

/* Why a connection attempt failed, which decides whether waiting can help. */
typedef enum conn_failure {
    CONN_OK,
    CONN_FAIL_INVALID,      /* the connection string cannot be parsed: a configuration error */
    CONN_FAIL_UNREACHABLE,  /* name not resolvable, connection refused, nothing listening */
    CONN_FAIL_TIMEOUT,      /* the attempt took longer than connection.connect_timeout */
    CONN_FAIL_STARTING,     /* the server answered 57P03: starting up, shutting down, recovering */
    CONN_FAIL_AUTH,         /* the server answered and rejected the credentials */
    CONN_FAIL_REJECTED,     /* the server answered with another error (pg_hba, unknown database) */
    CONN_FAIL_TLS,          /* TLS failed: certificate not trusted or not for the host, no TLS */
    CONN_FAIL_NOT_WRITABLE, /* target_session_attrs turned away a standby or read-only session */
    CONN_FAIL_INTERRUPTED,  /* SIGINT/SIGTERM arrived */
} conn_failure;

/* Opens a connection from the configuration (conninfo, then dbname, password and
 * application_name from pgstep's own settings), giving up at deadline_ms on the monotonic clock.
 * password may be NULL (libpq's environment and .pgpass apply). On failure returns NULL, sets
 * *failure and fills err with libpq's first message line. */
conn *conn_open(const pgstep_config *cfg, const char *password, int64_t deadline_ms,
                conn_failure *failure, pgstep_error *err);

/* conn_open to the very server beside is connected to (its host, address and port), whatever
 * other hosts the connection string names. */
conn *conn_open_beside(const conn *beside, const pgstep_config *cfg, const char *password,
                       int64_t deadline_ms, conn_failure *failure, pgstep_error *err);

/* Cancels any running query, then closes; NULL is fine. */
void conn_close(conn *c);

/* True once the connection is known to be broken. */
bool conn_is_broken(const conn *c);

/* The keepalive settings in effect on the connection's socket (keepalive.h). */
keepalive conn_keepalive(const conn *c);

/* A query's rows as text, for the modules that own pgstep's statements (history, lock, primary,
 * activity); nothing else sees libpq's results. */
typedef struct conn_rows conn_rows;

int conn_rows_count(const conn_rows *rows);
/* The value at (row, col) as text, or NULL for SQL NULL or outside the rows. */
const char *conn_rows_value(const conn_rows *rows, int row, int col);
void conn_rows_free(conn_rows *rows);

/* Runs one of pgstep's own statements with text parameters and waits for it, cancelling it if a
 * signal arrives. *rows (when rows is not NULL) receives its rows. False with err filled from the
 * server error (exit code PGSTEP_EXIT_STEP_FAILED, or PGSTEP_EXIT_TEMPFAIL if the connection was
 * lost). Only for the modules that own pgstep's statements. */
bool conn_query(conn *c, const char *sql, int nparams, const char *const *params, conn_rows **rows,
                pgstep_error *err);

/* Pipeline mode: queue statements, flush requests and sync points without waiting, then read one
 * reply per queued item, in order, as each arrives. A statement that fails makes the server skip
 * the rest up to the next sync point. Each statement travels on its own (extended protocol), so
 * the server shows and logs it alone. */
bool conn_pipeline_enter(conn *c, pgstep_error *err);
bool conn_pipeline_exit(conn *c, pgstep_error *err);
bool conn_pipeline_send(conn *c, const char *sql, int nparams, const char *const *params,
                        pgstep_error *err);
/* BEGIN ISOLATION LEVEL READ COMMITTED, and COMMIT: a step's transaction in a pipeline. READ
 * COMMITTED because each statement must see what other runners committed before it started (a
 * database's default may say REPEATABLE READ). */
bool conn_pipeline_begin(conn *c, pgstep_error *err);
bool conn_pipeline_commit(conn *c, pgstep_error *err);
/* Asks the server to send what it has answered so far at this point of the queue, so that
 * replies arrive as they happen rather than at the sync point. */
bool conn_pipeline_flush_request(conn *c, pgstep_error *err);
bool conn_pipeline_sync(conn *c, pgstep_error *err);

typedef enum conn_reply_kind {
    CONN_REPLY_OK,      /* the statement succeeded; rows holds its rows, if it returned any */
    CONN_REPLY_ERROR,   /* the statement failed; error says how */
    CONN_REPLY_SKIPPED, /* not run, because an earlier statement before the sync point failed */
    CONN_REPLY_SYNC,    /* a sync point */
} conn_reply_kind;

typedef struct conn_reply {
    conn_reply_kind kind;
    conn_rows *rows;
    pgstep_error error; /* CONN_REPLY_ERROR: message, detail, hint, sqlstate, position */
} conn_reply;

typedef enum conn_wait {
    CONN_WAIT_REPLY,   /* *reply is filled; conn_reply_clear it */
    CONN_WAIT_TIMEOUT, /* until_ms came first; nothing was consumed */
    CONN_WAIT_FAILED,  /* the connection broke or a signal arrived: err says which */
} conn_wait;

/* Waits for the reply to the next queued item until until_ms on the monotonic clock (0: no
 * limit), sending what is still queued meanwhile. A signal cancels the running statement. */
conn_wait conn_pipeline_next(conn *c, int64_t until_ms, conn_reply *reply, pgstep_error *err);
void conn_reply_clear(conn_reply *reply);

/* The backend's process id, as pg_stat_activity shows it (through PgBouncer: PgBouncer's). */
int conn_backend_pid(const conn *c);

/* "host:port" of the server connected to: with several hosts, the one libpq chose. */
void conn_server(const conn *c, char *out, size_t size);

/* Rolls back a transaction left open or failed by a pipeline; true if there was none. */
bool conn_end_transaction(conn *c, pgstep_error *err);

/* SQLSTATEs that may clear when the transaction is simply tried again. */
bool conn_sqlstate_retryable(const char *sqlstate);

#endif /* PGSTEP_CONN_H */
