"""The Celery app's broker options follow the broker URL's scheme: the Redis transport's
options (visibility timeout, socket timeouts) only on Redis; on RabbitMQ confirmed
publishes, heartbeats and cancelling late-ack tasks when the connection is lost."""

from app.core.config import get_settings
from app.worker.celery_app import create_celery


def _conf(broker_url: str):
    settings = get_settings().model_copy(update={"broker_url": broker_url})
    return settings, create_celery(settings, include_tasks=False).conf


def test_redis_broker_keeps_the_visibility_timeout():
    settings, conf = _conf("redis://127.0.0.1:6379/0")
    assert not settings.broker_is_amqp
    opts = conf.broker_transport_options
    assert opts["visibility_timeout"] == settings.visibility_timeout_seconds
    assert "confirm_publish" not in opts
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False


def test_amqp_broker_confirms_and_cancels_orphaned_tasks():
    settings, conf = _conf("amqp://guest:guest@127.0.0.1:5672/%2f")
    assert settings.broker_is_amqp
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.broker_heartbeat == 10
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    # The same delivery guarantees as on Redis.
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
