/* Step-set integrity: read pgstep.sum and, when keys are trusted, its signature; check the
 * signature first (a forged manifest is not worth parsing), then every file against the
 * manifest. Nothing here talks to a server. */
#include "pgstep/integrity.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pgstep/exitcode.h"
#include "pgstep/json.h"
#include "pgstep/keyfile.h"
#include "pgstep/log.h"
#include "pgstep/manifest.h"

#define INTEGRITY_KEYS_KEY "steps.trusted_keys"

/* The trusted keys, decoded. A value that starts with "/" or "." is a public key file; any other
 * is the key's base64 form, which always starts with "RW" (base64 has slashes of its own). */
static bool integrity_load_keys(const pgstep_config *cfg, sigkey_public **keys, size_t *n,
                                pgstep_error *err)
{
    const char *where = cfg->source_path ? cfg->source_path : "configuration";
    size_t count = 0;

    *keys = NULL;
    *n = 0;
    while (cfg->trusted_keys && cfg->trusted_keys[count])
        count++;
    /* An empty list would read as "signatures required" and check nothing. */
    if (cfg->trusted_keys && count == 0)
        return error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"%s\": the list is empty", where,
                         INTEGRITY_KEYS_KEY);
    if (count == 0)
        return true;
    if (!(*keys = calloc(count, sizeof(sigkey_public))))
        return error_set(err, PGSTEP_EXIT_CONFIG, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *value = cfg->trusted_keys[i];
        char why[256];
        bool ok;

        if (value[0] == '/' || value[0] == '.') {
            char *text;
            size_t len;

            if (!keyfile_read(value, "public key file", false, PGSTEP_EXIT_CONFIG, &text, &len,
                              err)) {
                free(*keys);
                *keys = NULL;
                return false;
            }
            ok = sigkey_public_parse(text, len, &(*keys)[i], why, sizeof(why));
            free(text);
            if (!ok) {
                error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"%s\": public key file \"%s\": %s",
                          where, INTEGRITY_KEYS_KEY, value, why);
                free(*keys);
                *keys = NULL;
                return false;
            }
        } else if (!sigkey_public_decode(value, strlen(value), &(*keys)[i], why, sizeof(why))) {
            error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"%s\", element %zu: %s", where,
                      INTEGRITY_KEYS_KEY, i + 1, why);
            error_hint(err, "Give the second line of a minisign .pub file, or the file's path "
                            "(starting with / or .).");
            free(*keys);
            *keys = NULL;
            return false;
        }
    }
    *n = count;
    return true;
}

static bool integrity_exists(const char *dir, const char *name, bool *exists, pgstep_error *err)
{
    char path[4096];
    char errbuf[128];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (lstat(path, &st) == 0) {
        *exists = true;
        return true;
    }
    if (errno == ENOENT) {
        *exists = false;
        return true;
    }
    /* The first look into the directory is here: name it, not a file it does not hold. */
    if (errno == ENOTDIR)
        return error_set(err, PGSTEP_EXIT_STEPSET, "step directory \"%s\" is not a directory", dir);
    return error_set(err, PGSTEP_EXIT_STEPSET, "could not open \"%s\": %s", path,
                     error_errno_text(errno, errbuf, sizeof(errbuf)));
}

