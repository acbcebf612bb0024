# Shared setup for test.sh and run.sh (sourced, not executed).
# - creates agent-manager/.venv once and reinstalls pinned deps only when requirements change
# - makes sure a Redis server answers on REDIS_URL (starts a local one if it can)

AM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$AM_DIR/.venv"
PY="${PYTHON:-python3}"
export REDIS_URL="${AGENT_REDIS_URL:-${REDIS_URL:-redis://127.0.0.1:6379/0}}"

log() { printf '[agent-manager] %s\n' "$*" >&2; }

req_hash() { cat "$AM_DIR/requirements.txt" "$AM_DIR/$1" | sha256sum | cut -d' ' -f1; }

# ensure_venv requirements.txt|requirements-dev.txt
ensure_venv() {
    local req_file="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv in .venv"
        "$PY" -m venv "$VENV"
    fi
    if [ "$(cat "$VENV/.stamp-$req_file" 2>/dev/null)" = "$(req_hash "$req_file")" ]; then
        return 0
    fi
    # the dev set includes the runtime set
    if [ "$req_file" = requirements.txt ] \
        && [ "$(cat "$VENV/.stamp-requirements-dev.txt" 2>/dev/null)" = "$(req_hash requirements-dev.txt)" ]; then
        return 0
    fi
    log "installing pinned dependencies from $req_file"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q --upgrade pip
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$AM_DIR/$req_file"
    req_hash "$req_file" > "$VENV/.stamp-$req_file"
}

redis_ping() {
    "$VENV/bin/python" - "$REDIS_URL" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=2).ping()
PY
}

ensure_redis() {
    if redis_ping; then return 0; fi
    if ! command -v redis-server >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing redis-server"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
                || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
        else
            log "Redis is not reachable at $REDIS_URL and redis-server is not installed"
            return 1
        fi
    fi
    local port
    port="$("$VENV/bin/python" -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 6379)' "$REDIS_URL")"
    log "starting a local redis-server on port $port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >/dev/null
    for _ in $(seq 1 50); do
        if redis_ping; then return 0; fi
        sleep 0.1
    done
    log "Redis did not come up at $REDIS_URL"
    return 1
}
