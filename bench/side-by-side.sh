#!/usr/bin/env bash
# Side by side: the backend (on PostgreSQL), the floor relay (bench/src/floor_relay.rs)
# and the Node peer (socket.io 4 + ioredis, bench/node-peer, installed from npm here),
# each driven by the same load generator with the same traffic: CLIENTS Socket.IO
# clients in ROOMS rooms, items published into chat:<session> at each rate of RATES for
# DURATION seconds. Servers run one at a time, alternating per rate, on one throwaway
# Redis. Prints CPU per delivered item, KiB per socket, the knee (the highest rate with
# >= 99.9% delivered and p99 < 50 ms) and the ratios. Not run in CI.
#
#   bench/side-by-side.sh
#   CLIENTS=2000 ROOMS=400 RATES="2000 5000 8000" DURATION=15 bench/side-by-side.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-2000}
ROOMS=${ROOMS:-400}
RATES=${RATES:-"2000 5000 8000 10000"}
DURATION=${DURATION:-15}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
BENCH_DB=${BENCH_DB:-mocheong_bench_$$}
REDIS_PORT=${REDIS_PORT:-16394}
PORT=${PORT:-18092}
TARGET=${CARGO_TARGET_DIR:-target}

ulimit -n $((2 * CLIENTS + 1024))
cargo build --release -p backend -p bench
command -v node >/dev/null || { echo "node is needed (apt-get install nodejs npm)" >&2; exit 1; }
(cd bench/node-peer && npm install --no-audit --no-fund --silent)

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $BENCH_DB"
redis_url="redis://127.0.0.1:$REDIS_PORT/0"

start() {
  case $1 in
    backend)
      DATABASE_URL="${PG_ADMIN_URL%/*}/$BENCH_DB" DATA_DIR="$work" BIND_ADDR="127.0.0.1:$PORT" \
        REDIS_URL="$redis_url" JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
        LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 RUST_LOG=warn \
        "$TARGET/release/backend" serve >"$work/backend.log" 2>&1 &
      server_pid=$!
      until curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null; do sleep 0.2; done ;;
    floor)
      "$TARGET/release/floor-relay" --port "$PORT" --redis "$redis_url" >"$work/floor.log" 2>&1 &
      server_pid=$! ; sleep 1 ;;
    node)
      PORT=$PORT REDIS_URL="$redis_url" node bench/node-peer/server.js >"$work/node.log" 2>&1 &
      server_pid=$! ; sleep 2 ;;
  esac
}

# Rooms for the peers: page ids of the same shape as the backend's (ULIDs).
peer_rooms=$(python3 -c "import uuid; print(','.join(uuid.uuid4().hex[:26].upper() for _ in range($ROOMS)))")

for rate in $RATES; do
  for kind in floor backend node; do
    start "$kind"
    extra=(--token x --room-ids "$peer_rooms")
    [ "$kind" = backend ] && extra=()
    timeout 600 "$TARGET/release/chat-load" --url "http://127.0.0.1:$PORT" --redis "$redis_url" \
      --backend-pid "$server_pid" --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$rate" \
      --duration-secs "$DURATION" --handoff-samples 0 "${extra[@]}" >"$work/$kind-$rate.log" 2>&1 || true
    echo "$kind $(grep '^RESULT' "$work/$kind-$rate.log" || echo "RESULT rate=$rate failed")" | tee -a "$work/results"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  done
done

echo
awk '
  { kind = $1; delete f; for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    r = f["rate"]; rates[r] = 1
    if (!("cpu_us" in f)) { line[kind, r] = sprintf("%-8s %6s/s  failed (see its log)", kind, r); next }
    cpu[kind, r] = f["cpu_us"]
    if (f["delivered_pct"] >= 99.9 && f["p99_ms"] < 50 && r + 0 > knee[kind]) knee[kind] = r + 0
    line[kind, r] = sprintf("%-8s %6s/s  delivered %7s%%  p99 %8s ms  CPU %6s µs/delivery  %5s KiB/socket",
                            kind, r, f["delivered_pct"], f["p99_ms"], f["cpu_us"], f["kib_per_socket"]) }
  function ratio(kind, r) { return ((kind, r) in cpu) ? sprintf("%.2f", cpu[kind, r] / cpu["floor", r]) : "n/a" }
  END {
    n = asorti(rates, sorted, "@ind_num_asc")
    for (i = 1; i <= n; i++) { r = sorted[i]
      for (k = 1; k <= 3; k++) { kind = (k == 1 ? "floor" : k == 2 ? "backend" : "node"); if ((kind, r) in line) print line[kind, r] }
      if (cpu["floor", r] > 0) printf "         ratios at %s/s: backend/floor CPU %s, node/floor CPU %s\n", r, ratio("backend", r), ratio("node", r)
    }
    printf "knee (>= 99.9%% delivered, p99 < 50 ms): floor %s/s, backend %s/s, node %s/s", knee["floor"] + 0, knee["backend"] + 0, knee["node"] + 0
    if (knee["node"] > 0) printf "; backend/node %.2f", knee["backend"] / knee["node"]
    print ""
  }' "$work/results"
