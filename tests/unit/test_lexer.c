/* Unit tests for lexer.c: statement splitting where psql splits, and variable substitution that
 * no value can break out of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/lexer.h"
#include "pgstep/vars.h"

/* ---- Helpers ---- */

typedef struct expected {
    const char *text;
    int line;
} expected;

static void check_split(const char *sql, const expected *want, size_t nwant)
{
    lexer_statement *st = NULL;
    size_t n = 0;
    lexer_error err;

    if (!lexer_split(sql, strlen(sql), &st, &n, &err))
        fail_msg("split failed at line %d: %s\ninput: %s", err.line, err.message, sql);
    if (n != nwant) {
        for (size_t i = 0; i < n; i++)
            print_error("statement %zu (line %d): [%.*s]\n", i, st[i].line, (int)st[i].length,
                        sql + st[i].offset);
        fail_msg("expected %zu statements, got %zu\ninput: %s", nwant, n, sql);
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i].length != strlen(want[i].text) ||
            memcmp(sql + st[i].offset, want[i].text, st[i].length) != 0)
            fail_msg("statement %zu: expected [%s], got [%.*s]", i, want[i].text, (int)st[i].length,
                     sql + st[i].offset);
        assert_int_equal(st[i].line, want[i].line);
    }
    free(st);
}

#define CHECK_SPLIT(sql, ...)                                                                      \
    do {                                                                                           \
        const expected want_[] = {__VA_ARGS__};                                                    \
        check_split((sql), want_, sizeof(want_) / sizeof(want_[0]));                               \
    } while (0)

static void check_split_count(const char *sql, size_t want)
{
    lexer_statement *st = NULL;
    size_t n = 99;
    lexer_error err;

    if (!lexer_split(sql, strlen(sql), &st, &n, &err))
        fail_msg("split failed at line %d: %s", err.line, err.message);
    assert_int_equal(n, want);
    if (want == 0)
        assert_null(st);
    free(st);
}

static void check_split_error(const char *sql, int line, const char *message)
{
    lexer_statement *st = NULL;
    size_t n = 0;
    lexer_error err;

    assert_false(lexer_split(sql, strlen(sql), &st, &n, &err));
    assert_null(st);
    assert_string_equal(err.message, message);
    assert_int_equal(err.line, line);
}

/* Substitutes sql with v, failing the test on error; the result is malloc'ed. */
static char *substitute(const char *sql, const vars *v)
{
    char *out = NULL;
    size_t outlen = 0;
    lexer_error err;

    if (!lexer_substitute(sql, strlen(sql), v, SIZE_MAX, &out, &outlen, &err))
        fail_msg("substitute failed at line %d: %s", err.line, err.message);
    assert_non_null(out);
    assert_int_equal(outlen, strlen(out));
    return out;
}

static vars *one_var(const char *name, const char *value)
{
    vars *v = vars_new();

    assert_non_null(v);
    assert_true(vars_set(v, name, value));
    return v;
}

static int count_newlines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Decodes an SQL literal ('...' or E'...') the way the server does, independently of lexer.c.
 * Returns the byte count the literal spans; *value gets its malloc'ed content. */
