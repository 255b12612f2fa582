/* The step set: a directory of step files read, validated, substituted, split and checksummed
 * before any connection is made. Every problem is logged and loading goes on, so one run shows
 * them all. */
#include "pgstep/stepset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgstep/exitcode.h"
#include "pgstep/log.h"

#define STEPSET_MAX_FILE_SIZE (16 * 1024 * 1024)
#define STEPSET_SUFFIX        ".sql"

#define STEPSET_NAME_HINT                                                                          \
    "Step files are named V<version>__<description>.sql or R__<description>.sql."
#define STEPSET_DIRECTIVE_HINT "Known directives are \"no-transaction\" and \"rerun-when <query>\"."
#define STEPSET_TXN_HINT                                                                           \
    "Remove the statement, or put \"-- pgstep: no-transaction\" at the top of the file to run "    \
    "the step outside a transaction."

struct stepset {
    char *dir;
    step *steps;
    size_t count;
};

/* What loading one directory needs and what it found wrong. */
typedef struct loader {
    const char *dir;
    char *real_dir; /* the directory with links resolved, to see where links point */
    const vars *vars;
    int problems;
    char first_problem[ERROR_TEXT_MAX];
} loader;

/* A .sql file name and what it says. */
typedef struct step_name {
    char *file_name;
    bool valid;
    step_kind kind;
    long long version;
} step_name;

/* Directives from the leading comment block of a step file. */
typedef struct directives {
    bool no_transaction;
    char *rerun_query; /* as written, not substituted yet */
    int rerun_line;
} directives;

static void stepset_problem(loader *ld, const char *file_name, int line, const char *hint,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Logs one problem of a step file as "name:line: message" and counts it. */
static void stepset_problem(loader *ld, const char *file_name, int line, const char *hint,
                            const char *fmt, ...)
{
    char text[ERROR_TEXT_MAX];
    char message[ERROR_TEXT_MAX + 300];
    char path[PATH_MAX];
    log_field fields[3];
    int nfields = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(message, sizeof(message), "%s:%d: %s", file_name, line, text);
    else
        snprintf(message, sizeof(message), "%s: %s", file_name, text);
    snprintf(path, sizeof(path), "%s/%s", ld->dir, file_name);
    fields[nfields++] = LOG_STR("file", path);
    if (line > 0)
        fields[nfields++] = LOG_NUM("line", line);
    if (hint)
        fields[nfields++] = LOG_STR("hint", hint);
    log_event(LOG_ERROR, fields, nfields, "%s", message);
    if (ld->problems++ == 0) {
        /* Cut to fit, deliberately: it only feeds the summary's detail. */
        size_t n = strlen(message);

        if (n >= sizeof(ld->first_problem))
            n = sizeof(ld->first_problem) - 1;
        memcpy(ld->first_problem, message, n);
        ld->first_problem[n] = '\0';
    }
}

/* strerror text in the style of the messages around it, lowercase. */
static const char *errno_text(int errnum, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(errnum));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
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

static int line_of(const char *text, size_t offset)
{
    int line = 1;

    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n')
            line++;
    }
    return line;
}

/* ---- File names ---- */

static bool has_suffix(const char *name, const char *suffix, bool ignore_case)
{
    size_t n = strlen(name), s = strlen(suffix);

    if (n < s)
        return false;
    return ignore_case ? strcasecmp(name + n - s, suffix) == 0 : strcmp(name + n - s, suffix) == 0;
}

