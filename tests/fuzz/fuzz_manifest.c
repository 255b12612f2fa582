/* Fuzzes the manifest parser, manifest_parse, on the input as pgstep.sum. Checks: a manifest that
 * parses lists its names in strict strcmp order with 64-hex-digit hashes, finds each of them, and
 * is exactly the text manifest_format writes for its entries; one that does not parse names a line
 * and a reason. Each input is parsed once as it is, and once with the closing line that matches
 * it appended, so that mutated entries reach the end of the parse too. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/checksum.h"
#include "pgstep/manifest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_manifest(const manifest *m, const char *text, size_t len)
{
    size_t n = manifest_count(m), bad = 0, outlen = 0;
    const char **names = malloc((n ? n : 1) * sizeof(char *));
    char(*hashes)[CHECKSUM_HEX_LEN + 1] = malloc((n ? n : 1) * sizeof(*hashes));
    char *out = NULL;

    FUZZ_CHECK(names && hashes);
    for (size_t i = 0; i < n; i++) {
        names[i] = manifest_name(m, i);
        FUZZ_CHECK(strlen(manifest_hash(m, i)) == CHECKSUM_HEX_LEN);
        FUZZ_CHECK(i == 0 || strcmp(names[i - 1], names[i]) < 0);
        FUZZ_CHECK(manifest_find(m, names[i]) == manifest_hash(m, i));
        memcpy(hashes[i], manifest_hash(m, i), CHECKSUM_HEX_LEN + 1);
    }
    FUZZ_CHECK(manifest_format(names, (const char(*)[CHECKSUM_HEX_LEN + 1]) hashes, n, &out,
                               &outlen, &bad));
    FUZZ_CHECK(outlen == len && memcmp(out, text, len) == 0);
    free(out);
    free(hashes);
    free(names);
}

static void parse_and_check(const char *text, size_t size)
{
    manifest *m = NULL;
    char why[256] = "";
    int line = -1;

    if (manifest_parse(text, size, &m, &line, why, sizeof(why))) {
        check_manifest(m, text, size);
        manifest_free(m);
    } else {
        FUZZ_CHECK(m == NULL && line >= 0 && why[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t closed_len = size + strlen("sum ") + CHECKSUM_HEX_LEN + 1;
    char *closed = malloc(closed_len);

    FUZZ_CHECK(closed != NULL);
    parse_and_check((const char *)data, size);
    memcpy(closed, data, size);
    memcpy(closed + size, "sum ", strlen("sum "));
    checksum_bytes(data, size, closed + size + strlen("sum "));
    closed[closed_len - 1] = '\n';
    parse_and_check(closed, closed_len);
    free(closed);
    return 0;
}
