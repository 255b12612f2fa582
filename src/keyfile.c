/* Small key files, read whole with a size cap; secret ones straight into guarded memory so that
 * no copy is left in the heap. */
#include "pgstep/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define KEYFILE_MAX_BYTES (64 * 1024)

void keyfile_free(char *buf, bool guarded)
{
    if (!buf)
        return;
    if (guarded)
        sodium_free(buf);
    else
        free(buf);
}

bool keyfile_read(const char *path, const char *what, bool guarded, int exit_code, char **out,
                  size_t *len, pgstep_error *err)
{
    char errbuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    size_t size = 0;

    *out = NULL;
    *len = 0;
    if (fd < 0)
        return error_set(err, exit_code, "could not open %s \"%s\": %s", what, path,
                         error_errno_text(errno, errbuf, sizeof(errbuf)));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        error_set(err, exit_code, "%s \"%s\" is not a regular file", what, path);
        goto fail;
    }
    buf = guarded ? sodium_malloc(KEYFILE_MAX_BYTES + 1) : malloc(KEYFILE_MAX_BYTES + 1);
    if (!buf) {
        error_set(err, exit_code, "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + size, KEYFILE_MAX_BYTES + 1 - size);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set(err, exit_code, "could not read %s \"%s\": %s", what, path,
                      error_errno_text(errno, errbuf, sizeof(errbuf)));
            goto fail;
        }
        if (n == 0)
            break;
        size += (size_t)n;
        if (size > KEYFILE_MAX_BYTES) {
            error_set(err, exit_code, "%s \"%s\" is larger than %d KiB", what, path,
                      KEYFILE_MAX_BYTES / 1024);
            goto fail;
        }
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return true;

fail:
    keyfile_free(buf, guarded);
    close(fd);
    return false;
}
