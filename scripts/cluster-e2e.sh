#!/usr/bin/env bash
# The chat end to end against a real Redis Cluster: three masters with a replica each,
# started here on free ports (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`), plus one
# single redis-server as the Celery broker (Celery's Redis transport cannot use a
# Cluster). Two backend binaries (REDIS_MODE=cluster), the agent-manager API and worker
# (AGENT_REDIS_MODE=cluster), and a subset of e2e/tests: a turn answered across two
# instances, stop, resume, per-room subscriptions, a master failing over. SQLite; about a
# minute.
# Extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools

dir="$(mktemp -d -t mocheong-cluster-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do { wait "$pid"; } 2>/dev/null || true; done
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

# Three masters and a replica each; a master that stops answering for the node timeout
# is replaced by its replica (the failover test kills one).
nodes=()
for _ in 1 2 3 4 5 6; do
    port="$(free_cluster_port)"
    # A replica syncs at once (no diskless-sync delay): one that never synced cannot
    # take over.
    start_redis "$port" --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
        --cluster-node-timeout 2000 --repl-diskless-sync-delay 0
    nodes+=("127.0.0.1:$port")
done
log "creating a Redis Cluster of three masters with a replica each: ${nodes[*]}"
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" \
    || { cat "$dir/create.log"; die "redis-cli --cluster create failed"; }
for node in "${nodes[@]}"; do
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info | grep -q '^cluster_state:ok' \
        || die "cluster not ok on $node"
done
replicas_in_sync() {
    local n=0
    for node in "${nodes[@]}"; do
        redis-cli -h 127.0.0.1 -p "${node#*:}" info replication | grep -q '^master_link_status:up' && n=$((n + 1))
    done
    [ "$n" -eq 3 ]
}
for _ in $(seq 1 100); do replicas_in_sync && break; sleep 0.1; done
replicas_in_sync || die "the replicas did not sync with their masters"
broker_port="$(free_port)"
start_redis "$broker_port"

seeds="$(printf 'redis://%s,' "${nodes[@]}")"
log "chat end to end on the Redis Cluster"
# The failover test last: the master it kills stays down.
E2E_REDIS_MODE=cluster E2E_CLUSTER_REPLICAS=1 TEST_REDIS_URL="${seeds%,}" \
    E2E_BROKER_URL="redis://127.0.0.1:$broker_port/0" env -u TEST_DATABASE_URL scripts/e2e.sh \
    "tests/test_chat.py::test_two_instances_see_everything_of_their_room" \
    "tests/test_chat.py::test_stop_mid_answer_keeps_the_partial_text" \
    "tests/test_chat.py::test_resume_after_a_dropped_connection_misses_nothing" \
    "tests/test_chat.py::test_presence_and_read_receipts" \
    tests/test_chat_rooms.py tests/test_cluster_failover.py "$@"
