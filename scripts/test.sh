#!/usr/bin/env bash
# The whole test suite: unit and integration tests under ctest, once in a plain build and once
# built with AddressSanitizer and UndefinedBehaviorSanitizer, against real PostgreSQL servers
# (and a real DocumentDB for the shipped step set).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
# DocumentDB and its dependencies, built from ../shared/third_party (cached after the first run),
# for the test of the shipped step set.
tests/documentdb/build-deps.sh
jobs=$(nproc)

run_suite() {
    local dir=$1
    shift
    echo "== $dir: $*"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite build-sanitize -DCMAKE_BUILD_TYPE=Debug -DPGSTEP_SANITIZE=ON
