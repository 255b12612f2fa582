/* Output files (manifest, keys, signatures) written whole or not at all. */
#ifndef PGSTEP_FILEWRITE_H
#define PGSTEP_FILEWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pgstep/error.h"

/* Writes len bytes to path through a temporary file in the same directory, created with mode,
 * flushed to disk and then renamed over path (replace) or linked to path only if path does not
 * exist yet (!replace). On any error nothing is left behind and err is set with
 * PGSTEP_EXIT_CANTCREAT. */
bool filewrite_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                      pgstep_error *err);

#endif /* PGSTEP_FILEWRITE_H */
