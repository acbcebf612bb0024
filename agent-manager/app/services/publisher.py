"""Publishes answer items: pub/sub for live delivery, streams for durability."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import redis

from app.core.config import Settings
from app.schemas import ChatRequest
from app.services import keys, metrics

# Hangul, as the agents' detect_language (services must not import the agents).
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")

# The end of an answer whose redelivered attempt came out different (see RedisPublisher).
_INTERRUPTED = {
    "ko": "죄송합니다. 답변이 중간에 끊겼습니다. 메시지를 다시 보내 주세요.",
    "en": "Sorry, the answer was interrupted. Please send your message again.",
}

logger = logging.getLogger(__name__)


#: Redis errors a publish is tried again after: the server (or the Cluster node owning the
#: turn's slot) cannot be reached, or a Cluster is failing the node over to its replica.
_UNREACHABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    # Not a RedisError: no node answers (the whole Cluster restarting), a slot uncovered.
    redis.exceptions.RedisClusterException,
)


class TurnClosed(Exception):  # noqa: N818 - a state, not a failure of ours
    """The turn takes no more items: the backend failed it (its deadline passed), or the seq
    was already used by an earlier attempt."""


# One item, atomically: refused when the turn was failed or the seq already used; otherwise
# XADD to the session stream (and the completion stream when final and one is given),
# publish, and record next_seq / at_ms (Redis time) / final in the turn hash the backend's
# deadline reads. The item goes out with `published_at_ms` (that same Redis time) put
# first, so the backend's relay can measure its lag on one clock without parsing the item.
# KEYS: turn, session stream, channel, [completion stream -- single server only: on a
#       Cluster it is in another slot, so the caller appends the completion after the
#       script; the backend's sweeper stores an answer whose completion never came].
# ARGV: seq, item, final (0/1), stream maxlen, stream ttl, completion maxlen,
#       message_id, session_id, page_id, user_id, type, turn ttl,
#       publish command (PUBLISH, or SPUBLISH on a Cluster).
_PUBLISH_SCRIPT = """
local t = KEYS[1]
if redis.call('HGET', t, 'failed') then return -1 end
local seq = tonumber(ARGV[1])
local nxt = tonumber(redis.call('HGET', t, 'next_seq') or '0')
if seq < nxt then return -2 end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local item = '{"published_at_ms":' .. ms .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'item', item)
redis.call('EXPIRE', KEYS[2], ARGV[5])
if ARGV[3] == '1' and KEYS[4] then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'message_id', ARGV[7],
    'session_id', ARGV[8], 'page_id', ARGV[9], 'user_id', ARGV[10], 'type', ARGV[11],
    'item', item)
