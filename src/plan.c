/* The plan: every step of the set, and every recorded versioned step whose file is gone, with
 * what applying would do to it. Pure: no I/O. */
#include "pgstep/plan.h"

#include <stdlib.h>
#include <string.h>

struct plan {
    plan_item *items;
    size_t count;
};

static const char *const plan_state_names[] = {"applied", "pending", "rerun", "changed", "missing"};

const char *plan_state_name(plan_state state)
{
    return plan_state_names[state];
}

static void plan_classify(plan_item *item, const step *s, const history_entry *rec,
                          const char *fact)
{
    item->step = s;
    item->recorded = rec;
    if (s->rerun_query)
        checksum_with_fact(s->checksum, fact, item->checksum);
    else
        memcpy(item->checksum, s->checksum, sizeof(item->checksum));
    if (!rec)
        item->state = PLAN_PENDING;
    else if (strcmp(rec->checksum, item->checksum) == 0)
        item->state = PLAN_APPLIED;
    else
        item->state = s->kind == STEP_REPEATABLE ? PLAN_RERUN : PLAN_CHANGED;
}

/* Recorded versioned steps without a file: linear in the history, using the set's sort order. */
static bool plan_step_exists(const stepset *set, const history_entry *e)
{
    size_t lo = 0;
    size_t hi = stepset_count(set);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const step *s = stepset_get(set, mid);

        if (s->kind == STEP_VERSIONED && s->version == e->version)
            return true;
        if (s->kind == STEP_REPEATABLE || s->version > e->version)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

plan *plan_build(const stepset *set, const history *h, char *const *facts)
{
    size_t nsteps = stepset_count(set);
    plan *p = calloc(1, sizeof(*p));

    if (!p || !(p->items = calloc(nsteps + history_count(h) + 1, sizeof(plan_item)))) {
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < nsteps; i++) {
        const step *s = stepset_get(set, i);

        plan_classify(&p->items[p->count++], s, history_find(h, s), facts ? facts[i] : NULL);
    }
    for (size_t i = 0; i < history_count(h); i++) {
        const history_entry *e = history_get(h, i);

        if (e->kind == STEP_VERSIONED && !plan_step_exists(set, e)) {
            plan_item *item = &p->items[p->count++];

            item->state = PLAN_MISSING;
            item->recorded = e;
            memcpy(item->checksum, e->checksum, sizeof(item->checksum));
        }
    }
    return p;
}

void plan_free(plan *p)
{
    if (!p)
        return;
    free(p->items);
    free(p);
}

size_t plan_count(const plan *p)
{
    return p->count;
}

const plan_item *plan_get(const plan *p, size_t i)
{
    return &p->items[i];
}

size_t plan_count_state(const plan *p, plan_state state)
{
    size_t n = 0;

    for (size_t i = 0; i < p->count; i++)
        n += p->items[i].state == state;
    return n;
}

size_t plan_work(const plan *p)
{
    return plan_count_state(p, PLAN_PENDING) + plan_count_state(p, PLAN_RERUN);
}
