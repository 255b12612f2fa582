/* Ed25519 key pairs in minisign's formats. A public key is "Ed", an 8-byte key id and the
 * 32-byte key, in base64 under an untrusted comment line. A secret key file holds, in base64:
 * "Ed", the KDF ("Sc" for scrypt, two zero bytes for none), "B2", a 32-byte salt, the scrypt
 * opslimit and memlimit (64-bit little endian), then key id, secret key and a BLAKE2b-256
 * checksum of "Ed" || key id || secret key, those three XORed with scrypt's output when
 * encrypted. */
#include "pgstep/sigkey.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGKEY_ALG            "Ed"
#define SIGKEY_KDF_SCRYPT     "Sc"
#define SIGKEY_CHK_ALG        "B2"
#define SIGKEY_PUBLIC_COMMENT "untrusted comment: minisign public key "
#define SIGKEY_SECRET_COMMENT "untrusted comment: minisign encrypted secret key\n"
#define SIGKEY_COMMENT_PREFIX "untrusted comment: "

/* Offsets in a decoded secret key. */
#define SK_ALG         0
#define SK_KDF         2
#define SK_CHK_ALG     4
#define SK_SALT        6
#define SK_OPSLIMIT    (SK_SALT + crypto_pwhash_scryptsalsa208sha256_SALTBYTES)
#define SK_MEMLIMIT    (SK_OPSLIMIT + 8)
#define SK_KEYNUM      (SK_MEMLIMIT + 8) /* key id, secret key, checksum: the encrypted part */
#define SK_ID          SK_KEYNUM
#define SK_SK          (SK_ID + SIGKEY_ID_BYTES)
#define SK_CHK         (SK_SK + crypto_sign_SECRETKEYBYTES)
#define SK_SIZE        (SK_CHK + crypto_generichash_BYTES)
#define SK_KEYNUM_SIZE (SK_SIZE - SK_KEYNUM)

#define PK_SIZE (2 + SIGKEY_ID_BYTES + crypto_sign_PUBLICKEYBYTES)

/* minisign's default cost: libsodium's "sensitive" scrypt limits. A key file may ask for less,
 * never for more, so that a crafted file cannot make pgstep allocate without bound. */
#define SIGKEY_OPSLIMIT crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE
#define SIGKEY_MEMLIMIT crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE

static bool sigkey_fail(char *why, size_t whylen, const char *text)
{
    snprintf(why, whylen, "%s", text);
    return false;
}

