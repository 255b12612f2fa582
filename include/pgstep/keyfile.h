/* Small files named on the command line or in the configuration: public keys, secret keys. */
#ifndef PGSTEP_KEYFILE_H
#define PGSTEP_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/error.h"

/* Reads the file at path (at most 64 KiB; links followed, as Kubernetes mounts ConfigMap and
 * Secret keys as links) into a NUL-terminated buffer: sodium_malloc'ed when guarded (free it
 * with keyfile_free), malloc'ed otherwise. what names the file in messages ("public key
 * file"); errors set err with exit_code. */
bool keyfile_read(const char *path, const char *what, bool guarded, int exit_code, char **out,
                  size_t *len, pgstep_error *err);

/* Frees a buffer from keyfile_read; guarded buffers are wiped. */
void keyfile_free(char *buf, bool guarded);

#endif /* PGSTEP_KEYFILE_H */
