#!/usr/bin/env bash
# Idle SSE benchmark: STREAMS (default 10000) streams on one release backend, its
# memory, and the time one event takes to reach all of them. Loopback only; starts
# its own throwaway Redis and SQLite database and removes them when done.
#
#   bench/sse-idle.sh                 # 10,000 streams over 100 users
#   STREAMS=2000 USERS=20 bench/sse-idle.sh
#   HTTP2=200 bench/sse-idle.sh       # 200 streams per HTTP/2 connection
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-10000}
USERS=${USERS:-100}
BACKEND_PORT=${BACKEND_PORT:-18080}
REDIS_PORT=${REDIS_PORT:-16390}
TARGET=${CARGO_TARGET_DIR:-target}

# Each stream is one socket on each side; leave head-room for the rest.
need=$((STREAMS + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  echo "the hard limit on open files ($hard) is below $need; lower STREAMS" >&2
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
  --daemonize no --maxclients 1000 >"$work/redis.log" 2>&1 &
pids+=($!)

DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
  LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 \
  REQUEST_TIMEOUT_SECS=120 RUST_LOG=warn \
  "$TARGET/release/backend" serve >"$work/backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$BACKEND_PORT/health/ready" >/dev/null && break
  sleep 0.2
done

timeout 600 "$TARGET/release/sse-idle" --base "http://127.0.0.1:$BACKEND_PORT" \
  --redis "redis://127.0.0.1:$REDIS_PORT/0" --pid "$backend_pid" \
  --streams "$STREAMS" --users "$USERS" --budget-secs 540 ${HTTP2:+--http2 "$HTTP2"}
