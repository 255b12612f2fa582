/* Unit tests for json.c: every string comes out as valid JSON. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgstep/json.h"

/* json_write_string's output for s, malloc'ed. */
static char *json_of(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    json_write_string(f, s);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void check(const char *s, const char *expected)
{
    char *out = json_of(s);

    assert_string_equal(out, expected);
    free(out);
}

static void test_quotes_and_controls_are_escaped(void **state)
{
    (void)state;
    check("a\"b\\c", "\"a\\\"b\\\\c\"");
    check("l1\nl2\r\t", "\"l1\\nl2\\r\\t\"");
    check("\x1b[31m\x7f", "\"\\u001b[31m\\u007f\"");
}

static void test_invalid_utf8_becomes_replacement_character(void **state)
{
    (void)state;
    check("R__bad\xff.sql", "\"R__bad\\ufffd.sql\"");
    check("\xC0\xAF", "\"\\ufffd\\ufffd\"");
    check("\xE2\x82", "\"\\ufffd\\ufffd\"");
    check("caf\xC3\xA9 \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quotes_and_controls_are_escaped),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement_character),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
