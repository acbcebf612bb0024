#!/usr/bin/env bash
# `make run`: the whole stack on the embedded defaults (SQLite and files under
# ./data, a local Redis), in the foreground. Ctrl-C stops everything it started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

require_rust
apt_install pkg-config ca-certificates
ensure_redis

log "building the backend"
cargo build --locked -p backend

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT}/0}"
export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ensure_python
export AGENT_PORT="${AGENT_PORT:-8100}"
export AGENT_HOST="${AGENT_HOST:-127.0.0.1}"
export AGENT_MANAGER_URL="${AGENT_MANAGER_URL:-http://127.0.0.1:${AGENT_PORT}}"
# One development token shared by the backend and the agent-manager.
export AGENT_SERVICE_TOKEN="${AGENT_SERVICE_TOKEN:-dev-service-token}"
log "starting agent-manager (API and Celery worker) on $AGENT_MANAGER_URL"
agent-manager/scripts/run.sh &
pids+=($!)

log "starting the backend on http://$BIND_ADDR (health: http://$BIND_ADDR/health/ready)"
target/debug/backend serve &
pids+=($!)
wait -n "${pids[@]}"
