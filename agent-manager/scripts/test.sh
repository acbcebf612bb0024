#!/usr/bin/env bash
# Lint, format check and the full test suite (real Redis + a real Celery worker).
# Non-interactive; safe to run repeatedly from a fresh clone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

ensure_venv requirements-dev.txt
ensure_redis
cd "$AM_DIR"
log "ruff check"
"$VENV/bin/ruff" check .
log "ruff format --check"
"$VENV/bin/ruff" format --check .
log "pytest"
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@" </dev/null
