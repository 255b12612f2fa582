/* Waiting for the databases of a run to exist (database.h). */
#include "pgstep/database.h"

#include <stdlib.h>
#include <string.h>

#include "pgstep/backoff.h"
#include "pgstep/exitcode.h"
#include "pgstep/log.h"

#define DATABASE_POLL_MS     250
#define DATABASE_PROGRESS_MS 5000

/* The names as a text[] literal: {"a","b"}, each double-quoted with \ and " escaped. */
static char *database_array(char *const *names, size_t n)
{
    size_t len = 3;
    char *out;
    char *p;

    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(names[i]) + 3;
    if (!(p = out = malloc(len)))
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *q = names[i]; *q; q++) {
            if (*q == '"' || *q == '\\')
                *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

/* The first name in names without a row in rows (datname, datallowconn), or NULL; *refused is
 * the first that exists but does not allow connections. */
static const char *database_missing(const conn_rows *rows, char *const *names, size_t n,
                                    const char **refused)
{
    const char *missing = NULL;

    *refused = NULL;
    for (size_t i = 0; i < n; i++) {
        bool found = false;

        for (int r = 0; r < conn_rows_count(rows) && !found; r++) {
            const char *name = conn_rows_value(rows, r, 0);
            const char *allowed = conn_rows_value(rows, r, 1);

            if (name && strcmp(name, names[i]) == 0) {
                found = true;
                if (!*refused && (!allowed || strcmp(allowed, "t") != 0))
                    *refused = names[i];
            }
        }
        if (!found && !missing)
            missing = names[i];
    }
    return missing;
}

bool database_wait(conn *c, char *const *names, size_t n, int64_t deadline_ms, pgstep_error *err)
{
    char *array = database_array(names, n);
    const char *params[] = {array};
    int64_t start = backoff_now_ms();
    int64_t last_progress = start;
    bool ok = array != NULL;

    if (!ok)
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    for (;;) {
        conn_rows *rows;
        const char *missing;
        const char *refused;
        int64_t now;

        if (!conn_query(c,
                        "SELECT datname, datallowconn FROM pg_catalog.pg_database"
                        " WHERE datname = ANY ($1::text[])",
                        1, params, &rows, err)) {
            ok = false;
            break;
        }
        missing = database_missing(rows, names, n, &refused);
        if (refused)
            ok = error_set(err, PGSTEP_EXIT_CONFIG, "database \"%s\" does not allow connections",
                           refused);
        conn_rows_free(rows);
        if (refused || !missing)
            break;
        now = backoff_now_ms();
        if (deadline_ms == 0 || now >= deadline_ms) {
            ok = error_set(err, PGSTEP_EXIT_NOT_READY, "database \"%s\" does not exist", missing);
            error_detail(err, "Waited %lld s for it to be created.",
                         (long long)(now - start) / 1000);
            break;
        }
        if (now - last_progress >= DATABASE_PROGRESS_MS) {
            log_info("waiting for database \"%s\" to be created", missing);
            last_progress = now;
        }
        if (!backoff_sleep(DATABASE_POLL_MS, deadline_ms, err)) {
            ok = false;
            break;
        }
    }
    if (!ok && err->exit_code == PGSTEP_EXIT_CONFIG)
        error_hint(err, "Remove it from steps.databases: template0 is never connected to.");
    free(array);
    return ok;
}
