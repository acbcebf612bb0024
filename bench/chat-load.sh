#!/usr/bin/env bash
# Chat relay benchmark: CLIENTS Socket.IO clients in ROOMS rooms on one release
# backend, agent items published into chat:<session> at PUBLISH_RATE per second for
# DURATION seconds; reports delivered items/s, latency p50/p99/max, backend RSS, and
# the backend's hand-off latency (chat-message → the agent receives POST /chat, with
# a fake agent the load generator serves). Loopback only; starts its own throwaway
# Redis and SQLite database and removes them when done.
#
#   bench/chat-load.sh                                  # 5,000 clients, 1,000 rooms
#   CLIENTS=500 ROOMS=100 PUBLISH_RATE=1000 bench/chat-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-5000}
ROOMS=${ROOMS:-1000}
# 4,000 items/s into rooms of 5 clients = 20,000 delivered items/s.
PUBLISH_RATE=${PUBLISH_RATE:-4000}
DURATION=${DURATION:-20}
BACKEND_PORT=${BACKEND_PORT:-18081}
REDIS_PORT=${REDIS_PORT:-16391}
AGENT_PORT=${AGENT_PORT:-18101}
TARGET=${CARGO_TARGET_DIR:-target}

need=$((2 * CLIENTS + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  echo "the hard limit on open files ($hard) is below $need; lower CLIENTS" >&2
  exit 1
fi
ulimit -n "$need"

cargo build --release -p backend -p bench

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)

DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  AGENT_MANAGER_URL="http://127.0.0.1:$AGENT_PORT" \
  JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
  LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 CHAT_RATE_PER_MINUTE=100000 \
  HTTP_MAX_CONNECTIONS_PER_IP=0 REQUEST_TIMEOUT_SECS=120 RUST_LOG="${BACKEND_RUST_LOG:-warn}" \
  "$TARGET/release/backend" serve >"${BACKEND_LOG:-$work/backend.log}" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$BACKEND_PORT/health/live" >/dev/null && break
  sleep 0.2
done

timeout 600 "$TARGET/release/chat-load" --url "http://127.0.0.1:$BACKEND_PORT" \
  --redis "redis://127.0.0.1:$REDIS_PORT/0" --backend-pid "$backend_pid" \
  --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$PUBLISH_RATE" \
  --duration-secs "$DURATION" --agent-port "$AGENT_PORT"
