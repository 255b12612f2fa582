/* Step checksums: BLAKE2b-256 of the SQL that is sent, CRLF normalised to LF, as lowercase hex. */
#ifndef PGSTEP_CHECKSUM_H
#define PGSTEP_CHECKSUM_H

#include <stddef.h>

#define CHECKSUM_HEX_LEN 64

/* Hashes sql, treating every CRLF pair as a single LF, into out (64 hex digits + NUL). */
void checksum_sql(const char *sql, size_t len, char out[CHECKSUM_HEX_LEN + 1]);

/* Hashes len bytes exactly as they are (no line-end normalisation), for the manifest. */
void checksum_bytes(const void *data, size_t len, char out[CHECKSUM_HEX_LEN + 1]);

/* Hashes a step checksum together with the result of its rerun-when query, so the step runs
 * again when either changes. A NULL result counts as distinct from every string. */
void checksum_with_fact(const char *step_hex, const char *fact, char out[CHECKSUM_HEX_LEN + 1]);

#endif /* PGSTEP_CHECKSUM_H */
