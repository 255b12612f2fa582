/* What a lost connection leaves in doubt: steps of the pipeline sent last may have committed
 * without their replies arriving, and commits made without waiting for the WAL flush may be gone
 * after a server crash. Once reconnected, the run reads its own history rows (by run id) and
 * goes on from the first of its steps that is not there (recover.h decides where). */
#include "pgstep/apply_part.h"
#include "pgstep/recover.h"

bool apply_doubt_settle(const apply_env *env, conn *c, size_t from, size_t end, bool *mine,
                        size_t *resume, bool *installed, pgstep_error *err)
{
    history *h;

    /* Even a history created in an earlier pipeline may be gone, with a lossy failover. */
    if (!history_read_run(c, env->sql, env->run, &h, err))
        return false;
    *installed = history_installed(h);
    *resume = recover_resume(env->items, from, end, mine,
                             history_count(h) ? history_get(h, 0) : NULL, history_count(h));
    history_free(h);
    return true;
}
