#!/usr/bin/env bash
# Per-instance relay CPU when instances are added (issue: per-room subscriptions).
# The same total traffic — CLIENTS clients in ROOMS rooms, PUBLISH_RATE items/s into
# chat:<session> for DURATION s — first on one backend, then spread over INSTANCES
# backends (each gets CLIENTS/N clients in ROOMS/N rooms and PUBLISH_RATE/N items/s of
# its own rooms, one load generator per backend, all at once, one Redis, one SQLite
# database). Each generator reports its backend's CPU per delivered item over its
# publish window; the script prints each instance's CPU seconds per second and the ratio
# to the single instance's. With per-room subscriptions an instance receives only its
# rooms' items, so the ratio tends to 1/N (the issue asks ≤ 1/3 for 4 instances); with
# one PSUBSCRIBE chat:* every instance would parse all items.
# Loopback only; throwaway Redis and database, removed when done.
#
#   bench/chat-scale.sh                         # 2,000 clients, 400 rooms, 2,000 items/s, 4 instances
#   PROFILE=debug CLIENTS=800 ROOMS=160 PUBLISH_RATE=800 bench/chat-scale.sh
#   BACKEND_BIN=/path/to/older/backend bench/chat-scale.sh   # the same run on another build
#   INSTANCE_CPUS=0.5 bench/chat-scale.sh       # each of the N instances limited to 0.5 CPU
#   INSTANCE_WORKERS=1 bench/chat-scale.sh      # each of the N instances gets 1 runtime worker
#
# By default every backend starts one tokio worker thread per core it sees, so N
# instances on this machine's cores run N times as many workers as there are cores.
# INSTANCE_CPUS puts each of the N instances in a cgroup with that CPU quota, as a
# container's CPU limit (compose `cpus:`, a Kubernetes CPU limit) does; the backend's
# defaults then size its runtime from the quota (needs a writable cgroup file system,
# v1 or v2: root). INSTANCE_WORKERS sets TOKIO_WORKER_THREADS for the N instances
# instead. The single instance always runs unlimited, with the defaults.
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-2000}
ROOMS=${ROOMS:-400}
PUBLISH_RATE=${PUBLISH_RATE:-2000}
DURATION=${DURATION:-20}
INSTANCES=${INSTANCES:-4}
INSTANCE_WORKERS=${INSTANCE_WORKERS:-}
INSTANCE_CPUS=${INSTANCE_CPUS:-}
PROFILE=${PROFILE:-release}
BASE_PORT=${BASE_PORT:-18180}
REDIS_PORT=${REDIS_PORT:-16491}

open_files $((2 * CLIENTS + 1024)) CLIENTS

if [ "$PROFILE" = release ]; then
  cargo build --release -p backend -p bench
else
  cargo build -p backend -p bench
fi
bin="$TARGET/$PROFILE"
# BACKEND_BIN: another backend binary to measure (e.g. one built before a change).
backend_bin=${BACKEND_BIN:-$bin/backend}

# The cgroup directory under which each limited instance gets its own (v2, else v1's cpu
# hierarchy), and how a quota is written there.
cgroups=()
if [ -n "$INSTANCE_CPUS" ]; then
  if [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    cg_base=/sys/fs/cgroup
    # Inside a container this may be refused; limited_cgroup then finds no cpu.max.
    echo +cpu >"$cg_base/cgroup.subtree_control" 2>/dev/null || true
  elif [ -w /sys/fs/cgroup/cpu ]; then
    cg_base=/sys/fs/cgroup/cpu
  else
    echo "INSTANCE_CPUS needs a writable cgroup file system with the cpu controller (run as root)" >&2
    exit 1
  fi
  quota_us=$(awk -v c="$INSTANCE_CPUS" 'BEGIN {printf "%d", c * 100000}')
fi

# A cgroup limited to INSTANCE_CPUS for instance `i`; prints its directory. Fails the
# run (rather than measure an unlimited instance as a limited one) when the quota
# cannot be set.
limited_cgroup() {
  local dir="$cg_base/mocheong-bench-$$-$1"
  mkdir "$dir"
  if [ -e "$dir/cpu.max" ]; then
    echo "$quota_us 100000" >"$dir/cpu.max"
    grep -q "^$quota_us 100000" "$dir/cpu.max"
  elif [ -e "$dir/cpu.cfs_quota_us" ]; then
    echo 100000 >"$dir/cpu.cfs_period_us"
    echo "$quota_us" >"$dir/cpu.cfs_quota_us"
    [ "$(cat "$dir/cpu.cfs_quota_us")" = "$quota_us" ]
  else
    false
  fi || { echo "cannot set a CPU quota in $dir" >&2; rmdir "$dir"; return 1; }
  echo "$dir"
}

# A cgroup is removed once its backend is gone (started in a command substitution, it
# is not this shell's child: `stop` waits for it).
remove_cgroups() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  for dir in "${cgroups[@]}"; do rmdir "$dir" 2>/dev/null || true; done
}
after_stop+=(remove_cgroups)
start_redis "$REDIS_PORT"