static size_t decode_literal(const char *lit, char **value)
{
    bool escapes = lit[0] == 'E';
    const char *p = lit + (escapes ? 2 : 1);
    char *out = malloc(strlen(lit) + 1), *o = out;

    assert_true(lit[escapes ? 1 : 0] == '\'');
    for (;; p++) {
        assert_true(*p != '\0');
        if (*p == '\'' && p[1] == '\'') {
            *o++ = '\'';
            p++;
        } else if (*p == '\'') {
            break;
        } else if (escapes && *p == '\\') {
            p++;
            *o++ = *p == 'n' ? '\n' : *p == 'r' ? '\r' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *value = out;
    return (size_t)(p + 1 - lit);
}

/* Decodes "..." or U&"..." (with \\ and \XXXX escapes) independently of lexer.c. */
static size_t decode_identifier(const char *id, char **value)
{
    bool unicode = id[0] == 'U';
    const char *p = id + (unicode ? 3 : 1);
    char *out = malloc(strlen(id) + 1), *o = out;

    assert_true(id[unicode ? 2 : 0] == '"');
    for (;; p++) {
        assert_true(*p != '\0');
        if (*p == '"' && p[1] == '"') {
            *o++ = '"';
            p++;
        } else if (*p == '"') {
            break;
        } else if (unicode && *p == '\\' && p[1] == '\\') {
            *o++ = '\\';
            p++;
        } else if (unicode && *p == '\\') {
            char hex[5] = {p[1], p[2], p[3], p[4], '\0'};

            *o++ = (char)strtol(hex, NULL, 16);
            p += 4;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *value = out;
    return (size_t)(p + 1 - id);
}

/* Values written to get out of a literal or an identifier, or to hide the rest of a file. */
static const char *const hostile_values[] = {
    "'; DROP TABLE users; --",
    "\\'; DROP TABLE users; --",
    "\\",
    "abc\\",
    "''",
    "'",
    "\"; DROP TABLE users; --",
    "\"",
    "$$; DROP TABLE users; $$",
    "$x$",
    "/* unclosed comment",
    "*/ SELECT 1; /*",
    "-- rest of the line",
    "line1\nline2; DROP TABLE users;\n",
    "cr\rlf\r\n;",
    "E'\\'",
    ":'other' :\"other\" ::text",
    "U&'\\0041'",
    "\xc3\xa4\xe2\x82\xac; \xf0\x9f\x98\x80",
    "",
};

#define NHOSTILE (sizeof(hostile_values) / sizeof(hostile_values[0]))

/* ---- Splitting: basics ---- */

static void test_split_at_top_level_semicolons(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1; SELECT 2;", {"SELECT 1", 1}, {"SELECT 2", 1});
}

static void test_split_lines_are_lines_of_first_token(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1;\n\n\n  SELECT\n2;\n", {"SELECT 1", 1}, {"SELECT\n2", 4});
}

static void test_split_trailing_statement_without_semicolon_is_kept(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1;\nSELECT 2\n", {"SELECT 1", 1}, {"SELECT 2", 2});
    CHECK_SPLIT("SELECT 3", {"SELECT 3", 1});
}

static void test_split_skips_empty_statements(void **state)
{
    (void)state;
    CHECK_SPLIT(";;SELECT 1;; ;\n;SELECT 2;;", {"SELECT 1", 1}, {"SELECT 2", 2});
    check_split_count(";;  ;\n;", 0);
    check_split_count("-- only a comment; with a semicolon\n/* and ; another */;\n", 0);
    check_split_count("", 0);
    check_split_count("  \n\t\n", 0);
}

static void test_split_statement_excludes_leading_and_trailing_comments(void **state)
{
    (void)state;
    CHECK_SPLIT("  /* head */ -- note\n  SELECT 1 /* tail */ -- more\n ; -- after\nSELECT 2",
                {"SELECT 1", 2}, {"SELECT 2", 4});
}

static void test_split_keeps_comments_inside_a_statement(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT /* ; */ 1 -- ;\n + 2;", {"SELECT /* ; */ 1 -- ;\n + 2", 1});
}

/* ---- Splitting: quoting constructs ---- */

static void test_split_ignores_semicolon_in_single_quotes_with_doubled_quote(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 'a;b', 'it''s;'; SELECT ''';';", {"SELECT 'a;b', 'it''s;'", 1},
                {"SELECT ''';'", 1});
}

static void test_split_backslash_does_not_escape_in_standard_strings(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 'a\\'; SELECT 2;", {"SELECT 'a\\'", 1}, {"SELECT 2", 1});
}

static void test_split_escape_string_backslash_quote(void **state)
{
    (void)state;
    /* E'\'' is a one-character string: the ; after it ends the statement. */
    CHECK_SPLIT("SELECT E'\\''; SELECT 2;", {"SELECT E'\\''", 1}, {"SELECT 2", 1});
    CHECK_SPLIT("SELECT e'\\';'; SELECT 2;", {"SELECT e'\\';'", 1}, {"SELECT 2", 1});
    CHECK_SPLIT("SELECT E'\\\\'; SELECT 2;", {"SELECT E'\\\\'", 1}, {"SELECT 2", 1});
    CHECK_SPLIT("SELECT E'x''; y'; SELECT 2;", {"SELECT E'x''; y'", 1}, {"SELECT 2", 1});
}

static void test_split_word_ending_in_e_is_not_an_escape_string(void **state)
{
    (void)state;
    /* "be" is an identifier, so '\' is a standard string holding a backslash. */
    CHECK_SPLIT("SELECT be'\\'; SELECT 2;", {"SELECT be'\\'", 1}, {"SELECT 2", 1});
}

static void test_split_unicode_string_and_identifier(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT U&'\\0041;' AS u&\"x;\"\"y\"; SELECT 2;",
                {"SELECT U&'\\0041;' AS u&\"x;\"\"y\"", 1}, {"SELECT 2", 1});
}

static void test_split_bit_hex_and_national_strings(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT B'1010;', x'1F;', N'n;'; SELECT 2;", {"SELECT B'1010;', x'1F;', N'n;'", 1},
                {"SELECT 2", 1});
}

static void test_split_quoted_identifier_with_doubled_quote(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1 AS \"a\"\";b\"; SELECT 2 AS \";\";", {"SELECT 1 AS \"a\"\";b\"", 1},
                {"SELECT 2 AS \";\"", 1});
}

static void test_split_dollar_quotes(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT $$a;b$$; SELECT $fn$ $$; $x$; $fn$; SELECT 3;", {"SELECT $$a;b$$", 1},
                {"SELECT $fn$ $$; $x$; $fn$", 1}, {"SELECT 3", 1});
}

