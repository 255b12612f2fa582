#!/usr/bin/env bash
# The whole test suite under ctest, against real PostgreSQL servers (and a real DocumentDB for
# the shipped step set): once in a plain build, with the server-dependent tests run again
# against PostgreSQL 14, 15, 16, 17 and 18 (the matrix), once built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the packaging tests once more with the fully static binary
# that the container image ships, and with the image itself, built and run with podman. Last,
# each libFuzzer target runs for PGSTEP_FUZZ_SECONDS (default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
# DocumentDB and the dependencies Debian lacks, from ../shared/third_party (cached), and the
# static libpq for the static build (cached).
tests/documentdb/build-deps.sh
scripts/build-static-deps.sh
# PostgreSQL 14 to 18 server binaries for the matrix (cached).
tests/versions/install-servers.sh
jobs=$(nproc)

# run_suite BUILD_DIR [CMAKE_ARGS...] [-- CTEST_ARGS...]
run_suite() {
    local dir=$1 cmake_args=() ctest_args=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do cmake_args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    ctest_args=("$@")
    echo "== $dir: ${cmake_args[*]} ${ctest_args[*]}"
    cmake -S . -B "$dir" "${cmake_args[@]}" >/dev/null
    cmake --build "$dir" -j"$jobs"
    (cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}")
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -- -LE matrix
# The matrix: the server-dependent tests against PostgreSQL 14 to 18. They spend most of their
# time waiting (for servers, sleeps, timeouts), so twice as many run at once as there are CPUs.
echo "== build: the matrix"
(cd build && ctest --output-on-failure -j$((jobs * 2)) -L matrix)
# Under the sanitizers against Debian's PostgreSQL only: what differs by server version is
# covered by the plain build's matrix.
run_suite build-sanitize -DCMAKE_BUILD_TYPE=Debug -DPGSTEP_SANITIZE=ON -DPGSTEP_TEST_PG_VERSIONS=
run_suite build-static -DCMAKE_BUILD_TYPE=Release -DPGSTEP_STATIC=ON -- -L container
tests/fuzz/run.sh "${PGSTEP_FUZZ_SECONDS:-60}"
