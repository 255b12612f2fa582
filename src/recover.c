/* Which of the run's commits survived a lost connection, from its history rows. */
#include "pgstep/recover.h"

#include <string.h>

/* Whether a row records this application of item: the version of a versioned step, the
 * description and checksum of a repeatable one (each is applied at most once per run). */
static bool recover_matches(const plan_item *item, const history_entry *row)
{
    const step *s = item->step;

    if (row->kind != s->kind)
        return false;
    if (s->kind == STEP_VERSIONED)
        return row->version == s->version;
    return strcmp(row->description, s->description) == 0 &&
           strcmp(row->checksum, item->checksum) == 0;
}

static bool recover_recorded(const plan_item *item, const history_entry *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++) {
        if (recover_matches(item, &rows[i]))
            return true;
    }
    return false;
}

size_t recover_resume(const plan_item *const *items, size_t from, size_t end, bool *mine,
                      const history_entry *rows, size_t nrows)
{
    size_t resume = end;

    for (size_t k = end; k-- > 0;) {
        bool recorded = recover_recorded(items[k], rows, nrows);

        if (mine[k] && !recorded) {
            mine[k] = false;
            resume = k;
        } else if (k >= from && recorded) {
            mine[k] = true;
        } else if (k >= from) {
            resume = k;
        }
    }
    return resume;
}
