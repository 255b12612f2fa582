/* Minimal JSON string writing shared by the log and the status report. */
#ifndef PGSTEP_JSON_H
#define PGSTEP_JSON_H

#include <stdio.h>

/* Writes s as a quoted JSON string (with escapes) to f. */
void json_write_string(FILE *f, const char *s);

#endif /* PGSTEP_JSON_H */