/* Parses V<version>__<description>.sql or R__<description>.sql; on a bad name returns why. */
static const char *parse_step_name(const char *name, step_kind *kind, long long *version,
                                   size_t *desc_start)
{
    size_t base = strlen(name) - strlen(STEPSET_SUFFIX);
    size_t i = 1;
    long long v = 0;

    if (strncmp(name, "R__", 3) == 0) {
        *kind = STEP_REPEATABLE;
        *version = 0;
        *desc_start = 3;
        return base > 3 ? NULL : "the description is empty";
    }
    if (name[0] != 'V' || !(name[1] >= '0' && name[1] <= '9'))
        return "";
    for (; name[i] >= '0' && name[i] <= '9'; i++) {
        int d = name[i] - '0';

        if (v > (LLONG_MAX - d) / 10)
            return "the version is out of range";
        v = v * 10 + d;
    }
    if (strncmp(name + i, "__", 2) != 0)
        return "";
    if (v == 0)
        return "the version must be greater than zero";
    if (base <= i + 2)
        return "the description is empty";
    *kind = STEP_VERSIONED;
    *version = v;
    *desc_start = i + 2;
    return NULL;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the names of the .sql files in the directory, sorted so problems come in order. */
static bool list_sql_files(const char *dir, char ***out, size_t *count, pgstep_error *err)
{
    char errbuf[128];
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, capacity = 0;
    struct dirent *de;

    if (!d)
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not open step directory \"%s\": %s", dir,
                         errno_text(errno, errbuf, sizeof(errbuf)));
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de)
            break;
        if (!has_suffix(de->d_name, STEPSET_SUFFIX, false)) {
            if (has_suffix(de->d_name, STEPSET_SUFFIX, true))
                log_warn("%s: ignored: step files end in lowercase \".sql\"", de->d_name);
            continue;
        }
        if (n == capacity) {
            size_t newcap = capacity ? capacity * 2 : 32;
            char **grown = realloc(names, newcap * sizeof(char *));

            if (!grown)
                goto oom;
            names = grown;
            capacity = newcap;
        }
        if (!(names[n] = strdup(de->d_name)))
            goto oom;
        n++;
    }
    if (errno != 0) {
        int saved = errno;

        closedir(d);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not read step directory \"%s\": %s", dir,
                         errno_text(saved, errbuf, sizeof(errbuf)));
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(char *), compare_strings);
    *out = names;
    *count = n;
    return true;

oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return error_set(err, PGSTEP_EXIT_STEPSET, "out of memory");
}

static int compare_names_by_version(const void *a, const void *b)
{
    const step_name *x = *(const step_name *const *)a, *y = *(const step_name *const *)b;

    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file_name, y->file_name);
}

/* Two versioned files with one version would make the order ambiguous: name both. */
static void check_duplicate_versions(loader *ld, step_name *names, size_t n)
{
    step_name **versioned = malloc((n ? n : 1) * sizeof(step_name *));
    size_t nv = 0;

    if (!versioned) {
        stepset_problem(ld, ld->dir, 0, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i].valid && names[i].kind == STEP_VERSIONED)
            versioned[nv++] = &names[i];
    }
    qsort(versioned, nv, sizeof(step_name *), compare_names_by_version);
    for (size_t i = 1; i < nv; i++) {
        if (versioned[i]->version == versioned[i - 1]->version)
            stepset_problem(ld, versioned[i]->file_name, 0, NULL,
                            "version %lld is used by both \"%s\" and \"%s\"", versioned[i]->version,
                            versioned[i - 1]->file_name, versioned[i]->file_name);
    }
    free(versioned);
}

/* ---- Reading a file ---- */

/* The target of a symbolic link that stays inside the directory, malloc'ed; NULL after logging
 * the problem. */
static char *resolve_link(loader *ld, const char *name, const char *path)
{
    char errbuf[128];
    char *target;
    size_t dlen = strlen(ld->real_dir);

    target = realpath(path, NULL);
    if (!target) {
        stepset_problem(ld, name, 0, NULL, "could not resolve symbolic link: %s",
                        errno_text(errno, errbuf, sizeof(errbuf)));
        return NULL;
    }
    /* Inside means under the resolved directory, so "../dir2/x.sql" or an absolute link to
     * another tree is refused even if it happens to look similar. */
    if (strncmp(target, ld->real_dir, dlen) != 0 ||
        (target[dlen] != '/' && !(dlen > 0 && ld->real_dir[dlen - 1] == '/'))) {
        stepset_problem(ld, name, 0, NULL,
                        "symbolic link points outside the step directory, to \"%s\"", target);
        free(target);
        return NULL;
    }
    return target;
}

/* Opens a step file without following links, except a link that stays inside the directory.
 * O_NONBLOCK: a FIFO must not hang the load (it is refused as not a regular file). Returns -1
 * after logging the problem. */
static int open_step_file(loader *ld, const char *name, const char *path)
{
    const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    char errbuf[128];
    int fd = open(path, flags);

    if (fd < 0 && errno == ELOOP) {
        char *target = resolve_link(ld, name, path);

        if (!target)
            return -1;
        fd = open(target, flags);
        free(target);
    }
    if (fd < 0)
        stepset_problem(ld, name, 0, NULL, "could not open step file: %s",
                        errno_text(errno, errbuf, sizeof(errbuf)));
    return fd;
}

