/* Capped whole-file reads of regular files, the one reader behind step files, password files
 * and the configuration. */
#include "pgstep/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pgstep/error.h"

const file_read_memory file_read_heap = {malloc, free};

int file_read_open(const char *path, int flags)
{
    return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags);
}

/* A buffer of capacity + 1 bytes holding the size bytes of old; old is released. */
static char *file_read_grow(const file_read_memory *mem, char *old, size_t size, size_t capacity)
{
    char *grown = mem->alloc(capacity + 1);

    if (grown && old)
        memcpy(grown, old, size);
    if (old)
        mem->release(old);
    return grown;
}

file_read_status file_read_fd(int fd, size_t max, const file_read_memory *mem, char **out,
                              size_t *len, int *errnum)
{
    file_read_status status = FILE_READ_OK;
    struct stat st;
    char *buf = NULL;
    size_t size = 0, capacity;

    *out = NULL;
    *len = 0;
    *errnum = 0;
    if (fstat(fd, &st) != 0) {
        *errnum = errno;
        status = FILE_READ_ERRNO;
        goto done;
    }
    /* The null device reads as empty without blocking: "-c /dev/null" means no settings. */
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3) {
        if (!(buf = file_read_grow(mem, NULL, 0, 1)))
            status = FILE_READ_NOMEM;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        status = FILE_READ_NOT_REGULAR;
        goto done;
    }
    if ((unsigned long long)st.st_size > max) {
        status = FILE_READ_TOO_LARGE;
        goto done;
    }
    /* One byte more than the file holds, to notice a file that grew meanwhile. */
    capacity = (size_t)st.st_size + 1;
    if (!(buf = file_read_grow(mem, NULL, 0, capacity))) {
        status = FILE_READ_NOMEM;
        goto done;
    }
    for (;;) {
        ssize_t got;

        if (size == capacity) {
            if (capacity > max) {
                status = FILE_READ_TOO_LARGE;
                goto done;
            }
            capacity = capacity > max / 2 ? max + 1 : capacity * 2;
            if (!(buf = file_read_grow(mem, buf, size, capacity))) {
                status = FILE_READ_NOMEM;
                goto done;
            }
        }
        got = read(fd, buf + size, capacity - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *errnum = errno;
            status = FILE_READ_ERRNO;
            goto done;
        }
        if (got == 0)
            break;
        size += (size_t)got;
        /* A short read of a regular file is its end: no second read needed to see EOF. */
        if (size < capacity)
            break;
    }
    if (size > max)
        status = FILE_READ_TOO_LARGE;

done:
    close(fd);
    if (status != FILE_READ_OK) {
        if (buf)
            mem->release(buf);
        return status;
    }
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return FILE_READ_OK;
}

file_read_status file_read_path(const char *path, int flags, size_t max,
                                const file_read_memory *mem, char **out, size_t *len, int *errnum)
{
    int fd = file_read_open(path, flags);

    if (fd < 0) {
        *out = NULL;
        *len = 0;
        *errnum = errno;
        return FILE_READ_ERRNO;
    }
    return file_read_fd(fd, max, mem, out, len, errnum);
}

const char *file_read_reason(file_read_status status, int errnum, size_t max, char *buf,
                             size_t size)
{
    switch (status) {
    case FILE_READ_OK:
        snprintf(buf, size, "no error");
        break;
    case FILE_READ_ERRNO:
        error_errno_text(errnum, buf, size);
        break;
    case FILE_READ_NOT_REGULAR:
        snprintf(buf, size, "not a regular file");
        break;
    case FILE_READ_TOO_LARGE:
        if (max >= 1024 * 1024 && max % (1024 * 1024) == 0)
            snprintf(buf, size, "larger than the limit of %zu MiB", max / (1024 * 1024));
        else
            snprintf(buf, size, "larger than the limit of %zu bytes", max);
        break;
    case FILE_READ_NOMEM:
        snprintf(buf, size, "out of memory");
        break;
    }
    return buf;
}
