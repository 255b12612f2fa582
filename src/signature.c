/* minisign signature files: four lines, an untrusted comment, base64 of the algorithm ("ED" or
 * "Ed"), key id and signature, the trusted comment, and base64 of the global signature, which
 * covers the signature followed by the trusted comment's text. */
#include "pgstep/signature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNATURE_ALG_PREHASHED     "ED"
#define SIGNATURE_ALG_LEGACY        "Ed"
#define SIGNATURE_UNTRUSTED         "untrusted comment: "
#define SIGNATURE_TRUSTED           "trusted comment: "
#define SIGNATURE_DEFAULT_UNTRUSTED "signature from pgstep secret key"
#define SIGNATURE_RAW_SIZE          (2 + SIGKEY_ID_BYTES + crypto_sign_BYTES)
#define SIGNATURE_PREHASH_BYTES     crypto_generichash_BYTES_MAX

static bool signature_fail(char *why, size_t whylen, const char *text)
{
    snprintf(why, whylen, "%s", text);
    return false;
}

/* The next line of text from *pos: its start, length without LF (and CR), or NULL at the end. */
static const char *signature_line(const char *text, size_t len, size_t *pos, size_t *llen)
{
    const char *s = text + *pos;
    const char *nl;

    if (*pos >= len)
        return NULL;
    nl = memchr(s, '\n', len - *pos);
    *llen = nl ? (size_t)(nl - s) : len - *pos;
    *pos += *llen + (nl ? 1 : 0);
    if (*llen > 0 && s[*llen - 1] == '\r')
        (*llen)--;
    return s;
}

bool signature_parse(const char *text, size_t len, signature *out, char *why, size_t whylen)
{
    unsigned char raw[SIGNATURE_RAW_SIZE];
    size_t pos = 0, llen = 0, tlen = strlen(SIGNATURE_TRUSTED);
    const char *line;

    memset(out, 0, sizeof(*out));
    line = signature_line(text, len, &pos, &llen);
    if (!line || llen < strlen(SIGNATURE_UNTRUSTED) ||
        memcmp(line, SIGNATURE_UNTRUSTED, strlen(SIGNATURE_UNTRUSTED)) != 0)
        return signature_fail(why, whylen, "line 1 is not an \"untrusted comment:\" line");
    line = signature_line(text, len, &pos, &llen);
    if (!line || !sigkey_base64(line, llen, raw, sizeof(raw)))
        return signature_fail(why, whylen, "line 2 is not a base64 minisign signature");
    if (memcmp(raw, SIGNATURE_ALG_PREHASHED, 2) == 0)
        out->prehashed = true;
    else if (memcmp(raw, SIGNATURE_ALG_LEGACY, 2) != 0)
        return signature_fail(why, whylen,
                              "unsupported signature algorithm (expected \"ED\" or \"Ed\")");
    memcpy(out->key_id, raw + 2, SIGKEY_ID_BYTES);
    memcpy(out->sig, raw + 2 + SIGKEY_ID_BYTES, crypto_sign_BYTES);
    line = signature_line(text, len, &pos, &llen);
    if (!line || llen < tlen || memcmp(line, SIGNATURE_TRUSTED, tlen) != 0)
        return signature_fail(why, whylen, "line 3 is not a \"trusted comment:\" line");
    if (llen - tlen > SIGNATURE_COMMENT_MAX)
        return signature_fail(why, whylen, "the trusted comment is too long");
    memcpy(out->trusted_comment, line + tlen, llen - tlen);
    out->trusted_comment[llen - tlen] = '\0';
    if (memchr(out->trusted_comment, '\0', llen - tlen))
        return signature_fail(why, whylen, "the trusted comment contains a NUL byte");
    line = signature_line(text, len, &pos, &llen);
    if (!line || !sigkey_base64(line, llen, out->global_sig, crypto_sign_BYTES))
        return signature_fail(why, whylen, "line 4 is not a base64 global signature");
    /* White space only after the four lines. */
    for (; pos < len; pos++) {
        if (!strchr(" \t\r\n", text[pos]))
            return signature_fail(why, whylen, "unexpected text after line 4");
    }
    return true;
}

