/* What the server sees of a step: each statement on its own, behind a comment naming the step
 * file and line, so that pg_stat_activity and the server log say which step runs; and the way
 * back from a server error to that file and line. */
#ifndef PGSTEP_STEPTEXT_H
#define PGSTEP_STEPTEXT_H

#include <stddef.h>

#include "pgstep/error.h"
#include "pgstep/stepset.h"

/* Statement stmt of s as sent: "/" "* pgstep FILE:LINE *" "/ " and the statement (malloc'ed, or
 * NULL when out of memory). */
char *steptext_statement(const step *s, size_t stmt);

/* Names the step file in err, and the line when statement stmt (< nstatements) failed: the
 * server's position in the text sent, traced back to the file. */
void steptext_locate(const step *s, size_t stmt, pgstep_error *err);

#endif /* PGSTEP_STEPTEXT_H */