static void test_split_dollar_tag_underscore_digits_and_case(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT $_$;$_$; SELECT $a1$;$a1$; SELECT $A$ ; $a$ ; $A$; SELECT 4",
                {"SELECT $_$;$_$", 1}, {"SELECT $a1$;$a1$", 1}, {"SELECT $A$ ; $a$ ; $A$", 1},
                {"SELECT 4", 1});
}

static void test_split_dollar_tag_with_non_ascii_letters(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT $\xc3\xa4$ ; $\xc3\xa4$; SELECT $t\xc3\xa4g$;$t\xc3\xa4g$;",
                {"SELECT $\xc3\xa4$ ; $\xc3\xa4$", 1}, {"SELECT $t\xc3\xa4g$;$t\xc3\xa4g$", 1});
}

static void test_split_dollar_quote_closes_at_first_matching_delimiter(void **state)
{
    (void)state;
    /* $a$ is not closed by $ba$ or by $a followed by another character. */
    CHECK_SPLIT("SELECT $a$ $ba$ ; $ab$ ; $a$; SELECT 2;", {"SELECT $a$ $ba$ ; $ab$ ; $a$", 1},
                {"SELECT 2", 1});
}

static void test_split_positional_parameter_is_not_a_dollar_quote(void **state)
{
    (void)state;
    CHECK_SPLIT("PREPARE p AS SELECT $1; SELECT $2 ;", {"PREPARE p AS SELECT $1", 1},
                {"SELECT $2", 1});
}

static void test_split_dollar_inside_identifier_is_not_a_dollar_quote(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT a$$b; SELECT x$y$; SELECT 3;", {"SELECT a$$b", 1}, {"SELECT x$y$", 1},
                {"SELECT 3", 1});
}

static void test_split_lone_dollar_word_is_not_a_dollar_quote(void **state)
{
    (void)state;
    /* "$abc" without a closing '$' is '$' followed by an identifier. */
    CHECK_SPLIT("SELECT $abc; SELECT 2;", {"SELECT $abc", 1}, {"SELECT 2", 1});
}

static void test_split_nested_block_comments(void **state)
{
    (void)state;
    CHECK_SPLIT("/* outer /* inner ; */ still ; comment */ SELECT 1; SELECT /* a /* b */ ; */ 2;",
                {"SELECT 1", 1}, {"SELECT /* a /* b */ ; */ 2", 1});
}

static void test_split_line_comment_hides_semicolon_and_quotes(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1 -- it's; \"not $$ closed /*\n; SELECT 2;", {"SELECT 1", 1},
                {"SELECT 2", 2});
}

static void test_split_line_comment_ends_at_carriage_return(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1 -- c\r; SELECT 2", {"SELECT 1", 1}, {"SELECT 2", 1});
}

static void test_split_comment_start_inside_operator(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1 +-- c;\n 1; SELECT 2 */* ; */ 3;", {"SELECT 1 +-- c;\n 1", 1},
                {"SELECT 2 */* ; */ 3", 2});
}

static void test_split_real_number_fail_keeps_minus(void **state)
{
    (void)state;
    /* psql reads "1e-" as one (bad) number, so the next '-' does not start a comment. */
    CHECK_SPLIT("SELECT 1e--;\nSELECT 2;", {"SELECT 1e--", 1}, {"SELECT 2", 2});
}

static void test_split_typecast_and_colons(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1::int, a := 2, x[1:2]; SELECT :foo;", {"SELECT 1::int, a := 2, x[1:2]", 1},
                {"SELECT :foo", 1});
}

