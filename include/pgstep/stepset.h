/* The step set: a directory of V<version>__<description>.sql and R__<description>.sql files,
 * read, validated, substituted, split and checksummed before any connection is made. */
#ifndef PGSTEP_STEPSET_H
#define PGSTEP_STEPSET_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/error.h"
#include "pgstep/lexer.h"
#include "pgstep/vars.h"

typedef enum step_kind {
    STEP_VERSIONED,
    STEP_REPEATABLE,
} step_kind;

/* One validated step; read-only once loaded. */
typedef struct step {
    step_kind kind;
    long long version; /* > 0 for versioned steps, 0 for repeatable ones */
    char *description; /* from the file name, underscores kept */
    char *file_name;   /* base name, e.g. "V1__extensions.sql" */
    char *sql;         /* the SQL that is sent: LF line ends, variables substituted */
    size_t sql_len;
    char checksum[CHECKSUM_HEX_LEN + 1];
    char file_checksum[CHECKSUM_HEX_LEN + 1]; /* of the file's bytes as read, for pgstep.sum */
    bool no_transaction;                      /* -- pgstep: no-transaction */
    char *rerun_query;           /* -- pgstep: rerun-when <query>, substituted; NULL if none */
    lexer_statement *statements; /* statements of sql, in order; lines are lines of the file */
    size_t nstatements;
} step;

typedef struct stepset stepset;

/* The order steps apply in, and the identity a history row is matched by: versioned steps first,
 * by version; then repeatable steps, by description. Negative, zero or positive, as strcmp. */
int step_order(step_kind ka, long long va, const char *da, step_kind kb, long long vb,
               const char *db);

/* Parses a step file name, V<version>__<description>.sql or R__<description>.sql, into its kind,
 * version (0 for repeatable steps) and the offset of its description. Returns NULL for a step
 * name; else why it is not one, or "" for a name that is no step name at all. */
const char *stepset_parse_name(const char *name, step_kind *kind, long long *version,
                               size_t *desc_start);

/* Reads dir (not recursively) and validates every .sql file in it; other files are ignored.
 * Every problem is logged on its own line naming the file and line; if there was any, returns
 * false with err set to PGSTEP_EXIT_STEPSET. Steps are ordered: versioned by version, then
 * repeatable by description. */
bool stepset_load(const char *dir, const vars *v, stepset **out, pgstep_error *err);

void stepset_free(stepset *set);

/* The names of the files stepset_load reads in dir: every name ending in ".sql", valid or not,
 * in strcmp order, as a malloc'ed array of malloc'ed strings. */
bool stepset_list_files(const char *dir, char ***out, size_t *count, pgstep_error *err);

size_t stepset_count(const stepset *set);
const step *stepset_get(const stepset *set, size_t i);

/* The directory the set was read from, for messages. */
const char *stepset_dir(const stepset *set);

#endif /* PGSTEP_STEPSET_H */
