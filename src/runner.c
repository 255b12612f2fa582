/* verify, apply and status: every database's step set first (no connection if one is invalid),
 * then the primary, once, then one read of each database's history and a plan for each, then
 * the work, database by database in the declared order. One connection is open at a time. */
#include "pgstep/runner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/apply.h"
#include "pgstep/backoff.h"
#include "pgstep/database.h"
#include "pgstep/exitcode.h"
#include "pgstep/history.h"
#include "pgstep/integrity.h"
#include "pgstep/log.h"
#include "pgstep/plan.h"
#include "pgstep/primary.h"
#include "pgstep/status.h"
#include "pgstep/stepset.h"

/* The first pause before reading the history again after a transient error, as before a step's
 * retry. */
#define RUNNER_RETRY_FIRST_DELAY_MS 100

/* One database of the run and everything a command holds for it. */
typedef struct target {
    const char *dbname; /* NULL: the connection's own (no steps.databases) */
    char *dir;
    stepset *set;
    history *h;
    char **facts;
    plan *p;
    apply_stats stats;
} target;

/* Everything a command holds; runner_end releases it. */
typedef struct run {
    const pgstep_config *cfg;
    integrity_result integrity; /* what pgstep.sum and its signature said of the step set */
    history_sql *sql;
    target *targets;
    size_t ntargets;
    conn *c;         /* the one open connection, or NULL */
    size_t c_target; /* the target it is connected to */
    int64_t start_ms;
} run;

static void runner_end(run *r)
{
    for (size_t i = 0; i < r->ntargets; i++) {
        target *t = &r->targets[i];

        plan_free(t->p);
        if (t->set)
            history_facts_free(t->facts, stepset_count(t->set));
        history_free(t->h);
        stepset_free(t->set);
        free(t->dir);
    }
    free(r->targets);
    conn_close(r->c);
    history_sql_free(r->sql);
    integrity_release(&r->integrity);
}

static int runner_fail(run *r, pgstep_error *err)
{
    runner_end(r);
    return err->exit_code;
}

static bool runner_multi(const run *r)
{
    return r->cfg->databases != NULL;
}

/* With steps.databases, step files beside the subdirectories would be silently left out. */
static bool runner_check_top_level(const char *dir, pgstep_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool ok = true;

    if (!d)
        return true; /* each subdirectory's loading reports what is wrong */
    while (ok && (e = readdir(d))) {
        size_t len = strlen(e->d_name);

        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0) {
            error_set(err, PGSTEP_EXIT_STEPSET,
                      "steps directory \"%s\" holds step file \"%s\", but steps.databases takes"
                      " each database's steps from its subdirectory",
                      dir, e->d_name);
            error_hint(err, "Move the file into the subdirectory of its database.");
            ok = false;
        }
    }
    closedir(d);
    return ok;
}

/* The databases and their step sets, checked against the manifest, loaded and checked before
 * anything connects. */
static bool runner_load(run *r, pgstep_error *err)
{
    char *const *dbs = r->cfg->databases;
    size_t count = 0;

    r->start_ms = backoff_now_ms();
    if (!integrity_check(r->cfg, &r->integrity, err))
        return false;
    while (dbs && dbs[count])
        count++;
    r->ntargets = count ? count : 1;
    if (!(r->targets = calloc(r->ntargets, sizeof(target))))
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    if (count && !runner_check_top_level(r->cfg->steps_dir, err))
        return false;
    for (size_t i = 0; i < r->ntargets; i++) {
        target *t = &r->targets[i];
        size_t len = strlen(r->cfg->steps_dir) + (count ? strlen(dbs[i]) : 0) + 2;

        t->dbname = count ? dbs[i] : NULL;
        if (!(t->dir = malloc(len)))
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        snprintf(t->dir, len, "%s%s%s", r->cfg->steps_dir, t->dbname ? "/" : "",
                 t->dbname ? t->dbname : "");
    }
    /* Every database's problems are logged before the run gives up. */
    for (size_t i = 0; i < r->ntargets; i++) {
        pgstep_error one;

        error_clear(&one);
        if (!stepset_load(r->targets[i].dir, r->cfg->vars, &r->targets[i].set, &one) &&
            !error_is_set(err))
            *err = one;
    }
    /* What was loaded must be the bytes the manifest vouched for. */
    for (size_t i = 0; i < r->ntargets && !error_is_set(err); i++)
        integrity_confirm(&r->integrity, r->targets[i].dbname, r->targets[i].set, err);
    return !error_is_set(err);
}

