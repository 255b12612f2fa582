/* Reports of a plan on stdout: the status table, its JSON form, and the dry-run plan. */
#ifndef PGSTEP_STATUS_H
#define PGSTEP_STATUS_H

#include <stdio.h>

#include "pgstep/integrity.h"
#include "pgstep/plan.h"

/* One line per step: state, file, applied at, checksum; under a header naming database, unless
 * NULL. */
void status_print_text(const char *database, const plan *p, FILE *f);

/* One JSON document: {"steps": [...], "summary": {...}, "integrity": {...}} (shape documented
 * in README). */
void status_print_json(const plan *p, const integrity_result *integrity, FILE *f);

/* One JSON document for several databases: {"databases": [{"name": ..., "steps": [...],
 * "summary": {...}}, ...], "summary": {...}, "integrity": {...}} (shape documented in README). */
void status_print_json_databases(char *const *names, const plan *const *plans, size_t n,
                                 const integrity_result *integrity, FILE *f);

/* One line per step with what apply would do: apply, skip or re-apply, with checksums; under a
 * header naming database, unless NULL. */
void status_print_plan(const char *database, const plan *p, FILE *f);

#endif /* PGSTEP_STATUS_H */
