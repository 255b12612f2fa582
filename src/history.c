/* The history table: one row per application of a step. pgstep's own statements about it live
 * here, schema-qualified, so a step that changes search_path cannot redirect them. */
#include "pgstep/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstep/exitcode.h"
#include "pgstep/lexer.h"

struct history {
    bool table_exists;
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

/* The latest checksum recorded for a repeatable step ($1: description). */
#define HISTORY_LATEST_R                                                                           \
    "(SELECT h.checksum FROM %1$s.history h WHERE h.kind = 'R' AND h.description = $1"             \
    " ORDER BY h.id DESC LIMIT 1)"

/* A failing cast is how plain SQL raises an error with a message: the pipeline then skips every
 * later statement, which is exactly what a step found already applied needs. The backend pid
 * keeps the planner from evaluating the cast ahead of time. */
#define HISTORY_RAISE(msg)                                                                         \
    "('pgstep: ' || " msg " || ' (backend ' || pg_catalog.pg_backend_pid() || ')')::integer"

bool history_sql_build(const char *schema, history_sql *out)
{
    char *s = lexer_quote_identifier(schema);
    char *qualified = s ? history_format("%s.history", s) : NULL;
    char *regclass = qualified ? lexer_quote_literal(qualified) : NULL;

    memset(out, 0, sizeof(*out));
    if (!regclass) {
        free(s);
        free(qualified);
        return false;
    }
    out->create[0] = history_format("CREATE SCHEMA IF NOT EXISTS %s", s);
    out->create[1] =
        history_format("CREATE TABLE IF NOT EXISTS %s.history ("
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
                       " client_host text)",
                       s);
    out->create[2] = history_format("CREATE UNIQUE INDEX IF NOT EXISTS history_version_key"
                                    " ON %s.history (version) WHERE kind = 'V'",
                                    s);
    out->exists = history_format("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", regclass);
    out->select = history_format(
        "SELECT DISTINCT ON (kind, version, description) kind, version, description, file_name,"
        " checksum, pg_catalog.to_char(applied_at AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        " FROM %1$s.history"
        " ORDER BY kind, version, description, id DESC",
        s);
    out->needs_v = history_format("SELECT NOT EXISTS (SELECT FROM %1$s.history h"
                                  " WHERE h.kind = 'V' AND h.version = $1::bigint)",
                                  s);
    out->needs_r = history_format("SELECT " HISTORY_LATEST_R " IS DISTINCT FROM $2::text", s);
    out->recheck_v =
        history_format("SELECT CASE WHEN EXISTS (SELECT FROM %1$s.history h"
                       " WHERE h.kind = 'V' AND h.version = $1::bigint)"
                       " THEN " HISTORY_RAISE(
                           "'version ' || $1::bigint || ' was applied by another runner'") " END",
                       s);
    out->recheck_r =
        history_format("SELECT CASE WHEN " HISTORY_LATEST_R " IS NOT DISTINCT FROM $2::text"
                       " THEN " HISTORY_RAISE("$1 || ' was applied by another runner'") " END",
                       s);
    /* duration_ms: given by the client ($6) for steps run outside a transaction, else measured
     * on the server from the moment the step's transaction took its lock. */
    out->insert = history_format(
        "INSERT INTO %s.history (kind, version, description, file_name, checksum, duration_ms,"
        " run_id, pgstep_version, client_host)"
        " VALUES ($1, $2::bigint, $3, $4, $5, COALESCE($6::bigint, (EXTRACT(epoch FROM"
        " pg_catalog.clock_timestamp() -"
        " pg_catalog.current_setting('pgstep.step_started')::timestamptz) * 1000)::bigint),"
        " $7, $8, $9) RETURNING duration_ms",
        s);
    free(s);
    free(qualified);
    free(regclass);
    if (!out->create[0] || !out->create[1] || !out->create[2] || !out->exists || !out->select ||
        !out->needs_v || !out->needs_r || !out->recheck_v || !out->recheck_r || !out->insert) {
        history_sql_free(out);
        return false;
    }
    return true;
}

void history_sql_free(history_sql *sql)
{
    for (int i = 0; i < 3; i++)
        free(sql->create[i]);
    free(sql->exists);
    free(sql->select);
    free(sql->needs_v);
    free(sql->needs_r);
    free(sql->recheck_v);
    free(sql->recheck_r);
    free(sql->insert);
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

bool history_table_exists(const history *h)
{
    return h->table_exists;
}

size_t history_count(const history *h)
{
    return h->count;
}

const history_entry *history_get(const history *h, size_t i)
{
    return &h->entries[i];
}
