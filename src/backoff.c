/* Deadlines, steady paces and exponential backoff, all with jitter so that many runners do not
 * retry in step. */
#include "pgstep/backoff.h"

#include <errno.h>
#include <time.h>

#include <sodium.h>

#include "pgstep/interrupt.h"

int64_t backoff_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void backoff_init(backoff *b, int64_t initial_ms, int64_t max_ms)
{
    if (initial_ms < 1)
        initial_ms = 1;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->current_ms = initial_ms;
}

int64_t backoff_next_ms(backoff *b)
{
    int64_t ceiling = b->current_ms;
    int64_t half = ceiling / 2;
    int64_t delay = half + (int64_t)randombytes_uniform((uint32_t)(ceiling - half + 1));

    b->current_ms = ceiling * 2 > b->max_ms ? b->max_ms : ceiling * 2;
    return delay;
}

int64_t backoff_jitter_ms(int64_t ms)
{
    if (ms < 1)
        return 1;
    return ms + (int64_t)randombytes_uniform((uint32_t)(ms / 4 + 1));
}

bool backoff_sleep(int64_t ms, int64_t deadline_ms, pgstep_error *err)
{
    int64_t end = backoff_now_ms() + ms;

    if (deadline_ms > 0 && end > deadline_ms)
        end = deadline_ms;
    for (;;) {
        int64_t left = end - backoff_now_ms();
        struct timespec ts;

        if (interrupt_check(err))
            return false;
        if (left <= 0)
            return true;
        ts.tv_sec = left / 1000;
        ts.tv_nsec = (long)(left % 1000) * 1000000;
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return true;
    }
}
