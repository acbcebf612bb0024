"""The chaos stack, for the tests and for soak.py: backend instances, the agent-manager API
and a Celery worker, a Redis server of its own (so restarting it disturbs nothing else)
and, on PostgreSQL, a TCP proxy in front of the database so a test can make it refuse
connections. Turn bounds are shortened so a fault's outcome shows within seconds."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from tests.client import Api
from tests.stack import Backend, Stack

from .infra import RedisServer, TcpProxy

#: The bounds the chaos backends run with (docs/chat.md states the defaults).
FIRST_ITEM_S = 15
IDLE_S = 10
SWEEP_S = 0.3
BOUNDS = {
    "CHAT_FIRST_ITEM_TIMEOUT_MS": str(FIRST_ITEM_S * 1000),
    "CHAT_IDLE_TIMEOUT_MS": str(IDLE_S * 1000),
    "CHAT_TURN_TIMEOUT_MS": "120000",
    "CHAT_SWEEP_INTERVAL_MS": str(int(SWEEP_S * 1000)),
    "CHAT_CLAIM_IDLE_MS": "1500",
    "AGENT_TIMEOUT_MS": "1500",
    "AGENT_BREAKER_COOLDOWN_SECS": "1",
    "CHAT_RATE_PER_MINUTE": "1000",
}
#: A turn ends within this (first item + idle + sweeps), with room for a loaded machine.
TURN_BOUND_S = FIRST_ITEM_S + IDLE_S + 25


@dataclass
class Chaos:
    stack: Stack
    redis: RedisServer
    proxy: TcpProxy | None
    backends: list[Backend] = field(default_factory=list)
    started: int = 0

    def alive(self) -> list[Backend]:
        return [b for b in self.backends if b.proc.popen.poll() is None]

    def add_backend(self) -> Backend:
        self.started += 1
        b = self.stack.start_backend(f"chaos-{self.started}")
        self.backends.append(b)
        return b

    def kill(self, b: Backend) -> None:
        b.proc.popen.send_signal(signal.SIGKILL)
        b.proc.popen.wait(timeout=10)

    def kill_worker(self) -> None:
        w = self.stack.worker
        if w and w.popen.poll() is None:
            os.killpg(w.popen.pid, signal.SIGKILL)  # the main process and its children
            w.popen.wait(timeout=10)

    def api(self) -> Api:
        return Api(self.alive()[0].base)


@contextmanager
def chaos_stack(backends: int = 3, pool: str = "prefork") -> Iterator[Chaos]:
    stack = Stack()
    redis = RedisServer(stack.workdir)
    redis.start()
    stack.redis_url = redis.url
    stack.backend_env = dict(BOUNDS)
    proxy = None
    pg = os.environ.get("TEST_DATABASE_URL")
    if pg:
        u = urlsplit(pg)
        proxy = TcpProxy(u.hostname or "127.0.0.1", u.port or 5432)
        netloc = (
            f"{u.username}:{u.password}@127.0.0.1:{proxy.port}" if u.username else f"127.0.0.1:{proxy.port}"
        )
        stack.database_url = urlunsplit(u._replace(netloc=netloc))
    else:
        stack.database_url = f"sqlite://{stack.workdir}/chaos.db?mode=rwc"
    c = Chaos(stack, redis, proxy)
    try:
        stack.start_worker(pool=pool)
        stack.start_api()
        for _ in range(backends):
            c.add_backend()
        yield c
    finally:
        stack.stop_all()
        redis.kill()
        failed = [p for p in stack.procs if p.popen.returncode not in (0, -9, -15, None)]
        for p in failed:
            print(f"--- {p.name} (exit {p.popen.returncode}) ---\n{p.tail()}")


def new_user(chaos: Chaos) -> tuple[dict, dict]:
    """An owner and a page of their own (each user talks in a room of its own)."""
    api = chaos.api()
    owner = api.register("chaos")
    return owner, api.create_page(owner)
