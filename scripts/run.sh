#!/usr/bin/env bash
# `make run`: the whole stack on the embedded defaults (SQLite and files under
# ./data, a local Redis), in the foreground. Ctrl-C stops everything it started:
# the backend, the agent-manager (API and worker) and the Redis it started, if any
# (a Redis that was already running is left alone).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

require_rust
ensure_build_deps
apt_install curl
ensure_redis

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$REDIS_STARTED_PIDFILE" ] && [ -f "$REDIS_STARTED_PIDFILE" ]; then
        log "stopping the redis-server started on port $REDIS_PORT"
        kill "$(cat "$REDIS_STARTED_PIDFILE")" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The same command and feature set as `make test`'s builds (the backend's dev and
# normal dependencies share features), so right after `make test` this reuses every
# built crate instead of rebuilding reqwest and the backend.
log "building the backend"
cargo build --locked -p backend

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT}/0}"
export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"
# Development tokens; set your own in .env for anything shared.
export METRICS_TOKEN="${METRICS_TOKEN:-dev-metrics-token-change-me}"

ensure_python
export AGENT_PORT="${AGENT_PORT:-8100}"
export AGENT_HOST="${AGENT_HOST:-127.0.0.1}"
export AGENT_MANAGER_URL="${AGENT_MANAGER_URL:-http://127.0.0.1:${AGENT_PORT}}"
# One development token shared by the backend and the agent-manager.
export AGENT_SERVICE_TOKEN="${AGENT_SERVICE_TOKEN:-dev-service-token}"
# The worker's Celery banner and task lines are INFO; keep its start-up readable.
export AGENT_LOG_LEVEL="${AGENT_LOG_LEVEL:-WARNING}"
log "starting agent-manager (API and Celery worker) on $AGENT_MANAGER_URL"
agent-manager/scripts/run.sh &
pids+=($!)

base="http://$BIND_ADDR"
log "starting the backend on $base"
target/debug/backend serve &
pids+=($!)

# Next steps, once the backend answers (the agent-manager may still be warming up:
# readiness shows it as "degraded" until its worker answers).
for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$base/health/ready" 2>/dev/null; then
        cat >&2 <<NEXT

  Mocheong is running on $base
    readiness     $base/health/ready
    OpenAPI       $base/api/openapi.json
    metrics       curl -H 'Authorization: Bearer $METRICS_TOKEN' $base/metrics
    first admin   ADMIN_PASSWORD=... target/debug/backend create-admin --email you@example.com
    front end     set CORS_ORIGINS=http://localhost:3000 (comma-separated) in .env
  Data lives in ./data. Ctrl-C stops everything this command started.

NEXT
        break
    fi
    kill -0 "${pids[1]}" 2>/dev/null || break
    sleep 0.2
done
wait -n "${pids[@]}"