/* ---- Splitting: parentheses and BEGIN ATOMIC ---- */

static void test_split_ignores_semicolon_inside_parentheses(void **state)
{
    (void)state;
    CHECK_SPLIT("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b "
                "VALUES (2));\nSELECT 1;",
                {"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO "
                 "b VALUES (2))",
                 1},
                {"SELECT 1", 2});
}

static void test_split_extra_close_paren_does_not_go_negative(void **state)
{
    (void)state;
    CHECK_SPLIT("SELECT 1); SELECT (2; 3)", {"SELECT 1)", 1}, {"SELECT (2; 3)", 1});
}

static void test_split_begin_atomic_body_with_case(void **state)
{
    (void)state;
    CHECK_SPLIT("CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\n"
                "BEGIN ATOMIC\n"
                "  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n"
                "  SELECT a + 1;\n"
                "END;\n"
                "SELECT 1;",
                {"CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\n"
                 "BEGIN ATOMIC\n"
                 "  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n"
                 "  SELECT a + 1;\n"
                 "END",
                 1},
                {"SELECT 1", 6});
}

static void test_split_begin_atomic_in_create_or_replace_procedure(void **state)
{
    (void)state;
    CHECK_SPLIT("create or replace procedure p() language sql begin atomic insert into t values "
                "(1); insert into t values (2); end; call p();",
                {"create or replace procedure p() language sql begin atomic insert into t values "
                 "(1); insert into t values (2); end",
                 1},
                {"call p()", 1});
}

static void test_split_case_outside_begin_is_not_counted(void **state)
{
    (void)state;
    CHECK_SPLIT(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END; "
        "SELECT 2;",
        {"CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END", 1},
        {"SELECT 2", 1});
}

static void test_split_begin_inside_parentheses_is_not_counted(void **state)
{
    (void)state;
    CHECK_SPLIT("CREATE FUNCTION f(begin int) RETURNS int AS 'SELECT 1' LANGUAGE sql; SELECT 2;",
                {"CREATE FUNCTION f(begin int) RETURNS int AS 'SELECT 1' LANGUAGE sql", 1},
                {"SELECT 2", 1});
}

static void test_split_begin_outside_create_function_is_a_statement(void **state)
{
    (void)state;
    CHECK_SPLIT("BEGIN; CREATE TABLE t (a int); END; CREATE TABLE begin_log (begin int);",
                {"BEGIN", 1}, {"CREATE TABLE t (a int)", 1}, {"END", 1},
                {"CREATE TABLE begin_log (begin int)", 1});
}

static void test_split_routine_detection_restarts_after_each_statement(void **state)
{
    (void)state;
    CHECK_SPLIT("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql; BEGIN; "
                "SELECT 1; COMMIT;",
                {"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", 1}, {"BEGIN", 1},
                {"SELECT 1", 1}, {"COMMIT", 1});
}

static void test_split_begin_in_dollar_quoted_body_is_not_counted(void **state)
{
    (void)state;
    CHECK_SPLIT("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n"
                "END\n$$;\nSELECT 2;",
                {"CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n"
                 "END\n$$",
                 1},
                {"SELECT 2", 6});
}

static void test_split_bare_variable_is_not_an_identifier(void **state)
{
    (void)state;
    /* psql reads :v as one token, so CREATE is still the statement's first identifier. */
    CHECK_SPLIT(":v CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; "
                "SELECT 2;",
                {":v CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", 1},
                {"SELECT 2", 1});
}

static void test_split_u_before_ampersand_is_not_an_identifier(void **state)
{
    (void)state;
    /* psql takes the u of "u&begin" alone; "begin" is then an identifier and opens a body. */
    CHECK_SPLIT("CREATE FUNCTION f() RETURNS int LANGUAGE sql u&begin SELECT 1; END; SELECT 2;",
                {"CREATE FUNCTION f() RETURNS int LANGUAGE sql u&begin SELECT 1; END", 1},
                {"SELECT 2", 1});
}

static void test_split_junk_after_number_or_parameter_is_one_token(void **state)
{
    (void)state;
    /* Letters (and then '$') right after a number or $n belong to it: no dollar quote starts,
     * and a keyword glued to a number is not counted. */
    CHECK_SPLIT("SELECT $1abc$$; SELECT 1abc$$; SELECT 2;", {"SELECT $1abc$$", 1},
                {"SELECT 1abc$$", 1}, {"SELECT 2", 1});
    CHECK_SPLIT("CREATE FUNCTION f() RETURNS int LANGUAGE sql 1xbegin SELECT 1; END; SELECT 2;",
                {"CREATE FUNCTION f() RETURNS int LANGUAGE sql 1xbegin SELECT 1", 1}, {"END", 1},
                {"SELECT 2", 1});
}

