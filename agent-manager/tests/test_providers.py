"""Model providers: the factory wiring, and fake LangChain models driving the real task."""

import itertools

import httpx
import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

from app.agents import providers
from app.agents.offline import OfflineChatModel
from app.core.config import get_settings
from app.worker import tasks

from .conftest import chat_body, collect, completions_for, subscribed
from .samples import KO_CONTEXT


def settings_for(**update):
    return get_settings().model_copy(update=update)


def test_default_provider_is_offline():
    model = providers.build_chat_model(settings_for(model_provider="offline"))
    assert isinstance(model, OfflineChatModel)
    assert model.chunk_delay_ms == 15  # AGENT_OFFLINE_CHUNK_DELAY_MS from the test env


def test_openai_provider_uses_configured_base_url_and_model():
    from pydantic import SecretStr

    settings = settings_for(
        model_provider="openai",
        model_name="llama3.1:8b",
        model_base_url="http://ollama.internal:11434/v1",
        model_api_key=SecretStr("dummy-key"),
        model_temperature=0.1,
        model_timeout_seconds=12.5,
    )
    model = providers.build_chat_model(settings)
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "llama3.1:8b"
    assert model.openai_api_base == "http://ollama.internal:11434/v1"
    assert model.openai_api_key.get_secret_value() == "dummy-key"
    assert model.temperature == 0.1
    assert model.request_timeout == 12.5
    assert model.streaming is True


def test_anthropic_provider_uses_configured_model():
    from pydantic import SecretStr

    settings = settings_for(
        model_provider="anthropic",
        model_name="claude-test-model",
        model_api_key=SecretStr("dummy-key"),
        model_timeout_seconds=9.0,
    )
    model = providers.build_chat_model(settings)
    assert isinstance(model, ChatAnthropic)
    assert model.model == "claude-test-model"
    assert model.anthropic_api_key.get_secret_value() == "dummy-key"
    assert model.default_request_timeout == 9.0


def test_unknown_provider_is_rejected():
    settings = settings_for()
    object.__setattr__(settings, "model_provider", "nope")
    with pytest.raises(ValueError, match="unknown model provider"):
        providers.build_chat_model(settings)


def run_task_with(monkeypatch, redis_client, provider, model, question="주차 되나요?"):
    """Run the real task in-process (eagerly) with ``model`` injected for ``provider``."""
    monkeypatch.setattr(tasks, "get_settings", lambda: settings_for(model_provider=provider))
    monkeypatch.setitem(providers.PROVIDER_BUILDERS, provider, lambda _settings: model)
    body = chat_body(question, KO_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        result = tasks.process_chat_message.apply(kwargs=body)
        items = collect(pubsub, body["message_id"], timeout=10)
    return body, result, items


def test_openai_slot_streams_a_fake_model_through_the_pipeline(monkeypatch, redis_client):
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="지하 주차장 2시간 무료입니다.")]))
    _body, result, items = run_task_with(monkeypatch, redis_client, "openai", fake)
    assert result.get()["status"] == "done"
    deltas = [i["content"] for i in items if i["type"] == "text-delta"]
    assert len(deltas) > 1  # streamed chunk by chunk, not one blob
    assert items[-1]["type"] == "done"
    assert items[-1]["content"] == "".join(deltas) == "지하 주차장 2시간 무료입니다."
    assert [i["seq"] for i in items] == list(range(len(items)))


def test_anthropic_slot_streams_a_fake_model_with_map_component(monkeypatch, redis_client):
    fake = FakeListChatModel(responses=["Here is the venue."])
    _body, _result, items = run_task_with(
        monkeypatch, redis_client, "anthropic", fake, question="Show me the map"
    )
    types = [i["type"] for i in items]
    assert types[-2:] == ["component", "done"]
    assert items[-1]["content"] == "Here is the venue."
    assert items[-1]["components"][0]["kind"] == "map"


class FlakyModel(GenericFakeChatModel):
    """Fails with a connection error on the first call, then answers."""

    calls: int = 0

    def _stream(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://model/v1"))
        yield from super()._stream(*args, **kwargs)


def test_transient_model_error_is_retried_and_answered_once(monkeypatch, redis_client):
    model = FlakyModel(messages=itertools.repeat(AIMessage(content="Recovered answer")))
    body, _result, items = run_task_with(monkeypatch, redis_client, "openai", model)
    assert model.calls == 2
    assert [i["type"] for i in items].count("done") == 1
    assert "error" not in [i["type"] for i in items]
    assert items[-1]["content"] == "Recovered answer"
    assert items[0]["seq"] == 0
    assert len(completions_for(redis_client, body["message_id"])) == 1


class AlwaysDown(GenericFakeChatModel):
    def _stream(self, *args, **kwargs):
        raise openai.APITimeoutError(request=httpx.Request("POST", "http://model/v1"))
        yield  # pragma: no cover


def test_model_down_after_retries_ends_with_one_error(monkeypatch, redis_client):
    body, _result, items = run_task_with(
        monkeypatch, redis_client, "openai", AlwaysDown(messages=iter([]))
    )
    assert [i["type"] for i in items] == ["error"]
    assert items[0]["seq"] == 0
    assert "다시 시도" in items[0]["content"]
    [entry] = completions_for(redis_client, body["message_id"])
    assert entry["type"] == "error"


def test_retry_backoff_is_exponential_and_capped():
    settings = settings_for(retry_backoff_seconds=2.0, retry_backoff_max_seconds=10.0)
    assert [tasks.retry_countdown(settings, n) for n in range(5)] == [2, 4, 8, 10, 10]
