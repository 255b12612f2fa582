/* SIGINT/SIGTERM: remembered in a flag that every wait loop polls. */
#include "pgstep/interrupt.h"

#include <signal.h>
#include <string.h>

#include "pgstep/exitcode.h"

static volatile sig_atomic_t received_signal;

static void interrupt_handler(int signo)
{
    received_signal = signo;
}

void interrupt_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = interrupt_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls must return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int interrupt_pending(void)
{
    return received_signal;
}

bool interrupt_check(pgstep_error *err)
{
    int signo = received_signal;

    if (signo == 0)
        return false;
    error_set(err, signo == SIGINT ? PGSTEP_EXIT_INTERRUPT : PGSTEP_EXIT_TERMINATED,
              "interrupted by %s", signo == SIGINT ? "SIGINT" : "SIGTERM");
    return true;
}
