/* The history table: one row per application of a step, and the two functions that lock,
 * re-check and record each step. pgstep's own statements about it live here, schema-qualified,
 * so a step that changes search_path cannot redirect them. */
#include "pgstep/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/exitcode.h"
#include "pgstep/lexer.h"

struct history {
    bool table_exists;
    bool installed;         /* table and functions of this version */
    history_entry *entries; /* sorted by kind, version, description */
    size_t count;
};

static char *history_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *history_format(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || !(out = malloc((size_t)len + 1)))
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* The functions carry a version in their names: a pgstep whose bookkeeping changes bumps it,
 * and creates its own next to the old ones. */
#define HISTORY_BEGIN_SIGNATURE "step_begin_2(bigint, text, bigint, text, text, text, text)"
#define HISTORY_END_SIGNATURE   "step_end_1(text, bigint, text, text, text, bigint, text, text, text)"

static const char history_create_table[] =
    "CREATE TABLE IF NOT EXISTS %1$s.history ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " kind text NOT NULL CHECK (kind IN ('V', 'R')),"
    " version bigint CHECK ((kind = 'V') = (version IS NOT NULL)),"
    " description text NOT NULL,"
    " file_name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),"
    " duration_ms bigint NOT NULL,"
    " applied_by name NOT NULL DEFAULT session_user,"
    " run_id text NOT NULL,"
    " pgstep_version text NOT NULL,"
    " client_host text)";

/* The lock is only ever tried: a transaction must not wait for it (see apply_batch.c). The re-check
 * is a statement of its own, after the lock, so its snapshot sees whatever the runner that held
 * the lock committed. The timeouts apply to the step's statements, which follow. The commit does
 * not wait for the WAL flush: apply_batch.c makes the last transaction of each batch wait instead,
 * which covers every commit before it. */
static const char history_create_begin[] =
    "CREATE OR REPLACE FUNCTION %1$s." HISTORY_BEGIN_SIGNATURE
    " RETURNS void LANGUAGE plpgsql VOLATILE AS $pgstep$\n"
    "DECLARE\n"
    "    applied_by text;\n"
    "    last_checksum text;\n"
    "BEGIN\n"
    "    IF NOT pg_catalog.pg_try_advisory_xact_lock($1) THEN\n"
    "        RAISE EXCEPTION 'pgstep: advisory lock %% is held by another runner', $1\n"
    "            USING ERRCODE = '" HISTORY_SQLSTATE_LOCK_BUSY "';\n"
    "    END IF;\n"
    "    IF $2 = 'V' THEN\n"
    "        SELECT h.run_id INTO applied_by FROM %1$s.history h\n"
    "            WHERE h.kind = 'V' AND h.version = $3;\n"
    "    ELSE\n"
    "        SELECT h.checksum, h.run_id INTO last_checksum, applied_by FROM %1$s.history h\n"
    "            WHERE h.kind = 'R' AND h.description = $4 ORDER BY h.id DESC LIMIT 1;\n"
    "    END IF;\n"
    "    IF FOUND AND ($2 = 'V' OR last_checksum = $5) THEN\n"
    "        RAISE EXCEPTION 'pgstep: %% is already applied',\n"
    "            CASE WHEN $2 = 'V' THEN 'version ' || $3 ELSE $4 END\n"
    "            USING ERRCODE = '" HISTORY_SQLSTATE_APPLIED "',\n"
    "                  DETAIL = '" HISTORY_APPLIED_BY "' || applied_by || '.';\n"
    "    END IF;\n"
    "    PERFORM pg_catalog.set_config('statement_timeout', $6, true),\n"
    "            pg_catalog.set_config('lock_timeout', $7, true),\n"
    "            pg_catalog.set_config('synchronous_commit', 'off', true),\n"
    "            pg_catalog.set_config('pgstep.step_started',\n"
    "                                  pg_catalog.clock_timestamp()::text, true);\n"
    "END\n"
    "$pgstep$";

static const char history_create_end[] =
    "CREATE OR REPLACE FUNCTION %1$s." HISTORY_END_SIGNATURE
    " RETURNS bigint LANGUAGE plpgsql VOLATILE AS $pgstep$\n"
    "DECLARE\n"
    "    duration bigint := COALESCE($6, (EXTRACT(epoch FROM\n"
    "        pg_catalog.clock_timestamp() -\n"
    "        pg_catalog.current_setting('pgstep.step_started')::timestamptz) * 1000)::bigint);\n"
    "BEGIN\n"
    "    INSERT INTO %1$s.history (kind, version, description, file_name, checksum,\n"
    "                              duration_ms, run_id, pgstep_version, client_host)\n"
    "    VALUES ($1, $2, $3, $4, $5, duration, $7, $8, $9);\n"
    "    RETURN duration;\n"
    "END\n"
    "$pgstep$";

