/* Advisory locks: the key, the transaction-level try, and the session-level lock with the
 * keepalives that bound how long a vanished client's backend can keep it. */
#include "pgstep/lock.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pgstep/exitcode.h"

/* The lateral reference to l makes the lock come first. Settings are given the client's values
 * ($2..$5) wherever the session's are looser (0 stands for the system's, which SHOW reports in
 * their place), and their names are returned for the release to restore. */
static const char lock_session_take_sql[] =
    "WITH l AS (SELECT pg_catalog.pg_try_advisory_lock($1::bigint) AS locked)"
    " SELECT l.locked, t.names FROM l, LATERAL"
    " (SELECT pg_catalog.array_agg(k.name)"
    "   FILTER (WHERE pg_catalog.set_config(k.name, k.value::text, false) IS NOT NULL) AS names"
    "  FROM (VALUES ('tcp_keepalives_idle', $2::int), ('tcp_keepalives_interval', $3::int),"
    "   ('tcp_keepalives_count', $4::int), ('tcp_user_timeout', $5::int)) AS k(name, value),"
    "  LATERAL (SELECT pg_catalog.current_setting(k.name, true) AS shown) s"
    "  WHERE l.locked AND k.value > 0"
    "   AND CASE WHEN s.shown ~ '^[0-9]+$' THEN s.shown::int NOT BETWEEN 1 AND k.value END) t";
/* Restores only if the unlock released the lock: a session that did not hold it did not tighten
 * anything either. */
static const char lock_session_release_sql[] =
    "WITH u AS (SELECT pg_catalog.pg_advisory_unlock($1::bigint) AS unlocked)"
    " SELECT u.unlocked, t.restored FROM u, LATERAL"
    " (SELECT pg_catalog.count(pg_catalog.set_config(s.name, s.reset_val, false)) AS restored"
    "  FROM pg_catalog.pg_settings s WHERE u.unlocked AND s.name = ANY ($2::text[])) t";

void lock_key(const char *name, char out[LOCK_KEY_TEXT])
{
    unsigned char hash[8];
    uint64_t key = 0;

    /* Namespaced so that pgstep's keys do not collide with small integers other tools use. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(hash));
    crypto_generichash_update(&st, (const unsigned char *)"pgstep lock ", 12);
    crypto_generichash_update(&st, (const unsigned char *)name, strlen(name));
    crypto_generichash_final(&st, hash, sizeof(hash));
    for (size_t i = 0; i < sizeof(hash); i++)
        key = key << 8 | hash[i];
    snprintf(out, LOCK_KEY_TEXT, "%" PRId64, (int64_t)key);
}

static bool lock_true(const conn_rows *rows)
{
    const char *v = conn_rows_value(rows, 0, 0);

    return v && strcmp(v, "t") == 0;
}

bool lock_session_take(conn *c, const char *key, keepalive in_effect, bool *locked,
                       char **tightened, pgstep_error *err)
{
    char values[KEEPALIVE_SETTINGS][16];
    const char *params[KEEPALIVE_SETTINGS + 1] = {key};
    const char *names;
    conn_rows *rows;

    for (int i = 0; i < KEEPALIVE_SETTINGS; i++) {
        snprintf(values[i], sizeof(values[i]), "%d", in_effect.value[i]);
        params[i + 1] = values[i];
    }
    *tightened = NULL;
    if (!conn_query(c, lock_session_take_sql, KEEPALIVE_SETTINGS + 1, params, &rows, err))
        return false;
    *locked = lock_true(rows);
    names = conn_rows_value(rows, 0, 1);
    if (names && !(*tightened = strdup(names))) {
        conn_rows_free(rows);
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    conn_rows_free(rows);
    return true;
}

bool lock_session_release(conn *c, const char *key, const char *tightened, bool *released,
                          pgstep_error *err)
{
    const char *params[] = {key, tightened};
    conn_rows *rows;

    *released = false;
    if (!conn_query(c, lock_session_release_sql, 2, params, &rows, err))
        return false;
    *released = lock_true(rows);
    conn_rows_free(rows);
    return true;
}
