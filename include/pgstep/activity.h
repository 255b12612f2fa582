/* What a backend is doing, as pg_stat_activity tells another session: whether it waits for a
 * lock, and which sessions block it (pg_blocking_pids). */
#ifndef PGSTEP_ACTIVITY_H
#define PGSTEP_ACTIVITY_H

#include <stdbool.h>

#include "pgstep/conn.h"
#include "pgstep/error.h"

#define ACTIVITY_MAX_BLOCKERS 4

typedef struct activity_blocker {
    int pid;
    char application_name[64];
    char state[32];
    char query[81]; /* the first part, white space folded */
} activity_blocker;

typedef struct activity {
    char wait_event[64]; /* "Lock: relation", or "" when not waiting */
    bool on_lock;        /* waiting for a heavyweight lock */
    int nblockers;
    activity_blocker blockers[ACTIVITY_MAX_BLOCKERS];
} activity;

/* Reads what backend pid is doing, over c (another session). */
bool activity_read(conn *c, int pid, activity *out, pgstep_error *err);

#endif /* PGSTEP_ACTIVITY_H */
