#!/usr/bin/env bash
# Instructions per delivered item, from valgrind's callgrind: one relay (the backend on
# SQLite, or the floor relay) under callgrind with its own throwaway Redis; chat-load
# connects and joins CLIENTS clients in ROOMS rooms, the counters are zeroed once every
# client has joined (`chat-load --snapshot-cmd`), items are published at RATE/s for
# DURATION s, then the counters are dumped. Instruction counts do not depend on the
# machine's load, so two relays can be compared on a busy machine (CPU time cannot).
# The dump is kept for `callgrind_annotate` with KEEP=dir.
#
#   bench/callgrind-relay.sh                         # the backend, release build
#   KIND=floor bench/callgrind-relay.sh              # the floor relay
#   KEEP=/tmp/cg NO_BUILD=1 bench/callgrind-relay.sh
source "$(dirname "$0")/lib.sh"

KIND=${KIND:-backend}
CLIENTS=${CLIENTS:-200}
ROOMS=${ROOMS:-40}
RATE=${RATE:-40}
DURATION=${DURATION:-10}
PORT=${PORT:-18084}
REDIS_PORT=${REDIS_PORT:-16395}
BACKEND_BIN=${BACKEND_BIN:-$TARGET/release/backend}
FLOOR_BIN=${FLOOR_BIN:-$TARGET/release/floor-relay}
LOADGEN=${LOADGEN:-$TARGET/release/chat-load}

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -p backend -p bench; fi
open_files $((2 * CLIENTS + 1024)) CLIENTS
keep() { [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$work"/cg.out* "$KEEP"/; }; }
after_stop+=(keep)
start_redis "$REDIS_PORT"
redis_url="redis://127.0.0.1:$REDIS_PORT/0"

cg=(valgrind --tool=callgrind --callgrind-out-file="$work/cg.out")
extra=()
case $KIND in
  backend)
    env "${BENCH_BACKEND_ENV[@]}" DATABASE_URL="sqlite://$work/bench.db?mode=rwc" \
      DATA_DIR="$work" BIND_ADDR="127.0.0.1:$PORT" REDIS_URL="$redis_url" RUST_LOG=warn \
      "${cg[@]}" "$BACKEND_BIN" serve >"$work/server.log" 2>&1 &
    ;;
  floor)
    "${cg[@]}" "$FLOOR_BIN" --port "$PORT" --redis "$redis_url" \
      >"$work/server.log" 2>&1 &
    rooms=$(python3 -c "import uuid; print(','.join(uuid.uuid4().hex[:26].upper() for _ in range($ROOMS)))")
    extra=(--token x --room-ids "$rooms")
    ;;
  *) echo "KIND is backend or floor" >&2; exit 1 ;;
esac
server_pid=$!
pids+=("$server_pid")

for _ in $(seq 1 600); do
  if [ "$KIND" = backend ]; then
    curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null && break
  else
    grep -q "floor relay on" "$work/server.log" && break
  fi
  sleep 0.2
done

cat >"$work/snap.sh" <<EOF
#!/bin/sh
[ "\$1" = connected ] && callgrind_control -z $server_pid >/dev/null
exit 0
EOF
chmod +x "$work/snap.sh"

timeout 900 "$LOADGEN" --url "http://127.0.0.1:$PORT" --redis "$redis_url" \
  --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$RATE" --duration-secs "$DURATION" \
  --handoff-samples 0 --setup-concurrency 8 --snapshot-cmd "$work/snap.sh" "${extra[@]}" \
  >"$work/load.log"
callgrind_control -d "$server_pid" >/dev/null
sleep 1
delivered=$(awk '/^published/{print $4}' "$work/load.log" | tr -d ,)
grep -E '^(published|latency)' "$work/load.log"
# The dump after the zeroing is the last file written.
dump=$(ls -t "$work"/cg.out* | head -1)
total=$(awk '/^summary:|^totals:/{print $2; exit}' "$dump")
echo "$KIND: $total instructions for $delivered deliveries"
awk -v t="$total" -v d="$delivered" -v k="$KIND" \
  'BEGIN{printf "%s: %.0f instructions per delivered item\n", k, t/d}'
