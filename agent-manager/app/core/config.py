"""Typed configuration, read once from the environment (prefix ``AGENT_``) and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Stable Celery task name; the Rust backend puts it in ``headers.task``.
TASK_NAME = "agent.process_chat_message"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENT_",
        env_file=".env",
        extra="ignore",
        protected_namespaces=(),
    )

    # --- Redis / Celery -------------------------------------------------------------------
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("AGENT_REDIS_URL", "REDIS_URL"),
        description="Redis used for pub/sub, streams, cancel flags and idempotency claims.",
    )
    redis_mode: Literal["single", "cluster"] = Field(
        default="single",
        description=(
            "cluster: redis_url lists seed nodes of a Redis Cluster (comma-separated); items "
            "go out with SPUBLISH and a session's keys carry the hash tag {chat:<session_id>}."
        ),
    )
    broker_url: str | None = Field(
        default=None,
        description=(
            "Celery broker: redis://... or amqp://... (RabbitMQ); defaults to redis_url. "
            "Required with redis_mode=cluster: Celery's Redis transport cannot use a Cluster, "
            "so the broker is a single Redis or amqp://."
        ),
    )
    queue: str = Field(
        default="celery", description="Celery queue (a Redis list or a RabbitMQ queue)."
    )
    # The backend fails a turn with no new item for CHAT_IDLE_TIMEOUT_MS (30 s) and any turn
    # after CHAT_TURN_TIMEOUT_MS (180 s). A task always ends before the backend's turn bound
    # (hard limit 150 s). On Redis a killed worker's task comes back only after the
    # visibility timeout, which must outlast the longest task (or a running task would be
    # delivered twice) -- by then the backend has failed the turn and the redelivery finds
    # it failed. RabbitMQ has no visibility timeout: it redelivers an unacknowledged task
    # as soon as the consumer's connection closes, and its consumer_timeout (30 min by
    # default) must outlast the hard limit (docs/agent-manager.md, "Celery task").
    visibility_timeout_seconds: int = 180
    task_soft_time_limit_seconds: int = 120
    task_time_limit_seconds: int = 150
    task_max_retries: int = 3
    retry_backoff_seconds: float = 2.0
    retry_backoff_max_seconds: float = 30.0
    publish_retry_seconds: float = Field(
        default=20.0,
        description=(
            "How long one item's publish is retried while Redis cannot be reached (a "
            "restart, a Cluster master failing over to its replica) before the answer "
            "fails; the backend's idle bound (30 s) ends the turn in any case."
        ),
    )

    # --- Key names / retention ------------------------------------------------------------
    completion_stream: str = "chat:completions"
    completion_stream_maxlen: int = 100_000
    stream_maxlen: int = 1000
    stream_ttl_seconds: int = 86_400
    cancel_ttl_seconds: int = 3600
    idempotency_ttl_seconds: int = 86_400

    # --- HTTP API ---------------------------------------------------------------------------
    host: str = "0.0.0.0"  # noqa: S104 - a container service listens on all interfaces
    port: int = 8100
    service_token: SecretStr | None = None
    service_token_header: str = "X-Service-Token"  # noqa: S105 - a header name
    health_ping_timeout_seconds: float = 1.0
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token for GET /metrics on the API; unset: 404."
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Port of the worker's Prometheus endpoint; unset: off."
    )

    # --- Model ------------------------------------------------------------------------------
    model_provider: Literal["offline", "openai", "anthropic"] = "offline"
    model_name: str | None = None
    model_base_url: str | None = None
    model_api_key: SecretStr | None = None
    model_temperature: float = 0.2
    model_timeout_seconds: float = 60.0
    model_max_tokens: int = 1024
    model_max_retries: int = 0
    offline_chunk_delay_ms: int = 20
    history_limit: int = 10

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _broker_outside_a_cluster(self) -> Settings:
        if self.redis_cluster and not self.broker_url:
            raise ValueError(
                "AGENT_REDIS_MODE=cluster needs AGENT_BROKER_URL: Celery's Redis transport "
                "cannot use a Redis Cluster; point it at a single Redis or at RabbitMQ (amqp://)"
            )
        return self

    @property
    def redis_cluster(self) -> bool:
        return self.redis_mode == "cluster"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def broker_is_amqp(self) -> bool:
        """RabbitMQ (kombu's pyamqp transport) rather than Redis."""
        return self.celery_broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
