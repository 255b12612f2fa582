/* Unit tests for stepset.c: each test builds a step directory under /tmp and removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgstep/checksum.h"
#include "pgstep/exitcode.h"
#include "pgstep/stepset.h"
#include "unit_files.h"

#define MIB (1024 * 1024)

/* ---- Fixture: a fresh directory per test ---- */

typedef struct fixture {
    char dir[64];
    char other[64]; /* a second directory, for links that point elsewhere */
    vars *vars;
    stepset *set;
    pgstep_error err;
    char *log; /* what loading logged */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(fixture));

    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/pgstep-test-XXXXXX");
    strcpy(f->other, "/tmp/pgstep-other-XXXXXX");
    if (!mkdtemp(f->dir) || !mkdtemp(f->other) || !(f->vars = vars_new()))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    unit_remove_tree(f->dir);
    unit_remove_tree(f->other);
    stepset_free(f->set);
    vars_free(f->vars);
    free(f->log);
    free(f);
    return 0;
}

static void write_file(fixture *f, const char *name, const char *text)
{
    unit_write_bytes(f->dir, name, text, strlen(text));
}

/* Loads f->dir with stderr captured into f->log. */
static bool load(fixture *f)
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    bool ok;
    long size;

    assert_non_null(tmp);
    assert_true(saved >= 0);
    fflush(stderr);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    ok = stepset_load(f->dir, f->vars, &f->set, &f->err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size = ftell(tmp);
    free(f->log);
    f->log = calloc(1, (size_t)size + 1);
    assert_non_null(f->log);
    rewind(tmp);
    assert_int_equal(fread(f->log, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    if (ok)
        assert_non_null(f->set);
    else
        assert_null(f->set);
    return ok;
}

static void assert_loads(fixture *f)
{
    if (!load(f))
        fail_msg("load failed: %s\nlog:\n%s", f->err.message, f->log);
}

static void assert_log_contains(const fixture *f, const char *text)
{
    if (!strstr(f->log, text))
        fail_msg("log lacks [%s]; log:\n%s", text, f->log);
}

/* The error says loading found exactly n problems. */
static void assert_problem_count(const fixture *f, int n)
{
    char want[256];

    assert_int_equal(f->err.exit_code, PGSTEP_EXIT_STEPSET);
    snprintf(want, sizeof(want), "step set \"%s\" is invalid: %d %s", f->dir, n,
             n == 1 ? "problem" : "problems");
    if (strcmp(f->err.message, want) != 0)
        fail_msg("expected [%s], got [%s]; log:\n%s", want, f->err.message, f->log);
}

/* Loading fails with exactly n problems, each also logged. */
static void assert_fails_with(fixture *f, int n)
{
    assert_false(load(f));
    assert_problem_count(f, n);
}

static const char *statement_text(const step *s, size_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int)s->statements[i].length, s->sql + s->statements[i].offset);
    return buf;
}

/* ---- Directory and names ---- */

static void test_empty_directory_is_valid_with_no_steps(void **state)
{
    fixture *f = *state;

    write_file(f, "README.md", "not a step");
    assert_loads(f);
    assert_int_equal(stepset_count(f->set), 0);
    assert_string_equal(stepset_dir(f->set), f->dir);
    assert_null(stepset_get(f->set, 0));
}

static void test_missing_directory_is_an_error(void **state)
{
    fixture *f = *state;

    unit_remove_tree(f->dir);
    assert_false(load(f));
    assert_int_equal(f->err.exit_code, PGSTEP_EXIT_STEPSET);
    assert_non_null(strstr(f->err.message, "could not open step directory"));
    assert_non_null(strstr(f->err.message, "no such file or directory"));
}

