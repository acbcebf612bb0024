#!/usr/bin/env bash
# End-to-end chat tests: real backend binaries, the agent-manager API and Celery
# worker, Redis, and a real Socket.IO client. Uses TEST_DATABASE_URL when set.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_redis
ensure_python
# The agent-manager's own venv runs the API and the worker under test.
source agent-manager/scripts/_setup.sh
ensure_venv requirements.txt

E2E="$ROOT/e2e"
if [ ! -x "$E2E/.venv/bin/python" ]; then
    log "creating e2e virtualenv"
    python3 -m venv "$E2E/.venv"
fi
stamp="$E2E/.venv/.stamp"
if [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum "$E2E/requirements.txt" | cut -d' ' -f1)" ]; then
    "$E2E/.venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$E2E/requirements.txt"
    sha256sum "$E2E/requirements.txt" | cut -d' ' -f1 > "$stamp"
fi
[ -x target/debug/backend ] || { ensure_build_deps; cargo build --locked -p backend; }
cd "$E2E"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -p no:cacheprovider "$@" </dev/null
