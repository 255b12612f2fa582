/* Connections: interruptible connect with a per-attempt timeout, failure classification for the
 * wait loop, interruptible queries, pipeline mode (the history and its facts in one round trip)
 * and multi-statement batches (many steps in one message). Query results are libpq PGresults;
 * every one handed out must be PQclear'ed by the caller. */
#ifndef PGSTEP_CONN_H
#define PGSTEP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pgstep/config.h"
#include "pgstep/error.h"
#include "pgstep/keepalive.h"

typedef struct conn conn;

/* Why a connection attempt failed, which decides whether waiting can help. */
typedef enum conn_failure {
    CONN_OK,
    CONN_FAIL_INVALID,     /* the connection string cannot be parsed: a configuration error */
    CONN_FAIL_UNREACHABLE, /* name not resolvable, connection refused, nothing listening */
    CONN_FAIL_TIMEOUT,     /* the attempt took longer than connection.connect_timeout */
    CONN_FAIL_STARTING,    /* the server answered 57P03: starting up, shutting down, recovering */
    CONN_FAIL_AUTH,        /* the server answered and rejected the credentials */
    CONN_FAIL_REJECTED,    /* the server answered with another error (pg_hba, unknown database) */
    CONN_FAIL_INTERRUPTED, /* SIGINT/SIGTERM arrived */
} conn_failure;

/* Opens a connection from the configuration (conninfo, then dbname, password and
 * application_name from pgstep's own settings), giving up at deadline_ms on the monotonic clock.
 * password may be NULL (libpq's environment and .pgpass apply). On failure returns NULL, sets
 * *failure and fills err with libpq's first message line. */
conn *conn_open(const pgstep_config *cfg, const char *password, int64_t deadline_ms,
                conn_failure *failure, pgstep_error *err);

/* Cancels any running query, then closes; NULL is fine. */
void conn_close(conn *c);

/* True once the connection is known to be broken. */
bool conn_is_broken(const conn *c);

/* The keepalive settings in effect on the connection's socket (keepalive.h). */
keepalive conn_keepalive(const conn *c);

/* Runs one statement with text parameters and waits for it, cancelling it if a signal arrives.
 * Returns the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK) or NULL with err filled from the
 * server error (exit code PGSTEP_EXIT_STEP_FAILED, or PGSTEP_EXIT_TEMPFAIL if the connection
 * was lost). */
PGresult *conn_query(conn *c, const char *sql, int nparams, const char *const *params,
                     pgstep_error *err);

/* Pipeline mode: queue statements and sync points without waiting, flush, then read results in
 * order. A statement that fails makes the server skip the rest up to the next sync point. */
bool conn_pipeline_enter(conn *c, pgstep_error *err);
bool conn_pipeline_exit(conn *c, pgstep_error *err);
bool conn_pipeline_send(conn *c, const char *sql, int nparams, const char *const *params,
                        pgstep_error *err);
bool conn_pipeline_sync(conn *c, pgstep_error *err);
/* Sends everything queued, reading input meanwhile so neither side can block the other. */
bool conn_pipeline_flush(conn *c, pgstep_error *err);
/* The result of the next queued item: a statement's result (any status, including
 * PGRES_FATAL_ERROR and PGRES_PIPELINE_ABORTED) or PGRES_PIPELINE_SYNC for a sync point.
 * NULL with err set if the connection broke or a signal arrived. */
PGresult *conn_pipeline_next(conn *c, pgstep_error *err);

/* Sends several statements as one simple Query message: the server runs them in order, each
 * explicit transaction in it committing on its own, and skips everything after an error. */
bool conn_batch_send(conn *c, const char *sql, pgstep_error *err);

/* The next statement's result of a batch; NULL once all have been read (err untouched), or
 * NULL with err set if the connection broke or a signal arrived (the batch is cancelled). */
PGresult *conn_batch_next(conn *c, pgstep_error *err);

/* Rolls back a transaction left open or failed by a pipeline; true if there was none. */
bool conn_end_transaction(conn *c, pgstep_error *err);

/* Fills err from an error result: message, detail, hint, sqlstate. */
void conn_result_error(const PGresult *res, int exit_code, pgstep_error *err);

/* PG_DIAG_STATEMENT_POSITION of an error result as a 1-based character index, or 0. */
int conn_error_position(const PGresult *res);

/* SQLSTATEs that may clear when the transaction is simply tried again. */
bool conn_sqlstate_retryable(const char *sqlstate);

#endif /* PGSTEP_CONN_H */
