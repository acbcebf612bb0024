#!/usr/bin/env bash
# Side by side: the backend (on PostgreSQL), the floor relay (bench/src/floor_relay.rs)
# and the Node peer (socket.io 4 + ioredis, bench/node-peer, installed from npm here),
# each driven by the same load generator with the same traffic: CLIENTS Socket.IO
# clients in ROOMS rooms, items published into chat:<session> at each rate of RATES for
# DURATION seconds. Servers run one at a time, alternating per rate, on one throwaway
# Redis. Prints CPU per delivered item, KiB per socket, the knee (the highest rate with
# >= 99.9% delivered and p99 < 50 ms) and the ratios. With DB_DELAY_MS the backend
# runs a second time with PostgreSQL behind a proxy that delays each direction by that
# much (a database one network hop away; bench/delay-proxy.py). Not run in CI.
#
#   bench/side-by-side.sh                                   # 2,000 clients, ~10 minutes
#   CLIENTS=300 ROOMS=60 RATES="200 600" DURATION=5 bench/side-by-side.sh   # smoke run
#   DB_DELAY_MS=1.5 bench/side-by-side.sh                  # also the backend, DB 3 ms away
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-2000}
ROOMS=${ROOMS:-400}
RATES=${RATES:-"2000 5000 8000 10000"}
DURATION=${DURATION:-15}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_DELAY_MS=${DB_DELAY_MS:-}
PROXY_PORT=${PROXY_PORT:-15439}
BENCH_DB=${BENCH_DB:-mocheong_bench_$$}
REDIS_PORT=${REDIS_PORT:-16394}
PORT=${PORT:-18092}
TARGET=${CARGO_TARGET_DIR:-target}

ulimit -n $((2 * CLIENTS + 1024))
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -p backend -p bench; fi
command -v node >/dev/null || { echo "node is needed (apt-get install nodejs npm)" >&2; exit 1; }
[ -d bench/node-peer/node_modules ] ||
  (cd bench/node-peer && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
server_pid=
proxy_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
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
db_url="${PG_ADMIN_URL%/*}/$BENCH_DB"
kinds="floor backend node"
if [ -n "$DB_DELAY_MS" ]; then
  pg_hostport=${PG_ADMIN_URL#*@}; pg_hostport=${pg_hostport%%/*}
  python3 bench/delay-proxy.py "$PROXY_PORT" "${pg_hostport%:*}" "${pg_hostport##*:}" "$DB_DELAY_MS" \
    >"$work/proxy.log" 2>&1 &
  proxy_pid=$!
  kinds="floor backend backend-far node"
fi

# Waits until the server's log shows it listening (or its health answers).
ready() {
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || { echo "$1 exited; its log:" >&2; cat "$2" >&2; exit 1; }
    case $1 in
      backend*) curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null && return ;;
      *) grep -q " on 127.0.0.1:$PORT" "$2" && return ;;
    esac
    sleep 0.2
  done
  echo "$1 did not start; its log:" >&2; cat "$2" >&2; exit 1
}

start() {
  local url=$db_url
  [ "$1" = backend-far ] && url=$(echo "$db_url" | sed "s#@[^/]*/#@127.0.0.1:$PROXY_PORT/#")
  case $1 in
    backend*)
      DATABASE_URL="$url" DATA_DIR="$work" BIND_ADDR="127.0.0.1:$PORT" \
        REDIS_URL="$redis_url" JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
        LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 RUST_LOG=warn \
        HTTP_MAX_CONNECTIONS_PER_IP=0 \
        "$TARGET/release/backend" serve >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
    floor)
      "$TARGET/release/floor-relay" --port "$PORT" --redis "$redis_url" >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
    node)
      PORT=$PORT REDIS_URL="$redis_url" node bench/node-peer/server.js >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
  esac
  ready "$1" "$work/$1.log"
}

# Rooms for the peers: page ids of the same shape as the backend's (ULIDs).
peer_rooms=$(python3 -c "import uuid; print(','.join(uuid.uuid4().hex[:26].upper() for _ in range($ROOMS)))")

for rate in $RATES; do
  for kind in $kinds; do
    start "$kind"
    extra=(--token x --room-ids "$peer_rooms")
    case $kind in backend*) extra=() ;; esac
    timeout 600 "$TARGET/release/chat-load" --url "http://127.0.0.1:$PORT" --redis "$redis_url" \
      --backend-pid "$server_pid" --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$rate" \
      --duration-secs "$DURATION" --handoff-samples 0 "${extra[@]}" >"$work/$kind-$rate.log" 2>&1 || true
    echo "$kind $(grep '^RESULT' "$work/$kind-$rate.log" || echo "RESULT rate=$rate failed")" | tee -a "$work/results"
    grep -q '^RESULT' "$work/$kind-$rate.log" || tail -5 "$work/$kind-$rate.log" >&2
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  done
done

echo
awk '
  { kind = $1; delete f; for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    r = f["rate"]; rates[r] = 1
    if (!("cpu_us" in f)) { line[kind, r] = sprintf("%-11s %6s/s  failed (the tail of its log is above)", kind, r); next }
    cpu[kind, r] = f["cpu_us"]
    if (f["delivered_pct"] >= 99.9 && f["p99_ms"] < 50 && r + 0 > knee[kind]) knee[kind] = r + 0
    line[kind, r] = sprintf("%-11s %6s/s  delivered %7s%%  p99 %8s ms  CPU %6s µs/delivery  %5s KiB/socket",
                            kind, r, f["delivered_pct"], f["p99_ms"], f["cpu_us"], f["kib_per_socket"]) }
  function ratio(kind, r) { return ((kind, r) in cpu) ? sprintf("%.2f", cpu[kind, r] / cpu["floor", r]) : "n/a" }
  END {
    n = asorti(rates, sorted, "@ind_num_asc")
    for (i = 1; i <= n; i++) { r = sorted[i]
      for (k = 1; k <= 4; k++) { kind = (k == 1 ? "floor" : k == 2 ? "backend" : k == 3 ? "backend-far" : "node"); if ((kind, r) in line) print line[kind, r] }
      if (cpu["floor", r] > 0) printf "         ratios at %s/s: backend/floor CPU %s, node/floor CPU %s\n", r, ratio("backend", r), ratio("node", r)
    }
    printf "knee (>= 99.9%% delivered, p99 < 50 ms): floor %s/s, backend %s/s, node %s/s", knee["floor"] + 0, knee["backend"] + 0, knee["node"] + 0
    if (("backend-far", sorted[1]) in line) printf ", backend with the database %s ms away each way %s/s", delay, knee["backend-far"] + 0
    if (knee["node"] > 0) printf "; backend/node %.2f", knee["backend"] / knee["node"]
    print ""
  }' delay="$DB_DELAY_MS" "$work/results"
