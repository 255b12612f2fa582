/* Unit tests for checksum.c. Expected digests were computed independently with Python:
 * hashlib.blake2b(data, digest_size=32).hexdigest(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "pgstep/checksum.h"

#define SELECT_1_HEX "92d0f769655af3c2ab185405d4453ca71b4ff4221275ee6c4534adb7bee2b790"

static void hash(const char *text, char out[CHECKSUM_HEX_LEN + 1])
{
    checksum_sql(text, strlen(text), out);
}

static void test_empty_input_matches_blake2b_256_vector(void **state)
{
    char out[CHECKSUM_HEX_LEN + 1];

    (void)state;
    checksum_sql("", 0, out);
    assert_string_equal(out, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

static void test_sql_matches_blake2b_256_vector_in_lowercase_hex(void **state)
{
    char out[CHECKSUM_HEX_LEN + 1];

    (void)state;
    hash("SELECT 1;\n", out);
    assert_string_equal(out, SELECT_1_HEX);
    assert_int_equal(strlen(out), CHECKSUM_HEX_LEN);
    for (size_t i = 0; i < CHECKSUM_HEX_LEN; i++)
        assert_true((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'));
}

static void test_crlf_hashes_like_lf(void **state)
{
    char lf[CHECKSUM_HEX_LEN + 1], crlf[CHECKSUM_HEX_LEN + 1];

    (void)state;
    hash("SELECT 1;\r\n", crlf);
    assert_string_equal(crlf, SELECT_1_HEX);
    hash("a\nb\nc\n", lf);
    hash("a\r\nb\r\nc\r\n", crlf);
    assert_string_equal(lf, crlf);
}

static void test_lone_cr_is_kept(void **state)
{
    char out[CHECKSUM_HEX_LEN + 1], lf[CHECKSUM_HEX_LEN + 1];

    (void)state;
    hash("a\rb", out);
    assert_string_equal(out, "953411adeecef149702b297ec03992af3c56fa5df3e377fa7207d02a9d6fc6a4");
    hash("a\nb", lf);
    assert_string_not_equal(out, lf);
}

static void test_only_the_cr_of_a_crlf_pair_is_dropped(void **state)
{
    char a[CHECKSUM_HEX_LEN + 1], b[CHECKSUM_HEX_LEN + 1];

    (void)state;
    /* CR CR LF is a lone CR followed by a CRLF pair. */
    hash("x\r\r\ny", a);
    hash("x\r\ny", b);
    assert_string_not_equal(a, b);
    hash("x\r\ny", a);
    hash("x\ny", b);
    assert_string_equal(a, b);
    /* A CR as the very last byte has no LF to pair with. */
    hash("x\r", a);
    hash("x", b);
    assert_string_not_equal(a, b);
}

static void test_length_is_respected_not_nul(void **state)
{
    char a[CHECKSUM_HEX_LEN + 1];

    (void)state;
    checksum_sql("SELECT 1;\njunk", 10, a);
    assert_string_equal(a, SELECT_1_HEX);
}

static void test_fact_matches_independent_vector(void **state)
{
    char out[CHECKSUM_HEX_LEN + 1];

    (void)state;
    /* blake2b(step_hex || 0x00 || 'S' || fact) and blake2b(step_hex || 0x00 || 'N'). */
    checksum_with_fact(SELECT_1_HEX, "42", out);
    assert_string_equal(out, "404726a10ef2bf307fb799544ee8e73de58756d8d3e5974e48ae5714f9f82adf");
    checksum_with_fact(SELECT_1_HEX, NULL, out);
    assert_string_equal(out, "362ca7242b7d5cea539db27dfd7a3988bae34da87a18877383570a7e2be37215");
}

static void test_null_fact_differs_from_every_string(void **state)
{
    char null_fact[CHECKSUM_HEX_LEN + 1], other[CHECKSUM_HEX_LEN + 1];
    const char *strings[] = {"", "N", "NULL", "null", "\x01"};

    (void)state;
    checksum_with_fact(SELECT_1_HEX, NULL, null_fact);
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        checksum_with_fact(SELECT_1_HEX, strings[i], other);
        assert_string_not_equal(null_fact, other);
    }
}

static void test_fact_change_or_step_change_changes_checksum(void **state)
{
    char a[CHECKSUM_HEX_LEN + 1], b[CHECKSUM_HEX_LEN + 1], c[CHECKSUM_HEX_LEN + 1];
    char other_step[CHECKSUM_HEX_LEN + 1];

    (void)state;
    hash("SELECT 2;\n", other_step);
    checksum_with_fact(SELECT_1_HEX, "v1", a);
    checksum_with_fact(SELECT_1_HEX, "v2", b);
    checksum_with_fact(other_step, "v1", c);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, SELECT_1_HEX);
    checksum_with_fact(SELECT_1_HEX, "v1", b);
    assert_string_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_input_matches_blake2b_256_vector),
        cmocka_unit_test(test_sql_matches_blake2b_256_vector_in_lowercase_hex),
        cmocka_unit_test(test_crlf_hashes_like_lf),
        cmocka_unit_test(test_lone_cr_is_kept),
        cmocka_unit_test(test_only_the_cr_of_a_crlf_pair_is_dropped),
        cmocka_unit_test(test_length_is_respected_not_nul),
        cmocka_unit_test(test_fact_matches_independent_vector),
        cmocka_unit_test(test_null_fact_differs_from_every_string),
        cmocka_unit_test(test_fact_change_or_step_change_changes_checksum),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
