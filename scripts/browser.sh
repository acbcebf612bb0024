#!/usr/bin/env bash
# Browser end-to-end tests: the reference web client (web/) in headless Chromium
# (Debian's package, driven by playwright-core; no browser download) against the real
# stack — backend binary, agent-manager API and Celery worker, Redis. Uses
# TEST_DATABASE_URL when set, else a fresh SQLite file. About a minute once built.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_redis
ensure_python
apt_install chromium fonts-nanum  # Korean glyphs for the screenshot; 10 MB
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# The agent-manager's own venv runs the API and the worker under test.
source agent-manager/scripts/_setup.sh
ensure_venv requirements.txt
[ -x target/debug/backend ] || { ensure_build_deps; cargo build --locked -p backend; }

cd "$ROOT/web"
stamp=node_modules/.stamp
if [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum package-lock.json | cut -d' ' -f1)" ]; then
    log "npm ci (web)"
    npm ci --no-audit --no-fund --loglevel=error
    sha256sum package-lock.json | cut -d' ' -f1 > "$stamp"
fi
log "web: generate API types, type-check (tsc --strict), bundle"
npm run --silent build
log "web: browser journey in headless Chromium"
node --test --test-concurrency=1 tests/journey.test.mjs
