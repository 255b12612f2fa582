/* The plan: the step set compared with the history, step by step, before anything runs. */
#ifndef PGSTEP_PLAN_H
#define PGSTEP_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/checksum.h"
#include "pgstep/history.h"
#include "pgstep/stepset.h"

typedef enum plan_state {
    PLAN_APPLIED, /* recorded with the same checksum: skip */
    PLAN_PENDING, /* never applied: apply */
    PLAN_RERUN,   /* repeatable step whose checksum (or fact) changed: apply again */
    PLAN_CHANGED, /* versioned step recorded with another checksum: drift */
    PLAN_MISSING, /* versioned step recorded, file gone: drift */
} plan_state;

typedef struct plan_item {
    plan_state state;
    const step *step;                    /* NULL when missing */
    const history_entry *recorded;       /* NULL when never applied */
    char checksum[CHECKSUM_HEX_LEN + 1]; /* what will be recorded: with the fact, if any */
} plan_item;

typedef struct plan plan;

/* Builds the plan; facts[i] is the rerun-when result of step i (may be NULL). */
plan *plan_build(const stepset *set, const history *h, char *const *facts);
void plan_free(plan *p);

size_t plan_count(const plan *p);
const plan_item *plan_get(const plan *p, size_t i);

/* How many items are in each state. */
size_t plan_count_state(const plan *p, plan_state state);

/* Items that will run: pending and rerun. */
size_t plan_work(const plan *p);

/* "applied", "pending", "rerun", "changed", "missing". */
const char *plan_state_name(plan_state state);

#endif /* PGSTEP_PLAN_H */
