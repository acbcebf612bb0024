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
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-500}
ROOMS=${ROOMS:-100}
BACKEND_PORT=${BACKEND_PORT:-18083}
REDIS_PORT=${REDIS_PORT:-16393}
BACKEND_BIN=${BACKEND_BIN:-$TARGET/release/backend}
LOADGEN=${LOADGEN:-$TARGET/release/chat-load}

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -p backend -p bench; fi
open_files $((2 * CLIENTS + 1024)) CLIENTS
keep() { [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$work"/*.massif "$KEEP"/; }; }
after_stop+=(keep)
start_redis "$REDIS_PORT"

env "${BENCH_BACKEND_ENV[@]}" DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
  BIND_ADDR="127.0.0.1:$BACKEND_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" RUST_LOG=warn \
  valgrind --tool=massif --threshold=0.2 --vgdb=yes --massif-out-file="$work/run.massif" \
  "$BACKEND_BIN" serve >"$work/backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_http "http://127.0.0.1:$BACKEND_PORT/health/live" 600 "$work/backend.log"

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
