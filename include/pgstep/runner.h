/* The commands that work on a step set: verify, apply and status. Each loads and checks the step
 * set before connecting, and returns an exit code with err filled on failure. */
#ifndef PGSTEP_RUNNER_H
#define PGSTEP_RUNNER_H

#include <stdbool.h>

#include "pgstep/config.h"
#include "pgstep/error.h"
#include "pgstep/report.h"

int runner_verify(const pgstep_config *cfg, report *rep, pgstep_error *err);
int runner_apply(const pgstep_config *cfg, bool dry_run, bool allow_drift, report *rep,
                 pgstep_error *err);
int runner_status(const pgstep_config *cfg, bool json, report *rep, pgstep_error *err);

#endif /* PGSTEP_RUNNER_H */