static void test_split_rejects_psql_meta_command(void **state)
{
    (void)state;
    check_split_error("SELECT 1;\n\\set x 1\nSELECT 2;", 2,
                      "psql meta-command \"\\set\" is not supported");
    check_split_error("SELECT 1 \\; SELECT 2;", 1, "psql meta-command \"\\;\" is not supported");
}

/* ---- Splitting: unterminated constructs ---- */

static void test_split_unterminated_constructs_report_start_line(void **state)
{
    (void)state;
    check_split_error("SELECT 1;\nSELECT 'abc\n\n", 2, "unterminated quoted string");
    check_split_error("SELECT E'abc\\'\n;", 1, "unterminated quoted string");
    check_split_error("SELECT U&'abc", 1, "unterminated quoted string");
    check_split_error("\n\nSELECT \"abc;\n", 3, "unterminated quoted identifier");
    check_split_error("SELECT U&\"abc", 1, "unterminated quoted identifier");
    check_split_error("SELECT 1;\n\nSELECT $fn$ abc $fn\n;\n", 3,
                      "unterminated dollar-quoted string");
    check_split_error("SELECT $$ abc $", 1, "unterminated dollar-quoted string");
    check_split_error("SELECT 1;\n/* a /* b */\nSELECT 2;", 2, "unterminated /* comment");
    check_split_error("SELECT B'0101", 1, "unterminated bit string literal");
    check_split_error("SELECT X'1F", 1, "unterminated hexadecimal string literal");
}

/* ---- Substitution ---- */

static void test_substitute_literal_and_identifier(void **state)
{
    vars *v = vars_new();
    char *out;

    (void)state;
    assert_true(vars_set(v, "schema", "app"));
    assert_true(vars_set(v, "owner", "o'brien"));
    out = substitute("CREATE SCHEMA :\"schema\" AUTHORIZATION :\"owner\"; SELECT :'owner';", v);
    assert_string_equal(out, "CREATE SCHEMA \"app\" AUTHORIZATION \"o'brien\"; SELECT 'o''brien';");
    free(out);
    vars_free(v);
}

static void test_substitute_leaves_casts_and_bare_names(void **state)
{
    vars *v = one_var("x", "val");
    char *out;

    (void)state;
    out = substitute("SELECT 1::int, :x, a:=1, :'x'::text, y:::'x';", v);
    assert_string_equal(out, "SELECT 1::int, :x, a:=1, 'val'::text, y::'val';");
    free(out);
    vars_free(v);
}

static void test_substitute_leaves_references_in_quotes_and_comments(void **state)
{
    vars *v = one_var("x", "val");
    const char *sql = "SELECT ':''x''', ':\"x\"', E'\\':''x''', \":'x'\", $$ :'x' $$, "
                      "$t$ :\"x\" $t$ /* :'x' /* :'x' */ :'x' */ -- :'x'\n, :'x';";
    char *out;

    (void)state;
    out = substitute(sql, v);
    assert_int_equal(strlen(out), strlen(sql) - strlen(":'x'") + strlen("'val'"));
    assert_memory_equal(out, sql, strlen(sql) - strlen(":'x';"));
    assert_string_equal(out + strlen(sql) - strlen(":'x';"), "'val';");
    free(out);
    vars_free(v);
}

static void test_substitute_ignores_invalid_variable_names(void **state)
{
    vars *v = one_var("x", "val");
    char *out;

    (void)state;
    out = substitute("SELECT :'a-b', :\"\", :'';", v);
    assert_string_equal(out, "SELECT :'a-b', :\"\", :'';");
    free(out);
    vars_free(v);
}

static void test_substitute_non_ascii_variable_name(void **state)
{
    vars *v = one_var("sch\xc3\xa9ma", "s");
    char *out;

    (void)state;
    out = substitute("SET search_path = :\"sch\xc3\xa9ma\";", v);
    assert_string_equal(out, "SET search_path = \"s\";");
    free(out);
    vars_free(v);
}

