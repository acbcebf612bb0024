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
#   KINDS="floor backend" RATES="10000 12000" bench/side-by-side.sh   # some servers only
#   REPEAT=2 bench/side-by-side.sh                         # each rate twice, medians decide
#
# Near a server's knee one 15 s window's p99 swings by 2-5x between identical runs (the
# load generator shares the two cores). With REPEAT=n each rate is run n times (the
# servers alternating each time); ratios and the knee then use each figure's median
# over the n runs, and every run's line is printed.
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-2000}
ROOMS=${ROOMS:-400}
RATES=${RATES:-"2000 5000 8000 10000"}
DURATION=${DURATION:-15}
REPEAT=${REPEAT:-1}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_DELAY_MS=${DB_DELAY_MS:-}
PROXY_PORT=${PROXY_PORT:-15439}
BENCH_DB=${BENCH_DB:-mocheong_bench_$$}
REDIS_PORT=${REDIS_PORT:-16394}
PORT=${PORT:-18092}

open_files $((2 * CLIENTS + 1024)) CLIENTS
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -p backend -p bench; fi
command -v node >/dev/null || { echo "node is needed (apt-get install nodejs npm)" >&2; exit 1; }
[ -d bench/node-peer/node_modules ] ||
  (cd bench/node-peer && npm ci --no-audit --no-fund --loglevel=error)

drop_database() { psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"; }
after_stop+=(drop_database)
start_redis "$REDIS_PORT"
psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $BENCH_DB"
redis_url="redis://127.0.0.1:$REDIS_PORT/0"
db_url="${PG_ADMIN_URL%/*}/$BENCH_DB"
kinds="floor backend node"
if [ -n "$DB_DELAY_MS" ]; then
  pg_hostport=${PG_ADMIN_URL#*@}; pg_hostport=${pg_hostport%%/*}
  python3 bench/delay-proxy.py "$PROXY_PORT" "${pg_hostport%:*}" "${pg_hostport##*:}" "$DB_DELAY_MS" \
    >"$work/proxy.log" 2>&1 &
  pids+=($!)
  kinds="floor backend backend-far node"
fi
kinds=${KINDS:-$kinds}

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
      env "${BENCH_BACKEND_ENV[@]}" DATABASE_URL="$url" DATA_DIR="$work" \
        BIND_ADDR="127.0.0.1:$PORT" REDIS_URL="$redis_url" RUST_LOG=warn \
        "$TARGET/release/backend" serve >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
    floor)
      "$TARGET/release/floor-relay" --port "$PORT" --redis "$redis_url" >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
    node)
      PORT=$PORT REDIS_URL="$redis_url" node bench/node-peer/server.js >"$work/$1.log" 2>&1 &
      server_pid=$! ;;
  esac
  pids+=("$server_pid")
  ready "$1" "$work/$1.log"
}

# Rooms for the peers: page ids of the same shape as the backend's (ULIDs).
peer_rooms=$(python3 -c "import uuid; print(','.join(uuid.uuid4().hex[:26].upper() for _ in range($ROOMS)))")

for rate in $RATES; do
  for run in $(seq 1 "$REPEAT"); do
    for kind in $kinds; do
      start "$kind"
      extra=(--token x --room-ids "$peer_rooms")
      case $kind in backend*) extra=() ;; esac
      log="$work/$kind-$rate-$run.log"
      timeout 600 "$TARGET/release/chat-load" --url "http://127.0.0.1:$PORT" --redis "$redis_url" \
        --backend-pid "$server_pid" --clients "$CLIENTS" --rooms "$ROOMS" --publish-rate "$rate" \
        --duration-secs "$DURATION" --handoff-samples 0 "${extra[@]}" >"$log" 2>&1 || true
      echo "$kind $(grep '^RESULT' "$log" || echo "RESULT rate=$rate failed")" | tee -a "$work/results"
      grep -q '^RESULT' "$log" || tail -5 "$log" >&2
      stop "$server_pid"
    done
  done
done

echo
awk '
  { kind = $1; delete f; for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    r = f["rate"]; rates[r] = 1; k = n[kind, r]++
    if (!("cpu_us" in f)) { line[kind, r, k] = sprintf("%-11s %6s/s  failed (the tail of its log is above)", kind, r); next }
    cpu[kind, r, k] = f["cpu_us"]; p99[kind, r, k] = f["p99_ms"]; pct[kind, r, k] = f["delivered_pct"]; ok[kind, r]++
    line[kind, r, k] = sprintf("%-11s %6s/s  delivered %7s%%  p99 %8s ms  CPU %6s µs/delivery  %5s KiB/socket",
                               kind, r, f["delivered_pct"], f["p99_ms"], f["cpu_us"], f["kib_per_socket"]) }
  # The median of what the runs of `kind` at `r` measured; a failed run counts as
  # `worst`, or not at all when `worst` is "".
  function median(values, kind, r, worst,    v, i, m) {
    delete v; m = 0
    for (i = 0; i < n[kind, r]; i++)
      if ((kind, r, i) in values) v[++m] = values[kind, r, i] + 0
      else if (worst != "") v[++m] = worst
    asort(v)
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  function ratio(kind, r) {
    return ok[kind, r] && ok["floor", r] ? sprintf("%.2f", median(cpu, kind, r, "") / median(cpu, "floor", r, "")) : "n/a"
  }
  END {
    many = 0
    for (key in n) if (n[key] > 1) many = 1
    s = asorti(rates, sorted, "@ind_num_asc")
    for (i = 1; i <= s; i++) { r = sorted[i]
      for (j = 1; j <= 4; j++) { kind = (j == 1 ? "floor" : j == 2 ? "backend" : j == 3 ? "backend-far" : "node")
        if (!((kind, r) in n)) continue
        for (k = 0; k < n[kind, r]; k++) print line[kind, r, k]
        if (median(p99, kind, r, 1e9) < 50 && median(pct, kind, r, 0) >= 99.9 && r + 0 > knee[kind]) knee[kind] = r + 0 }
      if (("floor", r) in n)
        printf "         ratios at %s/s%s: backend/floor CPU %s, node/floor CPU %s\n", r, many ? " (medians)" : "", ratio("backend", r), ratio("node", r)
    }
    printf "knee (>= 99.9%% delivered, p99 < 50 ms%s): floor %s/s, backend %s/s, node %s/s", many ? "; medians of the runs" : "", knee["floor"] + 0, knee["backend"] + 0, knee["node"] + 0
    if (("backend-far", sorted[1]) in n) printf ", backend with the database %s ms away each way %s/s", delay, knee["backend-far"] + 0
    if (knee["node"] > 0) printf "; backend/node %.2f", knee["backend"] / knee["node"]
    print ""
  }' delay="$DB_DELAY_MS" "$work/results"