/* Reads the whole step file at path into a malloc'ed buffer. */
static char *read_file_capped(loader *ld, const char *name, const char *path, size_t *len)
{
    char errbuf[128];
    struct stat st;
    char *buf = NULL;
    size_t size = 0, capacity;
    int fd;

    fd = open_step_file(ld, name, path);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        stepset_problem(ld, name, 0, NULL, "not a regular file");
        goto fail;
    }
    if (st.st_size > STEPSET_MAX_FILE_SIZE)
        goto too_large;
    /* One byte more than the file holds, to notice a file that grew meanwhile. */
    capacity = (size_t)st.st_size + 1;
    if (!(buf = malloc(capacity + 1))) {
        stepset_problem(ld, name, 0, NULL, "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t got;

        if (size == capacity) {
            char *grown;

            if (capacity > STEPSET_MAX_FILE_SIZE)
                goto too_large;
            capacity =
                capacity * 2 > STEPSET_MAX_FILE_SIZE + 1 ? STEPSET_MAX_FILE_SIZE + 1 : capacity * 2;
            if (!(grown = realloc(buf, capacity + 1))) {
                stepset_problem(ld, name, 0, NULL, "out of memory");
                goto fail;
            }
            buf = grown;
        }
        got = read(fd, buf + size, capacity - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            stepset_problem(ld, name, 0, NULL, "could not read step file: %s",
                            errno_text(errno, errbuf, sizeof(errbuf)));
            goto fail;
        }
        if (got == 0)
            break;
        size += (size_t)got;
        /* A short read of a regular file is its end: no second read needed to see EOF. */
        if (size < capacity)
            break;
    }
    if (size > STEPSET_MAX_FILE_SIZE)
        goto too_large;
    close(fd);
    buf[size] = '\0';
    *len = size;
    return buf;

too_large:
    stepset_problem(ld, name, 0, NULL, "step file is larger than the limit of %d MiB",
                    STEPSET_MAX_FILE_SIZE / (1024 * 1024));
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* ---- Checking the text ---- */

/* Length of the valid UTF-8 sequence at p, or 0: rejects overlong forms, surrogates and code
 * points past U+10FFFF, as PostgreSQL's pg_utf8_islegal does. */
static size_t utf8_sequence_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (avail < n)
        return 0;
    /* The second byte carries the range limits. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    }
    return n;
}

/* Offset of the first byte that is not valid UTF-8, or len if all is valid. */
static size_t utf8_invalid_offset(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_sequence_len((const unsigned char *)text + i, len - i);

        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

static bool only_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!strchr(" \t\n\r\f\v", text[i]))
            return false;
    }
    return true;
}

/* Rejects what is not text: NUL bytes, invalid UTF-8, a byte order mark, emptiness. */
static bool check_text(loader *ld, const char *name, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    size_t bad;

    if (nul) {
        stepset_problem(ld, name, line_of(text, (size_t)(nul - text)), NULL,
                        "step file contains a NUL byte");
        return false;
    }
    bad = utf8_invalid_offset(text, len);
    if (bad < len) {
        stepset_problem(ld, name, line_of(text, bad), NULL,
                        "invalid byte sequence for encoding \"UTF8\": 0x%02x",
                        (unsigned char)text[bad]);
        return false;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        stepset_problem(ld, name, 1, "Save the file as UTF-8 without a byte order mark.",
                        "step file starts with a byte order mark");
        return false;
    }
    if (only_whitespace(text, len)) {
        stepset_problem(ld, name, 0, NULL, "step file is empty");
        return false;
    }
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

/* ---- Directives ---- */

static bool is_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\v';
}

/* If the line [p, end) is a "-- pgstep:" comment, returns where the directive starts. */
static const char *directive_text(const char *p, const char *end)
{
    while (p < end && is_blank_char(*p))
        p++;
    if (end - p < 2 || p[0] != '-' || p[1] != '-')
        return NULL;
    p += 2;
    while (p < end && is_blank_char(*p))
        p++;
    /* Any case, so that "-- PGSTEP: ..." is checked too rather than silently ignored. */
    if (end - p < 7 || strncasecmp(p, "pgstep:", 7) != 0)
        return NULL;
    p += 7;
    while (p < end && is_blank_char(*p))
        p++;
    return p;
}

