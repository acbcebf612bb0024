#!/usr/bin/env bash
# The OpenAPI document as a frontend uses it: `backend openapi` (the document served
# at /api/openapi.json, a Rust test checks they are the same) is validated by
# openapi-spec-validator, turned into TypeScript types by openapi-typescript, and
# clients/typecheck/client.ts is compiled against them with `tsc --strict` and no
# skipLibCheck. Tool versions are pinned (package-lock.json, OPENAPI_VALIDATOR_VERSION).
# Costs about 30 s once the backend is built (first run: installs, about a minute).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

OPENAPI_VALIDATOR_VERSION="0.9.0"
DIR="$ROOT/clients/typecheck"

require_rust
ensure_python
command -v npm >/dev/null || apt_install nodejs npm

log "OpenAPI: validating the document"
ensure_build_deps
cargo run --locked -q -p backend -- openapi >"$DIR/openapi.json"
venv="$DIR/.venv"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-spec-validator') != '$OPENAPI_VALIDATOR_VERSION')" 2>/dev/null; then
    log "installing openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION into clients/typecheck/.venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
fi
"$venv/bin/openapi-spec-validator" "$DIR/openapi.json"

log "OpenAPI: generated TypeScript types compile under tsc --strict"
cd "$DIR"
npm ci --no-audit --no-fund --loglevel=error
npx --no-install openapi-typescript openapi.json -o generated/api.d.ts
npx --no-install tsc -p tsconfig.json
log "OpenAPI: document valid, types compile"
