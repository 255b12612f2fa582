/* The history table (by default pgstep.history): its creation, the reads of what was applied, and
 * the calls that lock, re-check and record each step. Every statement pgstep sends about its
 * history is a function here, and what comes back leaves as C values. */
#ifndef PGSTEP_HISTORY_H
#define PGSTEP_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"
#include "pgstep/lock.h"
#include "pgstep/stepset.h"

/* Room for a 64-bit integer as decimal text. */
#define HISTORY_INT_TEXT 24

/* The latest record of one step (or, read by run, one of the run's records). */
typedef struct history_entry {
    step_kind kind;
    long long version; /* versioned steps */
    char *description;
    char *file_name;
    char checksum[CHECKSUM_HEX_LEN + 1];
    char *applied_at; /* RFC 3339, UTC */
} history_entry;

typedef struct history history;

/* pgstep's statements about the history, built once for the configured schema. */
typedef struct history_sql history_sql;

history_sql *history_sql_new(const char *schema);
void history_sql_free(history_sql *sql);

/* One run's identity and settings, as step_begin and step_end take them. */
typedef struct history_run {
    char lock_key[LOCK_KEY_TEXT];
    char statement_timeout[HISTORY_INT_TEXT];
    char lock_timeout[HISTORY_INT_TEXT];
    char run_id[33]; /* random, hex */
    char host[256];  /* the client's host name: the pod in Kubernetes */
} history_run;

void history_run_init(history_run *run, const pgstep_config *cfg);

/* Reads, in one round trip and a read-only transaction, the result of every step's rerun-when
 * query (facts[i] for step i, NULL when the step has none or the query returned NULL; the array
 * and its strings are malloc'ed) and the latest history entry of every step. A missing table is
 * an empty history. A failing rerun-when query names its step in err. */
bool history_read(conn *c, const history_sql *sql, const stepset *set, history **out, char ***facts,
                  pgstep_error *err);

/* Reads what run recorded: after a lost connection, what survived. A missing table is an empty
 * history that is not installed. */
bool history_read_run(conn *c, const history_sql *sql, const history_run *run, history **out,
                      pgstep_error *err);

/* Creates the schema, table and functions, each idempotently, in one transaction that holds the
 * run's transaction-level advisory lock; *busy when another runner holds it (nothing done). */
bool history_create(conn *c, const history_sql *sql, const history_run *run, bool *busy,
                    pgstep_error *err);

/* Queues step_begin for step s, recorded with checksum: takes the transaction-level lock, or
 * fails; re-checks the history inside it; sets the run's timeouts and lets the transaction commit
 * without waiting for the WAL flush. Its reply tells what it found. */
bool history_send_step_begin(conn *c, const history_sql *sql, const history_run *run, const step *s,
                             const char *checksum, pgstep_error *err);

typedef enum history_begin {
    HISTORY_BEGIN_OK,               /* locked, not applied yet: go on */
    HISTORY_BEGIN_LOCK_BUSY,        /* another runner holds the lock */
    HISTORY_BEGIN_APPLIED_BY_RUN,   /* applied already, by this run (a reply lost with a link) */
    HISTORY_BEGIN_APPLIED_BY_OTHER, /* applied already, by another runner */
    HISTORY_BEGIN_FAILED,           /* any other failure: the reply's error says */
} history_begin;

history_begin history_step_begin_outcome(const history_run *run, const conn_reply *reply);

/* Queues step_end: the history row of step s. duration_ms < 0 lets the server measure since
 * step_begin. Its reply carries the duration recorded (history_step_end_duration). */
bool history_send_step_end(conn *c, const history_sql *sql, const history_run *run, const step *s,
                           const char *checksum, long long duration_ms, pgstep_error *err);
long long history_step_end_duration(const conn_reply *reply);

void history_free(history *h);
void history_facts_free(char **facts, size_t n);

/* Whether the table and the functions of this pgstep version existed when it was read. */
bool history_installed(const history *h);

size_t history_count(const history *h);
const history_entry *history_get(const history *h, size_t i);
const history_entry *history_find(const history *h, const step *s);

#endif /* PGSTEP_HISTORY_H */
