"""A thin helper over python-socketio's client that records every event it gets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import socketio

NS = "/chat"


class ChatClient:
    def __init__(self, base: str, token: str | None):
        self.base = base
        self.sio = socketio.Client(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self.token = token
        self.connect_error: Any = None
        self.disconnected = threading.Event()

        @self.sio.on("disconnect", namespace=NS)
        def gone(*_args):
            self.disconnected.set()

        @self.sio.on("connect_error", namespace=NS)
        def refused(data):
            self.connect_error = data

        @self.sio.on("*", namespace=NS)
        def any_event(event, *args):
            with self._new:
                self.events.append((event, args[0] if args else None))
                self._new.notify_all()

    def connect(self) -> ChatClient:
        auth = {"token": self.token} if self.token is not None else None
        self.sio.connect(self.base, namespaces=[NS], auth=auth, transports=["websocket"], wait_timeout=10)
        return self

    def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        return self.sio.call(event, data, namespace=NS, timeout=timeout)

    def emit(self, event: str, data: Any) -> None:
        self.sio.emit(event, data, namespace=NS)

    def wait_for(self, event: str, pred: Callable[[Any], bool] = lambda _: True, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for name, data in self.events:
                    if name == event and pred(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {event!r} within {timeout}s; got {[e for e, _ in self.events]}")
                self._new.wait(left)

    def items(self, message_id: str) -> list[dict]:
        """The assistant items received so far for one message, in arrival order."""
        with self._lock:
            return [
                d
                for e, d in self.events
                if e == "newMessage" and d.get("role") == "assistant" and d.get("message_id") == message_id
            ]

    def wait_done(self, message_id: str, timeout: float = 30) -> dict:
        return self.wait_for(
            "newMessage",
            lambda d: d.get("message_id") == message_id and d.get("type") in ("done", "error"),
            timeout,
        )

    def disconnect(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


class Api:
    """REST calls against one backend, asserting statuses."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=20)

    def req(
        self, method: str, path: str, token: str | None = None, json: Any = None, expect: int = 200
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.request(method, path, json=json, headers=headers)
        assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r.json() if r.content else None

    def register(self, tag: str) -> dict:
        import uuid

        email = f"{tag}-{uuid.uuid4().hex[:12]}@example.com"
        out = self.req(
            "POST",
            "/api/auth/register",
            json={"email": email, "password": "correct horse 42", "displayName": tag},
            expect=201,
        )
        return {"id": out["user"]["id"], "email": email, "token": out["accessToken"]}

    def create_page(self, owner: dict) -> dict:
        body = {
            "groom": {"name": "김민수"},
            "bride": {"name": "이지영"},
            "weddingAt": "2099-05-15T12:30:00+09:00",
            "venue": {
                "name": "더채플앳청담",
                "address": "서울 강남구 선릉로 757",
                "lat": 37.5247,
                "lng": 127.0423,
                "parking": "건물 내 2시간 무료",
                "transport": "7호선 청담역 13번 출구",
            },
            "giftAccounts": [
                {"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789"}
            ],
            "rsvp": {"open": True, "mealOptions": ["한식", "양식"]},
        }
        return self.req("POST", "/api/pages", owner["token"], body, expect=201)
