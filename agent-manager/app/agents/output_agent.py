"""Output agent: streams the model's text, then the components, then exactly one done/error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from app.agents.providers import TransientModelError, is_transient

logger = logging.getLogger(__name__)


class AnswerSink(Protocol):
    """Where the answer items go (the Redis publisher in production, a list in unit tests)."""

    def text_delta(self, text: str) -> None: ...
    def component(self, component: dict[str, Any]) -> None: ...
    def done(self, content: str, components: list[dict[str, Any]], stopped: bool) -> None: ...
    def error(self, message: str) -> None: ...


@dataclass
class AgentResult:
    status: str  # "done" | "stopped" | "error"
    content: str = ""
    components: list[dict[str, Any]] = field(default_factory=list)
    deltas: int = 0


def chunk_text(chunk: Any) -> str:
    """Text of a streamed message chunk (string content or a list of content blocks)."""
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", ""))
            for b in content
            if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
        )
    return ""


ERROR_TEXT = {
    "ko": "죄송합니다. 답변을 만드는 중 문제가 생겼습니다. 잠시 후 다시 시도해 주세요.",
    "en": "Sorry, something went wrong while answering. Please try again in a moment.",
}


class OutputAgent:
    def stream(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        components: list[dict[str, Any]],
        sink: AnswerSink,
        should_stop: Callable[[], bool],
        lang: str,
    ) -> AgentResult:
        """Run the model and emit items.

        Raises :class:`TransientModelError` only when nothing was emitted yet, so the caller
        can retry the whole answer without a client ever seeing a duplicate delta.
        """
        parts: list[str] = []
        if should_stop():
            sink.done("", [], stopped=True)
            return AgentResult(status="stopped")
        try:
            for chunk in model.stream(messages):
                text = chunk_text(chunk)
                if not text:
                    continue
                parts.append(text)
                sink.text_delta(text)
                if should_stop():
                    content = "".join(parts)
                    sink.done(content, [], stopped=True)
                    return AgentResult(status="stopped", content=content, deltas=len(parts))
        except Exception as exc:
            if not parts and is_transient(exc):
                raise TransientModelError(str(exc) or type(exc).__name__) from exc
            logger.exception("model stream failed after %d chunks", len(parts))
            sink.error(ERROR_TEXT.get(lang, ERROR_TEXT["en"]))
            return AgentResult(status="error", content="".join(parts), deltas=len(parts))
        content = "".join(parts)
        for component in components:
            sink.component(component)
        sink.done(content, components, stopped=False)
        return AgentResult(status="done", content=content, components=components, deltas=len(parts))
