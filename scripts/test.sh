#!/usr/bin/env bash
# `make test`: lint and run every test suite against real services.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

require_rust
ensure_build_deps
ensure_redis
ensure_postgres
ensure_psql
ensure_moto

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "Rust tests on SQLite"
cargo test --workspace --locked

scripts/vendor-tests.sh  # the patched engine.io/socket.io crates' own tests (~2 min cold)

scripts/openapi-check.sh  # OpenAPI validity and generated TypeScript types (~30 s)

log "Rust tests on PostgreSQL"
TEST_DB="${TEST_DB:-mocheong_test}"  # overridable so parallel runs on one server do not collide
psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" -c "CREATE DATABASE $TEST_DB"
TEST_DATABASE_URL="${PG_ADMIN_URL%/*}/$TEST_DB" cargo test --workspace --locked --test it

log "agent-manager: ruff and pytest (real Redis, real Celery worker)"
ensure_python
agent-manager/scripts/test.sh

log "chat end to end on SQLite (backend binaries, agent-manager, Socket.IO client)"
scripts/e2e.sh
log "chat end to end on PostgreSQL"
TEST_DATABASE_URL="${PG_ADMIN_URL%/*}/$TEST_DB" scripts/e2e.sh
log "chat end to end with RabbitMQ as the Celery broker, on SQLite and PostgreSQL (~1 min)"
env -u TEST_DATABASE_URL scripts/amqp-e2e.sh
TEST_DATABASE_URL="${PG_ADMIN_URL%/*}/$TEST_DB" scripts/amqp-e2e.sh
scripts/cluster-e2e.sh  # the chat on a 3-master Redis Cluster, sharded pub/sub (~30 s)
log "chat guarantee under faults (chaos suite) on SQLite and PostgreSQL"; scripts/chaos.sh

scripts/browser.sh  # the reference web client in headless Chromium, against the real stack
scripts/ops-check.sh  # image COPY sets, docker-compose.yml, HAProxy config (~1 min)

log "all tests passed"
