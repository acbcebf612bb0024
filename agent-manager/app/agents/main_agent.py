"""Main agent: classifies the question and routes it through the other agents."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models.chat_models import BaseChatModel

from app.agents.context_agent import ContextAgent
from app.agents.intents import Query, resolve
from app.agents.map_agent import MapAgent
from app.agents.output_agent import AgentResult, AnswerSink, OutputAgent
from app.schemas import ChatRequest, parse_wedding_context


class MainAgent:
    def __init__(self, model: BaseChatModel, history_limit: int = 10) -> None:
        self.model = model
        self.history_limit = history_limit
        self.context_agent = ContextAgent()
        self.map_agent = MapAgent()
        self.output_agent = OutputAgent()

    def plan(self, request: ChatRequest) -> Query:
        """What the question asks (topics, sides, transport...), follow-ups resolved."""
        recent = [h for h in request.history if h.role in ("user", "assistant")]
        recent = recent[-self.history_limit :] if self.history_limit > 0 else []
        earlier = [h.content for h in recent if h.role == "user"]
        return resolve(request.message, earlier)

    def run(
        self, request: ChatRequest, sink: AnswerSink, should_stop: Callable[[], bool]
    ) -> AgentResult:
        query = self.plan(request)
        ctx = parse_wedding_context(request.wedding_context)
        messages = self.context_agent.build_messages(
            query, ctx, request.history, self.history_limit
        )
        components = self.map_agent.components(ctx, query.intents)
        return self.output_agent.stream(
            self.model, messages, components, sink, should_stop, query.lang
        )
