"""Real provider clients (ChatOpenAI, ChatAnthropic) against local fakes of their wire formats.

The task runs in-process (eagerly) with the provider chosen by configuration only: provider
name, base URL, key and timeout — exactly what a deployment sets. Items are read from Redis.
"""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import SecretStr

from app.worker import tasks

from .conftest import chat_body, collect, completions_for, stream_items, subscribed
from .fake_llm import FakeModelServer, Script
from .samples import KO_CONTEXT
from .test_providers import settings_for

PIECES = ["지하", " 주차장", " 2시간", " 무료", "입니다."]
PROVIDERS = ["openai", "anthropic"]


@pytest.fixture
def fake():
    server = FakeModelServer()
    yield server
    server.close()


def configure(monkeypatch, fake: FakeModelServer, provider: str, **extra) -> None:
    url = fake.openai_url if provider == "openai" else fake.anthropic_url
    settings = settings_for(
        model_provider=provider,
        model_name="fake-model",
        model_base_url=url,
        model_api_key=SecretStr("test-key"),
        model_timeout_seconds=extra.pop("timeout", 5.0),
        **extra,
    )
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)


def run(redis_client, question="주차 되나요?", history=None, during=None):
    body = chat_body(question, KO_CONTEXT, history=history or [])
    with subscribed(redis_client, body["session_id"]) as pubsub:
        worker = threading.Thread(target=tasks.process_chat_message.apply, kwargs={"kwargs": body})
        worker.start()
        if during:
            during(body, pubsub)
        items = collect(pubsub, body["message_id"], timeout=30)
        worker.join(timeout=30)
    return body, items


def deltas(items):
    return [i["content"] for i in items if i["type"] == "text-delta"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streams_token_by_token(monkeypatch, redis_client, fake, provider):
    fake.script = Script(pieces=PIECES)
    configure(monkeypatch, fake, provider)
    history = [
        {"role": "user", "content": "신랑측 계좌 알려줘"},
        {"role": "assistant", "content": "신랑측: 국민은행 123-456-789012"},
    ]
    _body, items = run(redis_client, history=history)

    assert deltas(items) == PIECES  # one item per streamed token, in order
    assert items[-1]["type"] == "done"
    assert items[-1]["content"] == "".join(PIECES)
    assert [i["seq"] for i in items] == list(range(len(items)))
    [request] = fake.requests
    assert request.body["stream"] is True
    assert request.body["model"] == "fake-model"
    system, turns = _prompt(provider, request.body)
    assert "ONLY from the wedding details" in system
    assert "say so plainly first" in system
    assert "<wedding_context>" in system and "건물 지하 주차장" in system
    assert "topics: parking" in system
    assert [t["content"] for t in turns] == [
        "신랑측 계좌 알려줘",
        "신랑측: 국민은행 123-456-789012",
        "주차 되나요?",
    ]


def _prompt(provider, body):
    """The system prompt and the conversation turns the provider received."""
    if provider == "openai":
        messages = body["messages"]
        assert messages[0]["role"] == "system"
        return messages[0]["content"], messages[1:]
    system = body["system"]
    if isinstance(system, list):
        system = "".join(block["text"] for block in system)
    turns = [
        {"content": m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]}
        for m in body["messages"]
    ]
    return system, turns


@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_mid_stream_ends_with_error_and_keeps_the_partial_text(
    monkeypatch, redis_client, fake, provider
):
    fake.script = Script(pieces=PIECES, fail_after=2)
    configure(monkeypatch, fake, provider)
    body, items = run(redis_client)

    assert [i["type"] for i in items] == ["text-delta", "text-delta", "error"]
    assert deltas(items) == PIECES[:2]
    assert "다시 시도" in items[-1]["content"]  # the question was Korean
    # the partial text stays durable for resume, and the failure is recorded once
    kept = stream_items(redis_client, body["session_id"])
    assert [i["content"] for i in kept if i["type"] == "text-delta"] == PIECES[:2]
    [entry] = completions_for(redis_client, body["message_id"])
    assert entry["type"] == "error"
    assert len(fake.requests) == 1  # never retried once text went out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_before_the_first_token_is_retried_then_fails_once(
    monkeypatch, redis_client, fake, provider
):
    fake.script = Script(pieces=PIECES, delay_before_headers=1.5)
    configure(monkeypatch, fake, provider, timeout=0.3)
    body, items = run(redis_client, question="Is there parking?")

    assert [i["type"] for i in items] == ["error"]
    assert items[0]["content"].startswith("Sorry, something went wrong")  # English question
    assert len(fake.requests) == 3  # first try + AGENT_TASK_MAX_RETRIES=2 from the test env
    [entry] = completions_for(redis_client, body["message_id"])
    assert entry["type"] == "error"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_mid_stream_keeps_the_partial_text(monkeypatch, redis_client, fake, provider):
    fake.script = Script(pieces=PIECES, stall_after=3, stall_seconds=3)
    configure(monkeypatch, fake, provider, timeout=0.5)
    _body, items = run(redis_client)

    assert [i["type"] for i in items] == ["text-delta"] * 3 + ["error"]
    assert deltas(items) == PIECES[:3]
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stop_ends_the_stream_and_the_provider_call(monkeypatch, redis_client, fake, provider):
    many = [f" 조각{n}" for n in range(40)]
    fake.script = Script(pieces=many, delay_between=0.1)
    configure(monkeypatch, fake, provider)

    def stop_after_first_delta(body, pubsub):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message" and "text-delta" in message["data"]:
                redis_client.set(f"chat:cancel:{body['message_id']}", "1", ex=60)
                return

    body, items = run(redis_client, during=stop_after_first_delta)

    done = items[-1]
    assert done["type"] == "done" and done["stopped"] is True
    sent = deltas(stream_items(redis_client, body["session_id"]))  # incl. the one read above
    assert done["content"] == "".join(sent)
    assert 1 <= len(sent) < len(many)
    # the worker closed the provider connection instead of reading the rest
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not fake.requests[0].client_gone:
        time.sleep(0.1)
    assert fake.requests[0].client_gone
    assert fake.requests[0].sent < len(many)
