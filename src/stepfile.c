/* One step file: opened without following links out of the step directory, read with a size cap,
 * checked to be UTF-8 text, and its CRLF line endings turned into LF. A refused file has nothing
 * more worth checking, so the first problem ends the read and comes back in a stepfile_error, as
 * lexer_error does for the lexer. */
#include "pgstep/stepfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/file_read.h"
#include "pgstep/utf8.h"

static bool stepfile_fail(stepfile_error *err, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills err; returns false so that callers can `return stepfile_fail(...)`. */
static bool stepfile_fail(stepfile_error *err, int line, const char *hint, const char *fmt, ...)
{
    va_list ap;

    err->line = line;
    err->hint = hint;
    err->out_of_memory = false;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return false;
}

int stepfile_line_of(const char *text, size_t offset)
{
    int line = 1;

    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n')
            line++;
    }
    return line;
}

static char *path_join(const char *dir, const char *name)
{
    size_t dlen = strlen(dir), nlen = strlen(name);
    char *path = malloc(dlen + nlen + 2);

    if (path) {
        memcpy(path, dir, dlen);
        path[dlen] = '/';
        memcpy(path + dlen + 1, name, nlen + 1);
    }
    return path;
}

/* ---- Reading ---- */

/* The target of a symbolic link that stays inside real_dir, malloc'ed; NULL with err filled. */
static char *resolve_link(const char *real_dir, const char *path, stepfile_error *err)
{
    char errbuf[128];
    char *target;
    size_t dlen = strlen(real_dir);

    target = realpath(path, NULL);
    if (!target) {
        stepfile_fail(err, 0, NULL, "could not resolve symbolic link: %s",
                      error_errno_text(errno, errbuf, sizeof(errbuf)));
        return NULL;
    }
    /* Inside means under the resolved directory, so "../dir2/x.sql" or an absolute link to
     * another tree is refused even if it happens to look similar. */
    if (strncmp(target, real_dir, dlen) != 0 ||
        (target[dlen] != '/' && !(dlen > 0 && real_dir[dlen - 1] == '/'))) {
        stepfile_fail(err, 0, NULL, "symbolic link points outside the step directory, to \"%s\"",
                      target);
        free(target);
        return NULL;
    }
    return target;
}

/* Opens a step file without following links, except a link that stays inside the directory.
 * A FIFO does not hang the open (file_read_open); it is refused as not a regular file. Returns
 * -1 with err filled. */
static int open_step_file(const char *real_dir, const char *path, stepfile_error *err)
{
    char errbuf[128];
    int fd = file_read_open(path, O_NOFOLLOW);

    if (fd < 0 && errno == ELOOP) {
        char *target = resolve_link(real_dir, path, err);

        if (!target)
            return -1;
        fd = file_read_open(target, O_NOFOLLOW);
        free(target);
    }
    if (fd < 0)
        stepfile_fail(err, 0, NULL, "could not open step file: %s",
                      error_errno_text(errno, errbuf, sizeof(errbuf)));
    return fd;
}

/* Reads the whole step file at path into a malloc'ed buffer. */
static char *read_file_capped(const char *real_dir, const char *path, size_t *len,
                              stepfile_error *err)
{
    char reason[128];
    file_read_status status;
    char *buf;
    int errnum;
    int fd;

    fd = open_step_file(real_dir, path, err);
    if (fd < 0)
        return NULL;
    status = file_read_fd(fd, STEPFILE_MAX_SIZE, &file_read_heap, &buf, len, &errnum);
    if (status == FILE_READ_OK)
        return buf;
    file_read_reason(status, errnum, STEPFILE_MAX_SIZE, reason, sizeof(reason));
    if (status == FILE_READ_ERRNO)
        stepfile_fail(err, 0, NULL, "could not read step file: %s", reason);
    else if (status == FILE_READ_TOO_LARGE)
        stepfile_fail(err, 0, NULL, "step file is %s", reason);
    else
        stepfile_fail(err, 0, NULL, "%s", reason);
    err->out_of_memory = status == FILE_READ_NOMEM;
    return NULL;
}

/* ---- Checking the text ---- */

static bool only_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!strchr(" \t\n\r\f\v", text[i]))
            return false;
    }
    return true;
}

/* Rejects what is not text: NUL bytes, invalid UTF-8, a byte order mark, emptiness. */
static bool check_text(const char *text, size_t len, stepfile_error *err)
{
    const char *nul = memchr(text, '\0', len);
    size_t bad;

    if (nul)
        return stepfile_fail(err, stepfile_line_of(text, (size_t)(nul - text)), NULL,
                             "step file contains a NUL byte");
    bad = utf8_invalid_offset(text, len);
    if (bad < len)
        return stepfile_fail(err, stepfile_line_of(text, bad), NULL,
                             "invalid byte sequence for encoding \"UTF8\": 0x%02x",
                             (unsigned char)text[bad]);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        return stepfile_fail(err, 1, "Save the file as UTF-8 without a byte order mark.",
                             "step file starts with a byte order mark");
    if (only_whitespace(text, len))
        return stepfile_fail(err, 0, NULL, "step file is empty");
    return true;
}

/* Turns every CRLF into LF in place; a lone CR stays. Lines keep their numbers. */
static size_t crlf_to_lf(char *text, size_t len)
{
    size_t out = 0;

    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            continue;
        text[out++] = text[i];
    }
    text[out] = '\0';
    return out;
}

bool stepfile_read_bytes(const char *dir, const char *real_dir, const char *name, char **data,
                         size_t *len, stepfile_error *err)
{
    char *path = path_join(dir, name);

    *data = NULL;
    *len = 0;
    if (!path) {
        stepfile_fail(err, 0, NULL, "out of memory");
        err->out_of_memory = true;
        return false;
    }
    *data = read_file_capped(real_dir, path, len, err);
    free(path);
    return *data != NULL;
}

bool stepfile_read(const char *dir, const char *real_dir, const char *name, char **text,
                   size_t *len, char file_checksum[CHECKSUM_HEX_LEN + 1], stepfile_error *err)
{
    char *buf = NULL;
    size_t size = 0;

    *text = NULL;
    *len = 0;
    if (!stepfile_read_bytes(dir, real_dir, name, &buf, &size, err))
        return false;
    if (file_checksum)
        checksum_bytes(buf, size, file_checksum);
    if (!check_text(buf, size, err)) {
        free(buf);
        return false;
    }
    *text = buf;
    *len = crlf_to_lf(buf, size);
    return true;
}
