"""Publishes answer items: pub/sub for live delivery, streams for durability."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from app.core.config import Settings
from app.schemas import ChatRequest
from app.services import keys, metrics

logger = logging.getLogger(__name__)


class RedisPublisher:
    """Implements the agents' ``AnswerSink`` on Redis.

    Each item is, in one MULTI/EXEC transaction: XADDed to ``chat:stream:<session_id>``
    (bounded, with a TTL), XADDed to the completion stream when it is the final done/error,
    and PUBLISHed to ``chat:<session_id>``. ``seq`` rises from 0 for every message.
    """

    def __init__(self, client: redis.Redis, settings: Settings, request: ChatRequest) -> None:
        self.client = client
        self.settings = settings
        self.session_id = request.session_id
        self.message_id = request.message_id
        self.page_id = request.page_id
        self.user_id = request.user_id
        self.seq = 0
        self.finished = False
        self._started = time.monotonic()

    @classmethod
    def for_ids(
        cls, client: redis.Redis, settings: Settings, session_id: str, message_id: str, **extra: str
    ) -> RedisPublisher:
        request = ChatRequest.model_construct(
            session_id=session_id,
            message_id=message_id,
            page_id=extra.get("page_id", ""),
            user_id=extra.get("user_id", ""),
        )
        return cls(client, settings, request)

    def _emit(self, item_type: str, **fields: Any) -> dict[str, Any]:
        if self.finished:
            raise RuntimeError("answer already finished")
        item = {
            "session_id": self.session_id,
            "message_id": self.message_id,
            "seq": self.seq,
            "role": "assistant",
            "type": item_type,
            **fields,
        }
        payload = json.dumps(item, ensure_ascii=False)
        final = item_type in ("done", "error")
        stream = keys.session_stream(self.session_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(stream, {"item": payload}, maxlen=self.settings.stream_maxlen, approximate=True)
        pipe.expire(stream, self.settings.stream_ttl_seconds)
        if final:
            pipe.xadd(
                self.settings.completion_stream,
                {
                    "message_id": self.message_id,
                    "session_id": self.session_id,
                    "page_id": self.page_id or "",
                    "user_id": self.user_id or "",
                    "type": item_type,
                    "item": payload,
                },
                maxlen=self.settings.completion_stream_maxlen,
                approximate=True,
            )
        pipe.publish(keys.channel(self.session_id), payload)
        pipe.execute()
        if self.seq == 0:
            metrics.TIME_TO_FIRST_ITEM.observe(time.monotonic() - self._started)
        self.seq += 1
        if final:
            self.finished = True
        return item

    # AnswerSink --------------------------------------------------------------------------
    def text_delta(self, text: str) -> None:
        self._emit("text-delta", content=text)

    def component(self, component: dict[str, Any]) -> None:
        self._emit("component", component=component)

    def done(self, content: str, components: list[dict[str, Any]], stopped: bool) -> None:
        self._emit("done", content=content, components=components, stopped=stopped)

    def error(self, message: str) -> None:
        self._emit("error", content=message)
