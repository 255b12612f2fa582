/* After a lost connection: which of the run's commits survived, and where to go on. Commits
 * inside a batch do not wait for the WAL flush, so a crash of the server (or a failover) may take
 * back some of them, always the last ones, as WAL is flushed in order; and the results of the
 * last commits may never have arrived. The run's own history rows (its run_id) tell. */
#ifndef PGSTEP_RECOVER_H
#define PGSTEP_RECOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/plan.h"

/* items[0, end) is the run's work so far; mine[k] says the run saw item k commit; the connection
 * was lost while items [from, end) were sent. Updates mine[]: an item the run committed whose row
 * is gone is no longer its own, and an item of [from, end) whose row is there is (its result may
 * never have arrived). Returns where to resume: the first item whose row is gone, else the first
 * item of [from, end) without a row, else end. */
size_t recover_resume(const plan_item *const *items, size_t from, size_t end, bool *mine,
                      const history_entry *rows, size_t nrows);

#endif /* PGSTEP_RECOVER_H */
