/* The configuration's text before libconfig parses it: read through file_read (regular files,
 * capped, never blocking), @include targets followed, integer literals libconfig would wrap
 * noted. The scan knows just enough of libconfig's syntax for that: comments, strings, names,
 * assignments and numbers. */
#include "pgstep/config_scan.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/exitcode.h"
#include "pgstep/file_read.h"

/* libconfig's own limit on nested includes. */
#define CONFIG_SCAN_MAX_DEPTH 10

/* An integer literal too wide for what libconfig keeps of it. */
typedef struct wide_integer {
    char *file;  /* NULL: the main file */
    char *group; /* the top-level group it is in, "" if none */
    char *name;
    int first_line; /* the name's line */
    int last_line;  /* the literal's line */
    char *literal;
} wide_integer;

struct config_scan {
    char *text;      /* the main file */
    size_t total;    /* bytes read */
    size_t settings; /* "name =" and "name :" seen */
    int braces;      /* groups open where the scan is, across included files */
    char group[64];  /* the top-level group open, while braces is 1 or more */
    wide_integer *wide;
    size_t nwide;
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
    int nul_line; /* where a string holds the escape \x00, 0 if none */
} scan_file;

static bool scan_text(config_scan *scan, scan_file *f, pgstep_error *err);

static bool scan_fail(pgstep_error *err, const scan_file *f, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets err to the message, located at path and line. */
static bool scan_fail(pgstep_error *err, const scan_file *f, int line, const char *fmt, ...)
{
    char message[ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    error_set(err, PGSTEP_EXIT_CONFIG, "%s", message);
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

static bool scan_note_wide(config_scan *scan, const scan_file *f, const char *name, size_t nlen,
                           int name_line, const char *literal, size_t llen)
{
    wide_integer *grown = realloc(scan->wide, (scan->nwide + 1) * sizeof(*grown));
    wide_integer *w;

    if (!grown)
        return false;
    scan->wide = grown;
    w = &scan->wide[scan->nwide];
    memset(w, 0, sizeof(*w));
    w->group = strdup(scan->braces == 1 ? scan->group : "");
    w->name = strndup(name, nlen);
    w->literal = strndup(literal, llen);
    w->file = f->main ? NULL : strdup(f->path);
    w->first_line = name_line;
    w->last_line = f->line;
    scan->nwide++;
    return w->group && w->name && w->literal && (f->main || w->file);
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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
        /* libconfig would end the string at the NUL, dropping the rest. */
        if (c == '\\' && f->len - f->pos > 3 && memcmp(f->text + f->pos + 1, "x00", 3) == 0 &&
            !f->nul_line)
            f->nul_line = f->line;
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

/* A number at f->pos assigned to name: noted if libconfig would wrap it. */
static bool scan_number(config_scan *scan, scan_file *f, const char *name, size_t nlen,
                        int name_line)
{
    const char *start = f->text + f->pos, *p = start, *digits;
    bool hex, wide, suffix;
    char *end;

    if (*p == '+' || *p == '-')
        p++;
    hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2]);
    digits = p;
    p += hex ? 2 : 0;
    while (hex ? is_hex(*p) : (*p >= '0' && *p <= '9'))
        p++;
    if (p == digits || *p == '.' || (!hex && (*p == 'e' || *p == 'E')))
        return true; /* not an integer */
    suffix = *p == 'L';
    errno = 0;
    if (hex) {
        unsigned long long v = strtoull(digits, &end, 16);

        wide = errno == ERANGE || (suffix ? false : v > INT_MAX) || start[0] == '-';
    } else {
        long long v = strtoll(start, &end, 10);

        wide = errno == ERANGE || (!suffix && (v < INT_MIN || v > INT_MAX));
    }
    f->pos = (size_t)(p - f->text);
    if (!wide)
        return true;
    return scan_note_wide(scan, f, name, nlen, name_line, start, (size_t)(p - start));
}

static bool scan_text(config_scan *scan, scan_file *f, pgstep_error *err)
{
    const char *nul = memchr(f->text, '\0', f->len);
    bool line_start = true;

    /* libconfig reads only up to a NUL byte, silently ignoring the rest of the file. */
    if (nul) {
        int line = 1;

        for (const char *p = f->text; p < nul; p++)
            line += *p == '\n';
        return scan_fail(err, f, line, "the file holds a NUL byte");
    }

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
            if (f->nul_line)
                return scan_fail(err, f, f->nul_line,
                                 "a string holds the escape \\x00, a NUL byte");
        } else if (is_name_start(c)) {
            const char *name = f->text + f->pos;
            int name_line = f->line;
            size_t nlen = 0;

            while (f->pos < f->len && is_name_char(f->text[f->pos])) {
                f->pos++;
                nlen++;
            }
            skip_blank(f);
            if (f->pos < f->len && (f->text[f->pos] == '=' || f->text[f->pos] == ':')) {
                if (++scan->settings > CONFIG_SCAN_MAX_SETTINGS)
                    return scan_fail(err, f, name_line,
                                     "the configuration holds more than %d settings",
                                     CONFIG_SCAN_MAX_SETTINGS);
                f->pos++;
                skip_blank(f);
                /* A top-level name is the group that a '{' opens, here or in an @included
                 * file. */
                if (scan->braces == 0)
                    snprintf(scan->group, sizeof(scan->group), "%.*s", (int)nlen, name);
                if (!scan_number(scan, f, name, nlen, name_line))
                    return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
            }
        } else {
            if (c == '{')
                scan->braces++;
            else if (c == '}' && scan->braces > 0 && --scan->braces == 0)
                scan->group[0] = '\0';
            f->pos++;
        }
        /* A name, its value or a string may end a line too ("connection =" before an
         * @include of the group's body): the next line is then checked for an @include. */
        line_start = f->line != line;
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

const char *config_scan_wide_integer(const config_scan *scan, const char *file, int line,
                                     const char *group, const char *name)
{
    for (size_t i = 0; i < scan->nwide; i++) {
        const wide_integer *w = &scan->wide[i];

        if ((file == NULL) != (w->file == NULL) || (file && strcmp(file, w->file) != 0))
            continue;
        if (strcmp(group, w->group) == 0 && strcmp(name, w->name) == 0 && line >= w->first_line &&
            line <= w->last_line)
            return w->literal;
    }
    return NULL;
}

void config_scan_free(config_scan *scan)
{
    if (!scan)
        return;
    for (size_t i = 0; i < scan->nwide; i++) {
        free(scan->wide[i].file);
        free(scan->wide[i].group);
        free(scan->wide[i].name);
        free(scan->wide[i].literal);
    }
    free(scan->wide);
    free(scan->text);
    free(scan);
}