static void test_substitute_undefined_variable_fails_with_line(void **state)
{
    vars *v = one_var("x", "val");
    char *out = NULL;
    size_t outlen = 0;
    lexer_error err;
    const char *sql = "SELECT :'x';\n\nSELECT :\"nope\";";

    (void)state;
    assert_false(lexer_substitute(sql, strlen(sql), v, SIZE_MAX, &out, &outlen, &err));
    assert_null(out);
    assert_int_equal(err.line, 3);
    assert_string_equal(err.message, "undefined variable \"nope\"");
    vars_free(v);
}

static void test_substitute_empty_identifier_fails(void **state)
{
    vars *v = one_var("x", "");
    char *out = NULL, *lit;
    size_t outlen = 0;
    lexer_error err;

    (void)state;
    assert_false(lexer_substitute(":\"x\"", 4, v, SIZE_MAX, &out, &outlen, &err));
    assert_string_equal(err.message, "variable \"x\" is empty and cannot be an identifier");
    lit = substitute(":'x'", v);
    assert_string_equal(lit, "''");
    free(lit);
    vars_free(v);
}

static void test_substitute_reports_unterminated_construct(void **state)
{
    vars *v = vars_new();
    char *out = NULL;
    size_t outlen = 0;
    lexer_error err;

    (void)state;
    assert_false(lexer_substitute("SELECT 1;\n'open", 15, v, SIZE_MAX, &out, &outlen, &err));
    assert_int_equal(err.line, 2);
    assert_string_equal(err.message, "unterminated quoted string");
    vars_free(v);
}

static void test_substitute_without_references_copies_input(void **state)
{
    vars *v = vars_new();
    char *out;

    (void)state;
    out = substitute("", v);
    assert_string_equal(out, "");
    free(out);
    out = substitute("SELECT 1; -- :'x'\n", v);
    assert_string_equal(out, "SELECT 1; -- :'x'\n");
    free(out);
    vars_free(v);
}

static void test_substitute_newlines_in_values_keep_line_numbers(void **state)
{
    vars *v = vars_new();
    const char *sql = "SELECT :'a';\nSELECT :\"b\";\nSELECT 3;";
    char *out;
    lexer_statement *st;
    size_t n;
    lexer_error err;

    (void)state;
    assert_true(vars_set(v, "a", "x\ny\r\nz"));
    assert_true(vars_set(v, "b", "p\nq"));
    out = substitute(sql, v);
    assert_string_equal(out, "SELECT E'x\\ny\\r\\nz';\nSELECT U&\"p\\000Aq\";\nSELECT 3;");
    assert_int_equal(count_newlines(out), count_newlines(sql));
    assert_true(lexer_split(out, strlen(out), &st, &n, &err));
    assert_int_equal(n, 3);
    assert_int_equal(st[0].line, 1);
    assert_int_equal(st[1].line, 2);
    assert_int_equal(st[2].line, 3);
    free(st);
    free(out);
    vars_free(v);
}

static void test_quote_literal_like_pqescapeliteral(void **state)
{
    char *q;

    (void)state;
    q = lexer_quote_literal("plain");
    assert_string_equal(q, "'plain'");
    free(q);
    q = lexer_quote_literal("it's");
    assert_string_equal(q, "'it''s'");
    free(q);
    q = lexer_quote_literal("a\\b'c");
    assert_string_equal(q, "E'a\\\\b''c'");
    free(q);
    q = lexer_quote_literal("two\nlines\r");
    assert_string_equal(q, "E'two\\nlines\\r'");
    free(q);
    q = lexer_quote_literal("");
    assert_string_equal(q, "''");
    free(q);
}

static void test_quote_identifier_doubles_quotes(void **state)
{
    char *q;

    (void)state;
    q = lexer_quote_identifier("My \"Table\"");
    assert_string_equal(q, "\"My \"\"Table\"\"\"");
    free(q);
    q = lexer_quote_identifier("back\\slash");
    assert_string_equal(q, "\"back\\slash\"");
    free(q);
    q = lexer_quote_identifier("a\\\nb");
    assert_string_equal(q, "U&\"a\\\\\\000Ab\"");
    free(q);
}

/* Each hostile value, substituted as a literal, decodes back to itself and spans exactly its
 * own token: statements before and after it are untouched. */
