/* SIGINT/SIGTERM handling: a flag polled by every wait, so that queries are cancelled and pgstep
 * exits promptly. */
#ifndef PGSTEP_INTERRUPT_H
#define PGSTEP_INTERRUPT_H

#include <stdbool.h>

#include "pgstep/error.h"

/* Installs the handlers (without SA_RESTART, so sleeps and polls wake up). */
void interrupt_install(void);

/* The signal received so far (SIGINT or SIGTERM), or 0. */
int interrupt_pending(void);

/* If a signal arrived, fills err with the matching exit code (130/143) and returns true. */
bool interrupt_check(pgstep_error *err);

#endif /* PGSTEP_INTERRUPT_H */
