"""The chat stack with RabbitMQ as the Celery broker: backends hand off over AMQP directly
(`AGENT_HANDOFF=celery`, `AGENT_BROKER_URL=amqp://...`), the agent-manager API and worker
use the same URL. Redis still carries the items, streams and completions."""

import os

import pytest

from tests.conftest import api, clients, couple, own_backends_stopped  # noqa: F401 - fixtures, bound to this stack
from tests.stack import Stack

#: The broker of the run; scripts/amqp-e2e.sh gives each run a vhost of its own.
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
AGENT_METRICS_TOKEN = "e2e-agent-metrics-token-0123456789"


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    s.database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite://{s.workdir}/e2e.db?mode=rwc"
    s.backend_env = {
        "AGENT_HANDOFF": "celery",
        "AGENT_BROKER_URL": AMQP_URL,
        "AGENT_MANAGER_URL": "",
        # As in tests/: a loaded machine must not fail a turn before its first item.
        "CHAT_FIRST_ITEM_TIMEOUT_MS": "120000",
    }
    s.agent_extra_env = {"AGENT_BROKER_URL": AMQP_URL, "AGENT_METRICS_TOKEN": AGENT_METRICS_TOKEN}
    try:
        s.start_agent()
        s.b1 = s.start_backend("backend-1")
        s.b2 = s.start_backend("backend-2")
        yield s
    finally:
        s.stop_all()
        failed = [p for p in s.procs if p.popen.returncode not in (0, -9, -15, None)]
        for p in failed:
            print(f"--- {p.name} (exit {p.popen.returncode}) ---\n{p.tail()}")
