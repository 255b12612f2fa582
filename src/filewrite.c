/* Output files written through a temporary file and a rename (or a link, which refuses to
 * overwrite), so that a reader or a crash never sees half a key, manifest or signature. */
#include "pgstep/filewrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgstep/exitcode.h"

static bool filewrite_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

bool filewrite_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                      pgstep_error *err)
{
    char errbuf[128];
    char tmp[4096];
    int fd;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);

    if (n < 0 || (size_t)n >= sizeof(tmp))
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "could not write \"%s\": path too long", path);
    /* mkstemp creates the file 0600 and only its owner can widen that, before anything is in
     * it. */
    fd = mkstemp(tmp);
    if (fd < 0)
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "could not create a file beside \"%s\": %s",
                         path, error_errno_text(errno, errbuf, sizeof(errbuf)));
    if (fchmod(fd, mode) != 0 || !filewrite_all(fd, data, len) || fsync(fd) != 0) {
        int saved = errno;

        close(fd);
        unlink(tmp);
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "could not write \"%s\": %s", tmp,
                         error_errno_text(saved, errbuf, sizeof(errbuf)));
    }
    if (close(fd) != 0) {
        int saved = errno;

        unlink(tmp);
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "could not write \"%s\": %s", tmp,
                         error_errno_text(saved, errbuf, sizeof(errbuf)));
    }
    if (replace ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        int saved = errno;

        unlink(tmp);
        if (saved == EEXIST)
            return error_set(err, PGSTEP_EXIT_CANTCREAT, "file \"%s\" already exists", path);
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "could not create \"%s\": %s", path,
                         error_errno_text(saved, errbuf, sizeof(errbuf)));
    }
    if (!replace)
        unlink(tmp);
    return true;
}
