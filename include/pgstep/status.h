/* Reports of a plan on stdout: the status table, its JSON form, and the dry-run plan. */
#ifndef PGSTEP_STATUS_H
#define PGSTEP_STATUS_H

#include <stdio.h>

#include "pgstep/integrity.h"
#include "pgstep/plan.h"

/* How the step set was verified, then one line per step: state, file, applied at, checksum. */
void status_print_text(const plan *p, const integrity_result *integrity, FILE *f);

/* One JSON document: {"steps": [...], "summary": {...}, "integrity": {...}} (shape documented
 * in README). */
void status_print_json(const plan *p, const integrity_result *integrity, FILE *f);

/* One line per step with what apply would do: apply, skip or re-apply, with checksums. */
void status_print_plan(const plan *p, FILE *f);

#endif /* PGSTEP_STATUS_H */
