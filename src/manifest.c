/* The manifest pgstep.sum: formatting and parsing its lines, building it from a step directory
 * and comparing a directory with it. Files are hashed as stored, byte for byte, because the
 * manifest vouches for what was shipped, not for what pgstep makes of it. */
#include "pgstep/manifest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/exitcode.h"
#include "pgstep/log.h"
#include "pgstep/stepfile.h"
#include "pgstep/stepset.h"

/* The closing line: "sum " and the BLAKE2b-256 of every byte before it. It tells a manifest cut
 * short (a ConfigMap at its size limit, a half-copied file) from a complete one. */
#define MANIFEST_SUM_PREFIX "sum "
/* Between a hash and its file name, as b2sum writes it. */
#define MANIFEST_SEPARATOR "  "

typedef struct manifest_entry {
    char *name;
    char hash[CHECKSUM_HEX_LEN + 1];
} manifest_entry;

struct manifest {
    manifest_entry *entries;
    size_t count;
};

/* A name a line can hold unambiguously: no control character, not empty, and at most one slash,
 * between a database's subdirectory and a file name. */
static bool manifest_name_listable(const char *name, size_t len)
{
    size_t slashes = 0;

    if (len == 0 || name[0] == '/' || name[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c < 0x20 || c == 0x7f)
            return false;
        slashes += c == '/';
    }
    return slashes <= 1;
}

bool manifest_format(const char *const *names, const char (*hashes)[CHECKSUM_HEX_LEN + 1], size_t n,
                     char **text, size_t *len, size_t *bad)
{
    size_t size = sizeof(MANIFEST_HEADER) + sizeof(MANIFEST_SUM_PREFIX) + CHECKSUM_HEX_LEN + 2;
    char sum[CHECKSUM_HEX_LEN + 1];
    char *buf, *p;

    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nlen = strlen(names[i]);

        if (!manifest_name_listable(names[i], nlen)) {
            *bad = i;
            return false;
        }
        size += CHECKSUM_HEX_LEN + strlen(MANIFEST_SEPARATOR) + nlen + 1;
    }
    *bad = n;
    if (!(buf = malloc(size)))
        return false;
    p = buf;
    p += sprintf(p, "%s\n", MANIFEST_HEADER);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s%s\n", hashes[i], MANIFEST_SEPARATOR, names[i]);
    checksum_bytes(buf, (size_t)(p - buf), sum);
    p += sprintf(p, "%s%s\n", MANIFEST_SUM_PREFIX, sum);
    *text = buf;
    *len = (size_t)(p - buf);
    return true;
}

/* ---- Parsing ---- */

