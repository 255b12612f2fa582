/* The manifest pgstep.sum: the list of a step set's files with the BLAKE2b-256 of each file's
 * bytes, so that a set that arrived partial, extended or edited is refused before connecting. */
#ifndef PGSTEP_MANIFEST_H
#define PGSTEP_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/error.h"

#define MANIFEST_FILE_NAME "pgstep.sum"
/* The first line; the number changes only with an incompatible format. */
#define MANIFEST_HEADER "pgstep-manifest 1"

typedef struct manifest manifest;

/* Writes the manifest text for n files (names in strcmp order, hashes as lowercase hex) into a
 * malloc'ed *text of *len bytes. A name that cannot be listed (a control character or a slash)
 * fails with *bad set to its index. */
bool manifest_format(const char *const *names, const char (*hashes)[CHECKSUM_HEX_LEN + 1], size_t n,
                     char **text, size_t *len, size_t *bad);

/* Parses and checks manifest text (header, one line per file in strcmp order, the closing
 * checksum over the lines before it). On failure returns false with the 1-based line at fault
 * in *line and the reason in why. */
bool manifest_parse(const char *text, size_t len, manifest **out, int *line, char *why,
                    size_t whylen);

void manifest_free(manifest *m);

size_t manifest_count(const manifest *m);
const char *manifest_name(const manifest *m, size_t i);
const char *manifest_hash(const manifest *m, size_t i);

/* The hash listed for name, or NULL if name is not listed. */
const char *manifest_find(const manifest *m, const char *name);

/* Reads dir/name (pgstep.sum, its signature) as stored, with the step files' rules for links
 * and size, into a malloc'ed *data of *len bytes. Errors set err with PGSTEP_EXIT_STEPSET,
 * naming the file. */
bool manifest_read_file(const char *dir, const char *name, char **data, size_t *len,
                        pgstep_error *err);

/* Reads every file of the step set in dir (stepset_list_files) and writes the manifest text for
 * it into a malloc'ed *text of *len bytes. With databases (NULL-terminated, or NULL), the files
 * are those of each database's subdirectory, listed as "database/file". Problems set err with
 * PGSTEP_EXIT_STEPSET. */
bool manifest_build(const char *dir, char *const *databases, char **text, size_t *len,
                    pgstep_error *err);

/* Compares dir (and databases, as manifest_build lists them) with m: logs each file that is
 * missing, unexpected or changed on its own line, then returns false with err set to
 * PGSTEP_EXIT_STEPSET if there was any. */
bool manifest_check(const manifest *m, const char *dir, char *const *databases, pgstep_error *err);

#endif /* PGSTEP_MANIFEST_H */
