/* manifest, keygen and sign: the writing side of step-set integrity. Files are written whole
 * or not at all (filewrite.c); secret keys are mode 0600 and never overwritten; passwords and
 * decrypted keys stay in guarded memory and are wiped. */
#include "pgstep/signing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pgstep/exitcode.h"
#include "pgstep/filewrite.h"
#include "pgstep/integrity.h"
#include "pgstep/keyfile.h"
#include "pgstep/log.h"
#include "pgstep/manifest.h"
#include "pgstep/passphrase.h"
#include "pgstep/secret.h"
#include "pgstep/signature.h"
#include "pgstep/sigkey.h"

#define SIGNING_DEFAULT_PUBLIC "pgstep.pub"
#define SIGNING_DEFAULT_SECRET "pgstep.key"

static bool signing_path(char *buf, size_t size, const char *dir, const char *name,
                         pgstep_error *err)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= size)
        return error_set(err, PGSTEP_EXIT_CANTCREAT, "path \"%s/%s\" is too long", dir, name);
    return true;
}

int signing_manifest(const pgstep_config *cfg, report *rep, pgstep_error *err)
{
    char path[4096], sigpath[4096];
    char *text = NULL;
    size_t len = 0;
    manifest *m = NULL;
    char why[128];
    int line;
    size_t files = 0;

    if (!signing_path(path, sizeof(path), cfg->steps_dir, MANIFEST_FILE_NAME, err) ||
        !signing_path(sigpath, sizeof(sigpath), cfg->steps_dir, INTEGRITY_SIGNATURE_NAME, err) ||
        !manifest_build(cfg->steps_dir, cfg->databases, &text, &len, err))
        return err->exit_code;
    if (manifest_parse(text, len, &m, &line, why, sizeof(why)))
        files = manifest_count(m);
    manifest_free(m);
    if (!filewrite_atomic(path, text, len, 0644, true, err)) {
        free(text);
        return err->exit_code;
    }
    free(text);
    {
        log_field fields[] = {LOG_STR("file", path), LOG_NUM("files", files)};

        log_event(LOG_INFO, fields, 2, "wrote %s: %zu files", path, files);
    }
    if (access(sigpath, F_OK) == 0)
        log_warn("%s no longer matches the new manifest: sign it again", sigpath);
    report_summary(rep, "wrote %s: %zu files", MANIFEST_FILE_NAME, files);
    return PGSTEP_EXIT_OK;
}

int signing_keygen(const cli_options *opts, report *rep, pgstep_error *err)
{
    const char *pub_path = opts->public_key ? opts->public_key : SIGNING_DEFAULT_PUBLIC;
    const char *sec_path = opts->secret_key ? opts->secret_key : SIGNING_DEFAULT_SECRET;
    sigkey_public pub;
    sigkey_secret *sec = NULL;
    char *password = NULL;
    char *sec_text = NULL;
    char *pub_text = NULL;
    size_t sec_len = 0;
    char id[SIGKEY_ID_HEX_LEN + 1];
    int code = PGSTEP_EXIT_CANTCREAT;

    /* Both checked first, so that an existing public key does not leave a new secret key
     * behind. */
    if (access(sec_path, F_OK) == 0 || access(pub_path, F_OK) == 0) {
        error_set(err, PGSTEP_EXIT_CANTCREAT, "key file \"%s\" already exists",
                  access(sec_path, F_OK) == 0 ? sec_path : pub_path);
        error_hint(err, "pgstep never overwrites a key; remove the old key pair or choose other "
                        "file names.");
        return err->exit_code;
    }
    if (!opts->unencrypted &&
        !passphrase_get(opts->password_file, "Password for the new secret key: ",
                        opts->password_file == NULL, &password, err))
        return err->exit_code;
    if (!sigkey_generate(&pub, &sec) ||
        !sigkey_secret_format(sec, opts->unencrypted ? NULL : password, &sec_text, &sec_len) ||
        !(pub_text = sigkey_public_format(&pub))) {
        error_set(err, PGSTEP_EXIT_CANTCREAT, "out of memory");
        goto done;
    }
    secret_free(password);
    password = NULL;
    if (!filewrite_atomic(sec_path, sec_text, sec_len, 0600, false, err))
        goto done;
    if (!filewrite_atomic(pub_path, pub_text, strlen(pub_text), 0644, false, err)) {
        unlink(sec_path);
        goto done;
    }
    sigkey_id_hex(pub.id, id);
    {
        log_field fields[] = {LOG_STR("key_id", id), LOG_STR("public_key", pub_path),
                              LOG_STR("secret_key", sec_path)};

        log_event(LOG_INFO, fields, 3, "wrote key pair %s: public key \"%s\", %ssecret key \"%s\"",
                  id, pub_path, opts->unencrypted ? "unencrypted " : "", sec_path);
    }
    report_summary(rep, "wrote key pair %s", id);
    code = PGSTEP_EXIT_OK;

done:
    secret_free(password);
    sigkey_text_free(sec_text);
    free(pub_text);
    sigkey_secret_free(sec);
    return code == PGSTEP_EXIT_OK ? code : err->exit_code;
}

