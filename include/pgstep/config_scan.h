/* The configuration's text, read by pgstep before libconfig parses it. libconfig opens @include
 * files itself (blocking on a FIFO, failing obscurely on a directory) and wraps integer literals
 * that do not fit 32 bits; so the file and everything it includes is read here first, as
 * regular files within one size cap, and such literals are noted to be reported as written. */
#ifndef PGSTEP_CONFIG_SCAN_H
#define PGSTEP_CONFIG_SCAN_H

#include <stdbool.h>

#include "pgstep/error.h"

/* The configuration file and what it includes, together, may be this large and hold this many
 * settings: libconfig's time grows with the square of the settings in a group. */
#define CONFIG_SCAN_MAX_BYTES    (1024 * 1024)
#define CONFIG_SCAN_MAX_SETTINGS 1000

typedef struct config_scan config_scan;

/* Reads path and, recursively, every file it @includes (paths as libconfig resolves them).
 * A file that is not a regular file, cannot be read, or takes the total over
 * CONFIG_SCAN_MAX_BYTES or CONFIG_SCAN_MAX_SETTINGS sets err with PGSTEP_EXIT_CONFIG, naming the
 * file and the @include line. */
bool config_scan_read(const char *path, config_scan **out, pgstep_error *err);

/* The main file's text, NUL-terminated, for config_read_string. */
const char *config_scan_text(const config_scan *scan);

/* The integer literal assigned to group.name at line of file (NULL: the main file) as written,
 * if it does not fit the integer libconfig stores for it; else NULL. */
const char *config_scan_wide_integer(const config_scan *scan, const char *file, int line,
                                     const char *group, const char *name);

void config_scan_free(config_scan *scan);

#endif /* PGSTEP_CONFIG_SCAN_H */