static void parse_directive(loader *ld, const char *name, step_kind kind, int line, const char *p,
                            const char *end, directives *d)
{
    const char *word = p, *arg;
    size_t wlen;

    while (end > p && is_blank_char(end[-1]))
        end--;
    while (p < end && !is_blank_char(*p))
        p++;
    wlen = (size_t)(p - word);
    arg = p;
    while (arg < end && is_blank_char(*arg))
        arg++;
    if (wlen == 14 && strncmp(word, "no-transaction", wlen) == 0) {
        if (arg < end)
            stepset_problem(ld, name, line, NULL, "directive \"no-transaction\" takes no argument");
        d->no_transaction = true;
    } else if (wlen == 10 && strncmp(word, "rerun-when", wlen) == 0) {
        if (kind != STEP_REPEATABLE)
            stepset_problem(ld, name, line, NULL,
                            "directive \"rerun-when\" is only allowed in repeatable (R__) steps");
        else if (arg == end)
            stepset_problem(ld, name, line, NULL, "directive \"rerun-when\" needs a query");
        else if (d->rerun_query)
            stepset_problem(ld, name, line, NULL, "duplicate directive \"rerun-when\"");
        else if (!(d->rerun_query = strndup(arg, (size_t)(end - arg))))
            stepset_problem(ld, name, line, NULL, "out of memory");
        else
            d->rerun_line = line;
    } else if (wlen == 0) {
        stepset_problem(ld, name, line, STEPSET_DIRECTIVE_HINT, "empty pgstep directive");
    } else {
        stepset_problem(ld, name, line, STEPSET_DIRECTIVE_HINT, "unknown directive \"%.*s\"",
                        (int)(wlen > 64 ? 64 : wlen), word);
    }
}

/* Reads directives from the leading block of blank and "--" lines. A directive further down
 * would be silently ignored, which is worse than an error, so it is one. */
static bool parse_directives(loader *ld, const char *name, step_kind kind, const char *text,
                             size_t len, directives *d)
{
    int before = ld->problems;
    const char *p = text, *end = text + len;
    bool leading = true;

    for (int line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p, *directive;

        if (!eol)
            eol = end;
        while (q < eol && is_blank_char(*q))
            q++;
        if (leading && q < eol && !(eol - q >= 2 && q[0] == '-' && q[1] == '-'))
            leading = false;
        directive = directive_text(p, eol);
        if (directive && leading)
            parse_directive(ld, name, kind, line, directive, eol, d);
        else if (directive)
            stepset_problem(ld, name, line,
                            "Directives belong in the leading block of \"--\" comment lines.",
                            "pgstep directive after the start of the SQL is not allowed");
        p = eol < end ? eol + 1 : end;
    }
    return ld->problems == before;
}

/* ---- Statements ---- */

/* Copies the next word of a statement (ASCII letters) after whitespace and comments into word;
 * an over-long word comes back empty, so it matches no keyword. */
static void next_word(const char *s, size_t len, size_t *pos, char *word, size_t size)
{
    size_t i = *pos, start;

    for (;;) {
        while (i < len && strchr(" \t\n\r\f", s[i]))
            i++;
        if (i + 1 < len && s[i] == '-' && s[i + 1] == '-') {
            while (i < len && s[i] != '\n' && s[i] != '\r')
                i++;
        } else if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
            int depth = 0;

            for (i += 2; i < len; i++) {
                if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
                    depth++;
                    i++;
                } else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
                    i++;
                    if (depth-- == 0) {
                        i++;
                        break;
                    }
                }
            }
        } else {
            break;
        }
    }
    start = i;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    word[0] = '\0';
    if (i - start < size) {
        memcpy(word, s + start, i - start);
        word[i - start] = '\0';
    }
    *pos = i;
}

/* The transaction control command a statement is, or NULL. Such a statement would end the
 * transaction pgstep runs the step in, and the step's history row with it. */
