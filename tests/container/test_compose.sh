#!/usr/bin/env bash
# container/compose.yaml is a valid Compose file (docker-compose config, no daemon needed),
# every file it references exists, and it keeps the shape local testing relies on: PostgreSQL
# with DocumentDB health-checked with pg_isready, pgstep built from container/Containerfile and
# started only once PostgreSQL is healthy, the password as a file secret, pgstep unprivileged.
set -euo pipefail
# shellcheck source=tests/container/lib.sh
. "$(dirname "$0")/lib.sh"

need_command docker-compose
need_command python3
compose=$repo_root/container/compose.yaml

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

docker-compose -f "$compose" config -q
ok "docker-compose config -q"

docker-compose -f "$compose" config >"$work/resolved.yaml"
python3 - "$work/resolved.yaml" "$repo_root" <<'PY'
import os, sys, yaml

cfg, root = yaml.safe_load(open(sys.argv[1])), sys.argv[2]
problems = []
def check(cond, msg):
    if not cond:
        problems.append(msg)

services = cfg.get("services", {})
check(set(services) == {"postgres", "pgstep"}, f"services postgres and pgstep (found {sorted(services)})")
pg, step = services.get("postgres", {}), services.get("pgstep", {})

check("documentdb" in pg.get("image", ""), f"postgres runs a DocumentDB image ({pg.get('image')})")
check(":" in pg.get("image", "").rsplit("/", 1)[-1] and not pg.get("image", "").endswith(":latest"),
      "the PostgreSQL image tag is pinned")
test = pg.get("healthcheck", {}).get("test", [])
check("pg_isready" in " ".join(test), f"postgres health check uses pg_isready ({test})")
env = pg.get("environment", {})
check("POSTGRES_PASSWORD" not in env and env.get("POSTGRES_PASSWORD_FILE", "").startswith("/run/secrets/"),
      "postgres gets its password from a file secret")

check(step.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
      "pgstep depends_on postgres with condition service_healthy")
build = step.get("build", {})
dockerfile = os.path.join(build.get("context", ""), build.get("dockerfile", ""))
check(os.path.realpath(dockerfile) == os.path.realpath(os.path.join(root, "container/Containerfile")),
      f"pgstep is built from container/Containerfile ({dockerfile})")
check(os.path.realpath(build.get("context", "")) == os.path.realpath(root), "build context is the repository root")
check(step.get("user") == "65532:65532", "pgstep runs as 65532:65532")
check(step.get("read_only") is True, "pgstep has a read-only root file system")
check(step.get("cap_drop") == ["ALL"], "pgstep drops all capabilities")
check(not step.get("environment"), "pgstep gets no environment (password is a file)")
secret_names = [s["source"] if isinstance(s, dict) else s for s in step.get("secrets", [])]
check(secret_names, "pgstep mounts the password secret")

# Every bind-mounted or secret file exists.
for name, svc in services.items():
    for v in svc.get("volumes", []):
        src = v.get("source") if isinstance(v, dict) else v.split(":", 1)[0]
        vtype = v.get("type", "bind") if isinstance(v, dict) else ("bind" if src.startswith("/") else "volume")
        if vtype == "bind":
            check(os.path.exists(src), f"{name}: mounted {src} exists")
targets = {}
for v in step.get("volumes", []):
    if isinstance(v, dict):
        targets[v["target"]] = v["source"]
    else:
        src, dst = v.split(":")[:2]
        targets[dst] = src
check("/etc/pgstep/pgstep.conf" in targets, "pgstep.conf mounted at /etc/pgstep/pgstep.conf")
check("/usr/share/pgstep/steps" in targets, "steps mounted at /usr/share/pgstep/steps")
for name, s in cfg.get("secrets", {}).items():
    check(os.path.isfile(s.get("file", "")), f"secret {name}: file {s.get('file')} exists")

if "/etc/pgstep/pgstep.conf" in targets:
    conf = open(targets["/etc/pgstep/pgstep.conf"]).read()
    check('password_file = "/run/secrets/' in conf, "pgstep.conf reads the password from the secret")
    check("host=postgres " in conf, "pgstep.conf connects to the postgres service")
    check("user=" in conf, "pgstep.conf names user= explicitly")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
ok "compose services, health check, dependency, secret and mounted files"

# --- broken copies must be rejected ---------------------------------------------------------------
mkdir -p "$work/container"
cp -r "$repo_root/container/compose" "$work/container/"
sed 's/condition: service_healthy/conditionn: service_healthy/' "$compose" >"$work/container/compose.yaml"
expect_failure "misspelt compose key" 'conditionn|Additional properties|not valid' \
    docker-compose -f "$work/container/compose.yaml" config -q
sed 's/^      interval: 2s$/      interval: [2s]/' "$compose" >"$work/container/compose.yaml"
expect_failure "wrong type in the health check" 'interval|not valid|type' \
    docker-compose -f "$work/container/compose.yaml" config -q

finish
