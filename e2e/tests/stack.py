"""Starts and stops the processes the chat tests talk to: backend instances (the real
binary), the agent-manager API (uvicorn) and its Celery worker, all on one Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
AGENT_DIR = ROOT / "agent-manager"
AGENT_PY = AGENT_DIR / ".venv" / "bin" / "python"
BACKEND_BIN = Path(os.environ.get("BACKEND_BIN", ROOT / "target" / "debug" / "backend"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: ``cluster``: TEST_REDIS_URL lists the seed nodes of a Redis Cluster (scripts/cluster-e2e.sh)
#: and E2E_BROKER_URL is the single Redis the Celery worker uses as its broker.
REDIS_MODE = os.environ.get("E2E_REDIS_MODE", "single")
BROKER_URL = os.environ.get("E2E_BROKER_URL", "")
SERVICE_TOKEN = "e2e-service-token"
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"
METRICS_TOKEN = "e2e-metrics-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, expect_ok: bool = True) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if not expect_ok or r.status_code == 200:
                return
            last = f"status {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready: {last}")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@dataclass
class Stack:
    """Everything of one test session: unique queue and streams so runs never mix."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mocheong-e2e-")))
    procs: list[Proc] = field(default_factory=list)
    backends: list[Backend] = field(default_factory=list)
    database_url: str = ""
    agent_url: str = ""
    redis_url: str = REDIS_URL
    #: Extra environment of every backend and of the agent-manager processes.
    backend_env: dict[str, str] = field(default_factory=dict)
    agent_extra_env: dict[str, str] = field(default_factory=dict)
    worker: Proc | None = None
    agent_api: Proc | None = None

    @property
    def queue(self) -> str:
        return f"e2e-{self.run_id}"

    @property
    def completion_stream(self) -> str:
        return f"chat:completions:e2e-{self.run_id}"

    def spawn(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        full_env = {**os.environ, **env}
        popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def agent_env(self) -> dict[str, str]:
        cluster = (
            {"AGENT_REDIS_MODE": "cluster", "AGENT_BROKER_URL": BROKER_URL} if REDIS_MODE == "cluster" else {}
        )
        return {
            **cluster,
            "AGENT_REDIS_URL": self.redis_url,
            "AGENT_QUEUE": self.queue,
            "AGENT_COMPLETION_STREAM": self.completion_stream,
            "AGENT_SERVICE_TOKEN": SERVICE_TOKEN,
            "AGENT_MODEL_PROVIDER": "offline",
            # Slow enough that a test can stop or drop a connection mid-answer.
            "AGENT_OFFLINE_CHUNK_DELAY_MS": "40",
            **self.agent_extra_env,
        }

    def start_agent(self) -> None:
        self.start_worker()
        self.start_api()

    def start_worker(self, pool: str = "threads", name: str = "agent-worker") -> Proc:
        env = self.agent_env()
        self.worker = self.spawn(
            name,
            [
                str(AGENT_PY),
                "-m",
                "celery",
                "-A",
                "app.worker.celery_app",
                "worker",
                "-Q",
                self.queue,
                "--pool",
                pool,
                "-c",
                "4",
                "-n",
                f"{self.queue}@localhost",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            env,
            cwd=AGENT_DIR,
        )
        return self.worker

    def start_api(self, wait: bool = True) -> Proc:
        """The agent-manager API; a restart keeps its port (the backends' AGENT_MANAGER_URL)."""
        env = self.agent_env()
        port = int(self.agent_url.rsplit(":", 1)[1]) if self.agent_url else free_port()
        self.agent_url = f"http://127.0.0.1:{port}"
        self.agent_api = self.spawn(
            "agent-api",
            [
                str(AGENT_PY),
                "-m",
                "uvicorn",
                "app.api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env,
            cwd=AGENT_DIR,
        )
        if wait:
            wait_http(f"{self.agent_url}/health", timeout=60)
        return self.agent_api

    def start_backend(self, name: str, port: int | None = None, **overrides: str) -> Backend:
        port = port or free_port()
        env = {
            "BIND_ADDR": f"127.0.0.1:{port}",
            "DATABASE_URL": self.database_url,
            "DATA_DIR": str(self.workdir / "data"),
            "REDIS_URL": self.redis_url,
            "REDIS_MODE": REDIS_MODE,
            "AGENT_MANAGER_URL": self.agent_url,
            "AGENT_SERVICE_TOKEN": SERVICE_TOKEN,
            "AGENT_QUEUE": self.queue,
            "AGENT_COMPLETION_STREAM": self.completion_stream,
            "JWT_SECRET": JWT_SECRET,
            "SERVER_ID": name,
            "LOGIN_RATE_PER_IP": "10000",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PUBLIC_WRITE_RATE_PER_IP": "10000",
            "RUST_LOG": "info,backend=debug",
            **self.backend_env,
            **overrides,
        }
        proc = self.spawn(name, [str(BACKEND_BIN), "serve"], env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/health/live", timeout=60)
        except TimeoutError:
            raise RuntimeError(f"{name} did not start:\n{proc.tail()}") from None
        backend = Backend(name, base, proc, port)
        self.backends.append(backend)
        return backend

    @contextmanager
    def only(self, keep: Backend) -> Iterator[None]:
        """Pauses (SIGSTOP) every other running backend for the block. Every instance's
        outbox dispatcher may hand off any instance's message, so a test that needs
        `keep` to make the hand-off must leave no other instance able to take it first."""
        others = [b.proc.popen for b in self.backends if b is not keep and b.proc.popen.poll() is None]
        for p in others:
            p.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for p in others:
                p.send_signal(signal.SIGCONT)

    def stop_backends_after(self, count: int) -> None:
        """Stops the backends started after the first `count` (a test's own instances)."""
        for b in self.backends[count:]:
            b.proc.stop()
        del self.backends[count:]

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@dataclass
class Backend:
    name: str
    base: str
    proc: Proc
    port: int = 0
