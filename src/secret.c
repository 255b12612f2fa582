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

bool secret_in_conninfo(const char *conninfo)
{
    const char *scheme = strstr(conninfo, "://");
    const char *at;

    if (strstr(conninfo, "password"))
        return true;
    if (!scheme)
        return false;
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
