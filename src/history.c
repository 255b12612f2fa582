/* The history table: one row per application of a step, and the two functions that lock,
 * re-check and record each step. pgstep's own statements about it live here, schema-qualified,
 * so a step that changes search_path cannot redirect them. */
#include "pgstep/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "pgstep/exitcode.h"
#include "pgstep/lexer.h"
#include "pgstep/lock.h"

#define HISTORY_CREATE_COUNT 5
/* SQLSTATEs raised by step_begin. */
#define HISTORY_SQLSTATE_APPLIED "PGS02"
/* The detail of PGS02, followed by the run id of the row found and a period. */
#define HISTORY_APPLIED_BY "Applied by run "

struct history_sql {
    char *create[HISTORY_CREATE_COUNT]; /* each idempotent; run under the lock */
    char *select;                       /* latest entry per step */
    char *run_rows;                     /* the entries run $1 recorded */
    char *exists;     /* whether the table exists, and the functions of this version */
    char *step_begin; /* SELECT step_begin($1, ..., $7): see history_send_step_begin */
    char *step_end;   /* SELECT step_end($1, ..., $9): see history_send_step_end */
};

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
    "    " LOCK_TRY_OR_RAISE(
        "$1") "    IF $2 = 'V' THEN\n"
              "        SELECT h.run_id INTO applied_by FROM %1$s.history h\n"
              "            WHERE h.kind = 'V' AND h.version = $3;\n"
              "    ELSE\n"
              "        SELECT h.checksum, h.run_id INTO last_checksum, applied_by FROM "
              "%1$s.history h\n"
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

/* The columns of history_entry, in order. */
#define HISTORY_ENTRY_COLUMNS                                                                      \
    "kind, version, description, file_name, checksum,"                                             \
    " pg_catalog.to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

history_sql *history_sql_new(const char *schema)
{
    history_sql *out = calloc(1, sizeof(*out));
    char *s = lexer_quote_identifier(schema);
    char *table = s ? history_format("%s.history", s) : NULL;
    char *begin = s ? history_format("%s." HISTORY_BEGIN_SIGNATURE, s) : NULL;
    char *end = s ? history_format("%s." HISTORY_END_SIGNATURE, s) : NULL;
    char *table_lit = table ? lexer_quote_literal(table) : NULL;
    char *begin_lit = begin ? lexer_quote_literal(begin) : NULL;
    char *end_lit = end ? lexer_quote_literal(end) : NULL;
    bool ok = out && table_lit && begin_lit && end_lit;

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
        out->select =
            history_format("SELECT DISTINCT ON (kind, version, description) " HISTORY_ENTRY_COLUMNS
                           " FROM %1$s.history ORDER BY kind, version, description, id DESC",
                           s);
        out->run_rows =
            history_format("SELECT " HISTORY_ENTRY_COLUMNS " FROM %s.history WHERE run_id = $1", s);
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
    ok = ok && out->exists && out->select && out->run_rows && out->step_begin && out->step_end;
    if (!ok) {
        history_sql_free(out);
        return NULL;
    }
    return out;
}

void history_sql_free(history_sql *sql)
{
    if (!sql)
        return;
    for (int i = 0; i < HISTORY_CREATE_COUNT; i++)
        free(sql->create[i]);
    free(sql->exists);
    free(sql->select);
    free(sql->run_rows);
    free(sql->step_begin);
    free(sql->step_end);
    free(sql);
}

void history_run_init(history_run *run, const pgstep_config *cfg)
{
    unsigned char id[16];

    memset(run, 0, sizeof(*run));
    lock_key(cfg->lock_name, run->lock_key);
    snprintf(run->statement_timeout, sizeof(run->statement_timeout), "%ds", cfg->statement_timeout);
    snprintf(run->lock_timeout, sizeof(run->lock_timeout), "%ds", cfg->apply_lock_timeout);
    randombytes_buf(id, sizeof(id));
    sodium_bin2hex(run->run_id, sizeof(run->run_id), id, sizeof(id));
    if (gethostname(run->host, sizeof(run->host)) != 0)
        run->host[0] = '\0';
    run->host[sizeof(run->host) - 1] = '\0';
}

static int history_entry_compare(const void *a, const void *b)
{
    const history_entry *x = a;
    const history_entry *y = b;

    return step_order(x->kind, x->version, x->description, y->kind, y->version, y->description);
}

