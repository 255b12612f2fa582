#!/usr/bin/env bash
# A PGSTEP_STATIC=ON build gives a stripped, fully static pgstep under 8 MiB that runs with an
# empty environment: the binary the FROM scratch image ships. PGSTEP_BIN names it.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${PGSTEP_BIN:-}
[[ -n $bin && -x $bin ]] || die "PGSTEP_BIN must name the pgstep binary of a PGSTEP_STATIC=ON build"
need_command file
need_command readelf binutils
max=$((8 * 1024 * 1024))

desc=$(file -L "$bin")
grep -q 'statically linked' <<<"$desc" || die "not statically linked: $desc"
ok "statically linked"
grep -q ', stripped' <<<"$desc" || die "not stripped: $desc"
ok "stripped"
if readelf -d "$bin" | grep -q NEEDED; then
    die "has NEEDED entries: $(readelf -d "$bin" | grep NEEDED)"
fi
ok "no shared library dependencies"
size=$(stat -L -c %s "$bin")
((size < max)) || die "$size bytes, more than $max"
ok "size $size bytes (limit $max)"
env -i "$bin" --version >/dev/null || die "$bin --version failed with an empty environment"
ok "--version runs with an empty environment"

finish
