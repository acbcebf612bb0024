"""Cancel flags and the per-message idempotency claim."""

from __future__ import annotations

from enum import StrEnum

import redis

from app.core.config import Settings
from app.services import keys

_DONE_PREFIX = "done:"


def request_stop(client: redis.Redis, settings: Settings, message_id: str) -> None:
    client.set(keys.cancel_flag(message_id), "1", ex=settings.cancel_ttl_seconds)


def stop_requested(client: redis.Redis, message_id: str) -> bool:
    return bool(client.exists(keys.cancel_flag(message_id)))


def turn_failed(client: redis.Redis, settings: Settings, session_id: str, message_id: str) -> bool:
    """The backend's deadline failed this turn: answering it now would be too late."""
    turn = keys.turn(session_id, message_id, settings.redis_cluster)
    return bool(client.hexists(turn, "failed"))


class Claim(StrEnum):
    ACQUIRED = "acquired"  # first delivery: answer it
    RESUMED = "resumed"  # same task again (retry or redelivery) before it finished
    DUPLICATE = "duplicate"  # another task owns it, or it was already answered


def claim_message(
    client: redis.Redis,
    settings: Settings,
    message_id: str,
    task_id: str,
    may_resume: bool = False,
) -> Claim:
    """``SET chat:claim:<message_id> <task_id> NX EX ttl``.

    A second task for the same message (another task id) is a duplicate, and so is a second
    copy of the same task message. Only a Celery retry or a broker redelivery after a lost
    worker (``may_resume``) of the owning task may go on, and only while the answer is not
    finished (the value becomes ``done:<task_id>`` when it is).
    """
    key = keys.claim(message_id)
    if client.set(key, task_id, nx=True, ex=settings.idempotency_ttl_seconds):
        return Claim.ACQUIRED
    owner = client.get(key)
    owner = owner.decode() if isinstance(owner, bytes) else owner
    if may_resume and owner == task_id:
        return Claim.RESUMED
    return Claim.DUPLICATE


def finish_claim(client: redis.Redis, settings: Settings, message_id: str, task_id: str) -> None:
    client.set(
        keys.claim(message_id), f"{_DONE_PREFIX}{task_id}", ex=settings.idempotency_ttl_seconds
    )