static void test_substitute_hostile_literal_values_stay_one_literal(void **state)
{
    (void)state;
    for (size_t i = 0; i < NHOSTILE; i++) {
        vars *v = one_var("v", hostile_values[i]);
        char *out = substitute("SELECT 1;\nSELECT :'v';\nSELECT 3; :'v'", v);
        const char *lit = out + strlen("SELECT 1;\nSELECT ");
        char *decoded, *alone;
        size_t span = decode_literal(lit, &decoded);
        lexer_statement *st;
        size_t n;
        lexer_error err;

        assert_string_equal(decoded, hostile_values[i]);
        assert_memory_equal(lit + span, ";\nSELECT 3; ", strlen(";\nSELECT 3; "));
        assert_int_equal(count_newlines(out), 2);
        if (!lexer_split(out, strlen(out), &st, &n, &err))
            fail_msg("value %zu: %s", i, err.message);
        assert_int_equal(n, 4);
        assert_int_equal(st[1].offset, strlen("SELECT 1;\n"));
        assert_int_equal(st[1].length, strlen("SELECT ") + span);
        assert_int_equal(st[1].line, 2);
        assert_int_equal(st[2].length, strlen("SELECT 3"));
        assert_int_equal(st[2].line, 3);
        /* The last statement is the literal alone: one token from its first to last byte. */
        alone = lexer_quote_literal(hostile_values[i]);
        assert_int_equal(st[3].length, strlen(alone));
        assert_memory_equal(out + st[3].offset, alone, strlen(alone));
        free(alone);
        free(st);
        free(decoded);
        free(out);
        vars_free(v);
    }
}

/* The same for identifiers: no value gets out of the double quotes. */
static void test_substitute_hostile_identifier_values_stay_one_identifier(void **state)
{
    (void)state;
    for (size_t i = 0; i < NHOSTILE; i++) {
        vars *v;
        char *out, *decoded;
        const char *id;
        size_t span, n;
        lexer_statement *st;
        lexer_error err;

        if (hostile_values[i][0] == '\0')
            continue; /* an empty identifier is refused, tested above */
        v = one_var("v", hostile_values[i]);
        out = substitute("SELECT 1;\nSELECT * FROM :\"v\";\nSELECT 3;", v);
        id = out + strlen("SELECT 1;\nSELECT * FROM ");
        span = decode_identifier(id, &decoded);
        assert_string_equal(decoded, hostile_values[i]);
        assert_string_equal(id + span, ";\nSELECT 3;");
        assert_int_equal(count_newlines(out), 2);
        if (!lexer_split(out, strlen(out), &st, &n, &err))
            fail_msg("value %zu: %s", i, err.message);
        assert_int_equal(n, 3);
        assert_int_equal(st[1].length, strlen("SELECT * FROM ") + span);
        assert_int_equal(st[2].line, 3);
        free(st);
        free(decoded);
        free(out);
        vars_free(v);
    }
}

static void test_substituted_value_is_not_substituted_again(void **state)
{
    vars *v = one_var("v", ":'w' :\"w\"");
    char *out;

    (void)state;
    /* w is undefined: a second pass over the value would fail. */
    out = substitute("SELECT :'v', :\"v\";", v);
    assert_string_equal(out, "SELECT ':''w'' :\"w\"', \":'w' :\"\"w\"\"\";");
    free(out);
    vars_free(v);
}

static void test_skip_blank_passes_whitespace_and_comments(void **state)
{
    const char *sql = " \t-- line\r/* a /* nested */ one */\nSELECT";

    (void)state;
    assert_int_equal(lexer_skip_blank(sql, strlen(sql), 0), strlen(sql) - 6);
    assert_int_equal(lexer_skip_blank("x /* open", 9, 1), 9);
    assert_int_equal(lexer_skip_blank("a  b", 4, 1), 3);
    assert_int_equal(lexer_skip_blank("a", 1, 0), 0);
}

