/* The error object every fallible function fills; main turns it into one log event and an exit
 * code. */
#ifndef PGSTEP_ERROR_H
#define PGSTEP_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#define ERROR_TEXT_MAX 1024

typedef struct pgstep_error {
    int exit_code;                /* PGSTEP_EXIT_..., 0 while no error is set */
    char message[ERROR_TEXT_MAX]; /* primary message: short, lowercase, no trailing period */
    char detail[ERROR_TEXT_MAX];  /* optional */
    char hint[ERROR_TEXT_MAX];    /* optional, a full sentence */
    char sqlstate[6];             /* optional, from the server */
    char file[256];               /* optional: config or step file at fault */
    int line;                     /* optional: line in that file, 0 if unknown */
    int position;                 /* optional: server's 1-based character position, or 0 */
} pgstep_error;

/* Resets err to "no error". */
void error_clear(pgstep_error *err);

/* Sets exit code and primary message; returns false so callers can `return error_set(...)`. */
bool error_set(pgstep_error *err, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the optional detail and hint texts. */
void error_detail(pgstep_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_hint(pgstep_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the file and line at fault. */
void error_location(pgstep_error *err, const char *file, int line);

/* True once error_set has been called. */
bool error_is_set(const pgstep_error *err);

/* strerror's text for errnum in buf, its first letter lowercased (unless it begins an acronym)
 * to read like the messages around it. */
const char *error_errno_text(int errnum, char *buf, size_t size);

#endif /* PGSTEP_ERROR_H */
