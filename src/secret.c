/* Password files: read into guarded memory (never swapped, wiped on free), never logged. */
#include "pgstep/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "pgstep/exitcode.h"

/* Kubernetes secret files are tiny; a large file is a mistake, not a password. */
#define SECRET_MAX_BYTES 4096

static bool secret_fail(char *buf, int fd)
{
    if (buf)
        sodium_free(buf);
    if (fd >= 0)
        close(fd);
    return false;
}

bool secret_read_file(const char *path, char **out, pgstep_error *err)
{
    /* No O_NOFOLLOW: Kubernetes mounts secret keys as symbolic links into ..data/. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0;
    struct stat st;

    *out = NULL;
    if (fd < 0)
        return error_set(err, PGSTEP_EXIT_CONFIG, "could not open password file \"%s\": %s", path,
                         strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" is not a regular file", path);
        return secret_fail(buf, fd);
    }
    buf = sodium_malloc(SECRET_MAX_BYTES + 1);
    if (!buf) {
        error_set(err, PGSTEP_EXIT_NOMEM, "could not allocate memory for password file \"%s\"",
                  path);
        return secret_fail(buf, fd);
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, SECRET_MAX_BYTES + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set(err, PGSTEP_EXIT_CONFIG, "could not read password file \"%s\": %s", path,
                      strerror(errno));
            return secret_fail(buf, fd);
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SECRET_MAX_BYTES) {
            error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" is larger than %d bytes", path,
                      SECRET_MAX_BYTES);
            return secret_fail(buf, fd);
        }
    }
    close(fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (len == 0) {
        error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" is empty", path);
        return secret_fail(buf, -1);
    }
    if (memchr(buf, '\0', len) != NULL) {
        error_set(err, PGSTEP_EXIT_CONFIG, "password file \"%s\" contains a NUL byte", path);
        return secret_fail(buf, -1);
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
