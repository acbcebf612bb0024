"""Wire contract of the agent-manager (mirrors docs/agent-manager.md)."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

logger = logging.getLogger(__name__)

#: Identifiers end up in Redis key names, so they are kept to a safe alphabet.
ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
MAX_MESSAGE_CHARS = 4000
MAX_HISTORY_ITEMS = 50
MAX_HISTORY_CONTENT_CHARS = 8000
MAX_CONTEXT_BYTES = 64 * 1024

Identifier = Field(min_length=1, max_length=128, pattern=ID_PATTERN)

ItemType = Literal["text-delta", "text", "component", "done", "error"]


class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_HISTORY_CONTENT_CHARS)


class ChatRequest(BaseModel):
    """Body of ``POST /chat`` and kwargs of the Celery task ``agent.process_chat_message``."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    session_id: str = Identifier
    message_id: str = Identifier
    user_id: str = Identifier
    page_id: str = Identifier
    wedding_context: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryMessage] = Field(default_factory=list, max_length=MAX_HISTORY_ITEMS)

    @field_validator("wedding_context")
    @classmethod
    def _context_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_CONTEXT_BYTES:
            raise ValueError(f"wedding_context is larger than {MAX_CONTEXT_BYTES} bytes")
        return value


class ChatAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message_id: str


class StopAccepted(BaseModel):
    status: Literal["stopping"] = "stopping"
    message_id: str


# --- Wedding context (sent by the backend; every key optional, unknown keys kept) ----------


class _Ctx(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ParentDetails(_Ctx):
    """A parent's 故 marker and phone; the backend sends a phone only if guests see it."""

    deceased: bool | None = None
    phone: str | None = None


class Person(_Ctx):
    name: str | None = None
    father: str | None = None
    mother: str | None = None
    father_details: ParentDetails | None = None
    mother_details: ParentDetails | None = None


class Couple(_Ctx):
    groom: Person | None = None
    bride: Person | None = None


class WeddingInfo(_Ctx):
    date_time: str | None = None
    time_zone: str | None = None


class Venue(_Ctx):
    name: str | None = None
    hall: str | None = None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    transport: Any = None
    parking: Any = None


class GiftAccount(_Ctx):
    side: str | None = None
    holder: str | None = None
    bank: str | None = None
    number: str | None = None


class RsvpSummary(_Ctx):
    responses: int | None = None
    attending: int | None = None
    declined: int | None = None
    headcount: int | None = None
    meals: dict[str, Any] | None = None
    by_side: dict[str, Any] | None = None


class Rsvp(_Ctx):
    open: bool | None = None
    deadline: str | None = None
    meal_options: list[Any] | None = None
    summary: RsvpSummary | None = None


class WeddingContext(_Ctx):
    page_id: str | None = None
    slug: str | None = None
    couple: Couple | None = None
    wedding: WeddingInfo | None = None
    venue: Venue | None = None
    greeting: str | None = None
    gift_accounts: list[GiftAccount] | None = None
    rsvp: Rsvp | None = None
    dress_code: str | None = None
    meal: str | None = None
    schedule: list[Any] | None = None


def parse_wedding_context(raw: dict[str, Any] | None) -> WeddingContext:
    """Validate the context; a malformed top-level section is dropped, not fatal."""
    raw = raw or {}
    try:
        return WeddingContext.model_validate(raw)
    except ValidationError:
        kept: dict[str, Any] = {}
        for key, value in raw.items():
            try:
                WeddingContext.model_validate({key: value})
            except ValidationError:
                logger.warning("dropping malformed wedding_context section %r", key)
                continue
            kept[key] = value
        return WeddingContext.model_validate(kept)
