/* Watching a step while it runs: replies are awaited in slices, and a step that runs longer than
 * PROGRESS_EVERY_MS gets a line that often, saying for how long and, when it waits for a lock,
 * which sessions hold it. Those are read over a second, short-lived connection that exists only
 * while a step is slow. */
#ifndef PGSTEP_PROGRESS_H
#define PGSTEP_PROGRESS_H

#include <stdint.h>

#include "pgstep/config.h"
#include "pgstep/conn.h"
#include "pgstep/error.h"

#define PROGRESS_EVERY_MS 10000

typedef struct progress {
    const pgstep_config *cfg;
    const char *file; /* the step running, or NULL */
    int64_t started_ms;
    int64_t next_ms; /* when the next line is due */
    conn *side;      /* the second connection, while the step is slow */
    bool side_failed;
} progress;

void progress_init(progress *p, const pgstep_config *cfg);

/* Step file starts running now (NULL: pgstep's own work); ends the watch of the one before. */
void progress_step(progress *p, const char *file);

/* conn_pipeline_next on c, writing a line whenever one is due meanwhile. */
conn_wait progress_next(progress *p, conn *c, conn_reply *reply, pgstep_error *err);

/* Closes the second connection, if any. */
void progress_end(progress *p);

#endif /* PGSTEP_PROGRESS_H */
