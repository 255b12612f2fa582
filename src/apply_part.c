/* What every part of an apply run shares: how an error decides the outcome, and the line a
 * step's commit is logged with. */
#include "pgstep/apply_part.h"

#include "pgstep/exitcode.h"
#include "pgstep/log.h"
#include "pgstep/steptext.h"

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

apply_outcome apply_begin_outcome(const apply_env *env, const step *s, const conn_reply *reply,
                                  pgstep_error *err)
{
    switch (history_step_begin_outcome(env->run, reply)) {
    case HISTORY_BEGIN_OK:
        return APPLY_DONE;
    case HISTORY_BEGIN_LOCK_BUSY:
        return APPLY_LOCK_BUSY;
    case HISTORY_BEGIN_APPLIED_BY_RUN:
        return APPLY_APPLIED_BY_RUN;
    case HISTORY_BEGIN_APPLIED_BY_OTHER:
        return APPLY_APPLIED_BY_OTHER;
    case HISTORY_BEGIN_FAILED:
        break;
    }
    if (reply->kind == CONN_REPLY_ERROR)
        *err = reply->error;
    else
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "the server ended the pipeline early");
    steptext_locate(s, s->nstatements, err);
    return apply_classify(err);
}
