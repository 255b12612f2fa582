/* Whole-file reads with a size cap, of regular files only: a FIFO, a directory or a device is
 * refused without blocking, whoever names it (configuration, password file, step file). */
#ifndef PGSTEP_FILE_READ_H
#define PGSTEP_FILE_READ_H

#include <stddef.h>

typedef enum file_read_status {
    FILE_READ_OK,
    FILE_READ_ERRNO,       /* open, fstat or read failed: the errno value is in *errnum */
    FILE_READ_NOT_REGULAR, /* a directory, FIFO, socket or device */
    FILE_READ_TOO_LARGE,   /* more than the cap */
    FILE_READ_NOMEM,
} file_read_status;

/* Where the buffer comes from: the heap, or guarded memory for secrets. release must accept
 * what alloc returned (and wipe it, for secrets). */
typedef struct file_read_memory {
    void *(*alloc)(size_t size);
    void (*release)(void *p);
} file_read_memory;

/* malloc and free. */
extern const file_read_memory file_read_heap;

/* Opens path read-only with O_NONBLOCK (so that opening a FIFO returns at once) and extra
 * flags such as O_NOFOLLOW. Returns -1 with errno set. */
int file_read_open(const char *path, int flags);

/* Reads the file open on fd, which must be a regular file of at most max bytes, into a buffer
 * from mem holding *len bytes and a NUL after them. Closes fd in every case. On failure *out is
 * NULL and nothing is left allocated. */
file_read_status file_read_fd(int fd, size_t max, const file_read_memory *mem, char **out,
                              size_t *len, int *errnum);

/* file_read_open, then file_read_fd. */
file_read_status file_read_path(const char *path, int flags, size_t max,
                                const file_read_memory *mem, char **out, size_t *len, int *errnum);

/* Why a read failed, for a message ("not a regular file", "larger than the limit of 1 MiB",
 * strerror's text): written to buf, returned. */
const char *file_read_reason(file_read_status status, int errnum, size_t max, char *buf,
                             size_t size);

#endif /* PGSTEP_FILE_READ_H */
