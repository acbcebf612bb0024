"""Celery application (Redis broker, JSON only).

Start a worker with ``celery -A app.worker.celery_app worker``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init

from app.core.config import TASK_NAME, Settings, get_settings


def create_celery(settings: Settings, include_tasks: bool = True) -> Celery:
    celery = Celery(
        "agent_manager",
        broker=settings.celery_broker_url,
        include=["app.worker.tasks"] if include_tasks else [],
    )
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        task_protocol=2,
        task_default_queue=settings.queue,
        task_routes={TASK_NAME: {"queue": settings.queue}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        enable_utc=True,
    )
    return celery


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's Prometheus endpoint, from its main process (see app.services.metrics)."""
    port = get_settings().worker_metrics_port
    if port:
        from app.services.metrics import serve_worker_metrics

        serve_worker_metrics(port)


celery_app = create_celery(get_settings())
app = celery_app
