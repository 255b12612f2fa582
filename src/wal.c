/* Making a run's commits durable: one flush per pipeline (wal.h). */
#include "pgstep/wal.h"

#include "pgstep/exitcode.h"
#include "pgstep/log.h"

/* The configured value: from the server configuration, database and role settings and
 * connection options, not one a step SET. */
static const char wal_durable_sql[] = "SET LOCAL synchronous_commit TO DEFAULT";

bool wal_send_durable(conn *c, pgstep_error *err)
{
    return conn_pipeline_send(c, wal_durable_sql, 0, NULL, err);
}

bool wal_flush(conn *c, pgstep_error *err)
{
    /* A commit waits for the flush only if its transaction wrote WAL, and a transactional
     * message is the smallest such write any role may make. The setting is restored here too:
     * through a transaction-pooling PgBouncer this may be another server session. */
    static const char *const flush[] = {
        "BEGIN",
        wal_durable_sql,
        "SELECT pg_catalog.pg_logical_emit_message(true, 'pgstep', 'flush')",
        "COMMIT",
    };
    pgstep_error flush_err;
    bool ok = true;

    error_clear(&flush_err);
    for (size_t i = 0; ok && i < sizeof(flush) / sizeof(flush[0]); i++)
        ok = conn_query(c, flush[i], 0, NULL, NULL, &flush_err);
    if (ok)
        return true;
    if (conn_is_broken(c) || flush_err.exit_code == PGSTEP_EXIT_INTERRUPT ||
        flush_err.exit_code == PGSTEP_EXIT_TERMINATED) {
        *err = flush_err;
        return false;
    }
    conn_end_transaction(c, &(pgstep_error){0});
    log_warn("could not flush the WAL of the steps applied so far: %s", flush_err.message);
    return true;
}
