#!/usr/bin/env bash
# Heap per idle Socket.IO socket, from valgrind's massif: one backend under massif
# (SQLite, its own throwaway Redis), CLIENTS clients connected and joined by the chat
# load generator, no traffic. Massif snapshots are taken (through vgdb) once the rooms
# exist and once every client has joined; the difference divided by CLIENTS is the
# heap per socket, printed with the allocation sites that grew (bench/massif-sites.py).
# SQLite's page cache grows with the handshakes' queries too (bounded, not per socket):
# it is shown as its own site.
#
#   bench/heap-profile.sh                              # 500 clients, release build
#   BACKEND_BIN=target/debug/backend bench/heap-profile.sh
#   KEEP=/tmp/heap bench/heap-profile.sh               # keep the snapshots there
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-500}
ROOMS=${ROOMS:-100}
BACKEND_PORT=${BACKEND_PORT:-18083}
REDIS_PORT=${REDIS_PORT:-16393}
TARGET=${CARGO_TARGET_DIR:-target}
BACKEND_BIN=${BACKEND_BIN:-$TARGET/release/backend}
LOADGEN=${LOADGEN:-$TARGET/release/chat-load}

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -p backend -p bench; fi
ulimit -n $((2 * CLIENTS + 1024))

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.massif "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)

DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
  LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 REQUEST_TIMEOUT_SECS=300 \
  HTTP_MAX_CONNECTIONS_PER_IP=0 \
  RUST_LOG=warn \
  valgrind --tool=massif --threshold=0.2 --vgdb=yes --massif-out-file="$work/run.massif" \
  "$BACKEND_BIN" serve >"$work/backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")

for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$BACKEND_PORT/health/live" >/dev/null && break
  sleep 0.2
done

cat >"$work/snap.sh" <<EOF
#!/bin/sh
vgdb --pid=$backend_pid detailed_snapshot "$work/\$1.massif" >/dev/null
EOF
chmod +x "$work/snap.sh"

timeout 900 "$LOADGEN" --url "http://127.0.0.1:$BACKEND_PORT" \
  --redis "redis://127.0.0.1:$REDIS_PORT/0" --clients "$CLIENTS" --rooms "$ROOMS" \
  --publish-rate 1 --duration-secs 0 --handoff-samples 0 --setup-concurrency 8 \
  --snapshot-cmd "$work/snap.sh" >"$work/load.log"

heap() { awk -F= '/^mem_heap_B=/{h=$2} /^mem_heap_extra_B=/{e=$2} END{print h+e}' "$1"; }
before=$(heap "$work/before.massif")
connected=$(heap "$work/connected.massif")
echo "heap (incl. allocator overhead) before clients: $before B; with $CLIENTS clients: $connected B"
awk -v a="$before" -v b="$connected" -v n="$CLIENTS" \
  'BEGIN{printf "heap per connected, joined socket: %.1f KiB\n", (b-a)/n/1024}'
# Where it goes: the allocation sites that grew, per socket.
python3 bench/massif-sites.py "$work/before.massif" "$work/connected.massif" "$CLIENTS"
