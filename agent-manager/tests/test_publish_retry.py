"""Publishing through a Redis that cannot be reached for a moment (a restart, a Cluster
master failing over to its replica): the item is published once Redis answers again,
exactly once, and an outage longer than the retry window fails the publish."""

import time

import pytest
import redis

from app.core.config import get_settings
from app.schemas import ChatRequest
from app.services.publisher import RedisPublisher, TurnClosed

from .conftest import chat_body, stream_items
from .samples import EN_CONTEXT


class Unreachable:
    """The publish script behind a connection that refuses `before` calls, then runs them
    but loses the answer of the next `after` (the script ran; the reply never came)."""

    def __init__(self, script, before: int = 0, after: int = 0):
        self.script, self.before, self.after, self.calls = script, before, after, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.before:
            self.before -= 1
            raise redis.ConnectionError("Connection refused")
        result = self.script(**kwargs)
        if self.after:
            self.after -= 1
            raise redis.ConnectionError("Connection reset by peer")
        return result


def _publisher(redis_client, retry_seconds=5.0, **unreachable):
    settings = get_settings().model_copy(update={"publish_retry_seconds": retry_seconds})
    body = chat_body("When is the wedding?", EN_CONTEXT)
    publisher = RedisPublisher(redis_client, settings, ChatRequest.model_validate(body))
    publisher._script = Unreachable(publisher._script, **unreachable)
    return publisher, body["session_id"]


def _another_attempt(redis_client, publisher) -> RedisPublisher:
    """A second publisher of the same message (an attempt that went through unseen)."""
    request = ChatRequest.model_validate(
        chat_body(
            "When is the wedding?",
            EN_CONTEXT,
            session_id=publisher.session_id,
            message_id=publisher.message_id,
        )
    )
    return RedisPublisher(redis_client, publisher.settings, request)


def test_an_item_is_published_once_redis_answers_again(redis_client):
    publisher, session_id = _publisher(redis_client, before=3)
    publisher.text_delta("Hello")
    publisher.text_delta(" there")
    assert publisher._script.calls == 5
    assert [(i["seq"], i["content"]) for i in stream_items(redis_client, session_id)] == [
        (0, "Hello"),
        (1, " there"),
    ]


def test_a_publish_whose_answer_was_lost_is_not_sent_twice_nor_taken_for_a_closed_turn(
    redis_client,
):
    publisher, session_id = _publisher(redis_client, after=1)
    publisher.text_delta("Hello")  # ran, its answer lost; the retry finds seq 0 taken
    publisher.done("Hello", [], stopped=False)
    items = stream_items(redis_client, session_id)
    assert [(i["seq"], i["type"]) for i in items] == [(0, "text-delta"), (1, "done")]
    assert publisher.finished and not publisher.closed


def test_an_item_the_client_resent_after_a_lost_reply_counts_as_sent(redis_client):
    """The Redis client itself sends a command again after a connection error: the script
    then finds the seq taken by the same item."""
    publisher, session_id = _publisher(redis_client)
    _another_attempt(redis_client, publisher).text_delta(
        "Hello"
    )  # the attempt whose reply was lost
    publisher.text_delta("Hello")
    assert not publisher.closed and publisher.seq == 1
    assert len(stream_items(redis_client, session_id)) == 1


def test_another_item_under_the_seq_closes_the_turn(redis_client):
    publisher, session_id = _publisher(redis_client)
    _another_attempt(redis_client, publisher).text_delta("Something else")
    with pytest.raises(TurnClosed):
        publisher.text_delta("Hello")
    assert [i["content"] for i in stream_items(redis_client, session_id)] == ["Something else"]


def test_an_outage_longer_than_the_retry_window_fails_the_publish(redis_client):
    publisher, session_id = _publisher(redis_client, retry_seconds=0.5, before=1000)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        publisher.text_delta("Hello")
    assert 0.3 <= time.monotonic() - started < 5
    assert stream_items(redis_client, session_id) == []
