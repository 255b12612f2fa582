/* Deadlines on the monotonic clock, steady paces and exponential backoff, with jitter. */
#ifndef PGSTEP_BACKOFF_H
#define PGSTEP_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "pgstep/error.h"

/* Milliseconds on the monotonic clock. */
int64_t backoff_now_ms(void);

typedef struct backoff {
    int64_t initial_ms;
    int64_t max_ms;
    int64_t current_ms; /* the next ceiling, doubled after each step */
} backoff;

/* Starts a backoff at initial_ms, doubling up to max_ms. */
void backoff_init(backoff *b, int64_t initial_ms, int64_t max_ms);

/* The next delay: between half and all of the current ceiling (equal jitter), then doubles it. */
int64_t backoff_next_ms(backoff *b);

/* A steady pace with jitter: a delay drawn uniformly from ms to ms + ms / 4, never less than ms,
 * so that a pace of 100 ms never means more than 10 tries a second. */
int64_t backoff_jitter_ms(int64_t ms);

/* Sleeps ms milliseconds, but never past deadline_ms (0: none); false with err set if a signal
 * arrived. */
bool backoff_sleep(int64_t ms, int64_t deadline_ms, pgstep_error *err);

#endif /* PGSTEP_BACKOFF_H */