static const char *transaction_control(const char *stmt, size_t len)
{
    char w1[16], w2[16], w3[16];
    size_t pos = 0;

    next_word(stmt, len, &pos, w1, sizeof(w1));
    next_word(stmt, len, &pos, w2, sizeof(w2));
    if (strcasecmp(w1, "begin") == 0)
        return "BEGIN";
    if (strcasecmp(w1, "start") == 0)
        return "START TRANSACTION";
    if (strcasecmp(w1, "end") == 0)
        return "END";
    if (strcasecmp(w1, "abort") == 0)
        return "ABORT";
    if (strcasecmp(w1, "commit") == 0)
        return strcasecmp(w2, "prepared") == 0 ? "COMMIT PREPARED" : "COMMIT";
    if (strcasecmp(w1, "prepare") == 0)
        return strcasecmp(w2, "transaction") == 0 ? "PREPARE TRANSACTION" : NULL;
    if (strcasecmp(w1, "rollback") != 0)
        return NULL;
    if (strcasecmp(w2, "prepared") == 0)
        return "ROLLBACK PREPARED";
    if (strcasecmp(w2, "work") == 0 || strcasecmp(w2, "transaction") == 0)
        next_word(stmt, len, &pos, w3, sizeof(w3));
    else
        memcpy(w3, w2, sizeof(w3));
    /* ROLLBACK TO SAVEPOINT stays inside the transaction. */
    return strcasecmp(w3, "to") == 0 ? NULL : "ROLLBACK";
}

static void check_transaction_control(loader *ld, const char *name, const step *s)
{
    for (size_t i = 0; i < s->nstatements; i++) {
        const lexer_statement *st = &s->statements[i];
        const char *command = transaction_control(s->sql + st->offset, st->length);

        if (command)
            stepset_problem(ld, name, st->line, STEPSET_TXN_HINT,
                            "transaction control statement \"%s\" in a step that runs in a "
                            "transaction",
                            command);
    }
}

/* Substitutes and checks the rerun-when query: exactly one statement, kept without its ';'. */
static void load_rerun_query(loader *ld, const char *name, const directives *d, step *s)
{
    lexer_error lerr;
    lexer_statement *stmts = NULL;
    size_t nstmts = 0, len = 0;
    char *query = NULL;

    if (!lexer_substitute(d->rerun_query, strlen(d->rerun_query), ld->vars, &query, &len, &lerr) ||
        !lexer_split(query, len, &stmts, &nstmts, &lerr)) {
        stepset_problem(ld, name, d->rerun_line, NULL, "rerun-when query: %s", lerr.message);
    } else if (nstmts != 1) {
        stepset_problem(ld, name, d->rerun_line, NULL,
                        "rerun-when query must be exactly one statement, not %zu", nstmts);
    } else if (!(s->rerun_query = strndup(query + stmts[0].offset, stmts[0].length))) {
        stepset_problem(ld, name, d->rerun_line, NULL, "out of memory");
    }
    free(stmts);
    free(query);
}

static void step_clear(step *s)
{
    free(s->description);
    free(s->file_name);
    free(s->sql);
    free(s->rerun_query);
    free(s->statements);
    memset(s, 0, sizeof(*s));
}

/* Substitutes variables, splits into statements and runs the checks that need them. */
static bool load_sql(loader *ld, const char *name, const char *text, size_t len, step *s)
{
    int before = ld->problems;
    lexer_error lerr;
    size_t bad;

    if (!lexer_substitute(text, len, ld->vars, &s->sql, &s->sql_len, &lerr)) {
        stepset_problem(ld, name, lerr.line, NULL, "%s", lerr.message);
        return false;
    }
    bad = utf8_invalid_offset(s->sql, s->sql_len);
    if (bad < s->sql_len) {
        stepset_problem(ld, name, line_of(s->sql, bad), NULL,
                        "a substituted variable value is not valid UTF-8");
        return false;
    }
    if (!lexer_split(s->sql, s->sql_len, &s->statements, &s->nstatements, &lerr)) {
        stepset_problem(ld, name, lerr.line, NULL, "%s", lerr.message);
        return false;
    }
    if (s->nstatements == 0) {
        stepset_problem(ld, name, 0, NULL, "step file contains no SQL statements");
        return false;
    }
    if (!s->no_transaction)
        check_transaction_control(ld, name, s);
    return ld->problems == before;
}

