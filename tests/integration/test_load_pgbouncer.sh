#!/usr/bin/env bash
# Load through PgBouncer in transaction pooling mode: rounds of 16 pgstep runners started together
# (each after a random delay below 100 ms) on a fresh database, sharing a pool of 4 server
# connections. The step set is the one of test_load_runners.sh without its no-transaction steps,
# which need a direct connection: transactional steps of several kinds, then repeatable steps;
# then one repeatable step changes and 16 runners start again. Every runner exits 0, every step
# was applied exactly once (the changed one twice), counted in the history, in a ledger table
# and in the objects the steps create (see tests/lib/load.sh), and the ledger shows no more
# server sessions than the pool holds. PGSTEP_ROUNDS rounds (default 4; the long run is 50),
# seeded by PGSTEP_SEED.
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=tests/lib/load.sh
. "$(dirname "$0")/../lib/load.sh"
# shellcheck source=tests/lib/pgbouncer.sh
. "$(dirname "$0")/../lib/pgbouncer.sh"

pool=4
# check_pooled DB: the steps ran on at most $pool server sessions, which the 16 runners shared.
check_pooled() {
    local sessions
    sessions=$(t_psql "$1" "SELECT count(DISTINCT backend) FROM ledger")
    [ "$sessions" -le "$pool" ] ||
        { echo "the steps ran on $sessions server sessions, more than the pool's $pool"; return 1; }
}

ld_seed
rounds=$(ld_rounds 4)
t_pgbouncer transaction "$pool"
for round in $(seq 1 "$rounds"); do
    ld_round "$round" transactional "$T_BOUNCER_PORT" 16 100 check_pooled
done
ld_summary
t_ok "$rounds rounds of 16 runners through PgBouncer (transaction pooling, pool of $pool):" \
    "every step applied exactly once, every runner exited 0"
