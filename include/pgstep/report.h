/* The run's one-line outcome, also written to the Kubernetes termination message file so that
 * `kubectl describe pod` shows what happened. */
#ifndef PGSTEP_REPORT_H
#define PGSTEP_REPORT_H

#include "pgstep/error.h"

typedef struct report {
    char summary[512];
    char context[256]; /* what a failure leaves behind, e.g. which databases were done */
} report;

void report_init(report *rep);

/* Records the outcome of a successful run. */
void report_summary(report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records what a failure will leave behind, for report_failure to add. */
void report_context(report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records a failure: exit code, primary message and context. */
void report_failure(report *rep, const pgstep_error *err);

/* Writes the summary and a newline to path (NULL: nowhere). A failure to write is logged as a
 * warning and otherwise ignored: it must not change the exit code. */
void report_write_termination_log(const report *rep, const char *path);

#endif /* PGSTEP_REPORT_H */
