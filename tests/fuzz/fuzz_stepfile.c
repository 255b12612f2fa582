/* Fuzzes the step file reader and everything that loading a step does with what it read: the
 * input's first line is the file name (".sql" is added), the rest its content, written to a
 * scratch directory that stepset_load then reads, with a few variables set. Checks what a loaded
 * step promises: LF line ends, its SQL NUL-terminated, statements inside it, in order, on the
 * lines they start on, and checksums as 64 hex digits. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "pgstep/error.h"
#include "pgstep/exitcode.h"
#include "pgstep/log.h"
#include "pgstep/stepfile.h"
#include "pgstep/stepset.h"
#include "pgstep/vars.h"

static vars *variables;
static char *real_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* JSON lines exercise the escaping of whatever names and messages the input makes. */
    log_configure(LOG_FORMAT_JSON, LOG_ERROR);
    variables = vars_new();
    FUZZ_CHECK(variables && vars_set(variables, "role", "app") &&
               vars_set(variables, "quote", "it's \\ \"odd\"") &&
               vars_set(variables, "lines", "one\ntwo\r\nthree") &&
               vars_set(variables, "empty", ""));
    FUZZ_CHECK((real_dir = realpath(fuzz_scratch_dir(), NULL)) != NULL);
    return 0;
}

static bool is_hex64(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return i == 64;
}

static void check_step(const step *s)
{
    size_t pos = 0;

    FUZZ_CHECK(s->sql[s->sql_len] == '\0');
    FUZZ_CHECK(is_hex64(s->checksum) && is_hex64(s->file_checksum));
    FUZZ_CHECK(s->kind == STEP_REPEATABLE ? s->version == 0 : s->version > 0);
    FUZZ_CHECK(s->nstatements > 0);
    for (size_t i = 0; i < s->nstatements; i++) {
        const lexer_statement *st = &s->statements[i];

        FUZZ_CHECK(st->offset >= pos && st->length > 0 && st->length <= s->sql_len - st->offset);
        FUZZ_CHECK(st->line == fuzz_line_of(s->sql, st->offset));
        pos = st->offset + st->length;
    }
    FUZZ_CHECK(!s->rerun_query || s->kind == STEP_REPEATABLE);
}

/* The reader alone: each CRLF read as LF (a CR before it stays), every line kept. */
static void check_read(const char *dir, const char *name, const char *content, size_t size)
{
    stepfile_error ferr;
    char sum[CHECKSUM_HEX_LEN + 1];
    char *text = NULL;
    size_t len = 0, crlf = 0, lf_in = 0, lf_out = 0;

    if (stepfile_read(dir, real_dir, name, &text, &len, sum, &ferr)) {
        for (size_t i = 0; i < size; i++) {
            crlf += content[i] == '\r' && i + 1 < size && content[i + 1] == '\n';
            lf_in += content[i] == '\n';
        }
        for (size_t i = 0; i < len; i++)
            lf_out += text[i] == '\n';
        FUZZ_CHECK(len == size - crlf && text[len] == '\0' && strlen(text) == len);
        FUZZ_CHECK(lf_out == lf_in);
        FUZZ_CHECK(is_hex64(sum));
        free(text);
    } else {
        FUZZ_CHECK(text == NULL && ferr.message[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = (const char *)data;
    const char *nl = memchr(input, '\n', size);
    const char *dir = fuzz_scratch_dir();
    char name[256];
    size_t nlen = nl ? (size_t)(nl - input) : 0;
    const char *content = nl ? nl + 1 : input;
    size_t clen = size - (size_t)(content - input);
    const char *path;
    stepset *set = NULL;
    pgstep_error err;

    /* A name the file system takes: no slash, no NUL, not too long, not "." or "..". */
    if (nlen == 0 || nlen > sizeof(name) - 5 || memchr(input, '/', nlen) ||
        memchr(input, '\0', nlen))
        return 0;
    memcpy(name, input, nlen);
    memcpy(name + nlen, ".sql", sizeof(".sql"));
    path = fuzz_write_file(dir, name, content, clen);

    check_read(dir, name, content, clen);
    error_clear(&err);
    if (stepset_load(dir, variables, &set, &err)) {
        FUZZ_CHECK(stepset_count(set) == 1);
        check_step(stepset_get(set, 0));
        stepset_free(set);
    } else {
        FUZZ_CHECK(set == NULL);
        FUZZ_CHECK(err.exit_code == PGSTEP_EXIT_STEPSET && err.message[0] != '\0');
    }
    unlink(path);
    return 0;
}