const history_entry *history_find(const history *h, const step *s)
{
    size_t lo = 0;
    size_t hi = h->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const history_entry *e = &h->entries[mid];
        int cmp =
            step_order(s->kind, s->version, s->description, e->kind, e->version, e->description);

        if (cmp == 0)
            return e;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool history_load_rows(history *h, const conn_rows *rows)
{
    int n = conn_rows_count(rows);

    h->entries = calloc(n > 0 ? (size_t)n : 1, sizeof(history_entry));
    if (!h->entries)
        return false;
    for (int i = 0; i < n; i++) {
        history_entry *e = &h->entries[h->count++];
        const char *kind = conn_rows_value(rows, i, 0);
        const char *version = conn_rows_value(rows, i, 1);
        const char *checksum = conn_rows_value(rows, i, 4);

        e->kind = kind && kind[0] == 'V' ? STEP_VERSIONED : STEP_REPEATABLE;
        e->version = e->kind == STEP_VERSIONED && version ? strtoll(version, NULL, 10) : 0;
        e->description = strdup(conn_rows_value(rows, i, 2) ? conn_rows_value(rows, i, 2) : "");
        e->file_name = strdup(conn_rows_value(rows, i, 3) ? conn_rows_value(rows, i, 3) : "");
        snprintf(e->checksum, sizeof(e->checksum), "%s", checksum ? checksum : "");
        e->applied_at = strdup(conn_rows_value(rows, i, 5) ? conn_rows_value(rows, i, 5) : "");
        if (!e->description || !e->file_name || !e->applied_at)
            return false;
    }
    qsort(h->entries, h->count, sizeof(history_entry), history_entry_compare);
    return true;
}

static bool history_out_of_memory(pgstep_error *err)
{
    return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
}

/* Whether the table, and the functions of this version, exist: the first row of sql->exists. */
static void history_load_exists(history *h, const conn_rows *rows)
{
    const char *table = conn_rows_value(rows, 0, 0);
    const char *functions = conn_rows_value(rows, 0, 1);

    h->table_exists = table && strcmp(table, "t") == 0;
    h->installed = h->table_exists && functions && strcmp(functions, "t") == 0;
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
           conn_pipeline_send(c, "ROLLBACK", 0, NULL, err) && conn_pipeline_sync(c, err);
}

/* The next reply, which must be a statement's success; false with err set otherwise. */
static bool history_next_ok(conn *c, conn_reply *reply, pgstep_error *err)
{
    if (conn_pipeline_next(c, 0, reply, err) != CONN_WAIT_REPLY)
        return false;
    if (reply->kind == CONN_REPLY_OK)
        return true;
    if (reply->kind == CONN_REPLY_ERROR)
        *err = reply->error;
    else
        error_set(err, PGSTEP_EXIT_STEP_FAILED, "the history read ended early");
    conn_reply_clear(reply);
    return false;
}

static bool history_read_fact(conn *c, const step *s, char **fact, pgstep_error *err)
{
    conn_reply reply;
    const char *value;

    if (!history_next_ok(c, &reply, err)) {
        if (reply.kind == CONN_REPLY_SKIPPED)
            error_set(err, PGSTEP_EXIT_STEP_FAILED, "rerun-when query was not run");
        error_location(err, s->file_name, 1);
        return false;
    }
    if (!reply.rows) {
        error_set(err, PGSTEP_EXIT_STEPSET, "rerun-when of %s is not a query that returns rows",
                  s->file_name);
        error_location(err, s->file_name, 1);
        return false;
    }
    value = conn_rows_value(reply.rows, 0, 0);
    *fact = value ? strdup(value) : NULL;
    conn_reply_clear(&reply);
    return !value || *fact || history_out_of_memory(err);
}

/* Reads every queued reply up to the sync point, so the pipeline can be left. */
static bool history_drain(conn *c, pgstep_error *err)
{
    conn_reply reply;

    do {
        if (conn_pipeline_next(c, 0, &reply, err) != CONN_WAIT_REPLY)
            return false;
        conn_reply_clear(&reply);
    } while (reply.kind != CONN_REPLY_SYNC);
    return true;
}

static bool history_collect(conn *c, const stepset *set, history *h, char **facts,
                            pgstep_error *err)
{
    conn_reply reply;
    bool ok = history_next_ok(c, &reply, err); /* BEGIN */

    if (ok)
        conn_reply_clear(&reply);
    for (size_t i = 0; ok && i < stepset_count(set); i++) {
        const step *s = stepset_get(set, i);

        if (s->rerun_query)
            ok = history_read_fact(c, s, &facts[i], err);
    }
    if (ok && (ok = history_next_ok(c, &reply, err))) {
        history_load_exists(h, reply.rows);
        conn_reply_clear(&reply);
    }
    if (ok && conn_pipeline_next(c, 0, &reply, err) != CONN_WAIT_REPLY) /* select */
        ok = false;
    if (ok && h->table_exists) {
        if (reply.kind != CONN_REPLY_OK)
            *err = reply.error, ok = false;
        else if (!history_load_rows(h, reply.rows))
            ok = history_out_of_memory(err);
    }
    conn_reply_clear(&reply);
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
        return history_out_of_memory(err);
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

bool history_read_run(conn *c, const history_sql *sql, const history_run *run, history **out,
                      pgstep_error *err)
{
    const char *params[] = {run->run_id};
    history *h = calloc(1, sizeof(*h));
    conn_rows *rows = NULL;
    bool ok;

    *out = NULL;
    if (!h)
        return history_out_of_memory(err);
    ok = conn_query(c, sql->exists, 0, NULL, &rows, err);
    if (ok) {
        history_load_exists(h, rows);
        conn_rows_free(rows);
        rows = NULL;
    }
    if (ok && h->table_exists)
        ok = conn_query(c, sql->run_rows, 1, params, &rows, err);
    if (ok && !history_load_rows(h, rows))
        ok = history_out_of_memory(err);
    conn_rows_free(rows);
    if (!ok) {
        history_free(h);
        return false;
    }
    *out = h;
    return true;
}

/* Sends the creation as one pipeline: BEGIN, the lock (tried, or PGS01), each object, COMMIT. No
 * transaction stays open between round trips, not even while another runner holds the lock. */
static bool history_send_create(conn *c, const history_sql *sql, const history_run *run,
                                pgstep_error *err)
{
    char *lock = history_format("DO $pgstep$ BEGIN\n    " LOCK_TRY_OR_RAISE("%1$s") "END $pgstep$",
                                run->lock_key);
    bool ok = lock && conn_pipeline_enter(c, err) && conn_pipeline_begin(c, err) &&
              conn_pipeline_send(c, lock, 0, NULL, err);

    if (!lock)
        ok = history_out_of_memory(err);
    for (int i = 0; ok && i < HISTORY_CREATE_COUNT; i++)
        ok = conn_pipeline_send(c, sql->create[i], 0, NULL, err);
    free(lock);
    return ok && conn_pipeline_commit(c, err) && conn_pipeline_sync(c, err);
}

bool history_create(conn *c, const history_sql *sql, const history_run *run, bool *busy,
                    pgstep_error *err)
{
    bool ok = history_send_create(c, sql, run, err);
    conn_reply reply;

    *busy = false;
    /* BEGIN, the lock, the objects, COMMIT: the first failure names the outcome. */
    for (int i = 0; ok && i < HISTORY_CREATE_COUNT + 3; i++) {
        if (!history_next_ok(c, &reply, err)) {
            *busy = i == 1 && strcmp(err->sqlstate, LOCK_SQLSTATE_BUSY) == 0;
            if (*busy)
                error_clear(err);
            else if (err->exit_code == PGSTEP_EXIT_STEP_FAILED)
                error_hint(err, "pgstep could not create its history table.");
            ok = *busy;
            break;
        }
        conn_reply_clear(&reply);
    }
    if (!conn_is_broken(c)) {
        pgstep_error ignored;

        error_clear(&ignored);
        if (!history_drain(c, ok ? err : &ignored) || !conn_pipeline_exit(c, ok ? err : &ignored) ||
            !conn_end_transaction(c, ok ? err : &ignored))
            ok = false;
    }
    return ok;
}

/* The kind and version of step s as history rows hold them. */
static const char *history_kind(const step *s)
{
    return s->kind == STEP_VERSIONED ? "V" : "R";
}

bool history_send_step_begin(conn *c, const history_sql *sql, const history_run *run, const step *s,
                             const char *checksum, pgstep_error *err)
{
    char version[HISTORY_INT_TEXT];
    const char *params[] = {run->lock_key,    history_kind(s), NULL,
                            s->description,   checksum,        run->statement_timeout,
                            run->lock_timeout};

    snprintf(version, sizeof(version), "%lld", s->version);
    params[2] = s->kind == STEP_VERSIONED ? version : NULL;
    return conn_pipeline_send(c, sql->step_begin, 7, params, err);
}

history_begin history_step_begin_outcome(const history_run *run, const conn_reply *reply)
{
    const pgstep_error *e = &reply->error;
    char own[sizeof(HISTORY_APPLIED_BY) + sizeof(run->run_id) + 1];

    if (reply->kind == CONN_REPLY_OK)
        return HISTORY_BEGIN_OK;
    if (reply->kind != CONN_REPLY_ERROR)
        return HISTORY_BEGIN_FAILED;
    if (strcmp(e->sqlstate, LOCK_SQLSTATE_BUSY) == 0)
        return HISTORY_BEGIN_LOCK_BUSY;
    if (strcmp(e->sqlstate, HISTORY_SQLSTATE_APPLIED) != 0)
        return HISTORY_BEGIN_FAILED;
    snprintf(own, sizeof(own), HISTORY_APPLIED_BY "%s.", run->run_id);
    return strcmp(e->detail, own) == 0 ? HISTORY_BEGIN_APPLIED_BY_RUN
                                       : HISTORY_BEGIN_APPLIED_BY_OTHER;
}

bool history_send_step_end(conn *c, const history_sql *sql, const history_run *run, const step *s,
                           const char *checksum, long long duration_ms, pgstep_error *err)
{
    char version[HISTORY_INT_TEXT];
    char duration[HISTORY_INT_TEXT];
    const char *params[] = {history_kind(s), NULL,           s->description,
                            s->file_name,    checksum,       NULL,
                            run->run_id,     PGSTEP_VERSION, run->host};

    snprintf(version, sizeof(version), "%lld", s->version);
    snprintf(duration, sizeof(duration), "%lld", duration_ms);
    params[1] = s->kind == STEP_VERSIONED ? version : NULL;
    params[5] = duration_ms >= 0 ? duration : NULL;
    return conn_pipeline_send(c, sql->step_end, 9, params, err);
}

long long history_step_end_duration(const conn_reply *reply)
{
    const char *v = conn_rows_value(reply->rows, 0, 0);

    return v ? strtoll(v, NULL, 10) : -1;
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
