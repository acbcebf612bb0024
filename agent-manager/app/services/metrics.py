"""Prometheus metrics of the agent-manager, named once here (docs/agent-manager.md).

- The API serves ``GET /metrics`` (behind ``AGENT_METRICS_TOKEN``): hand-offs it enqueued by
  outcome and the depth of the Celery queue, read from the broker at scrape time.
- The worker records tasks by outcome and the time from a task's start to its first item.
  Its figures live in the worker process, so it serves them on a port of its own
  (``AGENT_WORKER_METRICS_PORT``) from the main process; with the prefork pool set
  ``PROMETHEUS_MULTIPROC_DIR`` so the pool's children share their figures with it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

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

from app.core.config import Settings

logger = logging.getLogger(__name__)

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


def render_api(queue_depth: Callable[[], int]) -> bytes:
    """The API's scrape: refreshes the queue depth (left as it was if the broker is down)."""
    try:
        QUEUE_DEPTH.set(queue_depth())
    except Exception as exc:  # any broker error leaves the last figure
        logger.debug("queue depth not read: %r", exc)
    return generate_latest(_registry())


def queue_depth_reader(
    settings: Settings, api_redis: redis.Redis, celery: Any
) -> Callable[[], int]:
    """How the API reads the queue depth: ``LLEN`` on a Redis broker; on RabbitMQ the message
    count of a passive ``queue.declare`` (ready messages, not the ones being worked on)."""
    queue = settings.queue
    if settings.broker_is_amqp:

        def amqp_depth() -> int:
            with celery.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count

        return amqp_depth
    broker = (
        api_redis
        if settings.celery_broker_url == settings.redis_url
        else redis.Redis.from_url(
            settings.celery_broker_url, socket_timeout=2, socket_connect_timeout=1
        )
    )
    return lambda: broker.llen(queue)


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - container port
    """Starts the worker's scrape endpoint in a background thread."""
    start_http_server(port, addr=host, registry=_registry())
