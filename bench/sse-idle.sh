#!/usr/bin/env bash
# Idle SSE benchmark: STREAMS (default 10000) streams on one release backend, its
# memory, and the time one event takes to reach all of them. Loopback only; starts
# its own throwaway Redis and SQLite database and removes them when done.
#
#   bench/sse-idle.sh                 # 10,000 streams over 100 users
#   STREAMS=2000 USERS=20 bench/sse-idle.sh
#   HTTP2=200 bench/sse-idle.sh       # 200 streams per HTTP/2 connection
source "$(dirname "$0")/lib.sh"

STREAMS=${STREAMS:-10000}
USERS=${USERS:-100}
BACKEND_PORT=${BACKEND_PORT:-18080}
REDIS_PORT=${REDIS_PORT:-16390}

# Each stream is one socket on each side; leave head-room for the rest.
open_files $((STREAMS + 1024)) STREAMS
cargo build --release -p backend -p bench
start_redis "$REDIS_PORT" --maxclients 1000

env "${BENCH_BACKEND_ENV[@]}" DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" RUST_LOG=warn \
  "$TARGET/release/backend" serve >"$work/backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_http "http://127.0.0.1:$BACKEND_PORT/health/ready" 100 "$work/backend.log"

timeout 600 "$TARGET/release/sse-idle" --base "http://127.0.0.1:$BACKEND_PORT" \
  --redis "redis://127.0.0.1:$REDIS_PORT/0" --pid "$backend_pid" \
  --streams "$STREAMS" --users "$USERS" --budget-secs 540 ${HTTP2:+--http2 "$HTTP2"}
