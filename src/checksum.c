/* Step checksums: BLAKE2b-256 (libsodium's crypto_generichash) as lowercase hex, so that a step
 * edited on Windows and on Unix yields the same value. */
#include "pgstep/checksum.h"

#include <string.h>

#include <sodium.h>

#define CHECKSUM_BYTES 32

/* Tags that keep a NULL fact apart from every string, the empty string included. */
#define CHECKSUM_FACT_NULL   'N'
#define CHECKSUM_FACT_STRING 'S'

static void checksum_begin(crypto_generichash_state *state)
{
    /* Idempotent. It can only fail for want of a random source, which hashing does not use;
     * the hash is then still right, just not the fastest implementation. */
    if (sodium_init() < 0) {
        /* nothing to do */
    }
    crypto_generichash_init(state, NULL, 0, CHECKSUM_BYTES);
}

static void checksum_end(crypto_generichash_state *state, char out[CHECKSUM_HEX_LEN + 1])
{
    unsigned char digest[CHECKSUM_BYTES];

    crypto_generichash_final(state, digest, sizeof(digest));
    sodium_bin2hex(out, CHECKSUM_HEX_LEN + 1, digest, sizeof(digest));
}

void checksum_sql(const char *sql, size_t len, char out[CHECKSUM_HEX_LEN + 1])
{
    crypto_generichash_state state;
    size_t start = 0;

    checksum_begin(&state);
    /* Feed the text in runs, leaving out the CR of every CRLF pair; a lone CR is kept. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (sql[i] == '\r' && sql[i + 1] == '\n') {
            crypto_generichash_update(&state, (const unsigned char *)sql + start, i - start);
            start = i + 1;
        }
    }
    crypto_generichash_update(&state, (const unsigned char *)sql + start, len - start);
    checksum_end(&state, out);
}

void checksum_bytes(const void *data, size_t len, char out[CHECKSUM_HEX_LEN + 1])
{
    crypto_generichash_state state;

    checksum_begin(&state);
    crypto_generichash_update(&state, data, len);
    checksum_end(&state, out);
}

void checksum_with_fact(const char *step_hex, const char *fact, char out[CHECKSUM_HEX_LEN + 1])
{
    crypto_generichash_state state;
    /* The NUL ends step_hex unambiguously; the tag tells NULL from a string. */
    const unsigned char separator = '\0';
    unsigned char tag = fact ? CHECKSUM_FACT_STRING : CHECKSUM_FACT_NULL;

    checksum_begin(&state);
    crypto_generichash_update(&state, (const unsigned char *)step_hex, strlen(step_hex));
    crypto_generichash_update(&state, &separator, 1);
    crypto_generichash_update(&state, &tag, 1);
    if (fact)
        crypto_generichash_update(&state, (const unsigned char *)fact, strlen(fact));
    checksum_end(&state, out);
}
