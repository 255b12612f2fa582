/* Ed25519 key pairs in minisign's file formats, so that keys made by minisign and by pgstep work
 * with both. Secret keys live only in sodium_malloc'ed memory. */
#ifndef PGSTEP_SIGKEY_H
#define PGSTEP_SIGKEY_H

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#define SIGKEY_ID_BYTES   8
#define SIGKEY_ID_HEX_LEN 16

typedef struct sigkey_public {
    unsigned char id[SIGKEY_ID_BYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
} sigkey_public;

/* Held in sodium_malloc'ed memory: make with sigkey_generate or sigkey_secret_parse, release
 * with sigkey_secret_free. */
typedef struct sigkey_secret {
    unsigned char id[SIGKEY_ID_BYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
} sigkey_secret;

/* Decodes exactly want bytes of standard, padded base64 (all of b64[0..len), nothing else) into
 * out: the encoding of every binary line in minisign's files. */
bool sigkey_base64(const char *b64, size_t len, unsigned char *out, size_t want);

/* The key id as minisign shows it: 16 uppercase hex digits. */
void sigkey_id_hex(const unsigned char id[SIGKEY_ID_BYTES], char out[SIGKEY_ID_HEX_LEN + 1]);

/* Decodes a public key from its base64 form (the second line of a .pub file, or minisign -P's
 * argument); surrounding white space is ignored. */
bool sigkey_public_decode(const char *b64, size_t len, sigkey_public *out, char *why,
                          size_t whylen);

/* Parses the text of a public key file: an "untrusted comment:" line, then the base64 line. */
bool sigkey_public_parse(const char *text, size_t len, sigkey_public *out, char *why,
                         size_t whylen);

/* The text of a public key file for key, malloc'ed. */
char *sigkey_public_format(const sigkey_public *key);

/* A new random key pair; false only when memory cannot be had. */
bool sigkey_generate(sigkey_public *pub, sigkey_secret **sec);

/* The public half of a secret key. */
void sigkey_public_of(const sigkey_secret *sec, sigkey_public *pub);

/* Whether the secret key file text says its key is encrypted with a password; false on text
 * that is not a secret key file (sigkey_secret_parse then says why). */
bool sigkey_secret_encrypted(const char *text, size_t len);

/* Decodes the text of a secret key file, decrypting it with password when it is encrypted
 * (password is ignored otherwise). A wrong password fails the key's checksum. */
bool sigkey_secret_parse(const char *text, size_t len, const char *password, sigkey_secret **out,
                         char *why, size_t whylen);

/* The text of a secret key file for sec in sodium_malloc'ed memory (free with
 * sigkey_text_free), encrypted with password as minisign does (scrypt with minisign's default
 * cost), or unencrypted when password is NULL. */
bool sigkey_secret_format(const sigkey_secret *sec, const char *password, char **text, size_t *len);

void sigkey_text_free(char *text);
void sigkey_secret_free(sigkey_secret *sec);

#endif /* PGSTEP_SIGKEY_H */
