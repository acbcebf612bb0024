#!/usr/bin/env bash
# Operations checks that need no Docker engine (none runs on CI machines):
#  1. each image's COPY set, reproduced in a temporary directory, still builds: for the
#     backend `cargo metadata --locked` (a workspace member left out fails here) and
#     `cargo check --locked --offline -p backend`; for the agent-manager its modules
#     import from the copied tree with the pinned packages.
#  2. docker-compose.yml is valid: `docker-compose config` (Debian's docker-compose
#     package; it parses and validates without a daemon), and so is the HAProxy config
#     it mounts (`haproxy -c`).
# What this does not verify: that the base images pull, that `apt-get`/`pip` inside
# them succeed, cargo-chef's layer caching, or a container actually starting.
# Cost on 2 cores after the test builds: ~1 min (the backend crates are checked once
# more at the copied path; dependencies are reused from ./target).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Copies what the Dockerfile's `COPY <src>... <dest>` lines take from the build
# context (not `COPY --from=`) into $2, relative to the image's WORKDIR.
copy_set() {
    python3 - "$1" "$2" <<'PY'
import fnmatch, os, shlex, shutil, sys
dockerfile, out = sys.argv[1], sys.argv[2]
context = os.path.dirname(os.path.abspath(dockerfile))
ignore = []
ignore_file = os.path.join(context, ".dockerignore")
if os.path.exists(ignore_file):
    ignore = [l.strip() for l in open(ignore_file) if l.strip() and not l.startswith(("#", "!"))]
def ignored(rel):
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(os.path.basename(rel), p.removeprefix("**/"))
               for p in ignore)
def copy(src, dest):
    rel = os.path.relpath(src, context)
    if ignored(rel):
        return
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir(src):
            copy(os.path.join(src, name), os.path.join(dest, name))
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)
copied = 0
for line in open(dockerfile):
    words = shlex.split(line, comments=True)
    if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
        continue
    args = [w for w in words[1:] if not w.startswith("--")]
    *sources, dest = args
    for src in sources:
        target = os.path.join(out, dest, os.path.basename(src.rstrip("/"))) if dest.endswith("/") or len(sources) > 1 \
            else os.path.join(out, dest)
        if not os.path.exists(os.path.join(context, src)):
            sys.exit(f"{dockerfile}: COPY source {src} does not exist")
        copy(os.path.join(context, src), os.path.normpath(target))
        copied += 1
if not copied:
    sys.exit(f"{dockerfile}: no COPY lines found")
PY
}

log "backend image: the Dockerfile's COPY set builds the workspace"
copy_set Dockerfile "$tmp/backend"
ensure_build_deps
(cd "$tmp/backend" && cargo metadata --locked --format-version 1 >/dev/null) \
    || die "the Dockerfile's COPY set is not a complete workspace (a member missing from COPY?)"
(cd "$tmp/backend" && CARGO_TARGET_DIR="$ROOT/target" cargo check --locked --offline -q -p backend) \
    || die "the Dockerfile's COPY set does not build"

log "agent-manager image: its COPY set imports with the pinned packages"
ensure_python
copy_set agent-manager/Dockerfile "$tmp/agent"
(
    source agent-manager/scripts/_setup.sh
    ensure_venv requirements.txt
    cd "$tmp/agent"
    AGENT_SERVICE_TOKEN=check "$VENV/bin/python" -c \
        "import app.api.main, app.worker.tasks, app.services.metrics"
) || die "the agent-manager's COPY set does not import"

log "docker-compose.yml is valid"
apt_install docker-compose
JWT_SECRET=ops-check-secret-0123456789abcdef0123 AGENT_SERVICE_TOKEN=check \
    METRICS_TOKEN=ops-check-metrics-token S3_SECRET_ACCESS_KEY=check-secret \
    POSTGRES_PASSWORD=check docker-compose -f docker-compose.yml config -q

log "HAProxy config of docker-compose.yml is valid"
apt_install haproxy
haproxy -c -q -f docs/deploy/haproxy-compose.cfg
log "ops checks passed"
