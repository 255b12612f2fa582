/* Unit tests for vars.c: the name -> value map behind :'name' and :"name". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pgstep/vars.h"

static void test_get_returns_value_that_was_set(void **state)
{
    vars *v = vars_new();

    (void)state;
    assert_non_null(v);
    assert_true(vars_set(v, "schema", "app"));
    assert_string_equal(vars_get(v, "schema", 6), "app");
    assert_int_equal(vars_count(v), 1);
    vars_free(v);
}

static void test_set_replaces_earlier_value_without_adding(void **state)
{
    vars *v = vars_new();

    (void)state;
    assert_true(vars_set(v, "a", "1"));
    assert_true(vars_set(v, "b", "2"));
    assert_true(vars_set(v, "a", "3"));
    assert_int_equal(vars_count(v), 2);
    assert_string_equal(vars_get(v, "a", 1), "3");
    assert_string_equal(vars_name_at(v, 0), "a");
    assert_string_equal(vars_name_at(v, 1), "b");
    assert_null(vars_name_at(v, 2));
    vars_free(v);
}

static void test_get_undefined_returns_null(void **state)
{
    vars *v = vars_new();

    (void)state;
    assert_null(vars_get(v, "missing", 7));
    assert_true(vars_set(v, "abc", "x"));
    /* A prefix or an extension of a defined name is another name. */
    assert_null(vars_get(v, "ab", 2));
    assert_null(vars_get(v, "abcd", 4));
    vars_free(v);
}

static void test_get_uses_namelen_not_nul(void **state)
{
    vars *v = vars_new();
    const char *sql = "owner' || more";

    (void)state;
    assert_true(vars_set(v, "owner", "alice"));
    assert_string_equal(vars_get(v, sql, 5), "alice");
    vars_free(v);
}

static void test_set_null_value_means_empty_string(void **state)
{
    vars *v = vars_new();

    (void)state;
    assert_true(vars_set(v, "flag", NULL));
    assert_string_equal(vars_get(v, "flag", 4), "");
    vars_free(v);
}

static void test_many_variables_grow_the_map(void **state)
{
    vars *v = vars_new();
    char name[16];

    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        assert_true(vars_set(v, name, name));
    }
    assert_int_equal(vars_count(v), 100);
    assert_string_equal(vars_get(v, "v57", 3), "v57");
    vars_free(v);
}

static void test_name_valid_accepts_psql_variable_characters(void **state)
{
    (void)state;
    assert_true(vars_name_valid("a", 1));
    assert_true(vars_name_valid("Schema_2", 8));
    assert_true(vars_name_valid("_", 1));
    assert_true(vars_name_valid("9lives", 6));
    /* Any byte >= 0x80, so UTF-8 names work as in psql. */
    assert_true(vars_name_valid("sch\xc3\xa9ma", 7));
}

static void test_name_valid_rejects_other_characters(void **state)
{
    (void)state;
    assert_false(vars_name_valid("", 0));
    assert_false(vars_name_valid("a-b", 3));
    assert_false(vars_name_valid("a b", 3));
    assert_false(vars_name_valid("a'b", 3));
    assert_false(vars_name_valid("a\"b", 3));
    assert_false(vars_name_valid("a:b", 3));
    assert_false(vars_name_valid("a$", 2));
    assert_false(vars_name_valid("a\0b", 3));
}

static void test_free_and_count_accept_null(void **state)
{
    (void)state;
    vars_free(NULL);
    assert_int_equal(vars_count(NULL), 0);
    assert_null(vars_get(NULL, "a", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_value_that_was_set),
        cmocka_unit_test(test_set_replaces_earlier_value_without_adding),
        cmocka_unit_test(test_get_undefined_returns_null),
        cmocka_unit_test(test_get_uses_namelen_not_nul),
        cmocka_unit_test(test_set_null_value_means_empty_string),
        cmocka_unit_test(test_many_variables_grow_the_map),
        cmocka_unit_test(test_name_valid_accepts_psql_variable_characters),
        cmocka_unit_test(test_name_valid_rejects_other_characters),
        cmocka_unit_test(test_free_and_count_accept_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
