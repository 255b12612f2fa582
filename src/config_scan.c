/* The configuration's text before libconfig parses it: read through file_read (regular files,
 * capped, never blocking), @include targets followed, settings counted. The scan knows just
 * enough of libconfig's syntax for that: comments, strings, names and assignments. */
#include "pgstep/config_scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/exitcode.h"
#include "pgstep/file_read.h"

/* libconfig's own limit on nested includes. */
#define CONFIG_SCAN_MAX_DEPTH 10

struct config_scan {
    char *text;      /* the main file */
    size_t total;    /* bytes read */
    size_t settings; /* "name =" and "name :" seen */
};

/* What one file's scan needs: where it is and how deep. */
typedef struct scan_file {
    const char *path;
    bool main;
    const char *text;
    size_t len;
    size_t pos;
    int line;
    int depth;
} scan_file;

static bool scan_text(config_scan *scan, scan_file *f, pgstep_error *err);

static bool scan_fail(pgstep_error *err, const scan_file *f, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets err to "path:line: message", located there. */
static bool scan_fail(pgstep_error *err, const scan_file *f, int line, const char *fmt, ...)
{
    char message[ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    error_set(err, PGSTEP_EXIT_CONFIG, "%s:%d: %s", f->path, line, message);
    error_location(err, f->path, line);
    return false;
}

/* Reads one file through file_read, counting it against the total. */
static bool scan_read(config_scan *scan, const char *path, char **text, size_t *len,
                      file_read_status *status, int *errnum)
{
    size_t left = CONFIG_SCAN_MAX_BYTES - scan->total;

    *status = file_read_path(path, 0, left, &file_read_heap, text, len, errnum);
    if (*status != FILE_READ_OK)
        return false;
    scan->total += *len;
    return true;
}

static bool scan_include(config_scan *scan, scan_file *f, const char *path, pgstep_error *err)
{
    char reason[128];
    file_read_status status;
    scan_file inc = {.path = path, .line = 1, .depth = f->depth + 1};
    char *text;
    int errnum;
    bool ok;

    if (inc.depth > CONFIG_SCAN_MAX_DEPTH)
        return scan_fail(err, f, f->line, "@include \"%s\" is nested more than %d deep", path,
                         CONFIG_SCAN_MAX_DEPTH);
    if (!scan_read(scan, path, &text, &inc.len, &status, &errnum)) {
        file_read_reason(status, errnum, CONFIG_SCAN_MAX_BYTES, reason, sizeof(reason));
        if (status == FILE_READ_TOO_LARGE)
            return scan_fail(err, f, f->line, "included file \"%s\" makes the configuration %s",
                             path, reason);
        if (status == FILE_READ_NOMEM)
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        return scan_fail(err, f, f->line, "could not read included file \"%s\": %s", path, reason);
    }
    inc.text = text;
    ok = scan_text(scan, &inc, err);
    free(text);
    return ok;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Skips whitespace and comments, counting lines. */
static void skip_blank(scan_file *f)
{
    while (f->pos < f->len) {
        const char *p = f->text + f->pos;

        if (*p == '\n') {
            f->line++;
            f->pos++;
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v') {
            f->pos++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (f->pos < f->len && f->text[f->pos] != '\n')
                f->pos++;
        } else if (p[0] == '/' && p[1] == '*') {
            f->pos += 2;
            while (f->pos < f->len &&
                   !(f->text[f->pos] == '*' && f->pos + 1 < f->len && f->text[f->pos + 1] == '/')) {
                if (f->text[f->pos] == '\n')
                    f->line++;
                f->pos++;
            }
            f->pos = f->pos + 2 < f->len ? f->pos + 2 : f->len;
        } else {
            break;
        }
    }
}

/* Reads the "..." string at f->pos (unescaping \" and \\) into out; false if it is not one. */
static bool scan_string(scan_file *f, char *out, size_t size)
{
    size_t n = 0;

    if (f->pos >= f->len || f->text[f->pos] != '"')
        return false;
    for (f->pos++; f->pos < f->len && f->text[f->pos] != '"'; f->pos++) {
        char c = f->text[f->pos];

        if (c == '\n')
            f->line++;
        if (c == '\\' && f->pos + 1 < f->len)
            c = f->text[++f->pos];
        if (n + 1 < size)
            out[n++] = c;
    }
    out[n] = '\0';
    if (f->pos >= f->len)
        return false;
    f->pos++;
    return n + 1 < size;
}

/* At the start of a line: "@include" and a path, as libconfig reads it. */
static bool scan_include_line(config_scan *scan, scan_file *f, pgstep_error *err)
{
    char path[4096];
    size_t at = f->pos;

    while (at < f->len && (f->text[at] == ' ' || f->text[at] == '\t'))
        at++;
    if (f->len - at < 9 || strncmp(f->text + at, "@include", 8) != 0 ||
        (f->text[at + 8] != ' ' && f->text[at + 8] != '\t'))
        return true;
    f->pos = at + 8;
    while (f->pos < f->len && (f->text[f->pos] == ' ' || f->text[f->pos] == '\t'))
        f->pos++;
    if (!scan_string(f, path, sizeof(path)))
        return true; /* libconfig reports the syntax error */
    return scan_include(scan, f, path, err);
}

static bool scan_text(config_scan *scan, scan_file *f, pgstep_error *err)
{
    bool line_start = true;

    while (f->pos < f->len) {
        int line = f->line;
        char c;

        if (line_start && !scan_include_line(scan, f, err))
            return false;
        skip_blank(f);
        /* After a line end, the next line may be an @include. */
        line_start = f->line != line;
        if (line_start || f->pos >= f->len)
            continue;
        c = f->text[f->pos];
        if (c == '"') {
            char ignored[2];

            scan_string(f, ignored, sizeof(ignored));
        } else if (is_name_start(c)) {
            int name_line = f->line;

            while (f->pos < f->len && is_name_char(f->text[f->pos]))
                f->pos++;
            skip_blank(f);
            if (f->pos < f->len && (f->text[f->pos] == '=' || f->text[f->pos] == ':')) {
                if (++scan->settings > CONFIG_SCAN_MAX_SETTINGS)
                    return scan_fail(err, f, name_line,
                                     "the configuration holds more than %d settings",
                                     CONFIG_SCAN_MAX_SETTINGS);
                f->pos++;
            }
        } else {
            f->pos++;
        }
    }
    return true;
}

bool config_scan_read(const char *path, config_scan **out, pgstep_error *err)
{
    char reason[128];
    file_read_status status;
    config_scan *scan = calloc(1, sizeof(*scan));
    scan_file f = {.path = path, .main = true, .line = 1};
    int errnum;

    *out = NULL;
    if (!scan)
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    if (!scan_read(scan, path, &scan->text, &f.len, &status, &errnum)) {
        file_read_reason(status, errnum, CONFIG_SCAN_MAX_BYTES, reason, sizeof(reason));
        if (status == FILE_READ_NOMEM)
            error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        else if (status == FILE_READ_ERRNO)
            error_set(err, PGSTEP_EXIT_CONFIG, "could not read configuration file \"%s\": %s", path,
                      reason);
        else
            error_set(err, PGSTEP_EXIT_CONFIG, "configuration file \"%s\" is %s", path, reason);
        config_scan_free(scan);
        return false;
    }
    f.text = scan->text;
    if (!scan_text(scan, &f, err)) {
        config_scan_free(scan);
        return false;
    }
    *out = scan;
    return true;
}

const char *config_scan_text(const config_scan *scan)
{
    return scan->text;
}

void config_scan_free(config_scan *scan)
{
    if (!scan)
        return;
    free(scan->text);
    free(scan);
}
