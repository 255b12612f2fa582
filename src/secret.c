/* Password files: read into guarded memory (never swapped, wiped on free), never logged. */
#include "pgstep/secret.h"

#include <string.h>

#include <sodium.h>

#include "pgstep/exitcode.h"
#include "pgstep/file_read.h"

/* Kubernetes secret files are tiny; a large file is a mistake, not a password. */
#define SECRET_MAX_BYTES 4096

/* sodium_malloc'ed: guarded pages, wiped by sodium_free. */
static void secret_release(void *p)
{
    sodium_free(p);
}

static const file_read_memory secret_memory = {sodium_malloc, secret_release};

bool secret_read_file(const char *path, char **out, pgstep_error *err)
{
    char reason[128];
    file_read_status status;
    char *buf;
    size_t len;
    int errnum;

    *out = NULL;
    /* No O_NOFOLLOW: Kubernetes mounts secret keys as symbolic links into ..data/. */
    status = file_read_path(path, 0, SECRET_MAX_BYTES, &secret_memory, &buf, &len, &errnum);
    if (status != FILE_READ_OK) {
        file_read_reason(status, errnum, SECRET_MAX_BYTES, reason, sizeof(reason));
        if (status == FILE_READ_NOMEM)
            return error_set(err, PGSTEP_EXIT_NOMEM,
                             "could not allocate memory for password file \"%s\"", path);
        if (status == FILE_READ_ERRNO)
            return error_set(err, PGSTEP_EXIT_CONFIG, "could not read password file \"%s\": %s",
                             path, reason);
        return error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" is %s", path, reason);
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (len == 0) {
        sodium_free(buf);
        return error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" is empty", path);
    }
    if (memchr(buf, '\0', len) != NULL) {
        sodium_free(buf);
        return error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" contains a NUL byte", path);
    }
    sodium_mprotect_readonly(buf);
    *out = buf;
    return true;
}

void secret_free(char *secret)
{
    if (!secret)
        return;
    /* sodium_free wipes the whole allocation before releasing it. */
    sodium_mprotect_readwrite(secret);
    sodium_free(secret);
}

static int secret_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether uri, with its percent escapes decoded as libpq decodes them (in parameter names
 * too: "?%70assword=" is the password), names a password parameter. */
static bool secret_uri_names_password(const char *uri)
{
    size_t len = strlen(uri), n = 0;
    char *decoded = sodium_malloc(len + 1);
    bool found;

    /* Without memory to look, assume the worst: the caller then hides the string. */
    if (!decoded)
        return true;
    for (size_t i = 0; i < len; i++) {
        /* A NUL is no hex digit, so neither read passes the end. */
        int hi = uri[i] == '%' ? secret_hex_value(uri[i + 1]) : -1;
        int lo = hi >= 0 ? secret_hex_value(uri[i + 2]) : -1;

        if (lo >= 0) {
            decoded[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            decoded[n++] = uri[i];
        }
    }
    decoded[n] = '\0';
    found = strstr(decoded, "password") != NULL;
    sodium_free(decoded);
    return found;
}

bool secret_in_conninfo(const char *conninfo)
{
    const char *scheme = strstr(conninfo, "://");
    const char *at;

    if (strstr(conninfo, "password"))
        return true;
    if (!scheme)
        return false;
    if (strchr(scheme, '%') && secret_uri_names_password(scheme))
        return true;
    at = strchr(scheme + 3, '@');
    return at && memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) != NULL;
}

void secret_free_options(PQconninfoOption *options)
{
    for (PQconninfoOption *o = options; o && o->keyword; o++) {
        if (o->val && strstr(o->keyword, "password"))
            sodium_memzero(o->val, strlen(o->val));
    }
    PQconninfoFree(options);
}
