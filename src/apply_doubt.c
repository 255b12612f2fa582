/* What a lost connection leaves in doubt: steps of the batch sent last may have committed
 * without their results arriving, and commits made without waiting for the WAL flush may be gone
 * after a server crash. Once reconnected, the run reads its own history rows (by run id) and
 * goes on from the first of its steps that is not there (recover.h decides where). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgstep/apply_run.h"
#include "pgstep/exitcode.h"
#include "pgstep/log.h"
#include "pgstep/recover.h"

/* Whether the history table exists; it may not after a connection lost during its creation. */
static bool apply_history_exists(apply_ctx *ctx, bool *exists, pgstep_error *err)
{
    PGresult *res = conn_query(*ctx->c, ctx->sql->exists, 0, NULL, err);

    if (!res)
        return false;
    *exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    ctx->need_bootstrap = !*exists || strcmp(PQgetvalue(res, 0, 1), "t") != 0;
    PQclear(res);
    return true;
}

/* Moves ctx->failed to where the run goes on, from the rows in res (NULL: no history at all);
 * see recover.h. */
static bool apply_recover(apply_ctx *ctx, const PGresult *res)
{
    int nrows = res ? PQntuples(res) : 0;
    recover_row *rows = calloc((size_t)nrows + 1, sizeof(*rows));
    bool *before = malloc(ctx->doubt_end + 1);
    size_t gone = 0;

    if (!rows || !before) {
        free(rows);
        free(before);
        return false;
    }
    for (int i = 0; i < nrows; i++)
        rows[i] = (recover_row){
            .kind = PQgetvalue(res, i, 0)[0] == 'V' ? STEP_VERSIONED : STEP_REPEATABLE,
            .version = strtoll(PQgetvalue(res, i, 1), NULL, 10),
            .description = PQgetvalue(res, i, 2),
            .checksum = PQgetvalue(res, i, 3),
        };
    memcpy(before, ctx->mine, ctx->doubt_end);
    ctx->failed =
        recover_resume(ctx->items, ctx->doubt_from, ctx->doubt_end, ctx->mine, rows, (size_t)nrows);
    for (size_t k = 0; k < ctx->doubt_end; k++) {
        if (before[k] && !ctx->mine[k]) {
            gone++;
            ctx->stats->applied--;
        } else if (!before[k] && ctx->mine[k]) {
            ctx->stats->applied++;
            apply_log_confirmed(ctx->items[k]->step);
        }
    }
    if (gone)
        log_warn("%zu of the steps committed before the connection was lost are gone with it;"
                 " applying them again",
                 gone);
    free(rows);
    free(before);
    return true;
}

bool apply_settle_doubt(apply_ctx *ctx, pgstep_error *err)
{
    const char *params[] = {ctx->run_id};
    bool exists = true;
    PGresult *res = NULL;
    bool ok;

    /* Even a history created in an earlier batch may be gone, with a lossy failover. */
    ok = apply_history_exists(ctx, &exists, err) &&
         (!exists || (res = conn_query(*ctx->c, ctx->sql->run_rows, 1, params, err)));
    if (!ok) {
        if (!conn_is_broken(*ctx->c) || apply_interrupted(err))
            return false;
        error_clear(err);
        return true;
    }
    if (!apply_recover(ctx, res))
        ok = error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    PQclear(res);
    ctx->in_doubt = !ok;
    return ok;
}

apply_outcome apply_lost(apply_ctx *ctx, size_t from, size_t end, pgstep_error *err)
{
    ctx->doubt_from = ctx->in_doubt && ctx->doubt_from < from ? ctx->doubt_from : from;
    ctx->doubt_end = ctx->in_doubt && ctx->doubt_end > end ? ctx->doubt_end : end;
    ctx->in_doubt = true;
    if (!error_is_set(err))
        error_set(err, PGSTEP_EXIT_TEMPFAIL, "the connection to the server was lost");
    return APPLY_RETRY;
}
