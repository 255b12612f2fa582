/* The password of a signing key: from a file or typed on the terminal, never from the command
 * line or the environment, and only ever in guarded memory. */
#ifndef PGSTEP_PASSPHRASE_H
#define PGSTEP_PASSPHRASE_H

#include <stdbool.h>

#include "pgstep/error.h"

/* Reads the password from file (see secret_read_file) or, when file is NULL, from the
 * controlling terminal with echo off, showing prompt; confirm asks a second time and requires
 * the same answer. The password is sodium_malloc'ed at *out; free it with secret_free. */
bool passphrase_get(const char *file, const char *prompt, bool confirm, char **out,
                    pgstep_error *err);

#endif /* PGSTEP_PASSPHRASE_H */
