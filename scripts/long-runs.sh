#!/usr/bin/env bash
# The long versions of the reliability tests: the same scripts that ctest runs with short counts,
# here with the counts README's "Reliability" section reports. Builds build/ if needed, starts a
# shared test server as ctest's fixture does, runs each test one after the other, prints its
# summary line, and stops at the first failure (whose message names the seed that replays it).
#
#   scripts/long-runs.sh [TEST...]    (default: every test below; about 50 minutes on 2 cores)
#   PGSTEP_SEED=N scripts/long-runs.sh test_fault_kill    (a given first seed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# TEST=COUNT: trials for the fault tests, rounds for the load tests and the full disk.
declare -A counts=(
    [test_fault_kill]=PGSTEP_TRIALS=300
    [test_fault_server_stop]=PGSTEP_TRIALS=400
    [test_fault_terminate]=PGSTEP_TRIALS=100
    [test_fault_failover]=PGSTEP_TRIALS=20
    [test_fault_disk_full]=PGSTEP_ROUNDS=10
    [test_load_runners]=PGSTEP_ROUNDS=50
    [test_load_pgbouncer]=PGSTEP_ROUNDS=50
    [test_load_many_steps]=""
)
order=(test_fault_kill test_fault_server_stop test_fault_terminate test_fault_failover
    test_fault_disk_full test_load_runners test_load_pgbouncer test_load_many_steps)
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${order[@]}")
for t in "${tests[@]}"; do
    [ -n "${counts[$t]+set}" ] || { echo "long-runs.sh: no long version of \"$t\"" >&2; exit 64; }
done

if [ ! -x build/pgstep ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
fi
state=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-long-runs.XXXXXX")
trap 'bash tests/lib/server-fixture.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
bash tests/lib/server-fixture.sh start "$state"

export PGSTEP_BIN=$root/build/pgstep PGSTEP_TEST_STATE=$state PGSTEP_SOURCE_DIR=$root
export PGSTEP_TEST_SLOWDOWN=1
for t in "${tests[@]}"; do
    echo "== $t ${counts[$t]}"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the count is one NAME=VALUE word, or none
    env ${counts[$t]} bash "tests/integration/$t.sh"
    echo "== $t passed in $(($(date +%s) - start)) s"
done