bool history_sql_build(const char *schema, history_sql *out)
{
    char *s = lexer_quote_identifier(schema);
    char *table = s ? history_format("%s.history", s) : NULL;
    char *begin = s ? history_format("%s." HISTORY_BEGIN_SIGNATURE, s) : NULL;
    char *end = s ? history_format("%s." HISTORY_END_SIGNATURE, s) : NULL;
    char *table_lit = table ? lexer_quote_literal(table) : NULL;
    char *begin_lit = begin ? lexer_quote_literal(begin) : NULL;
    char *end_lit = end ? lexer_quote_literal(end) : NULL;
    bool ok = table_lit && begin_lit && end_lit;

    memset(out, 0, sizeof(*out));
    if (ok) {
        out->create[0] = history_format("CREATE SCHEMA IF NOT EXISTS %s", s);
        out->create[1] = history_format(history_create_table, s);
        out->create[2] = history_format("CREATE UNIQUE INDEX IF NOT EXISTS history_version_key"
                                        " ON %s.history (version) WHERE kind = 'V'",
                                        s);
        out->create[3] = history_format(history_create_begin, s);
        out->create[4] = history_format(history_create_end, s);
        out->exists = history_format("SELECT pg_catalog.to_regclass(%s) IS NOT NULL,"
                                     " pg_catalog.to_regprocedure(%s) IS NOT NULL"
                                     " AND pg_catalog.to_regprocedure(%s) IS NOT NULL",
                                     table_lit, begin_lit, end_lit);
        out->select = history_format(
            "SELECT DISTINCT ON (kind, version, description) kind, version, description,"
            " file_name, checksum, pg_catalog.to_char(applied_at AT TIME ZONE 'UTC',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM %1$s.history"
            " ORDER BY kind, version, description, id DESC",
            s);
        out->run_rows = history_format(
            "SELECT kind, version, description, checksum FROM %s.history WHERE run_id = $1", s);
        out->begin_fn = history_format("%s.step_begin_2", s);
        out->end_fn = history_format("%s.step_end_1", s);
        out->step_begin = history_format("SELECT %s.step_begin_2($1, $2, $3, $4, $5, $6, $7)", s);
        out->step_end =
            history_format("SELECT %s.step_end_1($1, $2, $3, $4, $5, $6, $7, $8, $9)", s);
    }
    free(s);
    free(table);
    free(begin);
    free(end);
    free(table_lit);
    free(begin_lit);
    free(end_lit);
    for (int i = 0; ok && i < HISTORY_CREATE_COUNT; i++)
        ok = out->create[i] != NULL;
    ok = ok && out->exists && out->select && out->run_rows && out->begin_fn && out->end_fn &&
         out->step_begin && out->step_end;
    if (!ok)
        history_sql_free(out);
    return ok;
}

void history_sql_free(history_sql *sql)
{
    for (int i = 0; i < HISTORY_CREATE_COUNT; i++)
        free(sql->create[i]);
    free(sql->exists);
    free(sql->select);
    free(sql->run_rows);
    free(sql->begin_fn);
    free(sql->end_fn);
    free(sql->step_begin);
    free(sql->step_end);
    memset(sql, 0, sizeof(*sql));
}

static int history_compare(step_kind ka, long long va, const char *da, step_kind kb, long long vb,
                           const char *db)
{
    if (ka != kb)
        return ka == STEP_VERSIONED ? -1 : 1;
    if (ka == STEP_VERSIONED)
        return va < vb ? -1 : va > vb;
    return strcmp(da, db);
}

static int history_entry_compare(const void *a, const void *b)
{
    const history_entry *x = a;
    const history_entry *y = b;

    return history_compare(x->kind, x->version, x->description, y->kind, y->version,
                           y->description);
}

