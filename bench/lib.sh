# Sourced by the bench scripts: a throwaway work directory, the processes to stop when
# the script ends, a Redis of their own, and the backend's benchmark settings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=${CARGO_TARGET_DIR:-target}

# The backend under a load generator on loopback: a fixed JWT secret, and the limits a
# single client address would hit (login and chat rates, connections per IP) lifted.
BENCH_BACKEND_ENV=(
  JWT_SECRET=bench-secret-0123456789abcdef0123456789
  LOGIN_RATE_PER_IP=100000 LOGIN_RATE_PER_ACCOUNT=100000 CHAT_RATE_PER_MINUTE=100000
  HTTP_MAX_CONNECTIONS_PER_IP=0 REQUEST_TIMEOUT_SECS=300
)

# Raises the open-file limit to `n` descriptors, or stops with what to lower.
open_files() {  # n, what to lower
  local hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$1" ]; then
    echo "the hard limit on open files ($hard) is below $1; lower $2" >&2
    exit 1
  fi
  ulimit -n "$1"
}

# Removed at exit, after every process in `pids` was stopped and the functions named in
# `after_stop` ran (keeping results, dropping a database, removing cgroups).
work=$(mktemp -d)
pids=()
after_stop=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for hook in "${after_stop[@]}"; do "$hook" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Stops `pid` and waits until it is gone, also when it is not this shell's child (a
# process started inside a command substitution).
stop() {  # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

# A redis-server on `port` that keeps nothing, stopped at exit; extra arguments go to it.
start_redis() {  # port, extra args...
  local port=$1
  shift
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no "$@" \
    >"$work/redis-$port.log" 2>&1 &
  pids+=($!)
}

# Waits until `url` answers 200 (tries every 0.2 s), or stops with the log.
wait_http() {  # url, tries, log
  for _ in $(seq 1 "$2"); do
    curl -fs "$1" >/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not answer; the server's log:" >&2
  cat "$3" >&2
  exit 1
}
