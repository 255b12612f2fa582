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

/* The SQL pgstep sends about its history, built once for the configured schema. */
typedef struct history_sql {
    char *create[3]; /* schema, table and index, each idempotent */
    char *select;    /* latest entry per step */
    char *exists;    /* whether the table exists: no parameters */
    char *recheck_v; /* $1 version: fails with a message when already applied */
    char *recheck_r; /* $1 description, $2 checksum: same for repeatable steps */
    char *needs_v;   /* $1 version: true when the step still has to run */
    char *needs_r;   /* $1 description, $2 checksum */
    char *insert;    /* $1..$8, see history.c; RETURNING duration_ms */
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

/* Whether the table existed when it was read. */
bool history_table_exists(const history *h);

size_t history_count(const history *h);
const history_entry *history_get(const history *h, size_t i);
const history_entry *history_find(const history *h, const step *s);

#endif /* PGSTEP_HISTORY_H */
