/* Unit tests for file_read.c: the capped reader of regular files. Each test works in a directory
 * of its own under /tmp, removed afterwards. */
#define _GNU_SOURCE
#include <errno.h>
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

#include "pgstep/file_read.h"
#include "unit_files.h"

static int setup(void **state)
{
    char *dir = strdup("/tmp/pgstep-test-file-read.XXXXXX");

    if (!dir || !mkdtemp(dir))
        return -1;
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    unit_remove_tree(*state);
    free(*state);
    return 0;
}

static file_read_status read_at(const char *dir, const char *name, size_t max, char **out,
                                size_t *len, int *errnum)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_read_path(path, 0, max, &file_read_heap, out, len, errnum);
}

static void test_reads_whole_file_with_nul_after_it(void **state)
{
    char *out;
    size_t len;
    int errnum;

    unit_write_bytes(*state, "f", "abc\ndef", 7);
    assert_int_equal(read_at(*state, "f", 100, &out, &len, &errnum), FILE_READ_OK);
    assert_int_equal(len, 7);
    assert_string_equal(out, "abc\ndef");
    free(out);
    unit_write_bytes(*state, "empty", "", 0);
    assert_int_equal(read_at(*state, "empty", 100, &out, &len, &errnum), FILE_READ_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_cap_is_inclusive(void **state)
{
    char *out;
    size_t len;
    int errnum;

    unit_write_bytes(*state, "f", "0123456789", 10);
    assert_int_equal(read_at(*state, "f", 10, &out, &len, &errnum), FILE_READ_OK);
    free(out);
    assert_int_equal(read_at(*state, "f", 9, &out, &len, &errnum), FILE_READ_TOO_LARGE);
    assert_null(out);
}

/* A FIFO without a writer would block open() and read() forever: it is refused at once. */
static void test_fifo_and_directory_are_refused_without_blocking(void **state)
{
    char path[256], link[256];
    char *out;
    size_t len;
    int errnum;

    snprintf(path, sizeof(path), "%s/fifo", (char *)*state);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(read_at(*state, "fifo", 100, &out, &len, &errnum), FILE_READ_NOT_REGULAR);
    snprintf(link, sizeof(link), "%s/link", (char *)*state);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(read_at(*state, "link", 100, &out, &len, &errnum), FILE_READ_NOT_REGULAR);
    assert_int_equal(read_at(*state, ".", 100, &out, &len, &errnum), FILE_READ_NOT_REGULAR);
    assert_null(out);
}

static void test_null_device_reads_as_empty(void **state)
{
    char *out;
    size_t len;
    int errnum;

    assert_int_equal(read_at("/dev", "null", 100, &out, &len, &errnum), FILE_READ_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(read_at("/dev", "zero", 100, &out, &len, &errnum), FILE_READ_NOT_REGULAR);
    (void)state;
}

static void test_missing_file_reports_errno(void **state)
{
    char reason[128];
    char *out;
    size_t len;
    int errnum;

    assert_int_equal(read_at(*state, "absent", 100, &out, &len, &errnum), FILE_READ_ERRNO);
    assert_int_equal(errnum, ENOENT);
    assert_string_equal(file_read_reason(FILE_READ_ERRNO, errnum, 100, reason, sizeof(reason)),
                        "no such file or directory");
    assert_string_equal(
        file_read_reason(FILE_READ_TOO_LARGE, 0, 1024 * 1024, reason, sizeof(reason)),
        "larger than the limit of 1 MiB");
    assert_string_equal(file_read_reason(FILE_READ_TOO_LARGE, 0, 4096, reason, sizeof(reason)),
                        "larger than the limit of 4096 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_whole_file_with_nul_after_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_is_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_and_directory_are_refused_without_blocking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_null_device_reads_as_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_reports_errno, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