static void test_steps_are_ordered_versioned_then_repeatable(void **state)
{
    fixture *f = *state;
    const step *s;
    char sub[128];

    write_file(f, "R__views.sql", "SELECT 'views';");
    write_file(f, "V10__ten.sql", "SELECT 10;");
    write_file(f, "V2__add_users_table.sql", "SELECT 2;");
    write_file(f, "R__functions.sql", "SELECT 'functions';");
    write_file(f, "V1__init.sql", "SELECT 1;");
    write_file(f, "notes.txt", "ignored");
    snprintf(sub, sizeof(sub), "%s/subdir", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_loads(f);
    assert_int_equal(stepset_count(f->set), 5);
    s = stepset_get(f->set, 0);
    assert_int_equal(s->kind, STEP_VERSIONED);
    assert_int_equal(s->version, 1);
    assert_string_equal(s->description, "init");
    assert_string_equal(s->file_name, "V1__init.sql");
    s = stepset_get(f->set, 1);
    assert_int_equal(s->version, 2);
    assert_string_equal(s->description, "add_users_table");
    assert_int_equal(stepset_get(f->set, 2)->version, 10);
    s = stepset_get(f->set, 3);
    assert_int_equal(s->kind, STEP_REPEATABLE);
    assert_int_equal(s->version, 0);
    assert_string_equal(s->description, "functions");
    assert_string_equal(stepset_get(f->set, 4)->description, "views");
}

static void test_version_allows_leading_zeros(void **state)
{
    fixture *f = *state;

    write_file(f, "V007__bond.sql", "SELECT 7;");
    write_file(f, "V9223372036854775807__max.sql", "SELECT 1;");
    assert_loads(f);
    assert_int_equal(stepset_get(f->set, 0)->version, 7);
    assert_int_equal(stepset_get(f->set, 1)->version, 9223372036854775807LL);
}

static void test_invalid_file_names_are_errors(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"v1_foo.sql",   "V1_foo.sql",   "V__x.sql",
                         "V1__.sql",     "R__.sql",      "r__x.sql",
                         "foo.sql",      "V0__zero.sql", "V9223372036854775808__big.sql",
                         "V1x__foo.sql", ".sql"};
    const size_t nbad = sizeof(bad) / sizeof(bad[0]);
    char want[128];

    for (size_t i = 0; i < nbad; i++)
        write_file(f, bad[i], "SELECT 1;");
    assert_fails_with(f, (int)nbad);
    for (size_t i = 0; i < nbad; i++) {
        snprintf(want, sizeof(want), "%s: invalid step file name \"%s\"", bad[i], bad[i]);
        assert_log_contains(f, want);
    }
    assert_log_contains(f, "the version must be greater than zero");
    assert_log_contains(f, "the version is out of range");
    assert_log_contains(f, "the description is empty");
}

static void test_parse_name_says_kind_version_and_description(void **state)
{
    step_kind kind;
    long long version;
    size_t desc;

    (void)state;
    assert_null(stepset_parse_name("V007__bond.sql", &kind, &version, &desc));
    assert_int_equal(kind, STEP_VERSIONED);
    assert_int_equal(version, 7);
    assert_int_equal(desc, 6);
    assert_null(stepset_parse_name("R__views.sql", &kind, &version, &desc));
    assert_int_equal(kind, STEP_REPEATABLE);
    assert_int_equal(version, 0);
    assert_int_equal(desc, 3);
    assert_string_equal(stepset_parse_name("V1__.sql", &kind, &version, &desc),
                        "the description is empty");
    assert_string_equal(stepset_parse_name("v1__x.sql", &kind, &version, &desc), "");
    /* Only a name ending in .sql is a step's; a shorter one is read no further. */
    assert_string_equal(stepset_parse_name("V1__x", &kind, &version, &desc), "");
    assert_string_equal(stepset_parse_name("R__", &kind, &version, &desc), "");
    assert_string_equal(stepset_parse_name("", &kind, &version, &desc), "");
}

static void test_duplicate_version_names_both_files(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__first.sql", "SELECT 1;");
    write_file(f, "V01__second.sql", "SELECT 1;");
    assert_fails_with(f, 1);
    assert_log_contains(f, "version 1 is used by both");
    assert_log_contains(f, "V01__second.sql");
    assert_log_contains(f, "V1__first.sql");
}

static void test_uppercase_suffix_is_not_a_step_file(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__x.SQL", "SELECT 1;");
    assert_loads(f);
    assert_int_equal(stepset_count(f->set), 0);
    assert_log_contains(f, "V1__x.SQL: ignored");
}

