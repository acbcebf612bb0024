"""Test setup: a real Redis (own DB number, unique queue and key names) and a real Celery worker.

The environment is configured before any ``app`` module is imported, so the API, the worker
subprocess and in-process code all see the same isolated settings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

RUN_ID = uuid.uuid4().hex[:10]
TEST_DB = int(os.environ.get("AGENT_TEST_REDIS_DB", "13"))
_base = (
    os.environ.get("AGENT_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
REDIS_URL = urlunsplit(urlsplit(_base)._replace(path=f"/{TEST_DB}"))
QUEUE = f"agent-test-{RUN_ID}"
COMPLETION_STREAM = f"chat:completions:test-{RUN_ID}"
TOKEN = "test-service-token"
WORKER_NAME = f"agent-test-{RUN_ID}@localhost"
METRICS_TOKEN = "test-metrics-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER_METRICS_PORT = _free_port()

os.environ.update(
    AGENT_REDIS_URL=REDIS_URL,
    AGENT_BROKER_URL=REDIS_URL,
    AGENT_QUEUE=QUEUE,
    AGENT_COMPLETION_STREAM=COMPLETION_STREAM,
    AGENT_SERVICE_TOKEN=TOKEN,
    AGENT_SERVICE_TOKEN_HEADER="X-Service-Token",
    AGENT_MODEL_PROVIDER="offline",
    AGENT_OFFLINE_CHUNK_DELAY_MS="15",
    AGENT_TASK_MAX_RETRIES="2",
    AGENT_RETRY_BACKOFF_SECONDS="0.05",
    AGENT_LOG_LEVEL="INFO",
    AGENT_METRICS_TOKEN=METRICS_TOKEN,
    AGENT_WORKER_METRICS_PORT=str(WORKER_METRICS_PORT),
    AGENT_HEALTH_PING_TIMEOUT_SECONDS="2",  # generous on a busy machine; 503 tests use 1
)

import redis  # noqa: E402

from app.core.config import get_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"X-Service-Token": TOKEN}


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield client
    leftovers = [QUEUE, COMPLETION_STREAM, *client.scan_iter(match=f"*{RUN_ID}*")]
    client.delete(*leftovers)
    client.close()


@pytest.fixture(scope="session")
def worker(redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``celery worker`` subprocess consuming the test queue."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = log_path.open("wb")
    cmd = [
        sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
        "--pool=threads", "-c", "2", "-Q", QUEUE, "-n", WORKER_NAME,
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
    )  # fmt: skip
    try:
        _wait_for_worker(proc, log_path)
        yield WORKER_NAME
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if the test process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_for_worker(proc: subprocess.Popen, log_path: Path, timeout: float = 40) -> None:
    from app.worker.celery_app import create_celery

    probe = create_celery(get_settings(), include_tasks=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{log_path.read_text()[-4000:]}")
        replies = probe.control.ping(destination=[WORKER_NAME], timeout=0.5)
        if any(WORKER_NAME in reply for reply in replies):
            return
    proc.kill()
    pytest.fail(f"celery worker did not answer a ping:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def api() -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    with TestClient(create_app()) as client:
        yield client


def new_ids() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:12]
    return {
        "session_id": f"sess-{RUN_ID}-{suffix}",
        "message_id": f"msg-{RUN_ID}-{suffix}",
        "user_id": "user-1",
        "page_id": "page-1",
    }


def chat_body(text: str, context: dict[str, Any], /, **overrides: Any) -> dict[str, Any]:
    body = {"message": text, **new_ids(), "wedding_context": context, "history": []}
    body.update(overrides)
    return body


@contextmanager
def subscribed(client: redis.Redis, session_id: str) -> Iterator[Any]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"chat:{session_id}")
    # wait for the subscription to be active before anything is published
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not pubsub.subscribed:
        pubsub.get_message(timeout=0.1)
    try:
        yield pubsub
    finally:
        pubsub.close()


def next_item(pubsub: Any, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            return json.loads(message["data"])
    raise AssertionError("timed out waiting for an answer item")


def collect(pubsub: Any, message_id: str, timeout: float = 20) -> list[dict[str, Any]]:
    """All items of one answer, up to and including its done/error."""
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while True:
        item = next_item(pubsub, deadline)
        if item["message_id"] != message_id:
            continue
        items.append(item)
        if item["type"] in ("done", "error"):
            return items


def drain(pubsub: Any, seconds: float) -> list[dict[str, Any]]:
    """Whatever else arrives within ``seconds`` (used to prove nothing more comes)."""
    extra = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            extra.append(json.loads(message["data"]))
    return extra


def stream_items(client: redis.Redis, session_id: str) -> list[dict[str, Any]]:
    return [json.loads(f["item"]) for _, f in client.xrange(f"chat:stream:{session_id}")]


def completions_for(client: redis.Redis, message_id: str) -> list[dict[str, str]]:
    return [f for _, f in client.xrange(COMPLETION_STREAM) if f["message_id"] == message_id]
