#!/usr/bin/env bash
# The chat guarantee under faults (e2e/chaos): three backend binaries, the agent-manager
# API and Celery worker, a redis-server of the suite's own on a free port (restarted by a
# test), and for PostgreSQL a TCP proxy the suite cuts. Runs on SQLite, then PostgreSQL
# (database ${TEST_DB}_chaos, recreated). About 3-4 minutes per database on 2 cores.
# `scripts/chaos.sh sqlite|postgres` runs one; extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

which="${1:-both}"
[ $# -gt 0 ] && shift
command -v redis-server >/dev/null || apt_install redis-server

if [ "$which" = both ] || [ "$which" = sqlite ]; then
    log "chaos suite on SQLite"
    env -u TEST_DATABASE_URL scripts/e2e.sh chaos "$@"
fi
if [ "$which" = both ] || [ "$which" = postgres ]; then
    ensure_postgres
    ensure_psql
    db="${TEST_DB:-mocheong_test}_chaos"
    psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    log "chaos suite on PostgreSQL"
    TEST_DATABASE_URL="${PG_ADMIN_URL%/*}/$db" scripts/e2e.sh chaos "$@"
fi
