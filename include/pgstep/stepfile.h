/* One step file: read from the step directory, safely and capped, checked to be UTF-8 text
 * before anything parses it, with CRLF line endings turned into LF. */
#ifndef PGSTEP_STEPFILE_H
#define PGSTEP_STEPFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/error.h"

/* The largest step: a step file, and also its SQL with variables substituted. */
#define STEPFILE_MAX_SIZE (16 * 1024 * 1024)

/* Why a step file was refused. */
typedef struct stepfile_error {
    int line;         /* 1-based line at fault, 0 when the problem is the whole file */
    const char *hint; /* a full sentence, or NULL; static text */
    bool out_of_memory;
    char message[ERROR_TEXT_MAX];
} stepfile_error;

/* Reads dir/name into a malloc'ed, NUL-terminated *text of *len bytes with every CRLF turned
 * into LF (lines keep their numbers), and, unless file_checksum is NULL, the BLAKE2b-256 of the
 * bytes as read into it, so that what is used is what a manifest vouched for. A symbolic link is
 * followed only when it stays inside real_dir, the directory with its links resolved. Refuses what
 * is not a regular file, is over STEPFILE_MAX_SIZE, or is not text (a NUL byte, invalid UTF-8, a
 * byte order mark, nothing but white space): then fills err and returns false. The file name is not
 * part of err's message. */
bool stepfile_read(const char *dir, const char *real_dir, const char *name, char **text,
                   size_t *len, char file_checksum[CHECKSUM_HEX_LEN + 1], stepfile_error *err);

/* Reads dir/name as stored, with the same link rule, file type check and size cap as
 * stepfile_read, into a malloc'ed, NUL-terminated *data of *len bytes; no text checks. */
bool stepfile_read_bytes(const char *dir, const char *real_dir, const char *name, char **data,
                         size_t *len, stepfile_error *err);

/* The 1-based line that offset falls on. */
int stepfile_line_of(const char *text, size_t offset);

#endif /* PGSTEP_STEPFILE_H */
