/* Unit tests for manifest.c: the pgstep.sum text, written and read back, and every way a
 * damaged manifest is refused. The BLAKE2b-256 values were checked with b2sum -l 256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pgstep/manifest.h"

#define HASH_A "1111111111111111111111111111111111111111111111111111111111111111"
#define HASH_B "2222222222222222222222222222222222222222222222222222222222222222"

/* The manifest for V1__a.sql (HASH_A) and V2__b.sql (HASH_B). */
static char *two_files(size_t *len)
{
    const char *names[] = {"V1__a.sql", "V2__b.sql"};
    const char hashes[2][CHECKSUM_HEX_LEN + 1] = {HASH_A, HASH_B};
    char *text;
    size_t bad;

    assert_true(manifest_format(names, hashes, 2, &text, len, &bad));
    return text;
}

/* Parses text, expecting failure at line with a reason containing word. */
static void assert_refused(const char *text, int line, const char *word)
{
    manifest *m = (manifest *)1;
    char why[256];
    int at = -1;

    assert_false(manifest_parse(text, strlen(text), &m, &at, why, sizeof(why)));
    assert_null(m);
    assert_int_equal(at, line);
    if (!strstr(why, word))
        fail_msg("reason \"%s\" lacks \"%s\"", why, word);
}

static void test_format_writes_header_lines_and_closing_sum(void **state)
{
    size_t len;
    char *text = two_files(&len);
    char sum[CHECKSUM_HEX_LEN + 1];
    const size_t lines = 18 + 2 * 76; /* header and the two files' lines */

    (void)state;
    assert_int_equal(len, lines + 4 + CHECKSUM_HEX_LEN + 1);
    assert_memory_equal(
        text, "pgstep-manifest 1\n" HASH_A "  V1__a.sql\n" HASH_B "  V2__b.sql\nsum ", lines + 4);
    checksum_bytes(text, lines, sum);
    assert_memory_equal(text + lines + 4, sum, CHECKSUM_HEX_LEN);
    assert_int_equal(text[len - 1], '\n');
    free(text);
}

static void test_parse_reads_back_what_format_wrote(void **state)
{
    size_t len;
    char *text = two_files(&len);
    manifest *m;
    char why[256];
    int line;

    (void)state;
    assert_true(manifest_parse(text, len, &m, &line, why, sizeof(why)));
    assert_int_equal(manifest_count(m), 2);
    assert_string_equal(manifest_name(m, 0), "V1__a.sql");
    assert_string_equal(manifest_hash(m, 0), HASH_A);
    assert_string_equal(manifest_name(m, 1), "V2__b.sql");
    assert_string_equal(manifest_hash(m, 1), HASH_B);
    manifest_free(m);
    free(text);
}

static void test_empty_set_has_a_manifest_too(void **state)
{
    char *text;
    size_t len, bad;
    manifest *m;
    char why[256];
    int line;

    (void)state;
    assert_true(manifest_format(NULL, NULL, 0, &text, &len, &bad));
    assert_true(manifest_parse(text, len, &m, &line, why, sizeof(why)));
    assert_int_equal(manifest_count(m), 0);
    manifest_free(m);
    free(text);
}

static void test_names_with_control_characters_cannot_be_listed(void **state)
{
    const char *names[] = {"V1__a.sql", "V2__new\nline.sql"};
    const char hashes[2][CHECKSUM_HEX_LEN + 1] = {HASH_A, HASH_B};
    char *text;
    size_t len, bad;

    (void)state;
    assert_false(manifest_format(names, hashes, 2, &text, &len, &bad));
    assert_int_equal(bad, 1);
    assert_null(text);
}

/* Every edit of a listed line, without fixing the closing sum, is caught by it. */
static void test_edited_line_fails_the_closing_sum(void **state)
{
    size_t len;
    char *text = two_files(&len);

    (void)state;
    text[18] = '3'; /* first digit of V1__a.sql's hash */
    assert_refused(text, 4, "closing checksum");
    free(text);
}

static void test_cut_manifest_is_refused(void **state)
{
    size_t len;
    char *text = two_files(&len);

    (void)state;
    /* Cut after the second file's line, as a size limit would. */
    text[18 + 2 * 76] = '\0';
    assert_refused(text, 3, "closing \"sum\" line is missing");
    /* Cut inside a line. */
    text[30] = '\0';
    assert_refused(text, 2, "incomplete");
    assert_refused("", 0, "empty");
    free(text);
}

static void test_malformed_lines_are_refused_with_their_line(void **state)
{
    (void)state;
    assert_refused("pgstep-manifest 2\n", 1, "first line");
    assert_refused("pgstep-manifest 1\n" HASH_A " V1__a.sql\n", 2, "two spaces");
    assert_refused("pgstep-manifest 1\n" HASH_A "  \n", 2, "two spaces");
    assert_refused("pgstep-manifest 1\nABCDEF" HASH_A "  V1__a.sql\n", 2, "hex");
    assert_refused("pgstep-manifest 1\n" HASH_B "  V2__b.sql\n" HASH_A "  V1__a.sql\n", 3,
                   "out of order");
    assert_refused("pgstep-manifest 1\n" HASH_A "  V1__a.sql\n" HASH_A "  V1__a.sql\n", 3,
                   "listed twice");
    assert_refused("pgstep-manifest 1\n" HASH_A "  a/b/V1__a.sql\n", 2, "invalid file name");
    assert_refused("pgstep-manifest 1\n" HASH_A "  /V1__a.sql\n", 2, "invalid file name");
}

static void test_text_after_the_closing_sum_is_refused(void **state)
{
    size_t len;
    char *text = two_files(&len);
    char *longer = malloc(len + 128);

    (void)state;
    memcpy(longer, text, len);
    strcpy(longer + len, HASH_A "  V9__late.sql\n");
    assert_refused(longer, 5, "after the closing");
    free(longer);
    free(text);
}

static void test_crlf_manifest_is_refused(void **state)
{
    (void)state;
    assert_refused("pgstep-manifest 1\r\n", 1, "first line");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_writes_header_lines_and_closing_sum),
        cmocka_unit_test(test_parse_reads_back_what_format_wrote),
        cmocka_unit_test(test_empty_set_has_a_manifest_too),
        cmocka_unit_test(test_names_with_control_characters_cannot_be_listed),
        cmocka_unit_test(test_edited_line_fails_the_closing_sum),
        cmocka_unit_test(test_cut_manifest_is_refused),
        cmocka_unit_test(test_malformed_lines_are_refused_with_their_line),
        cmocka_unit_test(test_text_after_the_closing_sum_is_refused),
        cmocka_unit_test(test_crlf_manifest_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
