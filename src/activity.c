/* pg_stat_activity as seen from a second session: a backend's wait and whoever blocks it. */
#include "pgstep/activity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row per blocker (or one row with NULLs when there is none). Queries of other roles'
 * sessions read as NULL without pg_read_all_stats, which is fine: the pid still names them. */
static const char activity_sql[] =
    "SELECT a.wait_event_type, a.wait_event, b.pid, b.application_name, b.state,"
    " pg_catalog.left(pg_catalog.regexp_replace(b.query, '\\s+', ' ', 'g'), 80)"
    " FROM pg_catalog.pg_stat_activity a"
    " LEFT JOIN LATERAL pg_catalog.unnest(pg_catalog.pg_blocking_pids(a.pid)) AS bp(pid) ON true"
    " LEFT JOIN pg_catalog.pg_stat_activity b ON b.pid = bp.pid"
    " WHERE a.pid = $1::int ORDER BY b.pid LIMIT 4";

static void activity_copy(char *out, size_t size, const char *value)
{
    snprintf(out, size, "%s", value ? value : "");
}

bool activity_read(conn *c, int pid, activity *out, pgstep_error *err)
{
    char pid_text[16];
    const char *params[] = {pid_text};
    conn_rows *rows;
    const char *type;

    memset(out, 0, sizeof(*out));
    snprintf(pid_text, sizeof(pid_text), "%d", pid);
    if (!conn_query(c, activity_sql, 1, params, &rows, err))
        return false;
    type = conn_rows_value(rows, 0, 0);
    if (type)
        snprintf(out->wait_event, sizeof(out->wait_event), "%s: %s", type,
                 conn_rows_value(rows, 0, 1) ? conn_rows_value(rows, 0, 1) : "");
    out->on_lock = type && strcmp(type, "Lock") == 0;
    for (int i = 0; i < conn_rows_count(rows) && out->nblockers < ACTIVITY_MAX_BLOCKERS; i++) {
        activity_blocker *b = &out->blockers[out->nblockers];

        if (!conn_rows_value(rows, i, 2))
            continue;
        b->pid = atoi(conn_rows_value(rows, i, 2));
        activity_copy(b->application_name, sizeof(b->application_name),
                      conn_rows_value(rows, i, 3));
        activity_copy(b->state, sizeof(b->state), conn_rows_value(rows, i, 4));
        activity_copy(b->query, sizeof(b->query), conn_rows_value(rows, i, 5));
        out->nblockers++;
    }
    conn_rows_free(rows);
    return true;
}
