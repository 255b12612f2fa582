#!/usr/bin/env bash
# The pgstep.conf files shipped for Kubernetes (container/kubernetes/base) and for compose
# (container/compose) are accepted by pgstep itself (verify reads the configuration and the step
# set without connecting), together with the step set the image ships, with the pgstep.sum the
# image build writes; the Kubernetes one refuses that set without its manifest (exit 65); a
# misspelt key in a copy is a configuration error (exit 78). PGSTEP_BIN names any pgstep build.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${PGSTEP_BIN:-}
[[ -n $bin && -x $bin ]] || die "PGSTEP_BIN must name a pgstep binary"
steps=$repo_root/sql/documentdb

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The shipped set as the image holds it: without README.md, with the manifest written as the
# Containerfile's build stage writes it.
cp -r "$steps" "$work/steps"
steps=$work/steps
rm -f "$steps/README.md"
env -i "$bin" -c /dev/null -d "$steps" manifest >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; die "pgstep manifest failed over the shipped set"; }
grep -q "^pgstep-manifest 1$" "$steps/pgstep.sum" || die "no manifest written"

for conf in container/kubernetes/base/pgstep.conf container/compose/pgstep.conf; do
    env -i "$bin" -c "$repo_root/$conf" -d "$steps" verify >"$work/out" 2>&1 ||
        { cat "$work/out" >&2; die "pgstep rejects $conf"; }
    ok "pgstep -c $conf verify"
done

grep -q '^  require_manifest = true;$' "$repo_root/container/kubernetes/base/pgstep.conf" ||
    die "the Kubernetes pgstep.conf does not require the manifest"
mv "$steps/pgstep.sum" "$work/pgstep.sum"
rc=0
env -i "$bin" -c "$repo_root/container/kubernetes/base/pgstep.conf" -d "$steps" verify \
    >"$work/out" 2>&1 || rc=$?
[[ $rc -eq 65 ]] || { cat "$work/out" >&2; die "a set without pgstep.sum gave exit $rc, expected 65"; }
grep -q 'has no manifest pgstep.sum' "$work/out" || die "the error does not say why: $(cat "$work/out")"
mv "$work/pgstep.sum" "$steps/pgstep.sum"
ok "the Kubernetes pgstep.conf refuses the set without its pgstep.sum (exit 65)"

sed 's/^  dbname = /  dbnam = /' "$repo_root/container/kubernetes/base/pgstep.conf" >"$work/bad.conf"
rc=0
env -i "$bin" -c "$work/bad.conf" -d "$steps" verify >"$work/out" 2>&1 || rc=$?
[[ $rc -eq 78 ]] || { cat "$work/out" >&2; die "a misspelt key gave exit $rc, expected 78"; }
grep -q 'dbnam' "$work/out" || die "the error does not name the key: $(cat "$work/out")"
ok "a misspelt key is a configuration error (exit 78)"

finish
