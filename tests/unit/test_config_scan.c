/* Unit tests for config_scan.c: every @include libconfig would follow is read by pgstep first,
 * and integer literals too wide for libconfig are noted under their group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "pgstep/config_scan.h"
#include "pgstep/exitcode.h"
#include "unit_files.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pgstep-config-scan.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/pgstep.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    unit_remove_tree(f->dir);
    free(f);
    return 0;
}

static void write_config(fixture *f, const char *name, const char *text)
{
    unit_write_bytes(f->dir, name, text, strlen(text));
}

/* libconfig reads an @include at the start of any line, also one after a line that ends in a
 * bare name; read by libconfig, a directory there made it exit the process. */
static void test_include_after_a_line_ending_in_a_name_is_read_first(void **state)
{
    fixture *f = *state;
    config_scan *scan = NULL;
    pgstep_error err;
    char text[256];

    error_clear(&err);
    snprintf(text, sizeof(text), "t\n@include \"%s\"\n", f->dir);
    write_config(f, "pgstep.conf", text);
    assert_false(config_scan_read(f->path, &scan, &err));
    assert_null(scan);
    assert_int_equal(err.exit_code, PGSTEP_EXIT_CONFIG);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.message, "not a regular file"));
}

/* "connection =" with the group's body in an included file: a literal too wide for libconfig is
 * noted under the group, so that it is reported as written. */
static void test_wide_integer_in_an_included_group_body_is_noted(void **state)
{
    fixture *f = *state;
    config_scan *scan = NULL;
    pgstep_error err;
    char inc[128], text[256];

    error_clear(&err);
    snprintf(inc, sizeof(inc), "%s/conn.conf", f->dir);
    write_config(f, "conn.conf", "{ connect_timeout = 99999999999; };\n");
    snprintf(text, sizeof(text), "connection =\n@include \"%s\"\n", inc);
    write_config(f, "pgstep.conf", text);
    assert_true(config_scan_read(f->path, &scan, &err));
    assert_string_equal(config_scan_wide_integer(scan, inc, 1, "connection", "connect_timeout"),
                        "99999999999");
    config_scan_free(scan);
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_include_after_a_line_ending_in_a_name_is_read_first),
        FIXTURE_TEST(test_wide_integer_in_an_included_group_body_is_noted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
