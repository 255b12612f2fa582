/* Unit tests for directives.c: the "-- pgstep:" lines at the top of a step file, and the
 * transaction control statements a transactional step may not hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgstep/directives.h"

/* What the callback was told: the number of problems, and the first one's line, hint and
 * message. */
typedef struct problems {
    int count;
    int line;
    const char *hint;
    char message[256];
} problems;

static void record_problem(void *ctx, int line, const char *hint, const char *message)
{
    problems *p = ctx;

    if (p->count++ == 0) {
        p->line = line;
        p->hint = hint;
        strncpy(p->message, message, sizeof(p->message) - 1);
    }
}

/* Parses text as a versioned (repeatable false) or repeatable step's directives. */
static bool parse(const char *text, bool repeatable, directives *d, problems *p)
{
    memset(d, 0, sizeof(*d));
    memset(p, 0, sizeof(*p));
    return directives_parse(text, strlen(text), repeatable, d, record_problem, p);
}

/* Splits sql into statements and reports its transaction control statements into p. */
static void check_transaction_control(const char *sql, problems *p)
{
    lexer_statement *statements = NULL;
    size_t n = 0;
    lexer_error lerr;

    memset(p, 0, sizeof(*p));
    assert_true(lexer_split(sql, strlen(sql), &statements, &n, &lerr));
    directives_check_transaction_control(sql, statements, n, record_problem, p);
    free(statements);
}

static void test_plain_sql_has_no_directives(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_true(parse("-- a comment\nCREATE TABLE t (a int);\n", false, &d, &p));
    assert_false(d.no_transaction);
    assert_null(d.rerun_query);
    assert_int_equal(p.count, 0);
}

static void test_no_transaction_after_blank_and_comment_lines(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_true(
        parse("\n-- builds an index\n  --  PGSTEP:  no-transaction  \nVACUUM;\n", false, &d, &p));
    assert_true(d.no_transaction);
}

static void test_rerun_when_keeps_query_and_line(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_true(parse("-- x\n-- pgstep: rerun-when SELECT 1 \nSELECT 2;\n", true, &d, &p));
    assert_string_equal(d.rerun_query, "SELECT 1");
    assert_int_equal(d.rerun_line, 2);
    free(d.rerun_query);
}

static void test_rerun_when_refused_in_versioned_step(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(parse("-- pgstep: rerun-when SELECT 1\nSELECT 2;\n", false, &d, &p));
    assert_int_equal(p.line, 1);
    assert_non_null(strstr(p.message, "only allowed in repeatable"));
    assert_null(d.rerun_query);
}

static void test_every_bad_line_is_reported(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(parse("-- pgstep: no-transactions\n"
                       "-- pgstep:\n"
                       "-- pgstep: no-transaction please\n"
                       "-- pgstep: rerun-when\n"
                       "SELECT 1;\n"
                       "-- pgstep: no-transaction\n",
                       true, &d, &p));
    assert_int_equal(p.count, 5);
    assert_int_equal(p.line, 1);
    assert_string_equal(p.message, "unknown directive \"no-transactions\"");
    assert_non_null(p.hint);
    assert_non_null(strstr(p.hint, "Known directives are"));
}

static void test_empty_directive_names_the_known_ones(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(parse("-- pgstep:   \n", false, &d, &p));
    assert_string_equal(p.message, "empty pgstep directive");
    assert_non_null(p.hint);
    assert_non_null(strstr(p.hint, "\"no-transaction\""));
}

static void test_duplicate_rerun_when_is_an_error(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(
        parse("-- pgstep: rerun-when SELECT 1\n-- pgstep: rerun-when SELECT 2\n", true, &d, &p));
    assert_int_equal(p.count, 1);
    assert_int_equal(p.line, 2);
    assert_string_equal(p.message, "duplicate directive \"rerun-when\"");
    assert_string_equal(d.rerun_query, "SELECT 1");
    free(d.rerun_query);
}

static void test_directive_after_sql_is_an_error(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(parse("SELECT 1;\n-- pgstep: no-transaction\n", false, &d, &p));
    assert_int_equal(p.line, 2);
    assert_false(d.no_transaction);
}

