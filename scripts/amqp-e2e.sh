#!/usr/bin/env bash
# The chat end to end with RabbitMQ as the Celery broker (e2e/rabbitmq): backend binaries
# handing off over AMQP, the agent-manager API and worker on the same broker, Redis for
# the rest. Each run gets a RabbitMQ vhost of its own (removed at the end), so parallel
# runs and other users of the broker never see each other's queues or connections.
# Uses TEST_DATABASE_URL when set; TEST_AMQP_URL points at another broker (no vhost is
# made then, and the connection-drop test is skipped). Extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if [ -z "${TEST_AMQP_URL:-}" ]; then
    ensure_rabbitmq
    vhost="mocheong-e2e-$$-$RANDOM"
    # rabbitmqctl waits for the node to finish booting; 60 s covers a cold start.
    rabbitmqctl -q --timeout 60 add_vhost "$vhost" >/dev/null
    trap 'rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true' EXIT
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
    export TEST_AMQP_VHOST="$vhost"
    export TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:${RABBITMQ_PORT}/$vhost"
fi
scripts/e2e.sh rabbitmq "$@"
