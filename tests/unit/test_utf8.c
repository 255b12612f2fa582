/* Unit tests for utf8.c: validation as PostgreSQL does it, and escaping for output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgstep/utf8.h"

static void test_utf8_offset_finds_first_bad_byte(void **state)
{
    static const char overlong[] = "ok \xC0\xAF";
    static const char surrogate[] = "\xED\xA0\x80";
    static const char truncated[] = "\xE2\x82";
    static const char good[] = "\xE2\x82\xAC \xF0\x9F\x98\x80";

    (void)state;
    assert_int_equal(utf8_invalid_offset(overlong, sizeof(overlong) - 1), 3);
    assert_int_equal(utf8_invalid_offset(surrogate, sizeof(surrogate) - 1), 0);
    assert_int_equal(utf8_invalid_offset(truncated, sizeof(truncated) - 1), 0);
    assert_int_equal(utf8_invalid_offset(good, sizeof(good) - 1), sizeof(good) - 1);
}

static void test_control_characters_are_found(void **state)
{
    (void)state;
    assert_true(utf8_has_control("a\x1b[31m"));
    assert_true(utf8_has_control("a\nb"));
    assert_true(utf8_has_control("\x7f"));
    assert_false(utf8_has_control("V1__caf\xC3\xA9.sql"));
}

static void test_escape_writes_bad_bytes_and_controls_as_hex(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(utf8_escape("R__bad\xff.sql", out, sizeof(out)), "R__bad\\xff.sql");
    assert_string_equal(utf8_escape("a\x1b[2Jb\nc", out, sizeof(out)), "a\\x1b[2Jb\\x0ac");
    assert_string_equal(utf8_escape("caf\xC3\xA9", out, sizeof(out)), "caf\xC3\xA9");
    /* Cut at a whole character or escape, always terminated. */
    assert_string_equal(utf8_escape("ab\xC3\xA9", out, 4), "ab");
    assert_string_equal(utf8_escape("a\xff", out, 5), "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_offset_finds_first_bad_byte),
        cmocka_unit_test(test_control_characters_are_found),
        cmocka_unit_test(test_escape_writes_bad_bytes_and_controls_as_hex),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
