/* Fuzzes variable substitution, lexer_substitute. An input is "name=value" records separated by
 * 0x1f, a NUL, then the SQL; without a NUL it is all SQL and no variable is set. Checks: without
 * variables the SQL comes back unchanged or the call fails; no substitution moves a line; the
 * result stays under the limit; and SQL that splits still splits afterwards, into the same
 * statements on the same lines when no reference is glued to the word before it. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/lexer.h"
#include "pgstep/vars.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* Sets the variables of the records in [p, end). */
static void set_vars(vars *v, const char *p, const char *end)
{
    while (p < end) {
        const char *rec_end = memchr(p, 0x1f, (size_t)(end - p));
        const char *eq;

        if (!rec_end)
            rec_end = end;
        eq = memchr(p, '=', (size_t)(rec_end - p));
        if (eq && vars_name_valid(p, (size_t)(eq - p))) {
            char *name = strndup(p, (size_t)(eq - p));
            char *value = strndup(eq + 1, (size_t)(rec_end - eq - 1));

            FUZZ_CHECK(name && value && vars_set(v, name, value));
            free(name);
            free(value);
        }
        p = rec_end < end ? rec_end + 1 : end;
    }
}

static size_t count_newlines(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

/* Whether some ":'" or ":\"" follows a byte that could end a word or a string prefix: a value
 * put there merges with it (E:'v' becomes the escape string E'...'), and the statement's words,
 * which psql's BEGIN ATOMIC rule counts, change. */
static bool reference_after_word(const char *sql, size_t len)
{
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)sql[i - 1];

        if (sql[i] == ':' && (sql[i + 1] == '\'' || sql[i + 1] == '"') &&
            ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '$' || c == '&' || c >= 0x80))
            return true;
    }
    return false;
}

static void check_same_split(const char *in, size_t inlen, const char *out, size_t outlen)
{
    lexer_statement *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    lexer_error err;

    if (!lexer_split(in, inlen, &a, &na, &err))
        return;
    FUZZ_CHECK(lexer_split(out, outlen, &b, &nb, &err));
    if (!reference_after_word(in, inlen)) {
        FUZZ_CHECK(na == nb);
        for (size_t i = 0; i < na; i++)
            FUZZ_CHECK(a[i].line == b[i].line);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = (const char *)data;
    const char *nul = memchr(input, '\0', size);
    const char *sql = nul ? nul + 1 : input;
    size_t len = size - (size_t)(sql - input);
    size_t max = 64 + 4 * len;
    vars *none = vars_new(), *v = vars_new();
    char *out = NULL;
    size_t outlen = 0;
    lexer_error err;

    FUZZ_CHECK(none && v);
    if (nul)
        set_vars(v, input, nul);

    /* No variable: the text as it is, or an undefined reference (or unterminated quote). */
    if (lexer_substitute(sql, len, none, max, &out, &outlen, &err)) {
        FUZZ_CHECK(outlen == len && memcmp(out, sql, len) == 0 && out[outlen] == '\0');
        free(out);
    } else {
        FUZZ_CHECK(out == NULL && !err.out_of_memory && err.message[0]);
    }

    if (lexer_substitute(sql, len, v, max, &out, &outlen, &err)) {
        FUZZ_CHECK(outlen <= max && out[outlen] == '\0');
        FUZZ_CHECK(count_newlines(out, outlen) == count_newlines(sql, len));
        check_same_split(sql, len, out, outlen);
        free(out);
    } else {
        FUZZ_CHECK(out == NULL && !err.out_of_memory && err.message[0]);
        FUZZ_CHECK(err.line >= 1 && err.line <= fuzz_line_of(sql, len));
    }
    vars_free(none);
    vars_free(v);
    return 0;
}
