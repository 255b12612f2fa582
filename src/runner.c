/* verify, apply and status: step set first (no connection if it is invalid), then the primary,
 * then one read of the history, then the plan, then the work. */
#include "pgstep/runner.h"

#include <stdio.h>
#include <stdlib.h>

#include "pgstep/apply.h"
#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/history.h"
#include "pgstep/integrity.h"
#include "pgstep/log.h"
#include "pgstep/plan.h"
#include "pgstep/primary.h"
#include "pgstep/status.h"
#include "pgstep/stepset.h"

/* Everything a command holds; runner_end releases it. */
typedef struct run {
    const pgstep_config *cfg;
    integrity_result integrity;
    stepset *set;
    history_sql sql;
    conn *c;
    history *h;
    char **facts;
    plan *p;
} run;

static void runner_end(run *r)
{
    plan_free(r->p);
    if (r->set)
        history_facts_free(r->facts, stepset_count(r->set));
    history_free(r->h);
    conn_close(r->c);
    history_sql_free(&r->sql);
    stepset_free(r->set);
    integrity_release(&r->integrity);
}

static int runner_fail(run *r, pgstep_error *err)
{
    runner_end(r);
    return err->exit_code;
}

/* Loads the step set, connects and plans; the common first half of apply and status. */
static bool runner_plan(run *r, pgstep_error *err)
{
    if (!integrity_check(r->cfg, &r->integrity, err) ||
        !stepset_load(r->cfg->steps_dir, r->cfg->vars, &r->set, err) ||
        !integrity_confirm(&r->integrity, r->set, err))
        return false;
    if (!history_sql_build(r->cfg->history_schema, &r->sql))
        return error_set(err, PGSTEP_EXIT_CONFIG, "out of memory");
    if (!primary_wait(r->cfg, &r->c, err) ||
        !history_read(r->c, &r->sql, r->set, &r->h, &r->facts, err))
        return false;
    r->p = plan_build(r->set, r->h, r->facts);
    if (!r->p)
        return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    return true;
}

/* Applied versioned steps whose file changed or disappeared: refused unless allowed. */
static bool runner_check_drift(const plan *p, bool allow_drift, pgstep_error *err)
{
    size_t drift = 0;

    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);
        const char *file = item->step ? item->step->file_name : item->recorded->file_name;
        log_field fields[] = {LOG_STR("step", file),
                              LOG_STR("recorded", item->recorded ? item->recorded->checksum : ""),
                              LOG_STR("current", item->step ? item->checksum : "")};

        if (item->state != PLAN_CHANGED && item->state != PLAN_MISSING)
            continue;
        drift++;
        log_event(allow_drift ? LOG_WARN : LOG_ERROR, fields, 3,
                  item->state == PLAN_CHANGED ? "%s was changed after it was applied"
                                              : "%s was applied but its file is gone",
                  file);
    }
    if (drift == 0 || allow_drift)
        return true;
    error_set(err, PGSTEP_EXIT_STEPSET, "%zu applied step%s changed or missing", drift,
              drift == 1 ? " was" : "s were");
    error_hint(err, "Restore the files as they were applied, or pass --allow-drift to apply "
                    "pending steps anyway.");
    return false;
}

int runner_verify(const pgstep_config *cfg, report *rep, pgstep_error *err)
{
    stepset *set = NULL;
    integrity_result integrity;
    bool ok = integrity_check(cfg, &integrity, err) &&
              stepset_load(cfg->steps_dir, cfg->vars, &set, err) &&
              integrity_confirm(&integrity, set, err);

    integrity_release(&integrity);
    if (!ok) {
        stepset_free(set);
        return err->exit_code;
    }
    log_info("step set \"%s\" is valid: %zu steps", cfg->steps_dir, stepset_count(set));
    report_summary(rep, "step set is valid: %zu steps", stepset_count(set));
    stepset_free(set);
    return PGSTEP_EXIT_OK;
}

int runner_apply(const pgstep_config *cfg, bool dry_run, bool allow_drift, report *rep,
                 pgstep_error *err)
{
    int64_t start = backoff_now_ms();
    run r = {.cfg = cfg};
    apply_stats stats = {0};
    size_t skipped;

    if (!runner_plan(&r, err) || !runner_check_drift(r.p, allow_drift, err))
        return runner_fail(&r, err);
    if (dry_run) {
        status_print_plan(r.p, stdout);
        report_summary(rep, "dry run: %zu steps to apply", plan_work(r.p));
        runner_end(&r);
        return PGSTEP_EXIT_OK;
    }
    if (plan_work(r.p) > 0 &&
        !apply_plan(&r.c, cfg, &r.sql, r.p, history_installed(r.h), &stats, err))
        return runner_fail(&r, err);
    skipped = plan_count_state(r.p, PLAN_APPLIED) + stats.applied_by_other;
    {
        log_field fields[] = {LOG_NUM("applied", stats.applied), LOG_NUM("skipped", skipped),
                              LOG_NUM("duration_ms", backoff_now_ms() - start)};

        if (stats.applied == 0)
            log_event(LOG_INFO, fields, 3, "nothing to apply: %zu steps already applied", skipped);
        else
            log_event(LOG_INFO, fields, 3, "applied %zu steps, skipped %zu", stats.applied,
                      skipped);
    }
    report_summary(rep, "applied %zu steps, skipped %zu", stats.applied, skipped);
    runner_end(&r);
    return PGSTEP_EXIT_OK;
}

int runner_status(const pgstep_config *cfg, bool json, report *rep, pgstep_error *err)
{
    run r = {.cfg = cfg};

    if (!runner_plan(&r, err))
        return runner_fail(&r, err);
    if (json)
        status_print_json(r.p, &r.integrity, stdout);
    else
        status_print_text(r.p, &r.integrity, stdout);
    report_summary(rep, "%zu steps, %zu to apply", stepset_count(r.set), plan_work(r.p));
    runner_end(&r);
    return PGSTEP_EXIT_OK;
}