/* The secret key in opts->secret_key, decrypted with a password if it is encrypted. */
static bool signing_load_secret(const cli_options *opts, sigkey_secret **sec, pgstep_error *err)
{
    const char *path = opts->secret_key ? opts->secret_key : SIGNING_DEFAULT_SECRET;
    char *text = NULL;
    char *password = NULL;
    size_t len = 0;
    char why[256];
    bool ok = false;

    if (!keyfile_read(path, "secret key file", true, PGSTEP_EXIT_CONFIG, &text, &len, err))
        return false;
    if (sigkey_secret_encrypted(text, len) &&
        !passphrase_get(opts->password_file, "Password for the secret key: ", false, &password,
                        err))
        goto done;
    if (!sigkey_secret_parse(text, len, password, sec, why, sizeof(why))) {
        error_set(err, PGSTEP_EXIT_CONFIG, "secret key file \"%s\": %s", path, why);
        goto done;
    }
    ok = true;

done:
    secret_free(password);
    keyfile_free(text, true);
    return ok;
}

int signing_sign(const pgstep_config *cfg, const cli_options *opts, report *rep, pgstep_error *err)
{
    const char *dir = cfg->steps_dir;
    char sigpath[4096];
    char comment[SIGNATURE_COMMENT_MAX + 1];
    char *text = NULL;
    char *sig_text = NULL;
    size_t len = 0;
    manifest *m = NULL;
    sigkey_secret *sec = NULL;
    char why[256];
    char id[SIGKEY_ID_HEX_LEN + 1];
    int line = 0;
    int code = PGSTEP_EXIT_STEPSET;

    if (!signing_path(sigpath, sizeof(sigpath), dir, INTEGRITY_SIGNATURE_NAME, err))
        return err->exit_code;
    if (opts->trusted_comment)
        snprintf(comment, sizeof(comment), "%s", opts->trusted_comment);
    else
        snprintf(comment, sizeof(comment), "timestamp:%lld\tfile:%s\thashed", (long long)time(NULL),
                 MANIFEST_FILE_NAME);
    /* A manifest that does not match its directory would be signed in vain. */
    if (!manifest_read_file(dir, MANIFEST_FILE_NAME, &text, &len, err)) {
        error_hint(err, "Write it with \"pgstep manifest\" first.");
        goto done;
    }
    if (!manifest_parse(text, len, &m, &line, why, sizeof(why))) {
        error_set(err, PGSTEP_EXIT_STEPSET, "%s:%d: malformed manifest: %s", MANIFEST_FILE_NAME,
                  line, why);
        goto done;
    }
    if (!manifest_check(m, dir, cfg->databases, err))
        goto done;
    if (!signing_load_secret(opts, &sec, err))
        goto done;
    if (!(sig_text = signature_create(sec, text, len, comment))) {
        error_set(err, PGSTEP_EXIT_USAGE, "invalid trusted comment");
        error_hint(err, "A trusted comment is one line of at most %d bytes.",
                   SIGNATURE_COMMENT_MAX);
        goto done;
    }
    if (!filewrite_atomic(sigpath, sig_text, strlen(sig_text), 0644, true, err))
        goto done;
    sigkey_id_hex(sec->id, id);
    {
        log_field fields[] = {LOG_STR("file", sigpath), LOG_STR("key_id", id)};

        log_event(LOG_INFO, fields, 2, "signed %s with key %s: wrote %s", MANIFEST_FILE_NAME, id,
                  sigpath);
    }
    report_summary(rep, "signed %s with key %s", MANIFEST_FILE_NAME, id);
    code = PGSTEP_EXIT_OK;

done:
    sigkey_secret_free(sec);
    manifest_free(m);
    free(sig_text);
    free(text);
    return code == PGSTEP_EXIT_OK ? code : err->exit_code;
}
