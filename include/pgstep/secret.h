/* Passwords: read from a file into guarded sodium memory and wiped after use. */
#ifndef PGSTEP_SECRET_H
#define PGSTEP_SECRET_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "pgstep/error.h"

/* Reads the password in path (trailing CR/LF stripped) into sodium_malloc'ed memory at *out.
 * Errors (missing, unreadable, empty, too large, NUL byte) set err with PGSTEP_EXIT_CONFIG. */
bool secret_read_file(const char *path, char **out, pgstep_error *err);

/* Whether a libpq connection string or URI may carry a password (a password keyword, or
 * user:password@ in a URI), so that it must not be shown. */
bool secret_in_conninfo(const char *conninfo);

/* Wipes and frees a secret from secret_read_file; NULL is fine. */
void secret_free(char *secret);

/* Frees an option list from libpq (PQconninfoParse, PQconninfo), which copies every option:
 * the values of password-like options are wiped first. NULL is fine. */
void secret_free_options(PQconninfoOption *options);

#endif /* PGSTEP_SECRET_H */
