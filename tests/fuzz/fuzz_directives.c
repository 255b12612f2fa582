/* Fuzzes the directives parser, directives_parse, and the checks on a step's statements that
 * depend on the directives (transaction control, COPY). The first byte says whether the step is
 * repeatable; the rest is the step file's text. Checks: a parse fails exactly when it reported a
 * problem; every problem names a line of the file and has a message; a rerun-when query is one
 * trimmed line, and only in a repeatable step. Text with a NUL byte is skipped: the step file
 * reader refuses it first. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/directives.h"
#include "pgstep/lexer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

typedef struct seen {
    int problems;
    int lines; /* lines of the text */
} seen;

static void on_problem(void *ctx, int line, const char *hint, const char *message)
{
    seen *s = ctx;

    s->problems++;
    FUZZ_CHECK(line >= 0 && line <= s->lines);
    FUZZ_CHECK(message != NULL && message[0] != '\0' && strlen(message) < 1024);
    FUZZ_CHECK(hint == NULL || hint[0] != '\0');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\v';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data + 1;
    size_t len = size ? size - 1 : 0;
    bool repeatable = size > 0 && (data[0] & 1);
    seen s = {.lines = fuzz_line_of(text, len)};
    directives d = {0};
    lexer_statement *st = NULL;
    size_t n = 0;
    lexer_error err;
    bool ok;

    /* The step file reader refuses a NUL byte before the directives are read. */
    if (size == 0 || memchr(text, '\0', len))
        return 0;
    ok = directives_parse(text, len, repeatable, &d, on_problem, &s);
    FUZZ_CHECK(ok == (s.problems == 0));
    if (d.rerun_query) {
        size_t qlen = strlen(d.rerun_query);

        FUZZ_CHECK(repeatable && qlen > 0 && !strchr(d.rerun_query, '\n'));
        FUZZ_CHECK(!is_blank(d.rerun_query[0]) && !is_blank(d.rerun_query[qlen - 1]));
        FUZZ_CHECK(d.rerun_line >= 1 && d.rerun_line <= s.lines);
    }
    free(d.rerun_query);

    if (lexer_split(text, len, &st, &n, &err)) {
        directives_check_transaction_control(text, st, n, on_problem, &s);
        directives_check_copy(text, st, n, on_problem, &s);
        free(st);
    }
    return 0;
}