/* The signature of the manifest text by one of keys. */
static bool integrity_check_signature(const char *dir, const sigkey_public *keys, size_t nkeys,
                                      const char *manifest_text, size_t manifest_len,
                                      integrity_result *res, pgstep_error *err)
{
    char *text = NULL;
    size_t len = 0;
    char why[256];
    char id[SIGKEY_ID_HEX_LEN + 1];
    signature *sig = malloc(sizeof(signature));
    const sigkey_public *key = NULL;
    bool exists, ok = false;

    if (!sig)
        return error_set(err, PGSTEP_EXIT_STEPSET, "out of memory");
    if (!integrity_exists(dir, INTEGRITY_SIGNATURE_NAME, &exists, err))
        goto done;
    if (!exists) {
        error_set(err, PGSTEP_EXIT_STEPSET, "step set \"%s\" is not signed: %s is missing", dir,
                  INTEGRITY_SIGNATURE_NAME);
        error_hint(err,
                   "Sign the manifest with \"pgstep sign\" or \"minisign -Sm %s\", or "
                   "remove steps.trusted_keys.",
                   MANIFEST_FILE_NAME);
        goto done;
    }
    if (!manifest_read_file(dir, INTEGRITY_SIGNATURE_NAME, &text, &len, err))
        goto done;
    if (!signature_parse(text, len, sig, why, sizeof(why))) {
        error_set(err, PGSTEP_EXIT_STEPSET, "signature \"%s\" is malformed: %s",
                  INTEGRITY_SIGNATURE_NAME, why);
        error_location(err, INTEGRITY_SIGNATURE_NAME, 0);
        goto done;
    }
    sigkey_id_hex(sig->key_id, id);
    for (size_t i = 0; i < nkeys && !key; i++) {
        if (memcmp(keys[i].id, sig->key_id, SIGKEY_ID_BYTES) == 0)
            key = &keys[i];
    }
    if (!key) {
        error_set(err, PGSTEP_EXIT_STEPSET,
                  "signature \"%s\" was made by key %s, which is not in %s",
                  INTEGRITY_SIGNATURE_NAME, id, INTEGRITY_KEYS_KEY);
        error_location(err, INTEGRITY_SIGNATURE_NAME, 0);
        goto done;
    }
    switch (signature_verify(sig, key, manifest_text, manifest_len)) {
    case SIGNATURE_VALID:
        break;
    case SIGNATURE_BAD_DATA:
        error_set(err, PGSTEP_EXIT_STEPSET,
                  "signature \"%s\" does not verify %s with trusted key %s",
                  INTEGRITY_SIGNATURE_NAME, MANIFEST_FILE_NAME, id);
        error_detail(err,
                     "%s was changed after it was signed, or the signature was made for "
                     "another manifest or with another key of the same id.",
                     MANIFEST_FILE_NAME);
        error_location(err, INTEGRITY_SIGNATURE_NAME, 0);
        goto done;
    case SIGNATURE_BAD_COMMENT:
        error_set(err, PGSTEP_EXIT_STEPSET,
                  "the trusted comment of signature \"%s\" was altered after signing",
                  INTEGRITY_SIGNATURE_NAME);
        error_location(err, INTEGRITY_SIGNATURE_NAME, 0);
        goto done;
    }
    res->signed_ = true;
    memcpy(res->key_id, id, sizeof(id));
    memcpy(res->trusted_comment, sig->trusted_comment, sizeof(res->trusted_comment));
    ok = true;

done:
    free(text);
    free(sig);
    return ok;
}

bool integrity_check(const pgstep_config *cfg, integrity_result *res, pgstep_error *err)
{
    const char *dir = cfg->steps_dir;
    sigkey_public *keys = NULL;
    size_t nkeys = 0;
    char *text = NULL;
    size_t len = 0;
    manifest *m = NULL;
    char why[256];
    int line = 0;
    bool exists, ok = false;

    memset(res, 0, sizeof(*res));
    if (!integrity_load_keys(cfg, &keys, &nkeys, err) ||
        !integrity_exists(dir, MANIFEST_FILE_NAME, &exists, err))
        goto done;
    if (!exists) {
        if (cfg->require_manifest || nkeys > 0) {
            error_set(err, PGSTEP_EXIT_STEPSET, "step set \"%s\" has no manifest %s", dir,
                      MANIFEST_FILE_NAME);
            error_detail(err, "%s requires one.",
                         nkeys > 0 ? INTEGRITY_KEYS_KEY : "steps.require_manifest");
            error_hint(err, "Ship %s with the step files; \"pgstep manifest\" writes it.",
                       MANIFEST_FILE_NAME);
            goto done;
        }
        log_debug("step set \"%s\" has no %s: not verified", dir, MANIFEST_FILE_NAME);
        ok = true;
        goto done;
    }
    if (!manifest_read_file(dir, MANIFEST_FILE_NAME, &text, &len, err))
        goto done;
    if (nkeys > 0 && !integrity_check_signature(dir, keys, nkeys, text, len, res, err))
        goto done;
    if (!manifest_parse(text, len, &m, &line, why, sizeof(why))) {
        error_set(err, PGSTEP_EXIT_STEPSET, "%s:%d: malformed manifest: %s", MANIFEST_FILE_NAME,
                  line, why);
        error_location(err, MANIFEST_FILE_NAME, line);
        goto done;
    }
    if (!manifest_check(m, dir, cfg->databases, err))
        goto done;
    res->manifest = true;
    res->files = manifest_count(m);
    res->list = m;
    m = NULL;
    {
        log_field fields[] = {LOG_NUM("files", res->files), LOG_STR("key_id", res->key_id)};

        if (res->signed_)
            log_event(LOG_INFO, fields, 2, "step set matches %s (%zu files), signed by key %s",
                      MANIFEST_FILE_NAME, res->files, res->key_id);
        else
            log_event(LOG_INFO, fields, 1, "step set matches %s (%zu files)", MANIFEST_FILE_NAME,
                      res->files);
    }
    ok = true;

done:
    manifest_free(m);
    free(text);
    free(keys);
    if (!ok)
        memset(res, 0, sizeof(*res));
    return ok;
}

