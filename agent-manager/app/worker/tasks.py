"""The Celery task ``agent.process_chat_message``: one chat message -> one streamed answer."""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from celery.exceptions import Retry, SoftTimeLimitExceeded
from pydantic import ValidationError

from app.agents.intents import detect_language
from app.agents.main_agent import MainAgent
from app.agents.output_agent import ERROR_TEXT
from app.agents.providers import TransientModelError, build_chat_model
from app.core.config import TASK_NAME, Settings, get_settings
from app.schemas import ID_PATTERN, ChatRequest
from app.services import metrics
from app.services.connection import connect
from app.services.control import (
    Claim,
    claim_message,
    finish_claim,
    stop_requested,
    turn_failed,
)
from app.services.publisher import RedisPublisher, TurnClosed, previous_items
from app.worker.celery_app import celery_app

logger = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}


def get_redis(settings: Settings) -> redis.Redis:
    client = _clients.get(settings.redis_url)
    if client is None:
        client = connect(settings, socket_timeout=10, socket_connect_timeout=5)
        _clients[settings.redis_url] = client
    return client


def retry_countdown(settings: Settings, retries: int) -> float:
    """Exponential backoff: base, 2*base, 4*base, ... capped."""
    return min(settings.retry_backoff_max_seconds, settings.retry_backoff_seconds * (2**retries))


def _payload(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Task kwargs are the POST /chat body; a single positional dict is accepted too."""
    if len(args) == 1 and isinstance(args[0], dict):
        return {**args[0], **kwargs}
    return dict(kwargs)


@celery_app.task(bind=True, name=TASK_NAME, acks_late=True)
def process_chat_message(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Answers one message; counts the task by its outcome (``agent_tasks_total``)."""
    try:
        outcome = _process(self, args, kwargs)
    except Retry:
        metrics.TASKS.labels("retry").inc()
        raise
    except BaseException:
        metrics.TASKS.labels("crashed").inc()
        raise
    metrics.TASKS.labels(outcome["status"]).inc()
    return outcome


def _process(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    client = get_redis(settings)
    payload = _payload(args, kwargs)
    task_id = self.request.id or "eager"
    try:
        request = ChatRequest.model_validate(payload)
    except ValidationError as exc:
        logger.warning("rejecting invalid task payload: %s", exc.errors(include_input=False))
        _report_invalid(client, settings, payload)
        return {"status": "invalid"}

    delivery_info = self.request.delivery_info or {}
    may_resume = bool(self.request.retries) or bool(delivery_info.get("redelivered"))
    claim = claim_message(client, settings, request.message_id, task_id, may_resume)
    if claim is Claim.DUPLICATE:
        logger.info("message %s already claimed; skipping duplicate", request.message_id)
        return {"status": "duplicate", "message_id": request.message_id}

    if turn_failed(client, settings, request.session_id, request.message_id):
        logger.info("message %s failed its deadline before it started", request.message_id)
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "failed", "message_id": request.message_id}
    # A redelivery (or a second hand-off after lost claim data) continues what an earlier
    # attempt already sent, never re-sending a seq with other content.
    previous = previous_items(
        client, request.session_id, request.message_id, settings.redis_cluster
    )
    if any(i.get("type") in ("done", "error") for i in previous):
        logger.info("message %s was already answered; skipping", request.message_id)
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "duplicate", "message_id": request.message_id}

    lang = detect_language(request.message)
    publisher = RedisPublisher(client, settings, request, previous=previous)
    agent = MainAgent(build_chat_model(settings), history_limit=settings.history_limit)
    try:
        result = agent.run(request, publisher, lambda: stop_requested(client, request.message_id))
    except TurnClosed:
        logger.info("turn %s closed (failed, or seq taken); stopped", request.message_id)
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "closed", "message_id": request.message_id}
    except TransientModelError as exc:
        retries = self.request.retries or 0
        if retries < settings.task_max_retries:
            countdown = retry_countdown(settings, retries)
            logger.warning(
                "transient model error (%s); retry %d in %.1fs", exc, retries + 1, countdown
            )
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=settings.task_max_retries
            ) from exc
        logger.error("model still failing after %d retries: %s", retries, exc)
        publisher.error(ERROR_TEXT[lang])
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "error", "message_id": request.message_id}
    except SoftTimeLimitExceeded:
        logger.error("answer to %s hit the soft time limit", request.message_id)
        if not (publisher.finished or publisher.closed):
            publisher.error(ERROR_TEXT[lang])
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "timeout", "message_id": request.message_id}
    except Exception:
        logger.exception("answer to %s failed", request.message_id)
        if not (publisher.finished or publisher.closed):
            publisher.error(ERROR_TEXT[lang])
        finish_claim(client, settings, request.message_id, task_id)
        return {"status": "error", "message_id": request.message_id}
    finish_claim(client, settings, request.message_id, task_id)
    return {"status": result.status, "message_id": request.message_id, "items": publisher.seq}


def _report_invalid(client: redis.Redis, settings: Settings, payload: dict[str, Any]) -> None:
    """If the ids are usable, end the stream with an error so the client is not left waiting."""
    session_id, message_id = payload.get("session_id"), payload.get("message_id")
    if not all(
        isinstance(v, str) and re.fullmatch(ID_PATTERN, v) for v in (session_id, message_id)
    ):
        return
    publisher = RedisPublisher.for_ids(client, settings, session_id, message_id)
    publisher.error("invalid chat task payload")
