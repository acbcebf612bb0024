"""FastAPI application factory. Run with ``uvicorn app.api.main:app``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.core.config import Settings, get_settings
from app.services.connection import connect
from app.services.metrics import queue_depth_reader
from app.worker.celery_app import create_celery

from .deps import ApiError
from .routes import chat_router, health_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)
    app = FastAPI(title="Mocheong agent-manager", version="0.1.0")
    app.state.settings = settings
    app.state.redis = connect(settings, socket_timeout=2, socket_connect_timeout=1)
    app.state.celery = create_celery(settings, include_tasks=False)
    app.state.queue_depth = queue_depth_reader(settings, app.state.redis, app.state.celery)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status, content={"error": {"code": exc.code, "message": exc.message}}
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={
                "error": {
                    "code": "validation_error",
                    "message": "invalid request",
                    "details": details,
                }
            },
        )

    app.include_router(health_router)
    app.include_router(chat_router)
    return app


app = create_app()
