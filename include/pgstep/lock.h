/* The advisory locks that keep runners apart: a 64-bit key derived from lock.name, tried (never
 * waited for inside a transaction), at transaction level for transactional steps and the history's
 * creation, at session level around a no-transaction step. */
#ifndef PGSTEP_LOCK_H
#define PGSTEP_LOCK_H

#include <stdbool.h>

#include "pgstep/conn.h"
#include "pgstep/error.h"
#include "pgstep/keepalive.h"

/* Room for the key as decimal text. */
#define LOCK_KEY_TEXT 24

/* SQLSTATE raised when another runner holds the lock. */
#define LOCK_SQLSTATE_BUSY "PGS01"

/* PL/pgSQL statements that take the transaction-level lock whose key is the SQL expression KEY,
 * or raise LOCK_SQLSTATE_BUSY: no transaction ever waits for it. A printf format (its %%). */
#define LOCK_TRY_OR_RAISE(key)                                                                     \
    "IF NOT pg_catalog.pg_try_advisory_xact_lock(" key ") THEN\n"                                  \
    "        RAISE EXCEPTION 'pgstep: advisory lock %% is held by another runner', " key "\n"      \
    "            USING ERRCODE = '" LOCK_SQLSTATE_BUSY "';\n"                                      \
    "    END IF;\n"

/* The key derived from name, as decimal text. */
void lock_key(const char *name, char out[LOCK_KEY_TEXT]);

/* Tries the session-level lock. While it is held, the server's side of the session gets the
 * keepalives in_effect on pgstep's side wherever its own are looser: a backend whose client
 * vanished keeps the lock until it notices, and every run waits for it meanwhile. *tightened
 * (malloc'ed, or NULL) names the settings changed, for lock_session_release. */
bool lock_session_take(conn *c, const char *key, keepalive in_effect, bool *locked,
                       char **tightened, pgstep_error *err);

/* Releases the session-level lock and restores the settings in tightened; *released is false
 * when this session did not hold it (through a transaction-pooling PgBouncer the unlock may
 * reach another server session). */
bool lock_session_release(conn *c, const char *key, const char *tightened, bool *released,
                          pgstep_error *err);

#endif /* PGSTEP_LOCK_H */