/* ---- File checks ---- */

static void test_empty_or_whitespace_file_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__empty.sql", "");
    write_file(f, "V2__blank.sql", " \n\t\r\n");
    assert_fails_with(f, 2);
    assert_log_contains(f, "V1__empty.sql: step file is empty");
    assert_log_contains(f, "V2__blank.sql: step file is empty");
}

static void test_file_with_only_comments_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__comments.sql", "-- nothing here\n/* nor ; here */\n;\n");
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__comments.sql: step file contains no SQL statements");
}

static void test_invalid_utf8_is_an_error_with_line(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "SELECT 1;\nSELECT '\xc0\xaf';",         /* overlong '/' */
        "SELECT 1;\nSELECT '\xe0\x80\xaf';",     /* overlong, 3 bytes */
        "SELECT 1;\nSELECT '\xed\xa0\x80';",     /* surrogate U+D800 */
        "SELECT 1;\nSELECT '\xf4\x90\x80\x80';", /* U+110000 */
        "SELECT 1;\nSELECT '\x80';",             /* stray continuation byte */
        "SELECT 1;\nSELECT '\xe2\x82';",         /* truncated sequence */
        "SELECT 1;\nSELECT '\xff';",             /* never valid */
    };
    char name[32], want[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "V%zu__bad.sql", i + 1);
        write_file(f, name, bad[i]);
    }
    assert_fails_with(f, (int)(sizeof(bad) / sizeof(bad[0])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want), "V%zu__bad.sql:2: invalid byte sequence", i + 1);
        assert_log_contains(f, want);
    }
}

static void test_valid_multibyte_utf8_is_accepted(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__utf8.sql",
               "SELECT '\xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf';");
    assert_loads(f);
    assert_int_equal(stepset_count(f->set), 1);
}

static void test_nul_byte_is_an_error_with_line(void **state)
{
    fixture *f = *state;
    const char text[] = "SELECT 1;\n\nSELECT '\0';\n";

    unit_write_bytes(f->dir, "V1__nul.sql", text, sizeof(text) - 1);
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__nul.sql:3: step file contains a NUL byte");
    assert_log_contains(f, "V1__nul.sql:3: ");
}

static void test_byte_order_mark_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__bom.sql", "\xef\xbb\xbfSELECT 1;");
    assert_fails_with(f, 1);
    assert_log_contains(f, "byte order mark");
}

static void test_symlink_inside_directory_is_followed(void **state)
{
    fixture *f = *state;
    char sub[128], link[128];

    snprintf(sub, sizeof(sub), "%s/shared", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    unit_write_bytes(sub, "common.sql", "SELECT 'shared';", 16);
    snprintf(link, sizeof(link), "%s/R__common.sql", f->dir);
    assert_int_equal(symlink("shared/common.sql", link), 0);
    assert_loads(f);
    assert_int_equal(stepset_count(f->set), 1);
    assert_string_equal(stepset_get(f->set, 0)->sql, "SELECT 'shared';");
}

static void test_symlink_outside_directory_is_an_error(void **state)
{
    fixture *f = *state;
    char target[128], link[128];

    unit_write_bytes(f->other, "elsewhere.sql", "SELECT 1;", 9);
    snprintf(target, sizeof(target), "%s/elsewhere.sql", f->other);
    snprintf(link, sizeof(link), "%s/V1__outside.sql", f->dir);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof(link), "%s/V2__dotdot.sql", f->dir);
    snprintf(target, sizeof(target), "../%s/elsewhere.sql", f->other + strlen("/tmp/"));
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof(link), "%s/V3__dangling.sql", f->dir);
    assert_int_equal(symlink("missing.sql", link), 0);
    assert_fails_with(f, 3);
    assert_log_contains(f, "V1__outside.sql: symbolic link points outside the step directory");
    assert_log_contains(f, "V2__dotdot.sql: symbolic link points outside the step directory");
    assert_log_contains(f, "V3__dangling.sql: could not resolve symbolic link");
}