/* The configuration for target i: the run's own, with dbname replaced. */
static pgstep_config runner_target_config(const run *r, size_t i)
{
    pgstep_config cfg = *r->cfg;

    if (r->targets[i].dbname)
        cfg.dbname = (char *)(uintptr_t)r->targets[i].dbname;
    return cfg;
}

/* Connects to target i, closing the connection to another one first. The first connection of the
 * run is the one wait for a writable primary; with several databases, it then waits until the
 * others exist, within what is left of wait.timeout. */
static bool runner_connect(run *r, size_t i, pgstep_error *err)
{
    pgstep_config cfg = runner_target_config(r, i);
    bool first = r->c == NULL && r->c_target == 0;

    if (r->c && r->c_target == i)
        return true;
    conn_close(r->c);
    r->c = NULL;
    r->c_target = i;
    if (!primary_wait(&cfg, &r->c, err))
        return false;
    if (!first || r->ntargets < 2)
        return true;
    /* A primary that restarts meanwhile (a restore, a promotion) is waited for again. */
    while (!database_wait(r->c, r->cfg->databases + 1, r->ntargets - 1,
                          r->cfg->wait_timeout ? r->start_ms + 1000LL * r->cfg->wait_timeout : 0,
                          err)) {
        if (!conn_is_broken(r->c) || err->exit_code != PGSTEP_EXIT_TEMPFAIL)
            return false;
        conn_close(r->c);
        r->c = NULL;
        error_clear(err);
        if (!primary_wait(&cfg, &r->c, err))
            return false;
    }
    return true;
}

/* Whether a failed read of the history may succeed on a new connection: the server went away
 * (a restart, a failover, pg_terminate_backend) or answered with an error that may clear. */
static bool runner_read_retryable(const conn *c, const pgstep_error *err)
{
    if (err->exit_code == PGSTEP_EXIT_INTERRUPT || err->exit_code == PGSTEP_EXIT_TERMINATED)
        return false;
    return conn_is_broken(c) || err->exit_code == PGSTEP_EXIT_TEMPFAIL ||
           conn_sqlstate_retryable(err->sqlstate);
}

/* Connects to target i and reads its history. A read that fails transiently is tried again on a
 * new connection, waiting for the primary again, up to apply.retries times, as a step is: the
 * server may go away between the check that it is writable and this read. */
static bool runner_read_history(run *r, size_t i, pgstep_error *err)
{
    target *t = &r->targets[i];
    backoff b;

    backoff_init(&b, RUNNER_RETRY_FIRST_DELAY_MS, r->cfg->wait_max_interval_ms);
    for (int attempt = 1;; attempt++) {
        if (!runner_connect(r, i, err))
            return false;
        if (history_read(r->c, r->sql, t->set, &t->h, &t->facts, err))
            return true;
        if (!runner_read_retryable(r->c, err))
            return false;
        if (attempt > r->cfg->retries) {
            err->exit_code = PGSTEP_EXIT_TEMPFAIL;
            error_detail(err, "Gave up reading the history after %d retries.", r->cfg->retries);
            return false;
        }
        {
            log_field fields[] = {LOG_STR("sqlstate", err->sqlstate), LOG_NUM("attempt", attempt)};

            log_event(LOG_WARN, fields, 2,
                      "retrying the read of the history after a transient error (SQLSTATE %s, "
                      "attempt %d of %d): %s",
                      err->sqlstate[0] ? err->sqlstate : "none", attempt, r->cfg->retries,
                      err->message);
        }
        if (!backoff_sleep(backoff_next_ms(&b), 0, err))
            return false;
        conn_close(r->c);
        r->c = NULL;
        error_clear(err);
    }
}