/* The name the manifest lists s under: "database/file" with several databases. */
static const char *integrity_listed_name(const char *database, const step *s, char *buf,
                                         size_t size)
{
    if (!database)
        return s->file_name;
    snprintf(buf, size, "%s/%s", database, s->file_name);
    return buf;
}

bool integrity_confirm(const integrity_result *res, const char *database, const stepset *set,
                       pgstep_error *err)
{
    const manifest *m = res->list;
    size_t prefix = database ? strlen(database) + 1 : 0;
    char name[PATH_MAX];
    const char *file = NULL;
    const char *what = NULL;

    if (!m)
        return true;
    for (size_t i = 0; i < stepset_count(set) && !file; i++) {
        const step *s = stepset_get(set, i);
        const char *hash = manifest_find(m, integrity_listed_name(database, s, name, sizeof(name)));

        if (!hash || strcmp(hash, s->file_checksum) != 0) {
            file = s->file_name;
            what = hash ? "changed" : "appeared";
        }
    }
    /* A loaded set holds every .sql file, so a listed name that is not a step was removed. */
    for (size_t j = 0; j < manifest_count(m) && !file; j++) {
        const char *listed = manifest_name(m, j);
        bool found = false;

        if (database && (strncmp(listed, database, prefix - 1) != 0 || listed[prefix - 1] != '/'))
            continue; /* another database's */
        for (size_t i = 0; i < stepset_count(set) && !found; i++)
            found = strcmp(stepset_get(set, i)->file_name, listed + prefix) == 0;
        if (!found) {
            file = listed + prefix;
            what = "disappeared";
        }
    }
    if (!file)
        return true;
    error_set(err, PGSTEP_EXIT_STEPSET, "%s: file %s after it was checked against %s", file, what,
              MANIFEST_FILE_NAME);
    error_detail(err, "The step directory \"%s\" changed while pgstep read it.", stepset_dir(set));
    error_hint(err, "Run pgstep again once the step set is complete.");
    error_location(err, file, 0);
    return false;
}

void integrity_release(integrity_result *res)
{
    manifest_free(res->list);
    res->list = NULL;
}

void integrity_print_text(const integrity_result *res, FILE *f)
{
    if (!res->manifest)
        fprintf(f, "Step set: not verified (no %s)\n", MANIFEST_FILE_NAME);
    else if (!res->signed_)
        fprintf(f, "Step set: verified by %s (%zu files), not signed\n", MANIFEST_FILE_NAME,
                res->files);
    else
        fprintf(f, "Step set: verified by %s (%zu files), signed by key %s\n", MANIFEST_FILE_NAME,
                res->files, res->key_id);
}

void integrity_print_json(const integrity_result *res, FILE *f)
{
    fprintf(f, "{\"manifest\":%s,\"files\":", res->manifest ? "true" : "false");
    if (res->manifest)
        fprintf(f, "%zu", res->files);
    else
        fputs("null", f);
    fprintf(f, ",\"signed\":%s,\"key_id\":", res->signed_ ? "true" : "false");
    if (res->signed_)
        json_write_string(f, res->key_id);
    else
        fputs("null", f);
    fputs(",\"trusted_comment\":", f);
    if (res->signed_)
        json_write_string(f, res->trusted_comment);
    else
        fputs("null", f);
    fputc('}', f);
}
