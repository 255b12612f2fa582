/* Step-set integrity before connecting: the directory against its manifest pgstep.sum, and the
 * manifest against its minisign signature by one of steps.trusted_keys. */
#ifndef PGSTEP_INTEGRITY_H
#define PGSTEP_INTEGRITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pgstep/config.h"
#include "pgstep/error.h"
#include "pgstep/manifest.h"
#include "pgstep/signature.h"
#include "pgstep/stepset.h"

#define INTEGRITY_SIGNATURE_NAME "pgstep.sum.minisig"

/* What was verified; all false/empty when the set has no manifest and none is required. */
typedef struct integrity_result {
    bool manifest; /* the directory matched pgstep.sum */
    size_t files;  /* files pgstep.sum lists */
    bool signed_;  /* pgstep.sum carries a valid signature by a trusted key */
    char key_id[SIGKEY_ID_HEX_LEN + 1];
    char trusted_comment[SIGNATURE_COMMENT_MAX + 1];
    manifest *list; /* the verified manifest, for integrity_confirm; NULL without one */
} integrity_result;

/* Checks cfg->steps_dir as the configuration asks (steps.require_manifest,
 * steps.trusted_keys), logging each mismatching file. A mismatch, a missing or bad manifest or
 * signature, or an untrusted key sets err with PGSTEP_EXIT_STEPSET; an unusable trusted key with
 * PGSTEP_EXIT_CONFIG. */
bool integrity_check(const pgstep_config *cfg, integrity_result *res, pgstep_error *err);

/* Confirms that the step set as loaded is the one the manifest vouched for: every step's file
 * bytes (step.file_checksum) as listed, and every listed file among the steps, so that a file
 * replaced between the check and the load (a ConfigMap updated meanwhile) is refused too. True
 * at once when res holds no manifest. Sets err with PGSTEP_EXIT_STEPSET otherwise. */
bool integrity_confirm(const integrity_result *res, const char *database, const stepset *set,
                       pgstep_error *err);

/* Releases what integrity_check kept in res; res may be all zeros. */
void integrity_release(integrity_result *res);

/* One line for people: "verified by pgstep.sum (3 files), signed by key ..." or "not
 * verified: no pgstep.sum". */
void integrity_print_text(const integrity_result *res, FILE *f);

/* The JSON object documented in README: {"manifest": ..., "files": ..., "signed": ...,
 * "key_id": ..., "trusted_comment": ...}. */
void integrity_print_json(const integrity_result *res, FILE *f);

#endif /* PGSTEP_INTEGRITY_H */
