"""Celery application (Redis broker, JSON only).

Start a worker with ``celery -A app.worker.celery_app worker``.
"""

from __future__ import annotations

from celery import Celery

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
        # Acknowledged when done, requeued when the child running it dies (prefork): a lost
        # worker's task is answered again (continuing after the last seq sent) or, once the
        # backend's deadline failed the turn, skipped. docs/agent-manager.md, "Faults".
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Notice a dead or restarted Redis in seconds, not at the next TCP timeout.
            "socket_keepalive": True,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
            "retry_on_timeout": True,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        enable_utc=True,
    )
    return celery


celery_app = create_celery(get_settings())
app = celery_app
