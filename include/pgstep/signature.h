/* minisign signatures: Ed25519 over the BLAKE2b-512 of a file ("ED", what minisign makes by
 * default) or over the file itself ("Ed", the legacy form), plus a global signature that binds
 * the trusted comment to them. */
#ifndef PGSTEP_SIGNATURE_H
#define PGSTEP_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/sigkey.h"

#define SIGNATURE_SUFFIX ".minisig"
/* minisign's limit for a trusted comment, its terminating NUL excluded. */
#define SIGNATURE_COMMENT_MAX 8191

typedef struct signature {
    bool prehashed; /* "ED" rather than "Ed" */
    unsigned char key_id[SIGKEY_ID_BYTES];
    unsigned char sig[crypto_sign_BYTES];
    char trusted_comment[SIGNATURE_COMMENT_MAX + 1];
    unsigned char global_sig[crypto_sign_BYTES];
} signature;

/* Parses the text of a .minisig file. */
bool signature_parse(const char *text, size_t len, signature *out, char *why, size_t whylen);

typedef enum signature_check {
    SIGNATURE_VALID,
    SIGNATURE_BAD_DATA,    /* the signature does not cover these bytes with this key */
    SIGNATURE_BAD_COMMENT, /* the trusted comment is not the one that was signed */
} signature_check;

/* Checks sig over data with key (whose id the caller has matched). */
signature_check signature_verify(const signature *sig, const sigkey_public *key, const void *data,
                                 size_t len);

/* Signs data (prehashed) and returns the text of a .minisig file, malloc'ed. trusted_comment
 * must be one line of at most SIGNATURE_COMMENT_MAX bytes. */
char *signature_create(const sigkey_secret *sec, const void *data, size_t len,
                       const char *trusted_comment);

#endif /* PGSTEP_SIGNATURE_H */