start_backend() {  # index, cgroup directory or "" → prints the pid
  local i=$1 port=$((BASE_PORT + $1)) agent=$((BASE_PORT + 100 + $1)) workers=() limit=()
  [ "$i" -gt 0 ] && [ -n "$INSTANCE_WORKERS" ] && workers=(TOKIO_WORKER_THREADS="$INSTANCE_WORKERS")
  # Joins the cgroup before exec, so the backend starts inside its limit (same pid).
  [ -n "$2" ] && limit=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$2")
  "${limit[@]}" env "${BENCH_BACKEND_ENV[@]}" "${workers[@]}" SERVER_ID="bench-$i" \
    DATABASE_URL="sqlite://$work/bench.db?mode=rwc" DATA_DIR="$work" \
    BIND_ADDR="127.0.0.1:$port" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    AGENT_MANAGER_URL="http://127.0.0.1:$agent" RUST_LOG="${BACKEND_RUST_LOG:-warn}" \
    "$backend_bin" serve >"$work/backend-$i.log" 2>&1 &
  echo $!
}

wait_live() {  # index
  wait_http "http://127.0.0.1:$((BASE_PORT + $1))/health/live" 150 "$work/backend-$1.log"
}

# Runs one generator against backend `i` with a share of the traffic; its report goes
# to $work/load-<run>-<i>.txt.
load() {  # run, index, pid, clients, rooms, rate
  timeout 600 "$bin/chat-load" --url "http://127.0.0.1:$((BASE_PORT + $2))" \
    --redis "redis://127.0.0.1:$REDIS_PORT/0" --backend-pid "$3" \
    --clients "$4" --rooms "$5" --publish-rate "$6" --duration-secs "$DURATION" \
    --agent-port "$((BASE_PORT + 100 + $2))" --handoff-samples 0 >"$work/load-$1-$2.txt" 2>&1
}

# CPU seconds per second of the backend during its generator's publish window:
# (µs per delivered item) × (delivered items/s) / 1e6.
cpu_per_sec() {
  awk '/^delivered items\/s/ {rate=$3} /^RESULT/ {for (i=1;i<=NF;i++) if ($i ~ /^cpu_us=/) {split($i,a,"="); cpu=a[2]}}
       END {printf "%.3f %s %s\n", cpu*rate/1e6, cpu, rate}' "$1"
}

echo "== one instance: $CLIENTS clients, $ROOMS rooms, $PUBLISH_RATE items/s =="
pid0=$(start_backend 0 "")
pids+=("$pid0")
wait_live 0
load single 0 "$pid0" "$CLIENTS" "$ROOMS" "$PUBLISH_RATE" || { cat "$work/load-single-0.txt"; exit 1; }
read -r single single_us single_rate < <(cpu_per_sec "$work/load-single-0.txt")
grep -E "^(published|latency)" "$work/load-single-0.txt"
echo "instance 0: CPU ${single} s/s (${single_us} µs per delivery × ${single_rate} deliveries/s)"
stop "$pid0"

echo "== $INSTANCES instances, the same total traffic spread over them =="
run_pids=()
[ -n "$INSTANCE_CPUS" ] && echo "each limited to $INSTANCE_CPUS CPU (cgroup quota)"
for i in $(seq 1 "$INSTANCES"); do
  cg=
  if [ -n "$INSTANCE_CPUS" ]; then
    cg=$(limited_cgroup "$i") || exit 1
    cgroups+=("$cg")
  fi
  p=$(start_backend "$i" "$cg")
  pids+=("$p")
  run_pids+=("$p")
done
for i in $(seq 1 "$INSTANCES"); do wait_live "$i"; done
gens=()
for i in $(seq 1 "$INSTANCES"); do
  load multi "$i" "${run_pids[$((i - 1))]}" $((CLIENTS / INSTANCES)) $((ROOMS / INSTANCES)) \
    $((PUBLISH_RATE / INSTANCES)) &
  gens+=($!)
done
for g in "${gens[@]}"; do wait "$g" || true; done
total=0
for i in $(seq 1 "$INSTANCES"); do
  f="$work/load-multi-$i.txt"
  grep -q '^RESULT' "$f" || { echo "generator $i failed:"; cat "$f"; exit 1; }
  read -r c us rate < <(cpu_per_sec "$f")
  echo "instance $i: CPU $c s/s ($us µs per delivery × $rate deliveries/s); $(grep -E '^published' "$f")"
  total=$(awk -v a="$total" -v b="$c" 'BEGIN {print a + b}')
done
awk -v t="$total" -v n="$INSTANCES" -v s="$single" 'BEGIN {
  printf "per-instance CPU (mean) %.3f s/s = %.2f of the single instance (%.3f s/s); all %d together %.3f s/s\n",
    t / n, (t / n) / s, s, n, t }'
