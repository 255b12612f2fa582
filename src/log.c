/* Log events on stderr: one line each, logfmt-like text for people or JSON for collectors. */
#include "pgstep/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "pgstep/json.h"

static log_format current_format = LOG_FORMAT_TEXT;
static log_level current_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_configure(log_format format, log_level min_level)
{
    current_format = format;
    current_level = min_level;
}

bool log_level_parse(const char *name, log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    return false;
}

bool log_format_parse(const char *name, log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return false;
    return true;
}

bool log_enabled(log_level level)
{
    return level >= current_level;
}

/* RFC 3339 UTC with milliseconds. */
static void log_timestamp(char *buf, size_t size)
{
    struct timeval tv;
    struct tm tm;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000) % 1000);
}

static void log_write(log_level level, const log_field *fields, int nfields, const char *message)
{
    char ts[32];
    FILE *f = stderr;

    log_timestamp(ts, sizeof(ts));
    if (current_format == LOG_FORMAT_JSON) {
        fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":", ts, level_names[level]);
        json_write_string(f, message);
        for (int i = 0; i < nfields; i++) {
            fputc(',', f);
            json_write_string(f, fields[i].key);
            fputc(':', f);
            if (fields[i].str)
                json_write_string(f, fields[i].str);
            else
                fprintf(f, "%lld", fields[i].num);
        }
        fputs("}\n", f);
    } else {
        /* The message says it all for a person; the fields are for collectors. */
        fprintf(f, "%s %s: %s\n", ts, level_names[level], message);
    }
    fflush(f);
}

void log_event(log_level level, const log_field *fields, int nfields, const char *fmt, ...)
{
    char message[2048];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* A message is one line: a newline from a server message must not split the event. */
    for (char *p = message; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    log_write(level, fields, nfields, message);
}

void log_error_event(const pgstep_error *err)
{
    log_field fields[6];
    int n = 0;

    if (err->file[0])
        fields[n++] = LOG_STR("file", err->file);
    if (err->line > 0)
        fields[n++] = LOG_NUM("line", err->line);
    if (err->sqlstate[0])
        fields[n++] = LOG_STR("sqlstate", err->sqlstate);
    if (err->detail[0])
        fields[n++] = LOG_STR("detail", err->detail);
    if (err->hint[0])
        fields[n++] = LOG_STR("hint", err->hint);
    fields[n++] = LOG_NUM("exit_code", err->exit_code);
    if (current_format == LOG_FORMAT_JSON) {
        log_event(LOG_ERROR, fields, n, "%s", err->message);
        return;
    }
    /* One line, file and line first, as compilers and psql write them. */
    {
        char where[300] = "";
        char sqlstate[24] = "";

        if (err->file[0] && err->line > 0)
            snprintf(where, sizeof(where), "%s:%d: ", err->file, err->line);
        else if (err->file[0])
            snprintf(where, sizeof(where), "%s: ", err->file);
        if (err->sqlstate[0])
            snprintf(sqlstate, sizeof(sqlstate), " (SQLSTATE %s)", err->sqlstate);
        log_event(LOG_ERROR, NULL, 0, "%s%s%s.%s%s%s%s Exit code %d.", where, err->message,
                  sqlstate, err->detail[0] ? " Detail: " : "", err->detail,
                  err->hint[0] ? " Hint: " : "", err->hint, err->exit_code);
    }
}