static void test_non_regular_files_are_errors(void **state)
{
    fixture *f = *state;
    char path[128];

    snprintf(path, sizeof(path), "%s/V1__fifo.sql", f->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/V2__dir.sql", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_fails_with(f, 2);
    assert_log_contains(f, "V1__fifo.sql: not a regular file");
    assert_log_contains(f, "V2__dir.sql: not a regular file");
}

static void test_unreadable_file_is_an_error(void **state)
{
    fixture *f = *state;
    char path[128];
    bool as_root = geteuid() == 0;
    bool ok;

    write_file(f, "V1__secret.sql", "SELECT 1;");
    snprintf(path, sizeof(path), "%s/V1__secret.sql", f->dir);
    assert_int_equal(chmod(path, 0), 0);
    /* root reads any file: load as nobody, with the directory itself readable. */
    if (as_root) {
        assert_int_equal(chmod(f->dir, 0755), 0);
        assert_int_equal(seteuid(65534), 0);
    }
    ok = load(f);
    if (as_root)
        assert_int_equal(seteuid(0), 0);
    assert_false(ok);
    assert_problem_count(f, 1);
    assert_log_contains(f, "V1__secret.sql: could not open step file: permission denied");
}

static void test_file_over_16_mib_is_an_error(void **state)
{
    fixture *f = *state;
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/V1__huge.sql", f->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 16 * MIB + 1), 0);
    close(fd);
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__huge.sql: step file is larger than the limit of 16 MiB");
}

static void test_file_of_exactly_16_mib_is_accepted(void **state)
{
    fixture *f = *state;
    const char *tail = "\nSELECT 1;\n";
    size_t size = 16 * MIB;
    char *text = malloc(size);

    assert_non_null(text);
    memset(text, '-', size);
    memcpy(text + size - strlen(tail), tail, strlen(tail));
    unit_write_bytes(f->dir, "V1__big.sql", text, size);
    free(text);
    assert_loads(f);
    assert_int_equal(stepset_get(f->set, 0)->nstatements, 1);
}

/* ---- Text handling ---- */

static void test_crlf_is_converted_and_checksummed_as_sent(void **state)
{
    fixture *f = *state;
    const char *lf = "SELECT 1;\nSELECT\n'a\rb';\n";
    char want[CHECKSUM_HEX_LEN + 1], buf[64];
    const step *s;

    write_file(f, "V1__crlf.sql", "SELECT 1;\r\nSELECT\r\n'a\rb';\r\n");
    assert_loads(f);
    s = stepset_get(f->set, 0);
    assert_string_equal(s->sql, lf);
    assert_int_equal(s->sql_len, strlen(lf));
    checksum_sql(lf, strlen(lf), want);
    assert_string_equal(s->checksum, want);
    assert_int_equal(s->nstatements, 2);
    assert_int_equal(s->statements[1].line, 2);
    assert_string_equal(statement_text(s, 1, buf, sizeof(buf)), "SELECT\n'a\rb'");
}

static void test_statement_lines_are_file_lines(void **state)
{
    fixture *f = *state;
    const step *s;
    char buf[128];

    assert_true(vars_set(f->vars, "t", "multi\nline\nvalue"));
    write_file(f, "V1__lines.sql",
               "-- pgstep: no-transaction\n"
               "-- header\n"
               "\n"
               "CREATE INDEX CONCURRENTLY i ON t (a) WHERE b <> :'t';\n"
               "\n"
               "/* comment */\n"
               "VACUUM t;");
    assert_loads(f);
    s = stepset_get(f->set, 0);
    assert_true(s->no_transaction);
    assert_int_equal(s->nstatements, 2);
    assert_int_equal(s->statements[0].line, 4);
    assert_int_equal(s->statements[1].line, 7);
    assert_string_equal(statement_text(s, 0, buf, sizeof(buf)),
                        "CREATE INDEX CONCURRENTLY i ON t (a) WHERE b <> E'multi\\nline\\nvalue'");
    assert_string_equal(statement_text(s, 1, buf, sizeof(buf)), "VACUUM t");
}

static void test_variables_are_substituted_before_splitting(void **state)
{
    fixture *f = *state;
    const step *s;
    char buf[128], want[CHECKSUM_HEX_LEN + 1];

    assert_true(vars_set(f->vars, "schema", "app"));
    assert_true(vars_set(f->vars, "note", "x'; DROP TABLE t; --"));
    write_file(f, "V1__vars.sql",
               "CREATE SCHEMA :\"schema\";\nCOMMENT ON SCHEMA :\"schema\" IS "
               ":'note';\n");
    assert_loads(f);
    s = stepset_get(f->set, 0);
    assert_int_equal(s->nstatements, 2);
    assert_string_equal(statement_text(s, 0, buf, sizeof(buf)), "CREATE SCHEMA \"app\"");
    assert_string_equal(statement_text(s, 1, buf, sizeof(buf)),
                        "COMMENT ON SCHEMA \"app\" IS 'x''; DROP TABLE t; --'");
    checksum_sql(s->sql, s->sql_len, want);
    assert_string_equal(s->checksum, want);
}

static void test_undefined_variable_is_reported_with_file_and_line(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__vars.sql", "SELECT 1;\n\nSELECT :'missing';\n");
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__vars.sql:3: undefined variable \"missing\"");
}

