# Shared helpers for the run and test scripts: install what is missing (when root on
# Debian) and start the local services the stack needs. Safe to run repeatedly.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_PORT="${REDIS_PORT:-6379}"
PG_PORT="${PG_PORT:-5432}"
# Password auth works with a trust setup too; a fresh install gets this password.
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres:postgres@127.0.0.1:${PG_PORT}/postgres}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
    # Installs Debian packages that are missing; needs root.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "missing system packages: ${missing[*]} (install them, or run as root on Debian)"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building the backend needs from the system: pkg-config finds libheif (HEIC
# decoding, Debian 12's libheif-dev 1.15; its runtime libheif1 has the HEVC codecs).
BUILD_PACKAGES=(pkg-config ca-certificates libheif-dev)
ensure_build_deps() {
    apt_install "${BUILD_PACKAGES[@]}"
}

require_rust() {
    command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup, Rust >= 1.94)"
    rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt >/dev/null 2>&1 || true
}

ensure_python() {
    # The agent-manager needs Python 3.11+ with venv (a separate package on Debian).
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null \
        || apt_install python3-venv python3-pip
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Whether GET <path> on 127.0.0.1:<port> answers 200 (bash only: no curl on a fresh machine).
http_ok() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
        read -r -t 5 _ status _ <&3
        [ "$status" = 200 ]
    ) 2>/dev/null
}

wait_port() {
    local port=$1 what=$2
    for _ in $(seq 1 100); do
        port_open "$port" && return 0
        sleep 0.2
    done
    die "$what did not start on port $port"
}

# Set to the pid file of the redis-server that ensure_redis started (empty when one
# was already running), so a caller can stop what it started.
REDIS_STARTED_PIDFILE=""

ensure_redis() {
    if port_open "$REDIS_PORT"; then return 0; fi
    command -v redis-server >/dev/null || apt_install redis-server
    log "starting redis-server on port $REDIS_PORT"
    mkdir -p "$ROOT/data/redis"
    REDIS_STARTED_PIDFILE="$ROOT/data/redis/redis-$REDIS_PORT.pid"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$ROOT/data/redis" --logfile "$ROOT/data/redis/redis.log" \
        --pidfile "$REDIS_STARTED_PIDFILE"
    wait_port "$REDIS_PORT" redis
}

ensure_postgres() {
    if port_open "$PG_PORT"; then return 0; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
        || pg_ctlcluster "$version" main start
    wait_port "$PG_PORT" postgresql
    # A fresh install asks for a password over TCP: give the admin role the one the
    # test URL carries. Where auth is already trust this changes nothing that matters.
    if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
        su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
    fi
}

RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"

ensure_rabbitmq() {
    # RabbitMQ for the AMQP broker tests: the machine's own, or the Debian package
    # started detached (guest/guest on 127.0.0.1).
    if port_open "$RABBITMQ_PORT"; then return 0; fi
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    log "starting rabbitmq-server (detached)"
    rabbitmq-server -detached
    for _ in $(seq 1 300); do
        port_open "$RABBITMQ_PORT" && return 0
        sleep 0.2
    done
    die "RabbitMQ did not start on port $RABBITMQ_PORT"
}

ensure_psql() {
    command -v psql >/dev/null || apt_install postgresql-client
}

MOTO_PORT="${MOTO_PORT:-5055}"
MOTO_VERSION="5.2.5"

ensure_moto() {
    # An S3-compatible server for the storage integration tests: moto in server mode,
    # installed at a pinned version into a tools venv at the repository root.
    if port_open "$MOTO_PORT"; then
        # Reuse a server that answers; a moto_server left by an earlier run whose files
        # are gone answers 500 to everything, so it is replaced.
        if http_ok "$MOTO_PORT" /; then return 0; fi
        local stale
        stale=$(pgrep -f "moto_server .*-p $MOTO_PORT" || true)
        [ -n "$stale" ] || die "port $MOTO_PORT is taken by something that is not a working S3 server"
        log "replacing the moto_server on port $MOTO_PORT that does not answer"
        kill $stale
        for _ in $(seq 1 50); do port_open "$MOTO_PORT" || break; sleep 0.1; done
    fi
    ensure_python
    local venv="$ROOT/.venv-tools"
    if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
        log "installing moto[server]==$MOTO_VERSION into .venv-tools"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    fi
    log "starting moto_server on port $MOTO_PORT"
    mkdir -p "$ROOT/data"
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$ROOT/data/moto.log" 2>&1 &
    wait_port "$MOTO_PORT" moto_server
}
