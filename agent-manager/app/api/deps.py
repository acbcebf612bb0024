"""Service-token check for every chat endpoint."""

from __future__ import annotations

import hmac

from fastapi import Request

from app.core.config import Settings


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def require_service_token(request: Request) -> None:
    settings: Settings = request.app.state.settings
    expected = settings.service_token.get_secret_value() if settings.service_token else ""
    given = request.headers.get(settings.service_token_header, "")
    if not expected:
        raise ApiError(401, "unauthorized", "service token is not configured")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "missing or invalid service token")