static void test_invalid_utf8_from_variable_value_is_an_error(void **state)
{
    fixture *f = *state;

    assert_true(vars_set(f->vars, "v", "\xff"));
    write_file(f, "V1__vars.sql", "SELECT 1;\nSELECT :'v';\n");
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__vars.sql:2: a substituted variable value is not valid UTF-8");
}

static void test_unterminated_quote_is_reported_with_file_and_line(void **state)
{
    fixture *f = *state;
    char text[512] = "";

    for (int i = 1; i < 12; i++)
        strcat(text, "GRANT SELECT ON t TO r;\n");
    strcat(text, "GRANT SELECT ON 't TO r;\n");
    write_file(f, "V3__grants.sql", text);
    assert_fails_with(f, 1);
    assert_log_contains(f, "V3__grants.sql:12: unterminated quoted string");
    assert_log_contains(f, "V3__grants.sql:12: ");
    assert_non_null(strstr(f->err.detail, "V3__grants.sql:12: unterminated quoted string"));
}

static void test_all_problems_are_reported_not_just_the_first(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__ok.sql", "SELECT 1;");
    write_file(f, "V2__bad.sql", "SELECT $$;");
    write_file(f, "V3__bad.sql", "SELECT /* ;");
    write_file(f, "R__bad.sql", "SELECT \"x;");
    assert_fails_with(f, 3);
    assert_log_contains(f, "V2__bad.sql:1: unterminated dollar-quoted string");
    assert_log_contains(f, "V3__bad.sql:1: unterminated /* comment");
    assert_log_contains(f, "R__bad.sql:1: unterminated quoted identifier");
}

/* ---- Directives ---- */

static void test_no_transaction_directive(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__plain.sql", "SELECT 1;");
    write_file(f, "V2__concurrent.sql",
               "\n-- Builds the index without locking writes.\n--pgstep:no-transaction\n"
               "CREATE INDEX CONCURRENTLY i ON t (a);");
    write_file(f, "V3__upper.sql", "-- PGSTEP: no-transaction\nSELECT 1;");
    assert_loads(f);
    assert_false(stepset_get(f->set, 0)->no_transaction);
    assert_true(stepset_get(f->set, 1)->no_transaction);
    assert_true(stepset_get(f->set, 2)->no_transaction);
    assert_null(stepset_get(f->set, 1)->rerun_query);
}

static void test_rerun_when_directive_is_substituted_and_stored(void **state)
{
    fixture *f = *state;
    const step *s;

    assert_true(vars_set(f->vars, "schema", "app"));
    write_file(f, "R__grants.sql",
               "-- pgstep: rerun-when SELECT string_agg(rolname, ',') FROM :\"schema\".roles; "
               "-- roles\nGRANT SELECT ON t TO r;\n");
    assert_loads(f);
    s = stepset_get(f->set, 0);
    assert_string_equal(s->rerun_query, "SELECT string_agg(rolname, ',') FROM \"app\".roles");
    assert_false(s->no_transaction);
    assert_int_equal(s->statements[0].line, 2);
}

