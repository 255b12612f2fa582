/* Unit tests for batch.c: the text of a multi-statement message and the mapping of the
 * server's character positions back to the statement they fall in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgstep/batch.h"

static void test_text_joins_statements_with_terminators(void **state)
{
    batch *b = batch_new();

    (void)state;
    assert_non_null(b);
    assert_string_equal(batch_text(b), "");
    assert_true(batch_append(b, "BEGIN", 5, 0, 9));
    assert_true(batch_append(b, "SELECT 1", 8, 0, 0));
    assert_string_equal(batch_text(b), "BEGIN;\nSELECT 1;\n");
    assert_int_equal(batch_bytes(b), strlen("BEGIN;\nSELECT 1;\n"));
    batch_reset(b);
    assert_string_equal(batch_text(b), "");
    assert_int_equal(batch_bytes(b), 0);
    batch_free(b);
}

static void test_locate_maps_positions_to_statements(void **state)
{
    batch *b = batch_new();
    size_t owner = 0, stmt = 0;
    int relative = 0;

    (void)state;
    batch_append(b, "BEGIN", 5, 1, 100);  /* characters 1..7 with ";\n" */
    batch_append(b, "SELECT x", 8, 1, 0); /* 8..17 */
    batch_append(b, "SELECT y", 8, 2, 1); /* 18.. */
    assert_true(batch_locate(b, 1, &owner, &stmt, &relative));
    assert_int_equal(owner, 1);
    assert_int_equal(stmt, 100);
    assert_int_equal(relative, 1);
    assert_true(batch_locate(b, 15, &owner, &stmt, &relative));
    assert_int_equal(owner, 1);
    assert_int_equal(stmt, 0);
    assert_int_equal(relative, 8); /* the "x" */
    assert_true(batch_locate(b, 25, &owner, &stmt, &relative));
    assert_int_equal(owner, 2);
    assert_int_equal(stmt, 1);
    assert_int_equal(relative, 8);
    assert_false(batch_locate(b, 0, &owner, &stmt, &relative));
    assert_false(batch_locate(b, 1000, &owner, &stmt, &relative));
    batch_free(b);
}

/* The server counts characters, not bytes: a multi-byte character before the error moves the
 * byte offset but not the position. */
static void test_locate_counts_characters_not_bytes(void **state)
{
    batch *b = batch_new();
    const char *first = "SELECT 'ä€𝄞'"; /* 12 characters, 17 bytes */
    size_t owner = 0, stmt = 0;
    int relative = 0;

    (void)state;
    batch_append(b, first, strlen(first), 7, 0);
    batch_append(b, "SELECT z", 8, 7, 1); /* starts after 12 + 2 characters */
    assert_true(batch_locate(b, 15 + 7, &owner, &stmt, &relative));
    assert_int_equal(stmt, 1);
    assert_int_equal(relative, 8);
    assert_true(batch_locate(b, 14, &owner, &stmt, &relative));
    assert_int_equal(stmt, 0);
    batch_free(b);
}

static void test_many_statements_grow_the_buffers(void **state)
{
    batch *b = batch_new();
    size_t owner = 0, stmt = 0;
    int relative = 0;

    (void)state;
    for (size_t i = 0; i < 10000; i++)
        assert_true(batch_append(b, "SELECT 1", 8, i, 0));
    assert_int_equal(batch_bytes(b), 10000 * 10);
    assert_true(batch_locate(b, 9999 * 10 + 3, &owner, &stmt, &relative));
    assert_int_equal(owner, 9999);
    assert_int_equal(relative, 3);
    batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_joins_statements_with_terminators),
        cmocka_unit_test(test_locate_maps_positions_to_statements),
        cmocka_unit_test(test_locate_counts_characters_not_bytes),
        cmocka_unit_test(test_many_statements_grow_the_buffers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
