/* Unit tests for integrity.c's second look: a step set that changes between the manifest check
 * and the load (a file edited, added or removed meanwhile, as when a ConfigMap is updated under
 * a running pod) is refused by integrity_confirm. The manifest is taken before the change, the
 * set loaded after it. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgstep/integrity.h"
#include "pgstep/log.h"
#include "unit_files.h"

#define WRITE(dir, name, text) unit_write_bytes(dir, name, text, strlen(text))

static int setup(void **state)
{
    char *dir = strdup("/tmp/pgstep-test-integrity.XXXXXX");

    if (!dir || !mkdtemp(dir))
        return -1;
    WRITE(dir, "V1__a.sql", "SELECT 1;\n");
    WRITE(dir, "V2__b.sql", "SELECT 2;\n");
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    unit_remove_tree(*state);
    free(*state);
    return 0;
}

/* The manifest of dir as it is now. */
static manifest *manifest_now(const char *dir)
{
    pgstep_error err;
    manifest *m;
    char *text;
    size_t len;
    char why[256];
    int line;

    error_clear(&err);
    assert_true(manifest_build(dir, NULL, &text, &len, &err));
    assert_true(manifest_parse(text, len, &m, &line, why, sizeof(why)));
    free(text);
    return m;
}

/* integrity_confirm of the set loaded now against m; returns whether it passed. */
static bool confirm(const char *dir, manifest *m, pgstep_error *err)
{
    integrity_result res = {.manifest = true, .list = m};
    stepset *set;
    vars *v = vars_new();
    bool ok;

    error_clear(err);
    assert_true(stepset_load(dir, v, &set, err));
    ok = integrity_confirm(&res, NULL, set, err);
    stepset_free(set);
    vars_free(v);
    integrity_release(&res);
    return ok;
}

static void test_unchanged_set_is_confirmed(void **state)
{
    pgstep_error err;

    assert_true(confirm(*state, manifest_now(*state), &err));
}

static void test_file_changed_after_the_check_is_refused(void **state)
{
    manifest *m = manifest_now(*state);
    pgstep_error err;

    WRITE(*state, "V2__b.sql", "DROP TABLE important;\n");
    assert_false(confirm(*state, m, &err));
    assert_int_equal(err.exit_code, 65);
    assert_string_equal(err.message,
                        "V2__b.sql: file changed after it was checked against pgstep.sum");
}

static void test_file_added_after_the_check_is_refused(void **state)
{
    manifest *m = manifest_now(*state);
    pgstep_error err;

    WRITE(*state, "V3__c.sql", "SELECT 3;\n");
    assert_false(confirm(*state, m, &err));
    assert_string_equal(err.message,
                        "V3__c.sql: file appeared after it was checked against pgstep.sum");
}

static void test_file_removed_after_the_check_is_refused(void **state)
{
    manifest *m = manifest_now(*state);
    pgstep_error err;
    char path[128];

    snprintf(path, sizeof(path), "%s/V1__a.sql", (const char *)*state);
    assert_int_equal(unlink(path), 0);
    assert_false(confirm(*state, m, &err));
    assert_string_equal(err.message,
                        "V1__a.sql: file disappeared after it was checked against pgstep.sum");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unchanged_set_is_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_changed_after_the_check_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_added_after_the_check_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_removed_after_the_check_is_refused, setup,
                                        teardown),
    };

    log_configure(LOG_FORMAT_TEXT, LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
