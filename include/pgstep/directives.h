/* The "-- pgstep: ..." directives of a step file, and the check that a step without
 * "no-transaction" holds no statement that would end the transaction it runs in. */
#ifndef PGSTEP_DIRECTIVES_H
#define PGSTEP_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/lexer.h"

/* What the directives of one step file say. */
typedef struct directives {
    bool no_transaction; /* -- pgstep: no-transaction */
    char *rerun_query;   /* -- pgstep: rerun-when <query>, as written; malloc'ed, NULL if none */
    int rerun_line;      /* the line of the rerun-when directive */
} directives;

/* Receives one problem: the 1-based line (0 for none), a hint (a full sentence, or NULL) and
 * the message, which does not name the file. ctx is the caller's. */
typedef void directives_problem_fn(void *ctx, int line, const char *hint, const char *message);

/* Reads the directives from the leading block of blank and "--" lines of text into d, which
 * must start zeroed; rerun-when is allowed only when repeatable. Every problem goes to problem;
 * returns false if there was any. The caller frees d->rerun_query, also on failure. */
bool directives_parse(const char *text, size_t len, bool repeatable, directives *d,
                      directives_problem_fn *problem, void *ctx);

/* Reports to problem every statement of sql (split into nstatements statements) that is a
 * transaction control command, for a step that runs in a transaction. */
void directives_check_transaction_control(const char *sql, const lexer_statement *statements,
                                          size_t nstatements, directives_problem_fn *problem,
                                          void *ctx);

/* Reports every COPY FROM STDIN or TO STDOUT: pgstep sends and reads no COPY data, and a COPY
 * that waits for data in the middle of a pipeline would break the connection. */
void directives_check_copy(const char *sql, const lexer_statement *statements, size_t nstatements,
                           directives_problem_fn *problem, void *ctx);

#endif /* PGSTEP_DIRECTIVES_H */
