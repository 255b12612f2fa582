#!/usr/bin/env bash
# Load: rounds of 16 pgstep runners started together (each after a random delay below 100 ms) on
# a fresh database, connected directly. A round's step set is mixed: transactional steps of
# several kinds, no-transaction CREATE INDEX CONCURRENTLY IF NOT EXISTS steps between them, and
# repeatable steps; then one repeatable step changes and 16 runners start again. Every runner
# exits 0, and every step was applied exactly once (the changed one twice): counted in the
# history, in a ledger table every step inserts into, and in the objects the steps create (see
# tests/lib/load.sh). PGSTEP_ROUNDS rounds (default 4; the long run is 50), seeded by
# PGSTEP_SEED.
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/lib/load.sh
. "$(dirname "$0")/../lib/load.sh"

ld_seed
rounds=$(ld_rounds 4)
for round in $(seq 1 "$rounds"); do
    ld_round "$round" mixed "$PGSTEP_TEST_PORT" 16 100
done
ld_summary
t_ok "$rounds rounds of 16 runners: every step applied exactly once, every runner exited 0"