const history_entry *history_find(const history *h, const step *s)
{
    size_t lo = 0;
    size_t hi = h->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const history_entry *e = &h->entries[mid];
        int cmp = history_compare(s->kind, s->version, s->description, e->kind, e->version,
                                  e->description);

        if (cmp == 0)
            return e;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool history_load_rows(history *h, const PGresult *res)
{
    int n = PQntuples(res);

    h->entries = calloc(n > 0 ? (size_t)n : 1, sizeof(history_entry));
    if (!h->entries)
        return false;
    for (int i = 0; i < n; i++) {
        history_entry *e = &h->entries[h->count++];

        e->kind = PQgetvalue(res, i, 0)[0] == 'V' ? STEP_VERSIONED : STEP_REPEATABLE;
        e->version = e->kind == STEP_VERSIONED ? strtoll(PQgetvalue(res, i, 1), NULL, 10) : 0;
        e->description = strdup(PQgetvalue(res, i, 2));
        e->file_name = strdup(PQgetvalue(res, i, 3));
        snprintf(e->checksum, sizeof(e->checksum), "%s", PQgetvalue(res, i, 4));
        e->applied_at = strdup(PQgetvalue(res, i, 5));
        if (!e->description || !e->file_name || !e->applied_at)
            return false;
    }
    qsort(h->entries, h->count, sizeof(history_entry), history_entry_compare);
    return true;
}

/* Queues the read: a read-only transaction, every rerun-when query, the existence check and the
 * select; the select fails harmlessly when the table does not exist yet. */
static bool history_send_read(conn *c, const history_sql *sql, const stepset *set,
                              pgstep_error *err)
{
    if (!conn_pipeline_enter(c, err) ||
        !conn_pipeline_send(c, "BEGIN TRANSACTION READ ONLY", 0, NULL, err))
        return false;
    for (size_t i = 0; i < stepset_count(set); i++) {
        const step *s = stepset_get(set, i);

        if (s->rerun_query && !conn_pipeline_send(c, s->rerun_query, 0, NULL, err))
            return false;
    }
    return conn_pipeline_send(c, sql->exists, 0, NULL, err) &&
           conn_pipeline_send(c, sql->select, 0, NULL, err) &&
           conn_pipeline_send(c, "ROLLBACK", 0, NULL, err) && conn_pipeline_sync(c, err) &&
           conn_pipeline_flush(c, err);
}

static bool history_result_fact(PGresult *res, const step *s, char **fact, pgstep_error *err)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
        if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
            error_set(err, PGSTEP_EXIT_STEP_FAILED, "rerun-when query was not run");
        error_location(err, s->file_name, 1);
        return false;
    }
    *fact = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0) &&
        !(*fact = strdup(PQgetvalue(res, 0, 0))))
        return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    return true;
}

/* Reads every queued result up to the sync point, so the pipeline can be left. */
static bool history_drain(conn *c, pgstep_error *err)
{
    for (;;) {
        PGresult *res = conn_pipeline_next(c, err);
        bool done;

        if (!res)
            return false;
        done = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (done)
            return true;
    }
}

static bool history_collect(conn *c, const stepset *set, history *h, char **facts,
                            pgstep_error *err)
{
    PGresult *res = conn_pipeline_next(c, err); /* BEGIN */
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;

    if (res && !ok)
        conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
    PQclear(res);
    for (size_t i = 0; ok && i < stepset_count(set); i++) {
        const step *s = stepset_get(set, i);

        if (!s->rerun_query)
            continue;
        res = conn_pipeline_next(c, err);
        ok = res && history_result_fact(res, s, &facts[i], err);
        PQclear(res);
    }
    if (ok) {
        res = conn_pipeline_next(c, err); /* exists */
        ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (res && !ok)
            conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
        h->table_exists = ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        h->installed = h->table_exists && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        PQclear(res);
    }
    if (ok) {
        res = conn_pipeline_next(c, err); /* select */
        ok = res != NULL;
        if (ok && h->table_exists) {
            ok = PQresultStatus(res) == PGRES_TUPLES_OK;
            if (!ok)
                conn_result_error(res, PGSTEP_EXIT_STEP_FAILED, err);
            else if (!history_load_rows(h, res))
                ok = error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
        }
        PQclear(res);
    }
    /* Whatever happened, consume the rest up to the sync point (or fail on a lost link). */
    if (!history_drain(c, ok ? err : &(pgstep_error){0}))
        return false;
    return ok;
}

bool history_read(conn *c, const history_sql *sql, const stepset *set, history **out,
                  char ***facts_out, pgstep_error *err)
{
    history *h = calloc(1, sizeof(*h));
    char **facts = calloc(stepset_count(set) + 1, sizeof(char *));
    bool ok;

    *out = NULL;
    *facts_out = NULL;
    if (!h || !facts) {
        free(h);
        free(facts);
        return error_set(err, PGSTEP_EXIT_STEP_FAILED, "out of memory");
    }
    ok = history_send_read(c, sql, set, err) && history_collect(c, set, h, facts, err);
    if (!conn_is_broken(c)) {
        pgstep_error ignored;

        error_clear(&ignored);
        if (!conn_pipeline_exit(c, ok ? err : &ignored) ||
            !conn_end_transaction(c, ok ? err : &ignored))
            ok = false;
    }
    if (!ok) {
        history_free(h);
        history_facts_free(facts, stepset_count(set));
        return false;
    }
    *out = h;
    *facts_out = facts;
    return true;
}

void history_free(history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->entries[i].description);
        free(h->entries[i].file_name);
        free(h->entries[i].applied_at);
    }
    free(h->entries);
    free(h);
}

void history_facts_free(char **facts, size_t n)
{
    if (!facts)
        return;
    for (size_t i = 0; i < n; i++)
        free(facts[i]);
    free(facts);
}

bool history_installed(const history *h)
{
    return h->installed;
}

size_t history_count(const history *h)
{
    return h->count;
}

const history_entry *history_get(const history *h, size_t i)
{
    return &h->entries[i];
}
