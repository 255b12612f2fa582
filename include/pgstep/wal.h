/* Durability of what a run commits. Step transactions commit without waiting for the WAL flush;
 * the last transaction of a pipeline waits again, which covers every commit before it (WAL is
 * flushed in order), and a pipeline cut short is followed by a flush of its own: one flush per
 * pipeline instead of one per step. */
#ifndef PGSTEP_WAL_H
#define PGSTEP_WAL_H

#include <stdbool.h>

#include "pgstep/conn.h"
#include "pgstep/error.h"

/* Queues, inside a step's transaction, the statement that makes its commit wait for the flush
 * (and synchronous standbys) as the configured synchronous_commit says. */
bool wal_send_durable(conn *c, pgstep_error *err);

/* Flushes the WAL of what this session committed, outside any pipeline. Failing to is worth a
 * warning, not the run: false, with err set, only when the connection was lost or a signal
 * arrived. */
bool wal_flush(conn *c, pgstep_error *err);

#endif /* PGSTEP_WAL_H */