end
redis.call(ARGV[13], KEYS[3], item)
redis.call('HSET', t, 'next_seq', seq + 1, 'at_ms', ms)
if ARGV[3] == '1' then redis.call('HSET', t, 'final', '1') end
redis.call('EXPIRE', t, ARGV[12])
return 1
"""

_SAME_FIELDS = ("type", "content", "component", "components", "stopped")


def previous_items(
    client: redis.Redis, session_id: str, message_id: str, cluster: bool = False
) -> list[dict[str, Any]]:
    """Items of ``message_id`` an earlier attempt already published (the durable stream), one
    per seq, in seq order."""
    by_seq: dict[int, dict[str, Any]] = {}
    for _id, fields in client.xrange(keys.session_stream(session_id, cluster)):
        raw = fields.get(b"item") or fields.get("item")
        try:
            item = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if item.get("message_id") == message_id and isinstance(item.get("seq"), int):
            by_seq.setdefault(item["seq"], item)
    return [by_seq[s] for s in sorted(by_seq)]


class RedisPublisher:
    """Implements the agents' ``AnswerSink`` on Redis.

    Each item is, in one Lua script: XADDed to ``chat:stream:<session_id>`` (bounded, with a
    TTL), XADDed to the completion stream when it is the final done/error, PUBLISHed to
    ``chat:<session_id>``, and recorded in the turn hash. On a Redis Cluster the item is
    SPUBLISHed and the completion entry is appended right after the script (another slot).
    ``seq`` rises from 0 for every message; a seq is never published twice (the script refuses it).

    ``previous`` holds the items an earlier attempt at the same message published (a
    redelivered task). They are regenerated but not sent again: each must equal the item
    already sent under its seq, and publishing resumes after the last. When the new
    generation differs, the answer ends there with an ``error`` item under the next unused
    seq, so a client never sees two different items with one ``(message_id, seq)``.
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        request: ChatRequest,
        previous: list[dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.session_id = request.session_id
        self.message_id = request.message_id
        self.page_id = request.page_id
        self.user_id = request.user_id
        self.seq = 0
        self.finished = False
        self._started = time.monotonic()
        self.closed = False
        self.previous = previous or []
        self.lang = "ko" if _HANGUL.search(getattr(request, "message", "") or "") else "en"
        self._script = client.register_script(_PUBLISH_SCRIPT)

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
        if self.closed:
            raise TurnClosed(self.message_id)
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
        if self.seq < len(self.previous):
            sent = self.previous[self.seq]
            if all(sent.get(k) == item.get(k) for k in _SAME_FIELDS):
                self.seq += 1  # already delivered under this seq
                return item
            logger.warning(
                "redelivered answer to %s differs from what was sent at seq %d; ending it",
                self.message_id,
                self.seq,
            )
            self.seq = len(self.previous)
            self.previous = []
            self._publish("error", content=_INTERRUPTED[self.lang])
            self.closed = True
            raise TurnClosed(self.message_id)
        return self._publish(item_type, **fields)

    def _publish(self, item_type: str, **fields: Any) -> dict[str, Any]:
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
        s = self.settings
        cluster = s.redis_cluster
        script_keys = [
            keys.turn(self.session_id, self.message_id, cluster),
            keys.session_stream(self.session_id, cluster),
            keys.channel(self.session_id),
        ]
        if not cluster:
            script_keys.append(s.completion_stream)
        args = [
            self.seq,
            payload,
            "1" if final else "0",
            s.stream_maxlen,
            s.stream_ttl_seconds,
            s.completion_stream_maxlen,
            self.message_id,
            self.session_id,
            self.page_id or "",
            self.user_id or "",
            item_type,
            s.stream_ttl_seconds,
            "SPUBLISH" if cluster else "PUBLISH",
        ]
        outcome = self._while_reachable(lambda: self._script(keys=script_keys, args=args))
        if outcome == -2 and self._while_reachable(lambda: self._already_sent(item)):
            # An attempt whose answer was lost had gone through: retried by us, or by the
            # Redis client itself, which sends a command again after a connection error.
            outcome = 1
        if outcome == 1 and final and cluster:
            self._while_reachable(lambda: self._append_completion(payload, item_type))
        if outcome != 1:
            # -1: the backend failed the turn; -2: the seq went out already.
            self.closed = True
            raise TurnClosed(self.message_id)
        if self.seq == 0:
            metrics.TIME_TO_FIRST_ITEM.observe(time.monotonic() - self._started)
        self.seq += 1
        if final:
            self.finished = True
        return item

    def _while_reachable(self, call: Any) -> Any:
        """``call()``, tried again while Redis cannot be reached, for up to
        ``publish_retry_seconds``. The script refuses a seq it already took, so a call that
        went through before its answer was lost is never applied twice."""
        deadline = time.monotonic() + self.settings.publish_retry_seconds
        pause, retried = 0.1, False
        while True:
            try:
                return call()
            except _UNREACHABLE as exc:
                if time.monotonic() + pause > deadline:
                    raise
                if not retried:
                    logger.warning(
                        "Redis unreachable publishing %s seq %d (%s); retrying for up to %.0fs",
                        self.message_id,
                        self.seq,
                        exc,
                        self.settings.publish_retry_seconds,
                    )
                retried = True
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _already_sent(self, item: dict[str, Any]) -> bool:
        """Whether the session stream holds ``item`` under its seq (a publish sent again
        after its first attempt went through). Another item under that seq is not ours: the
        turn is closed then."""
        sent = previous_items(
            self.client, self.session_id, self.message_id, self.settings.redis_cluster
        )
        same = next((i for i in sent if i["seq"] == self.seq), None)
        return same is not None and all(same.get(k) == item.get(k) for k in _SAME_FIELDS)

    def _append_completion(self, payload: str, item_type: str) -> None:
        """The completion entry, after the item's script (Cluster: another slot). Lost if the
        worker dies right here; the backend's sweeper then stores the answer from the
        session stream once the idle bound has passed."""
        s = self.settings
        self.client.xadd(
            s.completion_stream,
            {
                "message_id": self.message_id,
                "session_id": self.session_id,
                "page_id": self.page_id or "",
                "user_id": self.user_id or "",
                "type": item_type,
                "item": payload,
            },
            maxlen=s.completion_stream_maxlen,
            approximate=True,
        )

    # AnswerSink --------------------------------------------------------------------------
    def text_delta(self, text: str) -> None:
        self._emit("text-delta", content=text)

    def component(self, component: dict[str, Any]) -> None:
        self._emit("component", component=component)

    def done(self, content: str, components: list[dict[str, Any]], stopped: bool) -> None:
        self._emit("done", content=content, components=components, stopped=stopped)

    def error(self, message: str) -> None:
        self._emit("error", content=message)
