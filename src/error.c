/* The error object: filled deep in the code, reported once by main. */
#include "pgstep/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void error_clear(pgstep_error *err)
{
    memset(err, 0, sizeof(*err));
}

bool error_set(pgstep_error *err, int exit_code, const char *fmt, ...)
{
    va_list ap;

    error_clear(err);
    err->exit_code = exit_code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return false;
}

void error_detail(pgstep_error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void error_hint(pgstep_error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

void error_location(pgstep_error *err, const char *file, int line)
{
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
}

bool error_is_set(const pgstep_error *err)
{
    return err->exit_code != 0;
}

const char *error_errno_text(int errnum, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(errnum));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}
