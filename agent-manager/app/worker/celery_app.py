"""Celery application (Redis or RabbitMQ broker, JSON only).

Start a worker with ``celery -A app.worker.celery_app worker``.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from celery.signals import worker_init
from kombu.transport import redis as kombu_redis

from app.core.config import TASK_NAME, Settings, get_settings


def _survive_broker_restart() -> None:
    """Keep the worker alive across a Redis restart (kombu 5.7 / celery 5.7).

    On a lost broker connection the consumer collects the connection (its transport's
    ``client`` becomes None) and then closes it; closing restores unacknowledged messages
    through that connection, and tasks finishing in the threads pool ack through it. Both
    end in ``AttributeError: 'NoneType' object has no attribute 'hostname'`` in
    ``Channel._connparams``, which kombu does not treat as a connection error: the worker
    exits ("Unrecoverable error"). Raising a connection error there instead lets kombu
    ignore it as it does every other error of a dead connection; the messages stay in the
    unacked index and come back after the visibility timeout (by when the backend has
    failed their turns, and the redelivery does nothing). e2e/chaos restarts Redis under
    a threads and a prefork worker to hold this.
    """
    original = kombu_redis.Channel._connparams
    if getattr(original, "_mocheong_patched", False):
        return

    def _connparams(self, asynchronous=False):
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        return original(self, asynchronous=asynchronous)

    _connparams._mocheong_patched = True
    kombu_redis.Channel._connparams = _connparams


_survive_broker_restart()


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
        # backend's deadline failed the turn, skipped. docs/agent-manager.md, "Redelivery".
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds,
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        enable_utc=True,
    )
    celery.conf.update(_amqp_options() if settings.broker_is_amqp else _redis_options(settings))
    return celery


def _redis_options(settings: Settings) -> dict[str, Any]:
    return {
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Notice a dead or restarted Redis in seconds, not at the next TCP timeout.
            "socket_keepalive": True,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
            "retry_on_timeout": True,
        },
    }


def _amqp_options() -> dict[str, Any]:
    """RabbitMQ through kombu's pyamqp transport (docs/agent-manager.md, "Celery task")."""
    return {
        # POST /chat's send_task waits for the broker's confirm, like the backend's direct
        # hand-off: a 202 means the task is on the queue.
        "broker_transport_options": {"confirm_publish": True},
        # AMQP heartbeats: a dead broker or network is noticed within ~2 intervals.
        "broker_heartbeat": 10,
        # RabbitMQ redelivers a lost connection's unacknowledged tasks at once (there is no
        # visibility timeout), so a task still running when the worker lost its connection
        # would be answered twice at the same time; its ack could not reach the broker
        # anyway. Cancelled, the redelivery continues after the last seq it finds. (The
        # prefork pool can cancel; the threads pool cannot, and the seq rule then keeps
        # the two copies from publishing the same seq twice.)
        "worker_cancel_long_running_tasks_on_connection_loss": True,
    }


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's Prometheus endpoint, from its main process (see app.services.metrics)."""
    port = get_settings().worker_metrics_port
    if port:
        from app.services.metrics import serve_worker_metrics

        serve_worker_metrics(port)


celery_app = create_celery(get_settings())
app = celery_app
