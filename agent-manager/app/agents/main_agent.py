"""Main agent: classifies the question and routes it through the other agents."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models.chat_models import BaseChatModel

from app.agents.context_agent import ContextAgent
from app.agents.intents import Intent, classify, detect_language
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

    @staticmethod
    def plan(question: str) -> tuple[list[Intent], str]:
        """What the question needs (intents) and the language to answer in."""
        return classify(question), detect_language(question)

    def run(
        self, request: ChatRequest, sink: AnswerSink, should_stop: Callable[[], bool]
    ) -> AgentResult:
        intents, lang = self.plan(request.message)
        ctx = parse_wedding_context(request.wedding_context)
        messages = self.context_agent.build_messages(
            request.message, ctx, intents, lang, request.history, self.history_limit
        )
        components = self.map_agent.components(ctx, intents)
        return self.output_agent.stream(self.model, messages, components, sink, should_stop, lang)
