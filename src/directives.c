/* The "-- pgstep: ..." directives in a step file's leading comment lines. The transaction control
 * check lives here too: it is what the absence of "no-transaction" means, and its hint names that
 * directive. Problems go to the caller's callback as they are found, so every one is reported. */
#include "pgstep/directives.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pgstep/error.h"
#include "pgstep/utf8.h"

#define DIRECTIVES_HINT "Known directives are \"no-transaction\" and \"rerun-when <query>\"."
#define DIRECTIVES_FORM_HINT                                                                       \
    "Directives are written \"-- pgstep: <directive>\", such as \"-- pgstep: no-transaction\"."
#define DIRECTIVES_TXN_HINT                                                                        \
    "Remove the statement, or put \"-- pgstep: no-transaction\" at the top of the file to run "    \
    "the step outside a transaction."

/* Where problems go, and how many went there. */
typedef struct reporter {
    directives_problem_fn *problem;
    void *ctx;
    int problems;
} reporter;

static void directives_problem(reporter *r, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void directives_problem(reporter *r, int line, const char *hint, const char *fmt, ...)
{
    char message[ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    r->problems++;
    r->problem(r->ctx, line, hint, message);
}

/* ---- Directives ---- */

static bool is_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\v';
}

/* If the line [p, end) is a "--" comment, returns where its text starts. */
static const char *comment_text(const char *p, const char *end)
{
    while (p < end && is_blank_char(*p))
        p++;
    if (end - p < 2 || p[0] != '-' || p[1] != '-')
        return NULL;
    p += 2;
    while (p < end && is_blank_char(*p))
        p++;
    return p;
}

/* If the line [p, end) is a "-- pgstep:" comment, returns where the directive starts. */
static const char *directive_text(const char *p, const char *end)
{
    if (!(p = comment_text(p, end)))
        return NULL;
    /* Any case, so that "-- PGSTEP: ..." is checked too rather than silently ignored. */
    if (end - p < 7 || strncasecmp(p, "pgstep:", 7) != 0)
        return NULL;
    p += 7;
    while (p < end && is_blank_char(*p))
        p++;
    return p;
}

/* Whether the comment line [p, end) is meant as a directive but is not written as one:
 * "-- pgstep no-transaction", "-- pgstep : ...", "-- pgstep; ...". Silently ignored, such a line
 * would let a CREATE INDEX CONCURRENTLY step fail only when it is applied. */
static bool malformed_directive(const char *p, const char *end)
{
    static const char *const names[] = {"no-transaction", "rerun-when"};
    const char *q;

    if (!(p = comment_text(p, end)))
        return false;
    if (end - p < 6 || strncasecmp(p, "pgstep", 6) != 0)
        return false;
    p += 6;
    if (p < end && strchr(";=.,", *p))
        return true;
    for (q = p; q < end && is_blank_char(*q); q++)
        ;
    if (q < end && *q == ':')
        return true;
    if (q == p)
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);

        if ((size_t)(end - q) >= n && strncasecmp(q, names[i], n) == 0)
            return true;
    }
    return false;
}

static void parse_directive(reporter *r, bool repeatable, int line, const char *p, const char *end,
                            directives *d)
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
            directives_problem(r, line, NULL, "directive \"no-transaction\" takes no argument");
        d->no_transaction = true;
    } else if (wlen == 10 && strncmp(word, "rerun-when", wlen) == 0) {
        if (!repeatable)
            directives_problem(
                r, line, NULL,
                "directive \"rerun-when\" is only allowed in repeatable (R__) steps");
        else if (arg == end)
            directives_problem(r, line, NULL, "directive \"rerun-when\" needs a query");
        else if (d->rerun_query)
            directives_problem(r, line, NULL, "duplicate directive \"rerun-when\"");
        else if (!(d->rerun_query = strndup(arg, (size_t)(end - arg))))
            directives_problem(r, line, NULL, "out of memory");
        else
            d->rerun_line = line;
    } else if (wlen == 0) {
        directives_problem(r, line, DIRECTIVES_HINT, "empty pgstep directive");
    } else {
        char raw[65], shown[260];

        snprintf(raw, sizeof(raw), "%.*s", (int)(wlen > 64 ? 64 : wlen), word);
        directives_problem(r, line, DIRECTIVES_HINT, "unknown directive \"%s\"",
                           utf8_escape(raw, shown, sizeof(shown)));
    }
}

