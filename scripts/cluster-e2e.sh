#!/usr/bin/env bash
# The chat end to end against a real Redis Cluster: three masters started here on free
# ports (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`), plus one
# single redis-server as the Celery broker (Celery's Redis transport cannot use a
# Cluster). Two backend binaries (REDIS_MODE=cluster), the agent-manager API and worker
# (AGENT_REDIS_MODE=cluster), and a subset of e2e/tests: a turn answered across two
# instances, stop, resume, per-room subscriptions. SQLite; about a minute.
# Extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools

dir="$(mktemp -d -t mocheong-cluster-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A cluster node also listens on its port + 10000 (the cluster bus), so ports above
# 55535 are refused: pick one below 40000 whose bus port is free too.
free_cluster_port() {
    python3 - <<'PY'
import random, socket
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False
while True:
    p = random.randint(20000, 39999)
    if free(p) and free(p + 10000):
        print(p)
        break
PY
}

start_redis() {  # port, extra args...
    local port="$1"; shift
    mkdir -p "$dir/$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/$port" --save "" \
        --appendonly no --logfile "$dir/$port/redis.log" "$@" &
    pids+=("$!")
    wait_port "$port" "redis-server $port"
}

nodes=()
for _ in 1 2 3; do
    port="$(free_cluster_port)"
    start_redis "$port" --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
        --cluster-node-timeout 5000
    nodes+=("127.0.0.1:$port")
done
log "creating a Redis Cluster of three masters: ${nodes[*]}"
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" \
    || { cat "$dir/create.log"; die "redis-cli --cluster create failed"; }
for node in "${nodes[@]}"; do
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info | grep -q '^cluster_state:ok' \
        || die "cluster not ok on $node"
done
broker_port="$(free_port)"
start_redis "$broker_port"

seeds="$(printf 'redis://%s,' "${nodes[@]}")"
log "chat end to end on the Redis Cluster"
E2E_REDIS_MODE=cluster TEST_REDIS_URL="${seeds%,}" E2E_BROKER_URL="redis://127.0.0.1:$broker_port/0" \
    env -u TEST_DATABASE_URL scripts/e2e.sh \
    "tests/test_chat.py::test_two_instances_see_everything_of_their_room" \
    "tests/test_chat.py::test_stop_mid_answer_keeps_the_partial_text" \
    "tests/test_chat.py::test_resume_after_a_dropped_connection_misses_nothing" \
    "tests/test_chat.py::test_presence_and_read_receipts" \
    tests/test_chat_rooms.py "$@"
