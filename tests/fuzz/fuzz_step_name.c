/* Fuzzes step file name parsing, stepset_parse_name, with the input (up to a NUL) plus ".sql" as
 * the name. Checks that an accepted name says what it was parsed as: V, the version's digits,
 * "__" and a description, or R__ and a description; and that a refused one has a reason. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/stepset.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_valid(const char *name, step_kind kind, long long version, size_t desc_start)
{
    size_t base = strlen(name) - strlen(".sql");
    char digits[32];

    FUZZ_CHECK(desc_start >= 3 && desc_start < base);
    FUZZ_CHECK(name[desc_start - 2] == '_' && name[desc_start - 1] == '_');
    if (kind == STEP_REPEATABLE) {
        FUZZ_CHECK(version == 0 && desc_start == 3 && name[0] == 'R');
        return;
    }
    FUZZ_CHECK(kind == STEP_VERSIONED && version > 0 && name[0] == 'V');
    /* Between V and __: the version, maybe with leading zeros, and nothing else. */
    for (size_t i = 1; i < desc_start - 2; i++)
        FUZZ_CHECK(name[i] >= '0' && name[i] <= '9');
    snprintf(digits, sizeof(digits), "%lld", version);
    {
        size_t nd = strlen(digits), written = desc_start - 3, zeros;

        FUZZ_CHECK(written >= nd);
        zeros = written - nd;
        FUZZ_CHECK(memcmp(name + 1 + zeros, digits, nd) == 0);
        for (size_t i = 0; i < zeros; i++)
            FUZZ_CHECK(name[1 + i] == '0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *name = malloc(len + sizeof(".sql"));
    step_kind kind = STEP_VERSIONED;
    long long version = -1;
    size_t desc_start = 0;
    const char *why;

    FUZZ_CHECK(name != NULL);
    memcpy(name, data, len);
    memcpy(name + len, ".sql", sizeof(".sql"));
    why = stepset_parse_name(name, &kind, &version, &desc_start);
    if (why == NULL)
        check_valid(name, kind, version, desc_start);
    else
        FUZZ_CHECK(why[0] != '\0' || !(name[0] == 'R' && name[1] == '_' && name[2] == '_'));
    /* Without the suffix, no name is a step's. */
    name[len] = '\0';
    FUZZ_CHECK(stepset_parse_name(name, &kind, &version, &desc_start) != NULL ||
               (len >= 4 && memcmp(name + len - 4, ".sql", 4) == 0));
    free(name);
    return 0;
}
