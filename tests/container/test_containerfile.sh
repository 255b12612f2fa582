#!/usr/bin/env bash
# container/Containerfile passes dockerfilelint and has the structure the deployment relies on:
# a Debian build stage that runs scripts/build-static-deps.sh and a PGSTEP_STATIC build, a
# FROM scratch final stage with the binary, the step set and CA certificates, uid 65532, the
# entrypoint, the default command and OCI labels; everything it copies exists and is let
# through by its ignore file. test_image.sh builds the image and runs it.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

need_command python3
npm_setup
containerfile=$repo_root/container/Containerfile

"$PGSTEP_NPM_DIR/node_modules/.bin/dockerfilelint" "$containerfile"
ok "dockerfilelint container/Containerfile"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Parses the Containerfile into stages of (instruction, arguments) and checks them.
structure() {
    python3 - "$1" "$repo_root" <<'PY'
import fnmatch, json, os, re, shlex, sys

path, root = sys.argv[1], sys.argv[2]
lines, buf = [], ""
for raw in open(path):
    line = raw.rstrip("\n")
    if not buf and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if buf and line.lstrip().startswith("#"):
        continue
    if line.endswith("\\"):
        buf += line[:-1] + " "
        continue
    lines.append((buf + line).strip())
    buf = ""

stages = []
for line in lines:
    instr, _, args = line.partition(" ")
    instr = instr.upper()
    if instr == "FROM":
        stages.append({"from": args.split(), "instr": []})
    elif stages:
        stages[-1]["instr"].append((instr, args.strip()))

problems = []
def check(cond, msg):
    if not cond:
        problems.append(msg)

check(len(stages) >= 2, "multi-stage: a build stage and a final stage")
build, final = stages[0], stages[-1]
check(final["from"][0] == "scratch", f"final stage is FROM scratch (found {final['from']})")
check("AS" in [w.upper() for w in build["from"]], "the build stage is named")
build_name = build["from"][-1]
run_text = " ".join(a for i, a in build["instr"] if i == "RUN")
check("scripts/build-static-deps.sh" in run_text, "build stage runs scripts/build-static-deps.sh")
check("-DPGSTEP_STATIC=ON" in run_text, "build stage configures with -DPGSTEP_STATIC=ON")
check("statically linked" in run_text, "build stage checks that the binary is statically linked")
check(re.search(r"/rootfs/usr/local/bin/pgstep", run_text), "binary installed to /usr/local/bin/pgstep")
check("/rootfs/etc/ssl/certs/ca-certificates.crt" in run_text, "CA certificates in the image")
check(re.search(r"/build/pgstep .*-d /rootfs/usr/share/pgstep/steps manifest", run_text),
      "the build stage writes pgstep.sum over the shipped step set")

def instrs(stage, name):
    return [a for i, a in stage["instr"] if i == name]

users = instrs(final, "USER")
check(users and users[-1] == "65532:65532", f"final stage runs as USER 65532:65532 (found {users})")
ep = instrs(final, "ENTRYPOINT")
check(ep and json.loads(ep[-1]) == ["/usr/local/bin/pgstep"], f"ENTRYPOINT [\"/usr/local/bin/pgstep\"] (found {ep})")
cmd = instrs(final, "CMD")
check(cmd and json.loads(cmd[-1]) == ["apply"], f"CMD [\"apply\"] (found {cmd})")
labels = " ".join(instrs(final, "LABEL"))
for key in ("title", "description", "version", "revision", "created"):
    check(f"org.opencontainers.image.{key}=" in labels, f"OCI label org.opencontainers.image.{key}")
copies = instrs(final, "COPY")
check(any(c.startswith(f"--from={build_name} ") for c in copies), "final stage copies from the build stage")
check(not instrs(final, "RUN"), "no RUN in the scratch stage")

# Every COPY source of the build stage exists and passes the ignore file (an allowlist).
ignore = [l.strip() for l in open(os.path.join(os.path.dirname(path), "Containerfile.dockerignore"))
          if l.strip() and not l.startswith("#")]
def included(rel):
    keep = True
    parts = rel.rstrip("/").split("/")
    for pat in ignore:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        # a pattern matches the path or one of its parent directories
        if any(fnmatch.fnmatchcase("/".join(parts[:n]), p) for n in range(1, len(parts) + 1)):
            keep = neg
    return keep
steps_src = None
for i, a in build["instr"]:
    if i != "COPY" or a.startswith("--from"):
        continue
    words = shlex.split(a)
    words = [w for w in words if not w.startswith("--")]
    *srcs, dest = words
    for s in srcs:
        check(os.path.exists(os.path.join(root, s)), f"COPY source {s} exists in the repository")
        check(included(s), f"COPY source {s} is let through by Containerfile.dockerignore")
        if dest.rstrip("/") == "/rootfs/usr/share/pgstep/steps":
            steps_src = s
check(steps_src is not None, "the step set is copied to /usr/share/pgstep/steps")
if steps_src and os.path.isdir(os.path.join(root, steps_src)):
    sqls = [f for f in os.listdir(os.path.join(root, steps_src)) if f.endswith(".sql")]
    check(sqls, f"{steps_src} holds .sql steps")
# The Kubernetes configuration points pgstep at the same directory.
conf = open(os.path.join(root, "container/kubernetes/base/pgstep.conf")).read()
check('directory = "/usr/share/pgstep/steps"' in conf, "pgstep.conf's steps.directory is the image's")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
}

structure "$containerfile"
ok "Containerfile structure: build stage, FROM scratch, USER, ENTRYPOINT, CMD, labels, sources"

# --- broken copies must be rejected ---------------------------------------------------------------
cp "$repo_root/container/Containerfile.dockerignore" "$work/"
sed 's/^USER 65532:65532$/USER root/' "$containerfile" >"$work/Containerfile"
expect_failure "USER root in the final stage" 'USER 65532' structure "$work/Containerfile"
sed 's/^FROM scratch$/FROM debian:bookworm/' "$containerfile" >"$work/Containerfile"
expect_failure "a final stage that is not scratch" 'FROM scratch' structure "$work/Containerfile"
sed 's|^COPY sql/documentdb/|COPY sql/nonexistent/|' "$containerfile" >"$work/Containerfile"
expect_failure "a COPY of a missing path" 'sql/nonexistent/ exists' structure "$work/Containerfile"
sed '/pgstep\/steps manifest/d' "$containerfile" >"$work/Containerfile"
expect_failure "an image without pgstep.sum" 'writes pgstep.sum' structure "$work/Containerfile"
sed 's/^CMD \["apply"\]$/CMD apply/' "$containerfile" >"$work/Containerfile"
expect_failure "a shell-form CMD" 'CMD|Expecting value' structure "$work/Containerfile"
printf 'FROM scratch\nMAINTAINER nobody\nRUNN true\n' >"$work/Dockerfile.bad"
expect_failure "dockerfilelint on a bad file" 'Issues: [1-9]' \
    "$PGSTEP_NPM_DIR/node_modules/.bin/dockerfilelint" "$work/Dockerfile.bad"

finish
