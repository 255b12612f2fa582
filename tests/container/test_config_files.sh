#!/usr/bin/env bash
# The pgstep.conf files shipped for Kubernetes (container/kubernetes/base) and for compose
# (container/compose) are accepted by pgstep itself (verify reads the configuration and the step
# set without connecting), together with the step set the image ships; a misspelt key in a copy
# is a configuration error (exit 78). PGSTEP_BIN names any pgstep build.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${PGSTEP_BIN:-}
[[ -n $bin && -x $bin ]] || die "PGSTEP_BIN must name a pgstep binary"
steps=$repo_root/sql/documentdb

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for conf in container/kubernetes/base/pgstep.conf container/compose/pgstep.conf; do
    env -i "$bin" -c "$repo_root/$conf" -d "$steps" verify >"$work/out" 2>&1 ||
        { cat "$work/out" >&2; die "pgstep rejects $conf"; }
    ok "pgstep -c $conf verify"
done

sed 's/^  dbname = /  dbnam = /' "$repo_root/container/kubernetes/base/pgstep.conf" >"$work/bad.conf"
rc=0
env -i "$bin" -c "$work/bad.conf" -d "$steps" verify >"$work/out" 2>&1 || rc=$?
[[ $rc -eq 78 ]] || { cat "$work/out" >&2; die "a misspelt key gave exit $rc, expected 78"; }
grep -q 'dbnam' "$work/out" || die "the error does not name the key: $(cat "$work/out")"
ok "a misspelt key is a configuration error (exit 78)"

finish
