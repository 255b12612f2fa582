/* Unit tests for secret.c: which connection strings may carry a password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "pgstep/secret.h"

static void test_password_keywords_and_userinfo_are_found(void **state)
{
    (void)state;
    assert_true(secret_in_conninfo("host=h password=x"));
    assert_true(secret_in_conninfo("postgresql://u:x@h/db"));
    assert_true(secret_in_conninfo("postgresql://h/db?password=x"));
    assert_false(secret_in_conninfo("host=h user=u"));
    assert_false(secret_in_conninfo("postgresql://u@h:5432/db"));
}

/* libpq decodes percent escapes in a URI's parameter names as well as in its values. */
static void test_percent_encoded_password_parameters_are_found(void **state)
{
    (void)state;
    assert_true(secret_in_conninfo("postgresql://h/db?%70assword=x"));
    assert_true(secret_in_conninfo("postgresql://h/db?passw%6Frd=x"));
    assert_true(secret_in_conninfo("postgresql://h/db?%70%61%73%73%77%6f%72%64=x"));
    assert_false(secret_in_conninfo("postgresql://h/db?application_name=a%20b"));
    assert_false(secret_in_conninfo("postgresql://h/db?x=%7"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_keywords_and_userinfo_are_found),
        cmocka_unit_test(test_percent_encoded_password_parameters_are_found),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
