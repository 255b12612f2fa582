/* Minimal JSON string writing shared by the log and the status report. */
#ifndef PGSTEP_JSON_H
#define PGSTEP_JSON_H

#include <stdio.h>

/* Writes s as a quoted JSON string to f: control characters escaped, invalid UTF-8 as U+FFFD. */
void json_write_string(FILE *f, const char *s);

#endif /* PGSTEP_JSON_H */
