#!/usr/bin/env bash
# The Kubernetes manifests in container/kubernetes render offline with Debian 12's kubectl
# kustomize (kustomize v2, what scripts/install-deps.sh installs) and, where the machine also
# has a kubectl with kustomize v5 or later (the generation Argo CD and Flux use), render to the
# same objects with it; they pass yamllint, match the Kubernetes, Argo CD and Flux types
# strictly (no unknown fields, no wrong types), keep one Job spec for the Jobs and the CronJob,
# and carry the settings the deployment relies on; deliberately broken copies are rejected.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

need_command yamllint
kubectl=$(debian_kubectl)
# Another kubectl on PATH with kustomize v5 or later, if the machine has one: a second renderer.
kubectl_v5=
if other=$(command -v kubectl) && [[ $(readlink -f "$other") != $(readlink -f "$kubectl") ]]; then
    major=$("$other" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
    [[ ${major:-0} -lt 5 ]] || kubectl_v5=$other
fi
need_command python3
npm_setup
validator=(node "$container_tests_dir/validate-manifests.mjs")
k8s=$repo_root/container/kubernetes
overlays=(base argocd flux flux-system)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# kubectl kustomize DIR with Debian's kubectl (KUBECTL overrides), proved offline: in a network
# namespace of its own when we may create one.
render() {
    local k=${KUBECTL:-$kubectl}
    if [[ $(id -u) -eq 0 ]] && unshare --net true 2>/dev/null; then
        unshare --net "$k" kustomize "$1"
    else
        "$k" kustomize "$1"
    fi
}

# --- yamllint ---------------------------------------------------------------------------------
yamllint --strict -c "$container_tests_dir/yamllint.yaml" "$k8s" "$repo_root/container/compose.yaml"
ok "yamllint: container/kubernetes and container/compose.yaml"

# --- render every overlay offline ---------------------------------------------------------------
for o in "${overlays[@]}"; do
    render "$k8s/$o" >"$work/$o.yaml" || die "kubectl kustomize container/kubernetes/$o failed"
    [[ -s $work/$o.yaml ]] || die "kubectl kustomize container/kubernetes/$o rendered nothing"
    ok "kubectl kustomize container/kubernetes/$o renders (Debian's kubectl)"
done
# The same objects with kustomize v5, but for the generated ConfigMap's name: its hash suffix
# is computed differently by each kustomize generation. v5 warns on stderr about the v1beta1
# fields kept for kustomize v2 (bases, commonLabels, patchesStrategicMerge, patchesJson6902).
if [[ -n $kubectl_v5 ]]; then
    for o in "${overlays[@]}"; do
        KUBECTL=$kubectl_v5 render "$k8s/$o" >"$work/$o.v5.yaml" 2>"$work/$o.v5.err" ||
            { cat "$work/$o.v5.err" >&2; die "kustomize v5 ($kubectl_v5) cannot render container/kubernetes/$o"; }
        if grep -v "^# Warning: '[A-Za-z0-9]*' is deprecated" "$work/$o.v5.err" | grep -q .; then
            cat "$work/$o.v5.err" >&2
            die "kustomize v5 ($kubectl_v5) complains about container/kubernetes/$o"
        fi
        diff <(sed -E 's/pgstep-config-[a-z0-9]{10}/pgstep-config-HASH/' "$work/$o.yaml") \
             <(sed -E 's/pgstep-config-[a-z0-9]{10}/pgstep-config-HASH/' "$work/$o.v5.yaml") >&2 ||
            die "container/kubernetes/$o renders differently with kustomize v5 ($kubectl_v5)"
    done
    ok "kustomize v5 ($kubectl_v5) renders the same objects"
fi

# --- strict validation of what is rendered ------------------------------------------------------
"${validator[@]}" "$work/flux-system.yaml"
"${validator[@]}" --same-pod-template "$work/base.yaml" "$work/argocd.yaml" "$work/flux.yaml"
ok "rendered objects are valid; Jobs and CronJobs share one pod template and Job spec"

# --- what the deployment relies on --------------------------------------------------------------
python3 - "$work" "$repo_root/include/pgstep/exitcode.h" <<'PY'
import re, sys, yaml

work, exitcode_h = sys.argv[1], sys.argv[2]
codes = {m.group(1): int(m.group(2)) for m in
         re.finditer(r"PGSTEP_EXIT_(\w+)\s*=\s*(\d+)", open(exitcode_h).read())}
problems = []

def check(cond, msg):
    if not cond:
        problems.append(msg)

def objs(name):
    return [o for o in yaml.safe_load_all(open(f"{work}/{name}.yaml")) if o]

def pod_checks(where, job_spec):
    t = job_spec["template"]["spec"]
    c = {c["name"]: c for c in t["containers"]}.get("pgstep")
    check(c is not None, f"{where}: no container named pgstep")
    if c is None:
        return
    check(t.get("restartPolicy") == "Never", f"{where}: podFailurePolicy needs restartPolicy Never")
    psc, csc = t.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    check(psc.get("runAsUser") == 65532, f"{where}: runAsUser 65532")
    check(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities drop ALL")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
          and csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
    check(c.get("terminationMessagePolicy") == "FallbackToLogsOnError", f"{where}: FallbackToLogsOnError")
    check(t.get("automountServiceAccountToken") is False, f"{where}: no service account token")
    check(not c.get("env") and not c.get("envFrom"), f"{where}: no environment (password is a file)")
    vols = {v["name"]: v for v in t.get("volumes", [])}
    secrets = {v["secret"]["secretName"]: v["secret"] for v in vols.values() if "secret" in v}
    su = [s for n, s in secrets.items() if n.endswith("-superuser")]
    ca = [s for n, s in secrets.items() if n.endswith("-ca")]
    check(len(su) == 1 and [i["key"] for i in su[0].get("items", [])] == ["password"],
          f"{where}: only the password key of <cluster>-superuser is mounted")
    check(len(ca) == 1 and [i["key"] for i in ca[0].get("items", [])] == ["ca.crt"],
          f"{where}: only ca.crt of <cluster>-ca is mounted")
    for m in c.get("volumeMounts", []):
        check(m.get("readOnly") is True, f"{where}: volume {m['name']} is mounted read-only")
    check(job_spec.get("backoffLimit", 0) > 0, f"{where}: backoffLimit")
    check(job_spec.get("activeDeadlineSeconds", 0) > 0, f"{where}: activeDeadlineSeconds")
    rules = job_spec.get("podFailurePolicy", {}).get("rules", [])
    def codes_for(action):
        return sorted(v for r in rules if r["action"] == action and "onExitCodes" in r
                      for v in r["onExitCodes"]["values"])
    check(codes_for("FailJob") == sorted([codes["STEP_FAILED"], codes["USAGE"], codes["STEPSET"],
                                          codes["CONFIG"]]),
          f"{where}: FailJob on failed steps, usage, step set and configuration errors "
          f"({codes_for('FailJob')})")
    check(codes_for("Count") == sorted([codes["NOT_READY"], codes["NOMEM"], codes["IO"],
                                        codes["TEMPFAIL"]]),
          f"{where}: Count on not-ready, out-of-memory, output and temporary failures "
          f"({codes_for('Count')})")
    for r in rules:
        if "onExitCodes" in r:
            check(r["onExitCodes"].get("containerName") == "pgstep", f"{where}: rule names the container")

def conf_checks(where, cms):
    confs = [cm["data"]["pgstep.conf"] for cm in cms if "pgstep.conf" in cm.get("data", {})]
    check(len(confs) == 1, f"{where}: one ConfigMap with pgstep.conf")
    if not confs:
        return
    conf = confs[0]
    conninfo = re.search(r'conninfo\s*=\s*"([^"]*)"', conf)
    check(conninfo is not None, f"{where}: conninfo set")
    if conninfo:
        ci = dict(kv.split("=", 1) for kv in conninfo.group(1).split())
        check(ci.get("sslmode") == "verify-full", f"{where}: sslmode verify-full")
        check(ci.get("host", "").endswith("-rw"), f"{where}: host is the <cluster>-rw Service")
        check("user" in ci, f"{where}: user= explicit (no passwd lookup in the image)")
        check("password" not in ci, f"{where}: no password in conninfo")
    check(re.search(r'dbname\s*=\s*"[^"*]+"', conf), f"{where}: dbname set explicitly")
    check(re.search(r'password_file\s*=\s*"/', conf), f"{where}: password_file set")
    check('termination_log = "/dev/termination-log"' in conf, f"{where}: termination log")

for overlay in ("base", "argocd", "flux"):
    o = objs(overlay)
    jobs = [x for x in o if x["kind"] == "Job"]
    crons = [x for x in o if x["kind"] == "CronJob"]
    check(len(jobs) == 1 and len(crons) == 1, f"{overlay}: one Job and one CronJob")
    for j in jobs:
        pod_checks(f"{overlay} Job", j["spec"])
        ann = j["metadata"].get("annotations", {})
        if overlay == "argocd":
            check(ann.get("argocd.argoproj.io/hook") == "PostSync", "argocd: PostSync hook")
            check(ann.get("argocd.argoproj.io/hook-delete-policy") == "BeforeHookCreation",
                  "argocd: hook-delete-policy BeforeHookCreation")
            check("argocd.argoproj.io/sync-wave" in ann, "argocd: sync-wave")
        if overlay == "flux":
            check(ann.get("kustomize.toolkit.fluxcd.io/force") == "enabled", "flux: force annotation")
        if overlay in ("base", "argocd"):
            check(j["spec"].get("ttlSecondsAfterFinished", 0) > 0, f"{overlay}: ttlSecondsAfterFinished")
    for cj in crons:
        check(cj["spec"].get("suspend") is True, f"{overlay}: CronJob suspended")
        pod_checks(f"{overlay} CronJob", cj["spec"]["jobTemplate"]["spec"])
        check(cj["spec"]["jobTemplate"]["spec"].get("ttlSecondsAfterFinished", 0) > 0,
              f"{overlay}: manual runs are cleaned up (ttlSecondsAfterFinished)")
    conf_checks(overlay, [x for x in o if x["kind"] == "ConfigMap"])

fk = [x for x in objs("flux-system") if x["kind"] == "Kustomization"]
check(len(fk) == 1, "flux-system: one Flux Kustomization")
for k in fk:
    check(k["spec"].get("dependsOn"), "flux-system: dependsOn the cluster's Kustomization")
    check(k["spec"].get("wait") is True, "flux-system: wait for the Job")
    check(k["spec"].get("path") == "./container/kubernetes/flux", "flux-system: path of the flux overlay")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
ok "Jobs, CronJob, ConfigMap and Flux Kustomization carry the required settings"

# --- broken copies must be rejected ---------------------------------------------------------------
broken() { # NAME: a fresh copy of container/kubernetes under $work/NAME
    rm -rf "${work:?}/$1"
    mkdir -p "$work/$1"
    cp -r "$k8s/." "$work/$1/"
}

broken syntax
printf '      bad: [unclosed\n' >>"$work/syntax/base/job.yaml"
expect_failure "YAML syntax error (yamllint)" 'syntax error' \
    yamllint -c "$container_tests_dir/yamllint.yaml" "$work/syntax/base/job.yaml"
expect_failure "YAML syntax error (validator)" 'YAML' "${validator[@]}" "$work/syntax/base/job.yaml"
expect_failure "YAML syntax error (kustomize)" '.' render "$work/syntax/argocd"

broken field
sed -i 's/^      restartPolicy: Never/      restartPolicyy: Never/' "$work/field/base/job.yaml"
grep -q restartPolicyy "$work/field/base/job.yaml" || die "could not break restartPolicy"
render "$work/field/argocd" >"$work/field.yaml"
expect_failure "misspelt field restartPolicyy" 'restartPolicyy: unknown field' \
    "${validator[@]}" "$work/field.yaml"

broken type
sed -i 's/^  backoffLimit: 4$/  backoffLimit: "six"/' "$work/type/base/job.yaml"
grep -q '"six"' "$work/type/base/job.yaml" || die "could not break backoffLimit"
render "$work/type/flux" >"$work/type.yaml"
expect_failure 'backoffLimit: "six"' 'backoffLimit (must be integer|: expected number)' \
    "${validator[@]}" "$work/type.yaml"

broken flux
sed -i 's/^  dependsOn:/  dependOn:/' "$work/flux/flux-system/pgstep.yaml"
render "$work/flux/flux-system" >"$work/flux.yaml"
expect_failure "misspelt Flux field dependOn" 'dependOn: unknown field' "${validator[@]}" "$work/flux.yaml"

broken kustomization
sed -i 's/^resources:/resourcess:/' "$work/kustomization/base/kustomization.yaml"
expect_failure "misspelt kustomization.yaml field" 'unknown field' render "$work/kustomization/argocd"

broken cronjob
sed -i 's/^      backoffLimit: 4$/      backoffLimit: 5/' "$work/cronjob/base/cronjob.yaml"
grep -q 'backoffLimit: 5' "$work/cronjob/base/cronjob.yaml" || die "could not change the CronJob's backoffLimit"
render "$work/cronjob/argocd" >"$work/cronjob.yaml"
expect_failure "a CronJob whose job spec differs from the Job's" 'jobTemplate.spec differs' \
    "${validator[@]}" --same-pod-template "$work/cronjob.yaml"

python3 - "$work/argocd.yaml" "$work/drift.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "CronJob":
        d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] = ["status"]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
expect_failure "CronJob pod template that differs from the Job's" 'pod template differs' \
    "${validator[@]}" --same-pod-template "$work/drift.yaml"

finish
