/* The commands that prepare a step set for shipping: manifest (write pgstep.sum), keygen (a
 * minisign key pair) and sign (pgstep.sum.minisig). Each returns an exit code with err filled
 * on failure. */
#ifndef PGSTEP_SIGNING_H
#define PGSTEP_SIGNING_H

#include "pgstep/cli.h"
#include "pgstep/config.h"
#include "pgstep/error.h"
#include "pgstep/report.h"

int signing_manifest(const pgstep_config *cfg, report *rep, pgstep_error *err);
int signing_keygen(const cli_options *opts, report *rep, pgstep_error *err);
int signing_sign(const pgstep_config *cfg, const cli_options *opts, report *rep, pgstep_error *err);

#endif /* PGSTEP_SIGNING_H */