static void test_rerun_when_on_versioned_step_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__x.sql", "-- pgstep: rerun-when SELECT 1\nSELECT 1;");
    assert_fails_with(f, 1);
    assert_log_contains(f, "V1__x.sql:1: directive \"rerun-when\" is only allowed in "
                           "repeatable (R__) steps");
}

static void test_bad_rerun_when_queries_are_errors(void **state)
{
    fixture *f = *state;

    write_file(f, "R__empty.sql", "-- pgstep: rerun-when   \nSELECT 1;");
    write_file(f, "R__two.sql", "-- pgstep: rerun-when SELECT 1; SELECT 2\nSELECT 1;");
    write_file(f, "R__twice.sql",
               "-- pgstep: rerun-when SELECT 1\n-- pgstep: rerun-when SELECT 2\nSELECT 1;");
    write_file(f, "R__undefined.sql", "\n-- pgstep: rerun-when SELECT :'nope'\nSELECT 1;");
    assert_fails_with(f, 4);
    assert_log_contains(f, "R__empty.sql:1: directive \"rerun-when\" needs a query");
    assert_log_contains(f, "R__two.sql:1: rerun-when query must be exactly one statement");
    assert_log_contains(f, "R__twice.sql:2: duplicate directive \"rerun-when\"");
    assert_log_contains(f, "R__undefined.sql:2: rerun-when query: undefined variable");
}

static void test_unknown_directive_is_an_error_naming_it_and_its_line(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__x.sql", "-- intro\n\n-- pgstep: no-transactions\nSELECT 1;");
    write_file(f, "V2__x.sql", "-- pgstep: no-transaction please\nSELECT 1;");
    write_file(f, "V3__x.sql", "-- pgstep:\nSELECT 1;");
    assert_fails_with(f, 3);
    assert_log_contains(f, "V1__x.sql:3: unknown directive \"no-transactions\"");
    assert_log_contains(f, "V2__x.sql:1: directive \"no-transaction\" takes no argument");
    assert_log_contains(f, "V3__x.sql:1: empty pgstep directive");
}

static void test_directive_after_sql_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__x.sql", "/* header */\n-- pgstep: no-transaction\nSELECT 1;");
    write_file(f, "V2__x.sql", "SELECT 1;\n  -- pgstep: no-transaction\n");
    assert_fails_with(f, 2);
    assert_log_contains(f, "V1__x.sql:2: pgstep directive after the start of the SQL");
    assert_log_contains(f, "V2__x.sql:2: pgstep directive after the start of the SQL");
}

/* ---- Transaction control ---- */

static void test_transaction_control_in_transactional_step_is_an_error(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__txn.sql",
               "BEGIN;\n"
               "start transaction;\n"
               "SELECT 1;\n"
               "commit;\n"
               "ROLLBACK;\n"
               "ABORT;\n"
               "END;\n"
               "PREPARE TRANSACTION 'x';\n"
               "COMMIT PREPARED 'x';\n"
               "/* c */ ROLLBACK WORK;\n"
               "ROLLBACK PREPARED 'x';\n");
    assert_fails_with(f, 10);
    assert_log_contains(f, "V1__txn.sql:1: transaction control statement \"BEGIN\" in a step "
                           "that runs in a transaction");
    assert_log_contains(f, "V1__txn.sql:2: transaction control statement \"START TRANSACTION\"");
    assert_log_contains(f, "V1__txn.sql:4: transaction control statement \"COMMIT\"");
    assert_log_contains(f, "V1__txn.sql:5: transaction control statement \"ROLLBACK\"");
    assert_log_contains(f, "V1__txn.sql:6: transaction control statement \"ABORT\"");
    assert_log_contains(f, "V1__txn.sql:7: transaction control statement \"END\"");
    assert_log_contains(f, "V1__txn.sql:8: transaction control statement \"PREPARE "
                           "TRANSACTION\"");
    assert_log_contains(f, "V1__txn.sql:9: transaction control statement \"COMMIT PREPARED\"");
    assert_log_contains(f, "V1__txn.sql:10: transaction control statement \"ROLLBACK\"");
    assert_log_contains(f, "V1__txn.sql:11: transaction control statement \"ROLLBACK "
                           "PREPARED\"");
    assert_log_contains(f, "pgstep: no-transaction");
}

