"""HTTP routes: POST /chat, POST /chat/{message_id}/stop, GET /health, GET /metrics."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from app.core.config import TASK_NAME, Settings
from app.schemas import ID_PATTERN, ChatAccepted, ChatRequest, StopAccepted
from app.services import metrics
from app.services.control import request_stop

from .deps import ApiError, require_service_token

logger = logging.getLogger(__name__)

chat_router = APIRouter(dependencies=[Depends(require_service_token)])
health_router = APIRouter()


@chat_router.post("/chat", status_code=202, response_model=ChatAccepted)
def create_chat(body: ChatRequest, request: Request) -> ChatAccepted:
    settings: Settings = request.app.state.settings
    try:
        request.app.state.celery.send_task(
            TASK_NAME,
            kwargs=body.model_dump(mode="json"),
            queue=settings.queue,
            routing_key=settings.queue,
        )
    except Exception as exc:
        metrics.ENQUEUED.labels("broker_unavailable").inc()
        logger.error("could not enqueue message %s: %r", body.message_id, exc)
        raise ApiError(503, "broker_unavailable", "the task queue is unavailable") from exc
    metrics.ENQUEUED.labels("accepted").inc()
    logger.info("enqueued message %s (session %s)", body.message_id, body.session_id)
    return ChatAccepted(message_id=body.message_id)


@chat_router.post("/chat/{message_id}/stop", status_code=202, response_model=StopAccepted)
def stop_chat(
    message_id: Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)],
    request: Request,
) -> StopAccepted:
    request_stop(request.app.state.redis, request.app.state.settings, message_id)
    return StopAccepted(message_id=message_id)


@health_router.get("/health")
def health(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    checks: dict[str, dict] = {}
    try:
        request.app.state.redis.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    timeout = settings.health_ping_timeout_seconds
    celery = request.app.state.celery
    try:
        with celery.connection_for_write() as conn:
            # fail fast instead of kombu's reconnect loop when the broker is down
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            # limit=1: answer as soon as one worker replies instead of waiting out the timeout
            replies = celery.control.ping(timeout=timeout, connection=conn, limit=1)
        workers = sorted(name for reply in replies for name in reply)
        checks["worker"] = {"ok": bool(workers), "workers": workers}
    except Exception as exc:
        checks["worker"] = {"ok": False, "error": type(exc).__name__}
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse(
        status_code=200 if ok else 503,
        content={"status": "ok" if ok else "degraded", **checks},
    )


@health_router.get("/metrics", include_in_schema=False)
def scrape_metrics(request: Request) -> Response:
    """Prometheus text format; 404 unless AGENT_METRICS_TOKEN is set, then bearer-only."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        raise ApiError(404, "not_found", "not found")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "missing or invalid metrics token")
    body = metrics.render_api(request.app.state.queue_depth)
    return Response(body, media_type=metrics.CONTENT_TYPE)
