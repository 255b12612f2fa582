/* A batch: the text of one simple Query message holding a run of statements, such as several
 * steps' transactions, and where each statement starts, so that an error position the server
 * reports can be traced back to a step file and line. Pure: no I/O. */
#ifndef PGSTEP_BATCH_H
#define PGSTEP_BATCH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct batch batch;

batch *batch_new(void);
void batch_free(batch *b);

/* Empties the batch for reuse. */
void batch_reset(batch *b);

/* Appends one statement (without its ';') and a terminator. owner and stmt are the caller's
 * labels for it (e.g. plan item and statement index), returned by batch_locate. */
bool batch_append(batch *b, const char *sql, size_t len, size_t owner, size_t stmt);

/* The NUL-terminated text so far, and its length in bytes. */
const char *batch_text(const batch *b);
size_t batch_bytes(const batch *b);

/* The statement holding a 1-based character position of the whole text: its labels, and the
 * position relative to the statement's own start. False if the position is outside them. */
bool batch_locate(const batch *b, int position, size_t *owner, size_t *stmt, int *relative);

#endif /* PGSTEP_BATCH_H */