/* Loads and validates one well-named step file into s; false after logging its problems. */
static bool load_step(loader *ld, const step_name *sn, size_t desc_start, step *s)
{
    const char *name = sn->file_name;
    size_t desc_len = strlen(name) - strlen(STEPSET_SUFFIX) - desc_start;
    directives d = {0};
    char *path = path_join(ld->dir, name);
    char *text = NULL;
    size_t len = 0;
    bool ok = false;
    int before = ld->problems;

    memset(s, 0, sizeof(*s));
    if (!path) {
        stepset_problem(ld, name, 0, NULL, "out of memory");
        return false;
    }
    if (!(text = read_file_capped(ld, name, path, &len)) || !check_text(ld, name, text, len))
        goto done;
    len = crlf_to_lf(text, len);
    s->kind = sn->kind;
    s->version = sn->version;
    s->description = strndup(name + desc_start, desc_len);
    s->file_name = strdup(name);
    if (!s->description || !s->file_name) {
        stepset_problem(ld, name, 0, NULL, "out of memory");
        goto done;
    }
    if (!parse_directives(ld, name, sn->kind, text, len, &d))
        goto done;
    s->no_transaction = d.no_transaction;
    if (!load_sql(ld, name, text, len, s))
        goto done;
    if (d.rerun_query)
        load_rerun_query(ld, name, &d, s);
    checksum_sql(s->sql, s->sql_len, s->checksum);
    ok = ld->problems == before;

done:
    if (!ok)
        step_clear(s);
    free(d.rerun_query);
    free(text);
    free(path);
    return ok;
}

/* ---- The set ---- */

static int compare_steps(const void *a, const void *b)
{
    const step *x = a, *y = b;

    if (x->kind != y->kind)
        return x->kind == STEP_VERSIONED ? -1 : 1;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->description, y->description);
}

/* Parses every name, then loads the well-named files; problems are counted in ld. */
static void load_all(loader *ld, char **files, size_t nfiles, stepset *set)
{
    step_name *names = calloc(nfiles ? nfiles : 1, sizeof(step_name));
    size_t *desc_starts = calloc(nfiles ? nfiles : 1, sizeof(size_t));

    if (!names || !desc_starts || !(set->steps = calloc(nfiles ? nfiles : 1, sizeof(step)))) {
        stepset_problem(ld, ld->dir, 0, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nfiles; i++) {
        const char *why =
            parse_step_name(files[i], &names[i].kind, &names[i].version, &desc_starts[i]);

        names[i].file_name = files[i];
        names[i].valid = why == NULL;
        if (why && *why)
            stepset_problem(ld, files[i], 0, STEPSET_NAME_HINT, "invalid step file name \"%s\": %s",
                            files[i], why);
        else if (why)
            stepset_problem(ld, files[i], 0, STEPSET_NAME_HINT, "invalid step file name \"%s\"",
                            files[i]);
    }
    check_duplicate_versions(ld, names, nfiles);
    for (size_t i = 0; i < nfiles; i++) {
        if (names[i].valid && load_step(ld, &names[i], desc_starts[i], &set->steps[set->count]))
            set->count++;
    }
done:
    free(names);
    free(desc_starts);
}

bool stepset_load(const char *dir, const vars *v, stepset **out, pgstep_error *err)
{
    char errbuf[128];
    loader ld = {.dir = dir, .vars = v};
    stepset *set = NULL;
    char **files = NULL;
    size_t nfiles = 0;
    bool ok = false;

    *out = NULL;
    if (!(ld.real_dir = realpath(dir, NULL)))
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not open step directory \"%s\": %s", dir,
                         errno_text(errno, errbuf, sizeof(errbuf)));
    if (!list_sql_files(dir, &files, &nfiles, err))
        goto done;
    if (!(set = calloc(1, sizeof(stepset))) || !(set->dir = strdup(dir))) {
        error_set(err, PGSTEP_EXIT_STEPSET, "out of memory");
        goto done;
    }
    load_all(&ld, files, nfiles, set);
    if (ld.problems > 0) {
        error_set(err, PGSTEP_EXIT_STEPSET, "step set \"%s\" is invalid: %d %s", dir, ld.problems,
                  ld.problems == 1 ? "problem" : "problems");
        error_detail(err, "First problem: %s", ld.first_problem);
        goto done;
    }
    qsort(set->steps, set->count, sizeof(step), compare_steps);
    *out = set;
    set = NULL;
    ok = true;

done:
    stepset_free(set);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(ld.real_dir);
    return ok;
}

void stepset_free(stepset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        step_clear(&set->steps[i]);
    free(set->steps);
    free(set->dir);
    free(set);
}

size_t stepset_count(const stepset *set)
{
    return set->count;
}

const step *stepset_get(const stepset *set, size_t i)
{
    return i < set->count ? &set->steps[i] : NULL;
}

const char *stepset_dir(const stepset *set)
{
    return set->dir;
}