static bool manifest_hex_valid(const char *s)
{
    for (size_t i = 0; i < CHECKSUM_HEX_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static bool manifest_bad(int *line, int at, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool manifest_bad(int *line, int at, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    *line = at;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return false;
}

/* Parses one "HASH  NAME" line of length len into e. */
static bool manifest_parse_entry(const char *s, size_t len, manifest_entry *e, const char *prev,
                                 int at, int *line, char *why, size_t whylen)
{
    size_t sep = strlen(MANIFEST_SEPARATOR);
    size_t nlen;

    if (len <= CHECKSUM_HEX_LEN + sep || !manifest_hex_valid(s) ||
        memcmp(s + CHECKSUM_HEX_LEN, MANIFEST_SEPARATOR, sep) != 0)
        return manifest_bad(line, at, why, whylen,
                            "expected 64 lowercase hex digits, two spaces and a file name");
    nlen = len - CHECKSUM_HEX_LEN - sep;
    if (!manifest_name_listable(s + CHECKSUM_HEX_LEN + sep, nlen))
        return manifest_bad(line, at, why, whylen, "invalid file name");
    if (!(e->name = strndup(s + CHECKSUM_HEX_LEN + sep, nlen)))
        return manifest_bad(line, at, why, whylen, "out of memory");
    memcpy(e->hash, s, CHECKSUM_HEX_LEN);
    e->hash[CHECKSUM_HEX_LEN] = '\0';
    if (prev && strcmp(prev, e->name) >= 0)
        return manifest_bad(line, at, why, whylen, "\"%s\" is out of order or listed twice",
                            e->name);
    return true;
}

bool manifest_parse(const char *text, size_t len, manifest **out, int *line, char *why,
                    size_t whylen)
{
    manifest *m = calloc(1, sizeof(*m));
    size_t pos = 0, capacity = 0;
    int at = 0;
    bool closed = false;

    *out = NULL;
    if (!m)
        return manifest_bad(line, 0, why, whylen, "out of memory");
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t llen;

        at++;
        if (!nl) {
            manifest_bad(line, at, why, whylen, "the last line is incomplete");
            goto fail;
        }
        llen = (size_t)(nl - s);
        if (closed) {
            manifest_bad(line, at, why, whylen, "text after the closing \"sum\" line");
            goto fail;
        }
        if (at == 1) {
            if (llen != strlen(MANIFEST_HEADER) || memcmp(s, MANIFEST_HEADER, llen) != 0) {
                manifest_bad(line, at, why, whylen, "expected \"%s\" as the first line",
                             MANIFEST_HEADER);
                goto fail;
            }
        } else if (llen >= strlen(MANIFEST_SUM_PREFIX) &&
                   memcmp(s, MANIFEST_SUM_PREFIX, strlen(MANIFEST_SUM_PREFIX)) == 0) {
            char sum[CHECKSUM_HEX_LEN + 1];

            checksum_bytes(text, pos, sum);
            if (llen != strlen(MANIFEST_SUM_PREFIX) + CHECKSUM_HEX_LEN ||
                memcmp(s + strlen(MANIFEST_SUM_PREFIX), sum, CHECKSUM_HEX_LEN) != 0) {
                manifest_bad(line, at, why, whylen,
                             "the closing checksum does not match the lines before it");
                goto fail;
            }
            closed = true;
        } else {
            if (m->count == capacity) {
                size_t newcap = capacity ? capacity * 2 : 16;
                manifest_entry *grown = realloc(m->entries, newcap * sizeof(*grown));

                if (!grown) {
                    manifest_bad(line, at, why, whylen, "out of memory");
                    goto fail;
                }
                m->entries = grown;
                capacity = newcap;
            }
            memset(&m->entries[m->count], 0, sizeof(manifest_entry));
            if (!manifest_parse_entry(s, llen, &m->entries[m->count],
                                      m->count ? m->entries[m->count - 1].name : NULL, at, line,
                                      why, whylen)) {
                m->count++; /* so that its name is freed */
                goto fail;
            }
            m->count++;
        }
        pos += llen + 1;
    }
    if (!closed) {
        manifest_bad(line, at, why, whylen,
                     at == 0 ? "the file is empty" : "the closing \"sum\" line is missing");
        goto fail;
    }
    *out = m;
    return true;

fail:
    manifest_free(m);
    return false;
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        free(m->entries[i].name);
    free(m->entries);
    free(m);
}

size_t manifest_count(const manifest *m)
{
    return m->count;
}

const char *manifest_name(const manifest *m, size_t i)
{
    return m->entries[i].name;
}

const char *manifest_hash(const manifest *m, size_t i)
{
    return m->entries[i].hash;
}

const char *manifest_find(const manifest *m, const char *name)
{
    size_t lo = 0, hi = m->count;

    /* The entries are in strcmp order: manifest_parse refuses any other. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, m->entries[mid].name);

        if (cmp == 0)
            return m->entries[mid].hash;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- The directory ---- */

static void manifest_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Hashes dir/name as stored; false with the reason in ferr. */
static bool manifest_hash_file(const char *dir, const char *real_dir, const char *name,
                               char hash[CHECKSUM_HEX_LEN + 1], stepfile_error *ferr)
{
    char *data;
    size_t len;

    if (!stepfile_read_bytes(dir, real_dir, name, &data, &len, ferr))
        return false;
    checksum_bytes(data, len, hash);
    free(data);
    return true;
}

static int manifest_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files a manifest covers, in strcmp order: every .sql file of dir, or with databases, of
 * each database's subdirectory, named "database/file". */
static bool manifest_list(const char *dir, char *const *databases, char ***out, size_t *count,
                          pgstep_error *err)
{
    char **all = NULL;
    size_t n = 0;

    if (!databases)
        return stepset_list_files(dir, out, count, err);
    for (size_t d = 0; databases[d]; d++) {
        size_t plen = strlen(dir) + strlen(databases[d]) + 2;
        char *sub = malloc(plen);
        char **names = NULL;
        size_t k = 0;
        char **grown;
        bool listed;

        if (sub)
            snprintf(sub, plen, "%s/%s", dir, databases[d]);
        listed = sub && stepset_list_files(sub, &names, &k, err);
        free(sub);
        if (!listed || !(grown = realloc(all, (n + k + 1) * sizeof(char *)))) {
            if (listed)
                error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
            manifest_free_names(names, k);
            manifest_free_names(all, n);
            return false;
        }
        all = grown;
        for (size_t i = 0; i < k; i++) {
            size_t len = strlen(databases[d]) + strlen(names[i]) + 2;

            if (!(all[n] = malloc(len))) {
                manifest_free_names(names, k);
                manifest_free_names(all, n);
                return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
            }
            snprintf(all[n++], len, "%s/%s", databases[d], names[i]);
        }
        manifest_free_names(names, k);
    }
    qsort(all, n, sizeof(char *), manifest_compare_names);
    *out = all;
    *count = n;
    return true;
}

static char *manifest_real_dir(const char *dir, pgstep_error *err)
{
    char errbuf[128];
    char *real_dir = realpath(dir, NULL);

    if (!real_dir)
        error_set(err, PGSTEP_EXIT_STEPSET, "could not open step directory \"%s\": %s", dir,
                  error_errno_text(errno, errbuf, sizeof(errbuf)));
    return real_dir;
}

bool manifest_read_file(const char *dir, const char *name, char **data, size_t *len,
                        pgstep_error *err)
{
    char *real_dir = manifest_real_dir(dir, err);
    stepfile_error ferr;
    bool ok;

    if (!real_dir)
        return false;
    ok = stepfile_read_bytes(dir, real_dir, name, data, len, &ferr);
    free(real_dir);
    if (!ok) {
        error_set(err, PGSTEP_EXIT_STEPSET, "%s: %s", name, ferr.message);
        error_location(err, name, 0);
    }
    return ok;
}

bool manifest_build(const char *dir, char *const *databases, char **text, size_t *len,
                    pgstep_error *err)
{
    char **names = NULL;
    char(*hashes)[CHECKSUM_HEX_LEN + 1] = NULL;
    size_t n = 0, bad;
    char *real_dir = manifest_real_dir(dir, err);
    bool ok = false;

    if (!real_dir || !manifest_list(dir, databases, &names, &n, err))
        goto done;
    if (!(hashes = calloc(n ? n : 1, sizeof(*hashes)))) {
        error_set(err, PGSTEP_EXIT_STEPSET, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        stepfile_error ferr;

        if (!manifest_hash_file(dir, real_dir, names[i], hashes[i], &ferr)) {
            error_set(err, PGSTEP_EXIT_STEPSET, "%s: %s", names[i], ferr.message);
            error_location(err, names[i], 0);
            goto done;
        }
    }
    if (!manifest_format((const char *const *)names, (const char(*)[CHECKSUM_HEX_LEN + 1]) hashes,
                         n, text, len, &bad)) {
        if (bad < n)
            error_set(err, PGSTEP_EXIT_STEPSET,
                      "file name \"%s\" cannot be listed in a manifest: it contains a control "
                      "character",
                      names[bad]);
        else
            error_set(err, PGSTEP_EXIT_STEPSET, "out of memory");
        goto done;
    }
    ok = true;

done:
    free(hashes);
    manifest_free_names(names, n);
    free(real_dir);
    return ok;
}

/* What comparing found, for the summary. */
typedef struct manifest_tally {
    size_t missing, unexpected, changed, unreadable;
    char first[ERROR_TEXT_MAX];
} manifest_tally;

static void manifest_mismatch(manifest_tally *t, size_t *counter, const char *dir, const char *name,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Logs one mismatch as "name: what" and counts it. */
static void manifest_mismatch(manifest_tally *t, size_t *counter, const char *dir, const char *name,
                              const char *fmt, ...)
{
    char text[ERROR_TEXT_MAX / 2];
    char path[ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    {
        log_field fields[] = {LOG_STR("file", path)};

        log_event(LOG_ERROR, fields, 1, "%s: %s", name, text);
    }
    if (t->missing + t->unexpected + t->changed + t->unreadable == 0)
        snprintf(t->first, sizeof(t->first), "%.400s: %s", name, text);
    (*counter)++;
}

bool manifest_check(const manifest *m, const char *dir, char *const *databases, pgstep_error *err)
{
    char **names = NULL;
    size_t n = 0, i = 0, j = 0;
    char *real_dir = manifest_real_dir(dir, err);
    manifest_tally t = {0};
    bool ok = false;

    if (!real_dir || !manifest_list(dir, databases, &names, &n, err))
        goto done;
    /* Both lists are in strcmp order: one merge pass finds every difference. */
    while (i < n || j < m->count) {
        int cmp = i == n ? 1 : j == m->count ? -1 : strcmp(names[i], m->entries[j].name);

        if (cmp < 0) {
            manifest_mismatch(&t, &t.unexpected, dir, names[i], "file is not listed in %s",
                              MANIFEST_FILE_NAME);
            i++;
        } else if (cmp > 0) {
            manifest_mismatch(&t, &t.missing, dir, m->entries[j].name,
                              "file is listed in %s but missing", MANIFEST_FILE_NAME);
            j++;
        } else {
            char hash[CHECKSUM_HEX_LEN + 1];
            stepfile_error ferr;

            if (!manifest_hash_file(dir, real_dir, names[i], hash, &ferr))
                manifest_mismatch(&t, &t.unreadable, dir, names[i], "%s", ferr.message);
            else if (strcmp(hash, m->entries[j].hash) != 0)
                manifest_mismatch(&t, &t.changed, dir, names[i],
                                  "file content differs from %s (BLAKE2b-256 %.12s..., listed "
                                  "%.12s...)",
                                  MANIFEST_FILE_NAME, hash, m->entries[j].hash);
            i++;
            j++;
        }
    }
    if (t.missing + t.unexpected + t.changed + t.unreadable == 0) {
        ok = true;
        goto done;
    }
    {
        const size_t counts[] = {t.missing, t.unexpected, t.changed, t.unreadable};
        const char *const words[] = {"missing", "unexpected", "changed", "unreadable"};
        char what[160] = "";
        size_t used = 0;

        /* Only the kinds that occurred: "1 missing, 2 unexpected". */
        for (size_t k = 0; k < 4; k++) {
            if (counts[k] > 0)
                used += (size_t)snprintf(what + used, sizeof(what) - used, "%s%zu %s",
                                         used ? ", " : "", counts[k], words[k]);
        }
        error_set(err, PGSTEP_EXIT_STEPSET, "step set \"%s\" does not match its manifest: %s", dir,
                  what);
    }
    error_detail(err, "First problem: %s", t.first);
    error_hint(err,
               "Ship the step set exactly as %s lists it, or run \"pgstep manifest\" after "
               "a deliberate change.",
               MANIFEST_FILE_NAME);

done:
    manifest_free_names(names, n);
    free(real_dir);
    return ok;
}
