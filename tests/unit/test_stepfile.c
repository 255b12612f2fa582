/* Unit tests for stepfile.c: reading one step file. Each test works in a directory of its own
 * under /tmp, removed afterwards. */
#define _GNU_SOURCE
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgstep/stepfile.h"
#include "unit_files.h"

/* A step directory and, beside it, a file outside it. */
typedef struct fixture {
    char root[64]; /* holds both */
    char dir[96];  /* the step directory */
    char real_dir[PATH_MAX];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    strcpy(f->root, "/tmp/pgstep-test-stepfile.XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/steps", f->root);
    if (mkdir(f->dir, 0700) != 0 || !realpath(f->dir, f->real_dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    unit_remove_tree(f->root);
    free(f);
    return 0;
}

/* Writes a string literal, NUL bytes included, to dir/name. */
#define WRITE_LITERAL(dir, name, literal) unit_write_bytes(dir, name, literal, sizeof(literal) - 1)

/* Reads name from the fixture's step directory; on failure err says why. */
static bool read_step(const fixture *f, const char *name, char **text, size_t *len,
                      stepfile_error *err)
{
    memset(err, 0, sizeof(*err));
    return stepfile_read(f->dir, f->real_dir, name, text, len, NULL, err);
}

/* Reading name must fail at line with a message containing expected. */
static void assert_refused(const fixture *f, const char *name, int line, const char *expected)
{
    stepfile_error err;
    char *text;
    size_t len;

    assert_false(read_step(f, name, &text, &len, &err));
    assert_null(text);
    assert_int_equal(err.line, line);
    assert_non_null(strstr(err.message, expected));
}

static void test_crlf_becomes_lf_and_lone_cr_stays(void **state)
{
    fixture *f = *state;
    stepfile_error err;
    char *text;
    size_t len;

    WRITE_LITERAL(f->dir, "V1__a.sql", "SELECT 1;\r\nSELECT\r2;\r\n");
    assert_true(read_step(f, "V1__a.sql", &text, &len, &err));
    assert_string_equal(text, "SELECT 1;\nSELECT\r2;\n");
    assert_int_equal(len, strlen(text));
    free(text);
}

static void test_not_text_is_refused_at_its_line(void **state)
{
    fixture *f = *state;

    WRITE_LITERAL(f->dir, "nul.sql", "SELECT 1;\nSELECT '\0';\n");
    assert_refused(f, "nul.sql", 2, "NUL byte");
    WRITE_LITERAL(f->dir, "latin1.sql", "SELECT 1;\n\nSELECT 'caf\xE9';\n");
    assert_refused(f, "latin1.sql", 3, "invalid byte sequence for encoding \"UTF8\": 0xe9");
    WRITE_LITERAL(f->dir, "bom.sql", "\xEF\xBB\xBFSELECT 1;\n");
    assert_refused(f, "bom.sql", 1, "byte order mark");
}

static void test_empty_and_blank_files_are_refused(void **state)
{
    fixture *f = *state;

    WRITE_LITERAL(f->dir, "empty.sql", "");
    assert_refused(f, "empty.sql", 0, "step file is empty");
    WRITE_LITERAL(f->dir, "blank.sql", " \n\t\r\n");
    assert_refused(f, "blank.sql", 0, "step file is empty");
}

static void test_symbolic_links_stay_inside_the_directory(void **state)
{
    fixture *f = *state;
    char target[160], link[160];
    stepfile_error err;
    char *text;
    size_t len;

    WRITE_LITERAL(f->dir, "real.sql", "SELECT 1;\n");
    snprintf(link, sizeof(link), "%s/inside.sql", f->dir);
    assert_int_equal(symlink("real.sql", link), 0);
    assert_true(read_step(f, "inside.sql", &text, &len, &err));
    assert_string_equal(text, "SELECT 1;\n");
    free(text);

    WRITE_LITERAL(f->root, "outside.sql", "SELECT 1;\n");
    snprintf(target, sizeof(target), "%s/outside.sql", f->root);
    snprintf(link, sizeof(link), "%s/escape.sql", f->dir);
    assert_int_equal(symlink(target, link), 0);
    assert_refused(f, "escape.sql", 0, "points outside the step directory");
}

static void test_missing_file_and_directory_are_refused(void **state)
{
    fixture *f = *state;
    char sub[160];

    assert_refused(f, "gone.sql", 0, "could not open step file: no such file or directory");
    snprintf(sub, sizeof(sub), "%s/dir.sql", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_refused(f, "dir.sql", 0, "not a regular file");
}

static void test_line_of_counts_newlines_before_offset(void **state)
{
    (void)state;
    assert_int_equal(stepfile_line_of("a\nb\nc", 0), 1);
    assert_int_equal(stepfile_line_of("a\nb\nc", 2), 2);
    assert_int_equal(stepfile_line_of("a\nb\nc", 4), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crlf_becomes_lf_and_lone_cr_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_text_is_refused_at_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_blank_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symbolic_links_stay_inside_the_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_and_directory_are_refused, setup,
                                        teardown),
        cmocka_unit_test(test_line_of_counts_newlines_before_offset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