/* sig followed by the trusted comment: what the global signature covers. */
static unsigned char *signature_global_message(const unsigned char *sig, const char *comment,
                                               size_t *len)
{
    size_t clen = strlen(comment);
    unsigned char *msg = malloc(crypto_sign_BYTES + clen);

    if (msg) {
        memcpy(msg, sig, crypto_sign_BYTES);
        memcpy(msg + crypto_sign_BYTES, comment, clen);
        *len = crypto_sign_BYTES + clen;
    }
    return msg;
}

signature_check signature_verify(const signature *sig, const sigkey_public *key, const void *data,
                                 size_t len)
{
    unsigned char hash[SIGNATURE_PREHASH_BYTES];
    unsigned char *global;
    size_t glen = 0;
    int rc;

    if (sig->prehashed) {
        crypto_generichash(hash, sizeof(hash), data, len, NULL, 0);
        rc = crypto_sign_verify_detached(sig->sig, hash, sizeof(hash), key->pk);
    } else {
        rc = crypto_sign_verify_detached(sig->sig, data, len, key->pk);
    }
    if (rc != 0)
        return SIGNATURE_BAD_DATA;
    global = signature_global_message(sig->sig, sig->trusted_comment, &glen);
    if (!global)
        return SIGNATURE_BAD_COMMENT;
    rc = crypto_sign_verify_detached(sig->global_sig, global, glen, key->pk);
    free(global);
    return rc == 0 ? SIGNATURE_VALID : SIGNATURE_BAD_COMMENT;
}

char *signature_create(const sigkey_secret *sec, const void *data, size_t len,
                       const char *trusted_comment)
{
    unsigned char hash[SIGNATURE_PREHASH_BYTES];
    unsigned char raw[SIGNATURE_RAW_SIZE];
    unsigned char global_sig[crypto_sign_BYTES];
    char b64sig[sodium_base64_ENCODED_LEN(SIGNATURE_RAW_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    char b64global[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    unsigned char *global;
    size_t glen = 0, size;
    char *text;

    if (strlen(trusted_comment) > SIGNATURE_COMMENT_MAX || strchr(trusted_comment, '\n') ||
        strchr(trusted_comment, '\r'))
        return NULL;
    crypto_generichash(hash, sizeof(hash), data, len, NULL, 0);
    memcpy(raw, SIGNATURE_ALG_PREHASHED, 2);
    memcpy(raw + 2, sec->id, SIGKEY_ID_BYTES);
    crypto_sign_detached(raw + 2 + SIGKEY_ID_BYTES, NULL, hash, sizeof(hash), sec->sk);
    global = signature_global_message(raw + 2 + SIGKEY_ID_BYTES, trusted_comment, &glen);
    if (!global)
        return NULL;
    crypto_sign_detached(global_sig, NULL, global, glen, sec->sk);
    free(global);
    sodium_bin2base64(b64sig, sizeof(b64sig), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64global, sizeof(b64global), global_sig, sizeof(global_sig),
                      sodium_base64_VARIANT_ORIGINAL);
    size = strlen(SIGNATURE_UNTRUSTED) + strlen(SIGNATURE_DEFAULT_UNTRUSTED) + sizeof(b64sig) +
           strlen(SIGNATURE_TRUSTED) + strlen(trusted_comment) + sizeof(b64global) + 8;
    if (!(text = malloc(size)))
        return NULL;
    snprintf(text, size, "%s%s\n%s\n%s%s\n%s\n", SIGNATURE_UNTRUSTED, SIGNATURE_DEFAULT_UNTRUSTED,
             b64sig, SIGNATURE_TRUSTED, trusted_comment, b64global);
    return text;
}