void sigkey_id_hex(const unsigned char id[SIGKEY_ID_BYTES], char out[SIGKEY_ID_HEX_LEN + 1])
{
    /* minisign prints the id as a little-endian 64-bit number. */
    for (size_t i = 0; i < SIGKEY_ID_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02X", id[SIGKEY_ID_BYTES - 1 - i]);
}

bool sigkey_base64(const char *b64, size_t len, unsigned char *out, size_t want)
{
    size_t got = 0;
    const char *end = NULL;

    if (sodium_base642bin(out, want, b64, len, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) !=
        0)
        return false;
    return got == want && end == b64 + len;
}

bool sigkey_public_decode(const char *b64, size_t len, sigkey_public *out, char *why, size_t whylen)
{
    unsigned char raw[PK_SIZE];

    while (len > 0 && strchr(" \t\r\n", b64[0])) {
        b64++;
        len--;
    }
    while (len > 0 && strchr(" \t\r\n", b64[len - 1]))
        len--;
    if (!sigkey_base64(b64, len, raw, sizeof(raw)))
        return sigkey_fail(why, whylen,
                           "not a minisign public key (expected 56 base64 characters)");
    if (memcmp(raw, SIGKEY_ALG, 2) != 0)
        return sigkey_fail(why, whylen, "unsupported key algorithm (expected Ed25519, \"Ed\")");
    memcpy(out->id, raw + 2, SIGKEY_ID_BYTES);
    memcpy(out->pk, raw + 2 + SIGKEY_ID_BYTES, crypto_sign_PUBLICKEYBYTES);
    return true;
}

/* Finds the base64 line after the untrusted comment line; its length in *blen. */
static const char *sigkey_second_line(const char *text, size_t len, size_t *blen)
{
    const char *nl;
    const char *b64;
    const char *end;

    if (len < strlen(SIGKEY_COMMENT_PREFIX) ||
        memcmp(text, SIGKEY_COMMENT_PREFIX, strlen(SIGKEY_COMMENT_PREFIX)) != 0)
        return NULL;
    if (!(nl = memchr(text, '\n', len)))
        return NULL;
    b64 = nl + 1;
    end = memchr(b64, '\n', len - (size_t)(b64 - text));
    *blen = end ? (size_t)(end - b64) : len - (size_t)(b64 - text);
    /* Nothing but white space may follow. */
    for (const char *p = b64 + *blen; p < text + len; p++) {
        if (!strchr(" \t\r\n", *p))
            return NULL;
    }
    return b64;
}

bool sigkey_public_parse(const char *text, size_t len, sigkey_public *out, char *why, size_t whylen)
{
    size_t blen;
    const char *b64 = sigkey_second_line(text, len, &blen);

    if (!b64)
        return sigkey_fail(why, whylen,
                           "not a minisign public key file (an \"untrusted comment:\" line, "
                           "then the key)");
    return sigkey_public_decode(b64, blen, out, why, whylen);
}

char *sigkey_public_format(const sigkey_public *key)
{
    unsigned char raw[PK_SIZE];
    char b64[sodium_base64_ENCODED_LEN(PK_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    char id[SIGKEY_ID_HEX_LEN + 1];
    size_t size = sizeof(SIGKEY_PUBLIC_COMMENT) + sizeof(id) + sizeof(b64) + 2;
    char *text = malloc(size);

    if (!text)
        return NULL;
    memcpy(raw, SIGKEY_ALG, 2);
    memcpy(raw + 2, key->id, SIGKEY_ID_BYTES);
    memcpy(raw + 2 + SIGKEY_ID_BYTES, key->pk, crypto_sign_PUBLICKEYBYTES);
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    sigkey_id_hex(key->id, id);
    snprintf(text, size, "%s%s\n%s\n", SIGKEY_PUBLIC_COMMENT, id, b64);
    return text;
}

static sigkey_secret *sigkey_secret_new(void)
{
    sigkey_secret *sec = sodium_malloc(sizeof(*sec));

    if (sec)
        sodium_memzero(sec, sizeof(*sec));
    return sec;
}

void sigkey_secret_free(sigkey_secret *sec)
{
    if (sec)
        sodium_free(sec);
}

void sigkey_text_free(char *text)
{
    if (text)
        sodium_free(text);
}

bool sigkey_generate(sigkey_public *pub, sigkey_secret **sec)
{
    sigkey_secret *s = sigkey_secret_new();

    *sec = NULL;
    if (!s)
        return false;
    randombytes_buf(s->id, SIGKEY_ID_BYTES);
    crypto_sign_keypair(pub->pk, s->sk);
    memcpy(pub->id, s->id, SIGKEY_ID_BYTES);
    *sec = s;
    return true;
}

void sigkey_public_of(const sigkey_secret *sec, sigkey_public *pub)
{
    memcpy(pub->id, sec->id, SIGKEY_ID_BYTES);
    crypto_sign_ed25519_sk_to_pk(pub->pk, sec->sk);
}

static uint64_t sigkey_le64_load(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sigkey_le64_store(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void sigkey_checksum(const unsigned char *raw, unsigned char out[crypto_generichash_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)SIGKEY_ALG, 2);
    crypto_generichash_update(&st, raw + SK_ID, SIGKEY_ID_BYTES + crypto_sign_SECRETKEYBYTES);
    crypto_generichash_final(&st, out, crypto_generichash_BYTES);
    sodium_memzero(&st, sizeof(st)); /* it has absorbed the secret key */
}

/* XORs the key id, secret key and checksum in raw with scrypt(password); false if scrypt
 * cannot run (out of memory). */
static bool sigkey_crypt(unsigned char *raw, const char *password)
{
    unsigned char *stream = sodium_malloc(SK_KEYNUM_SIZE);
    bool ok;

    if (!stream)
        return false;
    ok = crypto_pwhash_scryptsalsa208sha256(stream, SK_KEYNUM_SIZE, password, strlen(password),
                                            raw + SK_SALT,
                                            (unsigned long long)sigkey_le64_load(raw + SK_OPSLIMIT),
                                            (size_t)sigkey_le64_load(raw + SK_MEMLIMIT)) == 0;
    if (ok) {
        for (size_t i = 0; i < SK_KEYNUM_SIZE; i++)
            raw[SK_KEYNUM + i] ^= stream[i];
    }
    sodium_free(stream);
    return ok;
}

/* Decodes secret key file text into raw (SK_SIZE bytes). */
static bool sigkey_secret_decode(const char *text, size_t len, unsigned char *raw)
{
    size_t blen;
    const char *b64 = sigkey_second_line(text, len, &blen);

    while (b64 && blen > 0 && strchr(" \t\r", b64[blen - 1]))
        blen--;
    return b64 && sigkey_base64(b64, blen, raw, SK_SIZE) &&
           memcmp(raw + SK_ALG, SIGKEY_ALG, 2) == 0 &&
           memcmp(raw + SK_CHK_ALG, SIGKEY_CHK_ALG, 2) == 0;
}

bool sigkey_secret_encrypted(const char *text, size_t len)
{
    unsigned char *raw = sodium_malloc(SK_SIZE);
    bool encrypted;

    if (!raw)
        return false;
    encrypted =
        sigkey_secret_decode(text, len, raw) && memcmp(raw + SK_KDF, SIGKEY_KDF_SCRYPT, 2) == 0;
    sodium_free(raw);
    return encrypted;
}

/* Whether the secret key's public half is the one its seed makes: a last check that what was
 * decrypted is a key, and the only one for unencrypted keys whose checksum minisign leaves
 * zero. */
static bool sigkey_consistent(const unsigned char *sk)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char *again = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    bool same;

    if (!again)
        return false;
    crypto_sign_seed_keypair(pk, again, sk);
    same = sodium_memcmp(again, sk, crypto_sign_SECRETKEYBYTES) == 0;
    sodium_free(again);
    return same;
}

bool sigkey_secret_parse(const char *text, size_t len, const char *password, sigkey_secret **out,
                         char *why, size_t whylen)
{
    unsigned char *raw = sodium_malloc(SK_SIZE);
    unsigned char chk[crypto_generichash_BYTES];
    static const unsigned char zero[crypto_generichash_BYTES];
    sigkey_secret *sec = NULL;
    bool encrypted;
    bool ok = false;

    *out = NULL;
    if (!raw)
        return sigkey_fail(why, whylen, "out of memory");
    if (!sigkey_secret_decode(text, len, raw)) {
        sigkey_fail(why, whylen, "not a minisign secret key file");
        goto done;
    }
    encrypted = memcmp(raw + SK_KDF, SIGKEY_KDF_SCRYPT, 2) == 0;
    if (!encrypted && memcmp(raw + SK_KDF, "\0\0", 2) != 0) {
        sigkey_fail(why, whylen, "unsupported key derivation (expected scrypt, \"Sc\")");
        goto done;
    }
    if (encrypted) {
        if (sigkey_le64_load(raw + SK_OPSLIMIT) > SIGKEY_OPSLIMIT ||
            sigkey_le64_load(raw + SK_MEMLIMIT) > SIGKEY_MEMLIMIT) {
            sigkey_fail(why, whylen, "the key's scrypt cost exceeds minisign's largest");
            goto done;
        }
        if (!password) {
            sigkey_fail(why, whylen, "the key is encrypted and no password was given");
            goto done;
        }
        if (!sigkey_crypt(raw, password)) {
            sigkey_fail(why, whylen, "could not derive the key from the password: out of memory");
            goto done;
        }
    }
    sigkey_checksum(raw, chk);
    if (encrypted || sodium_memcmp(raw + SK_CHK, zero, sizeof(zero)) != 0) {
        if (sodium_memcmp(raw + SK_CHK, chk, sizeof(chk)) != 0) {
            sigkey_fail(why, whylen,
                        encrypted ? "wrong password (the decrypted key fails its checksum)"
                                  : "the key fails its checksum");
            goto done;
        }
    }
    if (!sigkey_consistent(raw + SK_SK)) {
        sigkey_fail(why, whylen, "the key is damaged (its public half does not match)");
        goto done;
    }
    if (!(sec = sigkey_secret_new())) {
        sigkey_fail(why, whylen, "out of memory");
        goto done;
    }
    memcpy(sec->id, raw + SK_ID, SIGKEY_ID_BYTES);
    memcpy(sec->sk, raw + SK_SK, crypto_sign_SECRETKEYBYTES);
    *out = sec;
    ok = true;

done:
    sodium_memzero(chk, sizeof(chk));
    sodium_free(raw);
    return ok;
}

bool sigkey_secret_format(const sigkey_secret *sec, const char *password, char **text, size_t *len)
{
    const size_t b64len = sodium_base64_ENCODED_LEN(SK_SIZE, sodium_base64_VARIANT_ORIGINAL);
    const size_t size = strlen(SIGKEY_SECRET_COMMENT) + b64len + 1;
    unsigned char *raw = sodium_malloc(SK_SIZE);
    char *out = sodium_malloc(size);
    bool ok = false;

    *text = NULL;
    *len = 0;
    if (!raw || !out)
        goto done;
    sodium_memzero(raw, SK_SIZE);
    memcpy(raw + SK_ALG, SIGKEY_ALG, 2);
    memcpy(raw + SK_CHK_ALG, SIGKEY_CHK_ALG, 2);
    memcpy(raw + SK_ID, sec->id, SIGKEY_ID_BYTES);
    memcpy(raw + SK_SK, sec->sk, crypto_sign_SECRETKEYBYTES);
    sigkey_checksum(raw, raw + SK_CHK);
    if (password) {
        memcpy(raw + SK_KDF, SIGKEY_KDF_SCRYPT, 2);
        randombytes_buf(raw + SK_SALT, crypto_pwhash_scryptsalsa208sha256_SALTBYTES);
        sigkey_le64_store(raw + SK_OPSLIMIT, SIGKEY_OPSLIMIT);
        sigkey_le64_store(raw + SK_MEMLIMIT, SIGKEY_MEMLIMIT);
        if (!sigkey_crypt(raw, password))
            goto done;
    }
    memcpy(out, SIGKEY_SECRET_COMMENT, strlen(SIGKEY_SECRET_COMMENT));
    sodium_bin2base64(out + strlen(SIGKEY_SECRET_COMMENT), b64len, raw, SK_SIZE,
                      sodium_base64_VARIANT_ORIGINAL);
    *len = strlen(out);
    out[(*len)++] = '\n';
    out[*len] = '\0';
    *text = out;
    out = NULL;
    ok = true;

done:
    if (raw)
        sodium_free(raw);
    if (out)
        sodium_free(out);
    return ok;
}
