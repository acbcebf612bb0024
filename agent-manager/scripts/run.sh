#!/usr/bin/env bash
# Start the agent-manager: the FastAPI app (uvicorn, port AGENT_PORT, default 8100)
# and a Celery worker; the script stays in the foreground and stops both together.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

ensure_venv requirements.txt
ensure_redis
cd "$AM_DIR"

if [ -z "${AGENT_SERVICE_TOKEN:-}" ]; then
    export AGENT_SERVICE_TOKEN="dev-service-token"
    log "AGENT_SERVICE_TOKEN not set; using the development token 'dev-service-token'"
fi
export AGENT_REDIS_URL="$REDIS_URL"

"$VENV/bin/celery" -A app.worker.celery_app worker \
    --loglevel "${AGENT_LOG_LEVEL:-INFO}" \
    --queues "${AGENT_QUEUE:-celery}" \
    --concurrency "${AGENT_WORKER_CONCURRENCY:-2}" \
    --without-gossip --without-mingle &
WORKER_PID=$!

"$VENV/bin/uvicorn" app.api.main:app \
    --host "${AGENT_HOST:-0.0.0.0}" --port "${AGENT_PORT:-8100}" \
    --log-level "$(echo "${AGENT_LOG_LEVEL:-INFO}" | tr '[:upper:]' '[:lower:]')" &
API_PID=$!

cleanup() {
    trap - EXIT INT TERM
    kill -TERM "$API_PID" "$WORKER_PID" 2>/dev/null || true
    wait "$API_PID" "$WORKER_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# stay in the foreground until either process ends (or we are signalled), then stop both
status=0
wait -n "$API_PID" "$WORKER_PID" || status=$?
exit "$status"
