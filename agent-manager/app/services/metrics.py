"""Prometheus metrics of the agent-manager, named once here (docs/agent-manager.md).

- The API serves ``GET /metrics`` (behind ``AGENT_METRICS_TOKEN``): hand-offs it enqueued by
  outcome and the depth of the Celery queue, read from Redis at scrape time.
- The worker records tasks by outcome and the time from a task's start to its first item.
  Its figures live in the worker process, so it serves them on a port of its own
  (``AGENT_WORKER_METRICS_PORT``) from the main process; with the prefork pool set
  ``PROMETHEUS_MULTIPROC_DIR`` so the pool's children share their figures with it.
"""

from __future__ import annotations

import contextlib
import os

import redis
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

ENQUEUED = Counter(
    "agent_enqueued", "POST /chat hand-offs by outcome (accepted, broker_unavailable)", ["outcome"]
)
QUEUE_DEPTH = Gauge(
    "agent_queue_depth", "Tasks waiting in the Celery queue", multiprocess_mode="livemax"
)
TASKS = Counter(
    "agent_tasks",
    "Chat tasks by outcome: the status a task returned, or retry or crashed",
    ["outcome"],
)
TIME_TO_FIRST_ITEM = Histogram(
    "agent_time_to_first_item_seconds",
    "From a task's start to its first published item",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render_api(client: redis.Redis | None, queue: str) -> bytes:
    """The API's scrape: refreshes the queue depth (left as it was if Redis is down; not
    read when the broker is not Redis)."""
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            QUEUE_DEPTH.set(client.llen(queue))
    return generate_latest(_registry())


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - container port
    """Starts the worker's scrape endpoint in a background thread."""
    start_http_server(port, addr=host, registry=_registry())