static void test_savepoints_prepare_and_begin_atomic_are_allowed_in_transaction(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__ok.sql",
               "SAVEPOINT s;\n"
               "ROLLBACK TO SAVEPOINT s;\n"
               "rollback work to s;\n"
               "RELEASE SAVEPOINT s;\n"
               "PREPARE q AS SELECT 1;\n"
               "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
               "DO $$ BEGIN COMMIT; END $$;\n"
               "SELECT 'COMMIT';\n"
               "CREATE TABLE ended (begin_at timestamptz);\n");
    assert_loads(f);
    assert_int_equal(stepset_get(f->set, 0)->nstatements, 9);
}

static void test_transaction_control_allowed_in_no_transaction_step(void **state)
{
    fixture *f = *state;

    write_file(f, "V1__own.sql", "-- pgstep: no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;\n");
    assert_loads(f);
    assert_int_equal(stepset_get(f->set, 0)->nstatements, 3);
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_empty_directory_is_valid_with_no_steps),
        FIXTURE_TEST(test_missing_directory_is_an_error),
        FIXTURE_TEST(test_steps_are_ordered_versioned_then_repeatable),
        FIXTURE_TEST(test_version_allows_leading_zeros),
        cmocka_unit_test(test_parse_name_says_kind_version_and_description),
        FIXTURE_TEST(test_invalid_file_names_are_errors),
        FIXTURE_TEST(test_duplicate_version_names_both_files),
        FIXTURE_TEST(test_uppercase_suffix_is_not_a_step_file),
        FIXTURE_TEST(test_empty_or_whitespace_file_is_an_error),
        FIXTURE_TEST(test_file_with_only_comments_is_an_error),
        FIXTURE_TEST(test_invalid_utf8_is_an_error_with_line),
        FIXTURE_TEST(test_valid_multibyte_utf8_is_accepted),
        FIXTURE_TEST(test_nul_byte_is_an_error_with_line),
        FIXTURE_TEST(test_byte_order_mark_is_an_error),
        FIXTURE_TEST(test_symlink_inside_directory_is_followed),
        FIXTURE_TEST(test_symlink_outside_directory_is_an_error),
        FIXTURE_TEST(test_non_regular_files_are_errors),
        FIXTURE_TEST(test_unreadable_file_is_an_error),
        FIXTURE_TEST(test_file_over_16_mib_is_an_error),
        FIXTURE_TEST(test_file_of_exactly_16_mib_is_accepted),
        FIXTURE_TEST(test_crlf_is_converted_and_checksummed_as_sent),
        FIXTURE_TEST(test_statement_lines_are_file_lines),
        FIXTURE_TEST(test_variables_are_substituted_before_splitting),
        FIXTURE_TEST(test_undefined_variable_is_reported_with_file_and_line),
        FIXTURE_TEST(test_invalid_utf8_from_variable_value_is_an_error),
        FIXTURE_TEST(test_unterminated_quote_is_reported_with_file_and_line),
        FIXTURE_TEST(test_all_problems_are_reported_not_just_the_first),
        FIXTURE_TEST(test_no_transaction_directive),
        FIXTURE_TEST(test_rerun_when_directive_is_substituted_and_stored),
        FIXTURE_TEST(test_rerun_when_on_versioned_step_is_an_error),
        FIXTURE_TEST(test_bad_rerun_when_queries_are_errors),
        FIXTURE_TEST(test_unknown_directive_is_an_error_naming_it_and_its_line),
        FIXTURE_TEST(test_directive_after_sql_is_an_error),
        FIXTURE_TEST(test_transaction_control_in_transactional_step_is_an_error),
        FIXTURE_TEST(test_savepoints_prepare_and_begin_atomic_are_allowed_in_transaction),
        FIXTURE_TEST(test_transaction_control_allowed_in_no_transaction_step),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