/* Loads every step set, connects and plans each database; the common first half of apply and
 * status. */
static bool runner_plan(run *r, pgstep_error *err)
{
    if (!runner_load(r, err))
        return false;
    if (!(r->sql = history_sql_new(r->cfg->history_schema)))
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    for (size_t i = 0; i < r->ntargets; i++) {
        target *t = &r->targets[i];

        if (!runner_read_history(r, i, err))
            return false;
        if (!(t->p = plan_build(t->set, t->h, t->facts)))
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    return true;
}

/* A file name as messages show it: with its database's directory when there are several. */
static const char *runner_file(const target *t, const char *file, char *buf, size_t size)
{
    if (!t->dbname)
        return file;
    snprintf(buf, size, "%s/%s", t->dbname, file);
    return buf;
}

/* Applied versioned steps whose file changed or disappeared: refused unless allowed. */
static bool runner_check_drift(const run *r, bool allow_drift, pgstep_error *err)
{
    size_t drift = 0;

    for (size_t t = 0; t < r->ntargets; t++) {
        const plan *p = r->targets[t].p;

        for (size_t i = 0; i < plan_count(p); i++) {
            const plan_item *item = plan_get(p, i);
            char buf[512];
            const char *file = runner_file(
                &r->targets[t], item->step ? item->step->file_name : item->recorded->file_name, buf,
                sizeof(buf));
            log_field fields[] = {
                LOG_STR("step", file),
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
    }
    if (drift == 0 || allow_drift)
        return true;
    error_set(err, PGSTEP_EXIT_STEPSET, "%zu applied step%s changed or missing", drift,
              drift == 1 ? " was" : "s were");
    error_hint(err, "Restore the files as they were applied, or pass --allow-drift to apply "
                    "pending steps anyway.");
    return false;
}

static size_t runner_total(const run *r, size_t (*count)(const target *))
{
    size_t n = 0;

    for (size_t i = 0; i < r->ntargets; i++)
        n += count(&r->targets[i]);
    return n;
}

static size_t runner_steps(const target *t)
{
    return stepset_count(t->set);
}

static size_t runner_work(const target *t)
{
    return plan_work(t->p);
}

static size_t runner_applied(const target *t)
{
    return t->stats.applied;
}

static size_t runner_skipped(const target *t)
{
    return plan_count_state(t->p, PLAN_APPLIED) + t->stats.applied_by_other;
}

/* "postgres 1, app 2": what each database of the run got, for the summary. */
static void runner_per_database(const run *r, size_t upto, char *out, size_t size)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < upto && i < r->ntargets && n < size; i++) {
        int w = snprintf(out + n, size - n, "%s%s %zu", i ? ", " : "", r->targets[i].dbname,
                         r->targets[i].stats.applied);

        n += w > 0 ? (size_t)w : 0;
    }
}

int runner_verify(const pgstep_config *cfg, report *rep, pgstep_error *err)
{
    run r = {.cfg = cfg};
    size_t steps;

    if (!runner_load(&r, err))
        return runner_fail(&r, err);
    steps = runner_total(&r, runner_steps);
    for (size_t i = 0; i < r.ntargets; i++)
        log_info("step set \"%s\" is valid: %zu steps", r.targets[i].dir,
                 stepset_count(r.targets[i].set));
    if (runner_multi(&r))
        report_summary(rep, "step set is valid: %zu steps in %zu databases", steps, r.ntargets);
    else
        report_summary(rep, "step set is valid: %zu steps", steps);
    runner_end(&r);
    return PGSTEP_EXIT_OK;
}

/* Applies target i's pending steps on a connection of its own; a failure names the database. */
static bool runner_apply_target(run *r, size_t i, pgstep_error *err)
{
    target *t = &r->targets[i];
    pgstep_config cfg = runner_target_config(r, i);

    if (plan_work(t->p) == 0)
        return true;
    if (t->dbname)
        log_info("applying %zu step%s to database \"%s\"", plan_work(t->p),
                 plan_work(t->p) == 1 ? "" : "s", t->dbname);
    if (!runner_connect(r, i, err) ||
        !apply_plan(&r->c, &cfg, r->sql, t->p, history_installed(t->h), &t->stats, err)) {
        if (t->dbname && err->file[0]) {
            char file[sizeof(err->file)];

            snprintf(file, sizeof(file), "%s/%.*s", t->dbname,
                     (int)(sizeof(file) - strlen(t->dbname) - 2), err->file);
            memcpy(err->file, file, sizeof(file));
        }
        return false;
    }
    return true;
}

static void runner_log_summary(const run *r, report *rep)
{
    size_t applied = runner_total(r, runner_applied);
    size_t skipped = runner_total(r, runner_skipped);
    long long ms = (long long)(backoff_now_ms() - r->start_ms);
    char per_db[256] = "";
    log_field fields[] = {LOG_NUM("applied", applied), LOG_NUM("skipped", skipped),
                          LOG_NUM("duration_ms", ms), LOG_NUM("databases", r->ntargets)};

    if (runner_multi(r))
        runner_per_database(r, r->ntargets, per_db, sizeof(per_db));
    if (applied == 0)
        log_event(LOG_INFO, fields, 4, "nothing to apply: %zu step%s already applied%s%s (%lld ms)",
                  skipped, skipped == 1 ? "" : "s", runner_multi(r) ? " in " : "",
                  runner_multi(r) ? "every database" : "", ms);
    else
        log_event(LOG_INFO, fields, 4, "applied %zu step%s%s%s%s, skipped %zu (%lld ms)", applied,
                  applied == 1 ? "" : "s", per_db[0] ? " (" : "", per_db, per_db[0] ? ")" : "",
                  skipped, ms);
    report_summary(rep, "applied %zu step%s%s%s%s, skipped %zu", applied, applied == 1 ? "" : "s",
                   per_db[0] ? " (" : "", per_db, per_db[0] ? ")" : "", skipped);
}

int runner_apply(const pgstep_config *cfg, bool dry_run, bool allow_drift, report *rep,
                 pgstep_error *err)
{
    run r = {.cfg = cfg};

    if (!runner_plan(&r, err) || !runner_check_drift(&r, allow_drift, err))
        return runner_fail(&r, err);
    if (dry_run) {
        for (size_t i = 0; i < r.ntargets; i++)
            status_print_plan(r.targets[i].dbname, r.targets[i].p, stdout);
        report_summary(rep, "dry run: %zu steps to apply", runner_total(&r, runner_work));
        runner_end(&r);
        return PGSTEP_EXIT_OK;
    }
    for (size_t i = 0; i < r.ntargets; i++) {
        if (!runner_apply_target(&r, i, err)) {
            if (runner_multi(&r)) {
                char done[256];

                runner_per_database(&r, i, done, sizeof(done));
                report_context(rep, "databases done: %s; stopped in %s", i ? done : "none",
                               r.targets[i].dbname);
            }
            return runner_fail(&r, err);
        }
    }
    runner_log_summary(&r, rep);
    runner_end(&r);
    return PGSTEP_EXIT_OK;
}

int runner_status(const pgstep_config *cfg, bool json, report *rep, pgstep_error *err)
{
    run r = {.cfg = cfg};
    const plan **plans;

    if (!runner_plan(&r, err))
        return runner_fail(&r, err);
    if (!(plans = calloc(r.ntargets, sizeof(*plans)))) {
        error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        return runner_fail(&r, err);
    }
    for (size_t i = 0; i < r.ntargets; i++)
        plans[i] = r.targets[i].p;
    if (json && runner_multi(&r))
        status_print_json_databases(cfg->databases, plans, r.ntargets, &r.integrity, stdout);
    else if (json)
        status_print_json(plans[0], &r.integrity, stdout);
    else
        integrity_print_text(&r.integrity, stdout);
    for (size_t i = 0; !json && i < r.ntargets; i++)
        status_print_text(r.targets[i].dbname, plans[i], stdout);
    free(plans);
    report_summary(rep, "%zu steps, %zu to apply", runner_total(&r, runner_steps),
                   runner_total(&r, runner_work));
    runner_end(&r);
    return PGSTEP_EXIT_OK;
}
