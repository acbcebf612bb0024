"""Model provider factory: ``AGENT_MODEL_PROVIDER`` = offline | openai | anthropic."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models.chat_models import BaseChatModel

from app.agents.offline import OfflineChatModel
from app.core.config import Settings

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}


class TransientModelError(Exception):
    """A model call failed for a reason worth retrying (network, timeout, 429, 5xx)."""


def _build_offline(settings: Settings) -> BaseChatModel:
    return OfflineChatModel(chunk_delay_ms=settings.offline_chunk_delay_ms)


def _build_openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    kwargs: dict = {
        "model": settings.model_name or DEFAULT_MODELS["openai"],
        "temperature": settings.model_temperature,
        "timeout": settings.model_timeout_seconds,
        "max_retries": settings.model_max_retries,
        "max_tokens": settings.model_max_tokens,
        "streaming": True,
    }
    if settings.model_base_url:
        kwargs["base_url"] = settings.model_base_url
    if settings.model_api_key is not None and settings.model_api_key.get_secret_value():
        kwargs["api_key"] = settings.model_api_key.get_secret_value()
    return ChatOpenAI(**kwargs)


def _build_anthropic(settings: Settings) -> BaseChatModel:
    from langchain_anthropic import ChatAnthropic

    kwargs: dict = {
        "model": settings.model_name or DEFAULT_MODELS["anthropic"],
        "temperature": settings.model_temperature,
        "timeout": settings.model_timeout_seconds,
        "max_retries": settings.model_max_retries,
        "max_tokens": settings.model_max_tokens,
    }
    if settings.model_base_url:
        kwargs["base_url"] = settings.model_base_url
    if settings.model_api_key is not None and settings.model_api_key.get_secret_value():
        kwargs["api_key"] = settings.model_api_key.get_secret_value()
    return ChatAnthropic(**kwargs)


#: Provider name -> builder. Tests (or plug-ins) may register other builders here.
PROVIDER_BUILDERS: dict[str, Callable[[Settings], BaseChatModel]] = {
    "offline": _build_offline,
    "openai": _build_openai,
    "anthropic": _build_anthropic,
}


def build_chat_model(settings: Settings) -> BaseChatModel:
    try:
        builder = PROVIDER_BUILDERS[settings.model_provider]
    except KeyError:
        raise ValueError(f"unknown model provider {settings.model_provider!r}") from None
    return builder(settings)


def is_transient(exc: BaseException) -> bool:
    """Network errors, timeouts, rate limits and server errors of either SDK."""
    if isinstance(exc, TransientModelError | TimeoutError | ConnectionError):
        return True
    transient: list[type[BaseException]] = []
    try:
        import httpx

        transient += [httpx.TransportError]
    except ImportError:  # pragma: no cover
        pass
    for sdk in ("openai", "anthropic"):
        try:
            module = __import__(sdk)
        except ImportError:  # pragma: no cover
            continue
        for name in (
            "APIConnectionError",
            "APITimeoutError",
            "RateLimitError",
            "InternalServerError",
        ):
            cls = getattr(module, name, None)
            if isinstance(cls, type):
                transient.append(cls)
    return isinstance(exc, tuple(transient))
