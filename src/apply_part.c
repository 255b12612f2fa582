/* What every part of an apply run shares: how an error decides the outcome, and the line a
 * step's commit is logged with. */
#include "pgstep/apply_part.h"

#include "pgstep/exitcode.h"
#include "pgstep/log.h"

bool apply_interrupted(const pgstep_error *err)
{
    return err->exit_code == PGSTEP_EXIT_INTERRUPT || err->exit_code == PGSTEP_EXIT_TERMINATED;
}

apply_outcome apply_classify(const pgstep_error *err)
{
    if (apply_interrupted(err))
        return APPLY_FAILED;
    if (err->exit_code == PGSTEP_EXIT_TEMPFAIL || conn_sqlstate_retryable(err->sqlstate))
        return APPLY_RETRY;
    return APPLY_FAILED;
}

void apply_log_applied(const step *s, long long duration_ms)
{
    log_field fields[] = {LOG_STR("step", s->file_name), LOG_NUM("duration_ms", duration_ms)};

    log_event(LOG_INFO, fields, 2, "applied %s (%lld ms)", s->file_name, duration_ms);
}
