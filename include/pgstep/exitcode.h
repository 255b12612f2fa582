/* The exit-code table: the one place README, the Kubernetes podFailurePolicy and tests quote. */
#ifndef PGSTEP_EXITCODE_H
#define PGSTEP_EXITCODE_H

enum pgstep_exit {
    PGSTEP_EXIT_OK = 0,           /* success, or nothing to do */
    PGSTEP_EXIT_STEP_FAILED = 1,  /* a step failed with an SQL error */
    PGSTEP_EXIT_USAGE = 64,       /* bad command line */
    PGSTEP_EXIT_STEPSET = 65,     /* invalid step set, drift, manifest or signature mismatch */
    PGSTEP_EXIT_NOT_READY = 69,   /* primary not ready before the deadline */
    PGSTEP_EXIT_NOMEM = 71,       /* out of memory */
    PGSTEP_EXIT_CANTCREAT = 73,   /* could not write a manifest, key or signature file */
    PGSTEP_EXIT_IO = 74,          /* output (status, plan, help) could not be written to stdout */
    PGSTEP_EXIT_TEMPFAIL = 75,    /* lock not obtained in time, retries exhausted */
    PGSTEP_EXIT_CONFIG = 78,      /* configuration error */
    PGSTEP_EXIT_INTERRUPT = 130,  /* SIGINT */
    PGSTEP_EXIT_TERMINATED = 143, /* SIGTERM */
};

#endif /* PGSTEP_EXITCODE_H */
