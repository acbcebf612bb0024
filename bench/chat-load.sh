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
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-5000}
ROOMS=${ROOMS:-1000}
# 4,000 items/s into rooms of 5 clients = 20,000 delivered items/s.
PUBLISH_RATE=${PUBLISH_RATE:-4000}
DURATION=${DURATION:-20}
BACKEND_PORT=${BACKEND_PORT:-18081}
REDIS_PORT=${REDIS_PORT:-16391}
AGENT_PORT=${AGENT_PORT:-18101}

open_files $((2 * CLIENTS + 1024)) CLIENTS
cargo build --release -p backend -p bench
start_redis "$REDIS_PORT"

backend_log=${BACKEND_LOG:-$work/backend.log}
env "${BENCH_BACKEND_ENV[@]}" DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  AGENT_MANAGER_URL="http://127.0.0.1:$AGENT_PORT" RUST_LOG="${BACKEND_RUST_LOG:-warn}" \
  "$TARGET/release/backend" serve >"$backend_log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_http "http://127.0.0.1:$BACKEND_PORT/health/live" 100 "$backend_log"

timeout 600 "$TARGET/release/chat-load" --url "http://127.0.0.1:$BACKEND_PORT" \
  --redis "redis://127.0.0.1:$REDIS_PORT/0" --backend-pid "$backend_pid" \
  --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$PUBLISH_RATE" \
  --duration-secs "$DURATION" --agent-port "$AGENT_PORT"
