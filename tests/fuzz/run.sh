#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DPGSTEP_FUZZ=ON, in build-fuzz/) and runs each for SECONDS,
# one after the other, starting from its seed corpus in tests/fuzz/corpus/<target>/. The corpus
# grows in a scratch copy, so the tree is not written. A finding stops the run: its input is kept
# in build-fuzz/findings/ and the exit status is 1.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]    (targets: split substitute step_name directives
#                                             stepfile config manifest; default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(split substitute step_name directives stepfile config manifest)
build=${PGSTEP_FUZZ_BUILD:-$root/build-fuzz}

CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPGSTEP_FUZZ=ON \
    -DPGSTEP_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# Leaks in libconfig itself, not pgstep's, are listed in lsan.supp.
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp
findings=$build/findings
mkdir -p "$findings"

for t in "${targets[@]}"; do
    seeds=$root/tests/fuzz/corpus/$t
    [ -d "$seeds" ] || { echo "run.sh: no fuzz target \"$t\"" >&2; exit 64; }
    mkdir -p "$scratch/$t/corpus" "$scratch/$t/work"
    cp "$seeds"/* "$scratch/$t/corpus/"
    echo "== fuzz_$t: ${seconds} s from $(find "$seeds" -type f | wc -l) seeds"
    start=$(date +%s)
    # The targets' own output (the step set's log lines) is dropped; libFuzzer's and the
    # sanitizers' reports, with the line of a failed property in their stack, are kept. The config
    # target follows @include paths from its working directory, the scratch one; the targets'
    # scratch files go there too, also when a finding stops them.
    if ! (cd "$scratch/$t/work" &&
          TMPDIR="$scratch/$t" "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
              -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$findings/$t-" \
              "$scratch/$t/corpus" 2>"$scratch/$t/log"); then
        tail -n 60 "$scratch/$t/log" >&2
        echo "run.sh: fuzz_$t found a problem after $(($(date +%s) - start)) s; input in $findings" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$scratch/$t/log" || true
    echo "fuzz_$t: no finding in $(($(date +%s) - start)) s, corpus $(find "$scratch/$t/corpus" -type f | wc -l) inputs"
done