static void test_substitute_stops_at_the_size_limit(void **state)
{
    const char *sql = "SELECT 1;\nSELECT :'a', :'a',\n :'a';\n";
    vars *v = vars_new();
    lexer_error err;
    char *out = NULL;
    size_t outlen;

    (void)state;
    assert_true(vars_set(v, "a", "0123456789"));
    /* Each reference adds 8 bytes: 36 become 60. The third one takes it past 55. */
    assert_true(lexer_substitute(sql, strlen(sql), v, 60, &out, &outlen, &err));
    assert_int_equal(outlen, 60);
    free(out);
    assert_false(lexer_substitute(sql, strlen(sql), v, 55, &out, &outlen, &err));
    assert_null(out);
    assert_int_equal(err.line, 3);
    assert_non_null(strstr(err.message, "larger than the limit of 55 bytes"));
    vars_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_at_top_level_semicolons),
        cmocka_unit_test(test_split_lines_are_lines_of_first_token),
        cmocka_unit_test(test_split_trailing_statement_without_semicolon_is_kept),
        cmocka_unit_test(test_split_skips_empty_statements),
        cmocka_unit_test(test_split_statement_excludes_leading_and_trailing_comments),
        cmocka_unit_test(test_split_keeps_comments_inside_a_statement),
        cmocka_unit_test(test_split_ignores_semicolon_in_single_quotes_with_doubled_quote),
        cmocka_unit_test(test_split_backslash_does_not_escape_in_standard_strings),
        cmocka_unit_test(test_split_escape_string_backslash_quote),
        cmocka_unit_test(test_split_word_ending_in_e_is_not_an_escape_string),
        cmocka_unit_test(test_split_unicode_string_and_identifier),
        cmocka_unit_test(test_split_bit_hex_and_national_strings),
        cmocka_unit_test(test_split_quoted_identifier_with_doubled_quote),
        cmocka_unit_test(test_split_dollar_quotes),
        cmocka_unit_test(test_split_dollar_tag_underscore_digits_and_case),
        cmocka_unit_test(test_split_dollar_tag_with_non_ascii_letters),
        cmocka_unit_test(test_split_dollar_quote_closes_at_first_matching_delimiter),
        cmocka_unit_test(test_split_positional_parameter_is_not_a_dollar_quote),
        cmocka_unit_test(test_split_dollar_inside_identifier_is_not_a_dollar_quote),
        cmocka_unit_test(test_split_lone_dollar_word_is_not_a_dollar_quote),
        cmocka_unit_test(test_split_nested_block_comments),
        cmocka_unit_test(test_split_line_comment_hides_semicolon_and_quotes),
        cmocka_unit_test(test_split_line_comment_ends_at_carriage_return),
        cmocka_unit_test(test_split_comment_start_inside_operator),
        cmocka_unit_test(test_split_real_number_fail_keeps_minus),
        cmocka_unit_test(test_split_typecast_and_colons),
        cmocka_unit_test(test_split_ignores_semicolon_inside_parentheses),
        cmocka_unit_test(test_split_extra_close_paren_does_not_go_negative),
        cmocka_unit_test(test_split_begin_atomic_body_with_case),
        cmocka_unit_test(test_split_begin_atomic_in_create_or_replace_procedure),
        cmocka_unit_test(test_split_case_outside_begin_is_not_counted),
        cmocka_unit_test(test_split_begin_inside_parentheses_is_not_counted),
        cmocka_unit_test(test_split_begin_outside_create_function_is_a_statement),
        cmocka_unit_test(test_split_routine_detection_restarts_after_each_statement),
        cmocka_unit_test(test_split_begin_in_dollar_quoted_body_is_not_counted),
        cmocka_unit_test(test_split_bare_variable_is_not_an_identifier),
        cmocka_unit_test(test_split_u_before_ampersand_is_not_an_identifier),
        cmocka_unit_test(test_split_junk_after_number_or_parameter_is_one_token),
        cmocka_unit_test(test_split_rejects_psql_meta_command),
        cmocka_unit_test(test_split_unterminated_constructs_report_start_line),
        cmocka_unit_test(test_substitute_literal_and_identifier),
        cmocka_unit_test(test_substitute_leaves_casts_and_bare_names),
        cmocka_unit_test(test_substitute_leaves_references_in_quotes_and_comments),
        cmocka_unit_test(test_substitute_ignores_invalid_variable_names),
        cmocka_unit_test(test_substitute_non_ascii_variable_name),
        cmocka_unit_test(test_substitute_undefined_variable_fails_with_line),
        cmocka_unit_test(test_substitute_empty_identifier_fails),
        cmocka_unit_test(test_substitute_reports_unterminated_construct),
        cmocka_unit_test(test_substitute_without_references_copies_input),
        cmocka_unit_test(test_substitute_newlines_in_values_keep_line_numbers),
        cmocka_unit_test(test_quote_literal_like_pqescapeliteral),
        cmocka_unit_test(test_quote_identifier_doubles_quotes),
        cmocka_unit_test(test_substitute_hostile_literal_values_stay_one_literal),
        cmocka_unit_test(test_substitute_hostile_identifier_values_stay_one_identifier),
        cmocka_unit_test(test_substituted_value_is_not_substituted_again),
        cmocka_unit_test(test_skip_blank_passes_whitespace_and_comments),
        cmocka_unit_test(test_substitute_stops_at_the_size_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
