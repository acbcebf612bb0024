"""The offline model: a deterministic LangChain chat model grounded only in the wedding context.

It reads the context from the system message the context agent builds and the user's earlier
turns from the history messages (so "신부측은요?" after "신랑측 계좌 알려줘" asks for the bride's
side's account), answers with the context agent's facts, and streams the answer word by word
with a small delay like a real model. No network, no randomness.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from app.agents.context_agent import ContextAgent, extract_context
from app.agents.intents import resolve
from app.schemas import parse_wedding_context

_PIECES = re.compile(r"\s*\S+")


def offline_answer(
    question: str, raw_context: dict[str, Any], earlier_questions: list[str] | None = None
) -> str:
    """The full offline answer to ``question`` over ``raw_context``, after earlier questions."""
    ctx = parse_wedding_context(raw_context)
    query = resolve(question, earlier_questions or [])
    return "\n\n".join(ContextAgent().facts(query, ctx))


def split_chunks(text: str) -> list[str]:
    """Word-sized chunks whose concatenation is exactly ``text``."""
    pieces = _PIECES.findall(text)
    consumed = "".join(pieces)
    if consumed != text:  # trailing whitespace
        pieces.append(text[len(consumed) :])
    return pieces


class OfflineChatModel(BaseChatModel):
    """Deterministic answerer; see module docstring."""

    chunk_delay_ms: int = 20

    @property
    def _llm_type(self) -> str:
        return "mocheong-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"chunk_delay_ms": self.chunk_delay_ms}

    def _answer(self, messages: list[BaseMessage]) -> str:
        asked = [m.text for m in messages if isinstance(m, HumanMessage)]
        raw_context: dict[str, Any] = {}
        for message in messages:
            if message.type == "system":
                raw_context = extract_context(message.text)
                break
        if not asked:
            return offline_answer("", raw_context)
        return offline_answer(asked[-1], raw_context, asked[:-1])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._answer(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in split_chunks(self._answer(messages)):
            if self.chunk_delay_ms > 0:
                time.sleep(self.chunk_delay_ms / 1000)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