/* A directive further down than the leading block would be silently ignored, which is worse
 * than an error, so it is one. */
bool directives_parse(const char *text, size_t len, bool repeatable, directives *d,
                      directives_problem_fn *problem, void *ctx)
{
    reporter r = {.problem = problem, .ctx = ctx};
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
            parse_directive(&r, repeatable, line, directive, eol, d);
        else if (leading && malformed_directive(p, eol))
            directives_problem(&r, line, DIRECTIVES_FORM_HINT, "malformed pgstep directive");
        else if (directive)
            directives_problem(&r, line,
                               "Directives belong in the leading block of \"--\" comment lines.",
                               "pgstep directive after the start of the SQL is not allowed");
        p = eol < end ? eol + 1 : end;
    }
    return r.problems == 0;
}

/* ---- Transaction control ---- */

/* Copies the next word of a statement (ASCII letters) after whitespace and comments into word;
 * an over-long word comes back empty, so it matches no keyword. */
static void next_word(const char *s, size_t len, size_t *pos, char *word, size_t size)
{
    size_t i = lexer_skip_blank(s, len, *pos), start;

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

void directives_check_transaction_control(const char *sql, const lexer_statement *statements,
                                          size_t nstatements, directives_problem_fn *problem,
                                          void *ctx)
{
    reporter r = {.problem = problem, .ctx = ctx};

    for (size_t i = 0; i < nstatements; i++) {
        const lexer_statement *st = &statements[i];
        const char *command = transaction_control(sql + st->offset, st->length);

        if (command)
            directives_problem(&r, st->line, DIRECTIVES_TXN_HINT,
                               "transaction control statement \"%s\" in a step that runs in a "
                               "transaction",
                               command);
    }
}

/* The words of a COPY statement outside comments and quotes, one at a time: *pos moves past the
 * word (empty when none is left). Quoted text ('/dev/stdin', "stdin") is passed over whole. */
static void copy_next_word(const char *s, size_t len, size_t *pos, char *word, size_t size)
{
    size_t i = *pos;

    word[0] = '\0';
    while ((i = lexer_skip_blank(s, len, i)) < len) {
        char c = s[i];

        if (c == '\'' || c == '"') {
            for (i++; i < len && s[i] != c; i++)
                ;
            i++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t start = i;

            while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '$'))
                i++;
            if (i - start < size) {
                memcpy(word, s + start, i - start);
                word[i - start] = '\0';
            }
            break;
        } else {
            i++;
        }
    }
    *pos = i;
}

void directives_check_copy(const char *sql, const lexer_statement *statements, size_t nstatements,
                           directives_problem_fn *problem, void *ctx)
{
    reporter r = {.problem = problem, .ctx = ctx};

    for (size_t k = 0; k < nstatements; k++) {
        const char *stmt = sql + statements[k].offset;
        size_t len = statements[k].length;
        char first[8];
        size_t pos = 0;

        next_word(stmt, len, &pos, first, sizeof(first));
        if (strcasecmp(first, "copy") != 0)
            continue;
        while (pos < len) {
            char word[8];
            bool in;

            copy_next_word(stmt, len, &pos, word, sizeof(word));
            in = strcasecmp(word, "stdin") == 0;
            if (in || strcasecmp(word, "stdout") == 0) {
                directives_problem(&r, statements[k].line,
                                   "Put the data in the SQL itself, or COPY from a file on the "
                                   "server.",
                                   "COPY %s in a step: pgstep %s no COPY data",
                                   in ? "FROM STDIN" : "TO STDOUT", in ? "sends" : "reads");
                break;
            }
        }
    }
}
