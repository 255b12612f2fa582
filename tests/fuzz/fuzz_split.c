/* Fuzzes the statement splitter, lexer_split, and checks what every split must keep: the pieces,
 * joined with the separators between them, are the input again; a separator holds nothing but
 * white space, comments and semicolons (checked by a scanner of its own, not the lexer's); and
 * no piece ends inside a quote, a dollar quote or a comment: each piece, split on its own, is one
 * statement, the whole piece. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/lexer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Whether [from, to) of sql is white space, -- and nested block comments and semicolons only,
 * with at least one semicolon when one is needed (between two statements). A -- comment must end
 * at a line end inside the range, unless the range ends the input. */
static bool only_separators(const char *sql, size_t size, size_t from, size_t to, bool need_semi)
{
    size_t i = from;
    bool semi = false;

    while (i < to) {
        if (is_space(sql[i])) {
            i++;
        } else if (sql[i] == ';') {
            semi = true;
            i++;
        } else if (sql[i] == '-' && i + 1 < to && sql[i + 1] == '-') {
            while (i < to && sql[i] != '\n' && sql[i] != '\r')
                i++;
            if (i == to && to != size)
                return false;
        } else if (sql[i] == '/' && i + 1 < to && sql[i + 1] == '*') {
            int depth = 1;

            for (i += 2; i < to && depth > 0;) {
                if (sql[i] == '/' && i + 1 < to && sql[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (sql[i] == '*' && i + 1 < to && sql[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            }
            if (depth > 0)
                return false;
        } else {
            return false;
        }
    }
    return semi || !need_semi;
}

/* A piece split alone is one statement: itself, from its first byte to its last, on line 1. */
static void check_piece(const char *piece, size_t len)
{
    /* A copy of exactly len bytes: a scan that runs past the piece is caught by ASan. */
    char *copy = malloc(len);
    lexer_statement *st = NULL;
    size_t n = 0;
    lexer_error err;

    FUZZ_CHECK(copy != NULL);
    memcpy(copy, piece, len);
    FUZZ_CHECK(lexer_split(copy, len, &st, &n, &err));
    FUZZ_CHECK(n == 1);
    FUZZ_CHECK(st[0].offset == 0 && st[0].length == len && st[0].line == 1);
    free(st);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    lexer_statement *st = NULL;
    size_t n = 0, pos = 0;
    lexer_error err;

    if (!lexer_split(sql, size, &st, &n, &err)) {
        FUZZ_CHECK(!err.out_of_memory);
        FUZZ_CHECK(st == NULL && n == 0);
        FUZZ_CHECK(err.line >= 1 && err.line <= fuzz_line_of(sql, size));
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) && err.message[0]);
        return 0;
    }
    FUZZ_CHECK((n == 0) == (st == NULL));
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(st[i].offset >= pos);
        FUZZ_CHECK(st[i].length > 0 && st[i].length <= size - st[i].offset);
        FUZZ_CHECK(only_separators(sql, size, pos, st[i].offset, i > 0));
        FUZZ_CHECK(st[i].line == fuzz_line_of(sql, st[i].offset));
        check_piece(sql + st[i].offset, st[i].length);
        pos = st[i].offset + st[i].length;
    }
    FUZZ_CHECK(only_separators(sql, size, pos, size, false));
    free(st);
    return 0;
}
