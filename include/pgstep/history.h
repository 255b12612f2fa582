/* The history table (by default pgstep.history): its creation, one read of what was applied,
 * and the SQL that the apply pipeline sends to lock, re-check and record a step. */
#ifndef PGSTEP_HISTORY_H
#define PGSTEP_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"
#include "pgstep/stepset.h"

/* The latest record of one step. */
typedef struct history_entry {
    step_kind kind;
    long long version; /* versioned steps */
    char *description;
    char *file_name;
    char checksum[CHECKSUM_HEX_LEN + 1];
    char *applied_at; /* as the server formats timestamptz */
} history_entry;

typedef struct history history;

/* pgstep's server-side objects: schema, table, unique index, and two functions whose plans
 * the server caches per session, so that the per-step bookkeeping costs little. */
#define HISTORY_CREATE_COUNT 5

/* SQLSTATEs raised by step_begin. */
#define HISTORY_SQLSTATE_LOCK_BUSY "PGS01"
#define HISTORY_SQLSTATE_APPLIED   "PGS02"
/* The detail of PGS02, followed by the run id of the row found and a period. */
#define HISTORY_APPLIED_BY "Applied by run "

/* The SQL pgstep sends about its history, built once for the configured schema. */
typedef struct history_sql {
    char *create[HISTORY_CREATE_COUNT]; /* each idempotent; run under the lock */
    char *select;                       /* latest entry per step */
    char *run_rows;   /* kind, version, description, checksum of what run $1 recorded */
    char *exists;     /* whether the table exists, and the functions of this version */
    char *begin_fn;   /* qualified name of step_begin(lock key, kind, version, description,
                       * checksum, statement_timeout, lock_timeout): takes the transaction lock
                       * or raises PGS01, re-checks the history or raises PGS02, sets the
                       * timeouts */
    char *end_fn;     /* qualified name of step_end(kind, version, description, file name,
                       * checksum, duration_ms (NULL: measured since step_begin), run id,
                       * pgstep version, client host): records the step, returns duration_ms */
    char *step_begin; /* SELECT begin_fn($1, ..., $7) */
    char *step_end;   /* SELECT end_fn($1, ..., $9) */
} history_sql;

bool history_sql_build(const char *schema, history_sql *out);
void history_sql_free(history_sql *sql);

/* Reads, in one round trip and a read-only transaction, the result of every step's rerun-when
 * query (facts[i] for step i, NULL when the step has none or the query returned NULL; the array
 * and its strings are malloc'ed) and the latest history entry of every step. A missing table is
 * an empty history. A failing rerun-when query names its step in err. */
bool history_read(conn *c, const history_sql *sql, const stepset *set, history **out, char ***facts,
                  pgstep_error *err);

void history_free(history *h);
void history_facts_free(char **facts, size_t n);

/* Whether the table and the functions of this pgstep version existed when it was read. */
bool history_installed(const history *h);

size_t history_count(const history *h);
const history_entry *history_get(const history *h, size_t i);
const history_entry *history_find(const history *h, const step *s);

#endif /* PGSTEP_HISTORY_H */