static void test_transaction_control_statements_are_named(void **state)
{
    /* Each statement, and the command the message must name. */
    static const char *const refused[][2] = {
        {"BEGIN", "BEGIN"},
        {"begin work", "BEGIN"},
        {"START TRANSACTION", "START TRANSACTION"},
        {"END", "END"},
        {"ABORT", "ABORT"},
        {"COMMIT", "COMMIT"},
        {"COMMIT PREPARED 'x'", "COMMIT PREPARED"},
        {"PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"},
        {"ROLLBACK", "ROLLBACK"},
        {"ROLLBACK TRANSACTION", "ROLLBACK"},
        {"ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"},
        {"/* c */ commit", "COMMIT"},
        {"-- c\nCOMMIT", "COMMIT"},
        {"/* a /* nested */ comment */ ROLLBACK /* x */ WORK", "ROLLBACK"},
        {"commit -- c\r prepared 'x'", "COMMIT PREPARED"},
    };
    problems p;

    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char named[64];

        check_transaction_control(refused[i][0], &p);
        assert_int_equal(p.count, 1);
        snprintf(named, sizeof(named), "statement \"%s\" in", refused[i][1]);
        assert_non_null(strstr(p.message, named));
        assert_non_null(p.hint);
    }
}

static void test_statements_inside_a_transaction_are_allowed(void **state)
{
    problems p;

    (void)state;
    check_transaction_control("SAVEPOINT s; ROLLBACK TO SAVEPOINT s; ROLLBACK WORK TO s;"
                              " PREPARE q AS SELECT 1; CREATE TABLE begin_end (a int);"
                              " SELECT 'COMMIT'",
                              &p);
    assert_int_equal(p.count, 0);
}

static void test_problem_names_the_statement_line(void **state)
{
    problems p;

    (void)state;
    check_transaction_control("SELECT 1;\n\nCOMMIT;\n", &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.line, 3);
    assert_non_null(strstr(p.message, "\"COMMIT\""));
}

/* A leading comment meant as a directive but not written as one would be ignored silently, and
 * a no-transaction step would then fail only when applied. */
static void test_malformed_directive_prefix_is_an_error(void **state)
{
    static const char *const malformed[] = {
        "-- pgstep no-transaction\n",     "-- PGSTEP NO-TRANSACTION\n",
        "--pgstep rerun-when SELECT 1\n", "-- pgstep : no-transaction\n",
        "-- pgstep; no-transaction\n",    "-- pgstep=no-transaction\n",
    };
    directives d;
    problems p;

    (void)state;
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        char text[128];

        snprintf(text, sizeof(text), "-- first\n%sCREATE INDEX CONCURRENTLY i ON t (a);\n",
                 malformed[i]);
        assert_false(parse(text, true, &d, &p));
        assert_int_equal(p.count, 1);
        assert_int_equal(p.line, 2);
        assert_string_equal(p.message, "malformed pgstep directive");
        assert_non_null(strstr(p.hint, "-- pgstep: no-transaction"));
        free(d.rerun_query);
    }
    /* Comments that merely mention pgstep stay comments. */
    assert_true(parse("-- pgstep applies this file once\n-- pgsteps\n-- see pgstep(1)\nSELECT 1;\n",
                      false, &d, &p));
    assert_int_equal(p.count, 0);
}

static void test_unknown_directive_is_shown_escaped(void **state)
{
    directives d;
    problems p;

    (void)state;
    assert_false(parse("-- pgstep: no\x1b[2J\nSELECT 1;\n", false, &d, &p));
    assert_string_equal(p.message, "unknown directive \"no\\x1b[2J\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_sql_has_no_directives),
        cmocka_unit_test(test_no_transaction_after_blank_and_comment_lines),
        cmocka_unit_test(test_rerun_when_keeps_query_and_line),
        cmocka_unit_test(test_rerun_when_refused_in_versioned_step),
        cmocka_unit_test(test_every_bad_line_is_reported),
        cmocka_unit_test(test_empty_directive_names_the_known_ones),
        cmocka_unit_test(test_duplicate_rerun_when_is_an_error),
        cmocka_unit_test(test_directive_after_sql_is_an_error),
        cmocka_unit_test(test_transaction_control_statements_are_named),
        cmocka_unit_test(test_malformed_directive_prefix_is_an_error),
        cmocka_unit_test(test_unknown_directive_is_shown_escaped),
        cmocka_unit_test(test_statements_inside_a_transaction_are_allowed),
        cmocka_unit_test(test_problem_names_the_statement_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
