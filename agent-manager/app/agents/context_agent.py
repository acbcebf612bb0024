"""Context agent: reads the wedding context and states the facts a question needs.

Every sentence is built from the context only; when the context lacks the answer the agent
says so instead of guessing. The same facts ground the real models (system prompt) and are the
offline answerer's whole answer.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.agents.intents import Intent
from app.schemas import HistoryMessage, WeddingContext

CONTEXT_OPEN = "<wedding_context>"
CONTEXT_CLOSE = "</wedding_context>"
_CONTEXT_RE = re.compile(re.escape(CONTEXT_OPEN) + r"\s*(.*?)\s*" + re.escape(CONTEXT_CLOSE), re.S)

_WEEKDAYS_KO = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"]
_WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS_EN = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
_SIDE = {"groom": ("신랑측", "Groom's side"), "bride": ("신부측", "Bride's side")}

SYSTEM_PROMPT = """You are the AI assistant of a Mocheong wedding invitation page.
Answer the question using ONLY the wedding details below. If they do not contain the answer,
say so plainly and suggest asking the couple. Never invent dates, places, account numbers or
counts. Answer in {language}, the language of the question, briefly and warmly. A map card is
attached separately when useful, so do not print raw map URLs.

Intents detected by the router: {intents}
Relevant facts:
{facts}

{open}
{context}
{close}"""


def _pick(lang: str, ko: str, en: str) -> str:
    return ko if lang == "ko" else en


def _text(value: Any) -> str | None:
    """Flatten a free-form field (string, list or mapping) into readable text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        lines = [t for t in (_text(v) for v in value) if t]
        return "\n".join(f"- {t}" for t in lines) if lines else None
    if isinstance(value, dict):
        lines = [f"{k}: {t}" for k, v in value.items() if (t := _text(v))]
        return "\n".join(f"- {t}" for t in lines) if lines else None
    return str(value)


def _block(text: str) -> str:
    """Put multi-line text on its own lines after a heading, single lines inline."""
    return ("\n" + text) if "\n" in text or text.startswith("- ") else " " + text


def parse_when(ctx: WeddingContext) -> datetime | None:
    if not ctx.wedding or not ctx.wedding.date_time:
        return None
    try:
        moment = datetime.fromisoformat(ctx.wedding.date_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ctx.wedding.time_zone and moment.tzinfo is not None:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            moment = moment.astimezone(ZoneInfo(ctx.wedding.time_zone))
    return moment


def format_datetime(moment: datetime, lang: str) -> str:
    if lang == "ko":
        half = "오전" if moment.hour < 12 else "오후"
        hour = moment.hour % 12 or 12
        minute = f" {moment.minute}분" if moment.minute else ""
        return (
            f"{moment.year}년 {moment.month}월 {moment.day}일 {_WEEKDAYS_KO[moment.weekday()]} "
            f"{half} {hour}시{minute}"
        )
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return (
        f"{_WEEKDAYS_EN[moment.weekday()]}, {_MONTHS_EN[moment.month - 1]} {moment.day}, "
        f"{moment.year} at {hour}:{moment.minute:02d} {suffix}"
    )


def format_day(value: str, lang: str) -> str:
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return value
    if lang == "ko":
        return f"{day.year}년 {day.month}월 {day.day}일"
    return f"{_MONTHS_EN[day.month - 1]} {day.day}, {day.year}"


def _venue_label(ctx: WeddingContext) -> str | None:
    venue = ctx.venue
    if not venue:
        return None
    parts = [p for p in (venue.name, venue.hall) if p]
    return " ".join(parts) if parts else None


class ContextAgent:
    """Turns (question intents, wedding context) into grounded facts and model messages."""

    def facts(
        self, question: str, ctx: WeddingContext, intents: list[Intent], lang: str
    ) -> list[str]:
        return [self.fact(intent, question, ctx, lang) for intent in intents]

    def fact(self, intent: Intent, question: str, ctx: WeddingContext, lang: str) -> str:
        handler = getattr(self, f"_{intent.value}")
        return handler(ctx, lang, question)

    # -- one method per intent ------------------------------------------------------------

    def _when(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        moment = parse_when(ctx)
        if moment is None:
            raw = ctx.wedding.date_time if ctx.wedding else None
            if raw:
                return _pick(lang, f"예식 일시는 {raw}입니다.", f"The wedding is on {raw}.")
            return _pick(
                lang,
                "청첩장에 예식 날짜와 시간 정보가 없습니다.",
                "The invitation doesn't give the date and time of the wedding.",
            )
        when = format_datetime(moment, lang)
        return _pick(lang, f"예식은 {when}에 시작합니다.", f"The wedding is on {when}.")

    def _where(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        label = _venue_label(ctx)
        address = ctx.venue.address if ctx.venue else None
        if not label and not address:
            return _pick(
                lang,
                "청첩장에 예식 장소 정보가 없습니다.",
                "The invitation doesn't say where the wedding takes place.",
            )
        if label and address:
            return _pick(
                lang,
                f"예식 장소는 {label}입니다. 주소는 {address}입니다.",
                f"The wedding takes place at {label}. The address is {address}.",
            )
        if label:
            return _pick(
                lang,
                f"예식 장소는 {label}입니다. 청첩장에 주소는 나와 있지 않습니다.",
                f"The wedding takes place at {label}. The invitation gives no address.",
            )
        return _pick(lang, f"예식 장소 주소는 {address}입니다.", f"The venue address is {address}.")

    def _directions(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        transport = _text(ctx.venue.transport) if ctx.venue else None
        address = ctx.venue.address if ctx.venue else None
        if transport:
            return _pick(lang, "오시는 길:", "Getting there:") + _block(transport)
        missing = _pick(
            lang,
            "청첩장에 대중교통 안내가 없습니다.",
            "The invitation has no public-transport directions.",
        )
        if address:
            missing += _pick(lang, f" 주소는 {address}입니다.", f" The address is {address}.")
        return missing

    def _parking(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        parking = _text(ctx.venue.parking) if ctx.venue else None
        if parking:
            return _pick(lang, "주차 안내:", "Parking:") + _block(parking)
        return _pick(
            lang,
            "청첩장에 주차 안내가 없습니다. 예식장에 직접 문의해 주세요.",
            "The invitation doesn't mention parking; please check with the venue.",
        )

    def _map(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        venue = ctx.venue
        label = _venue_label(ctx) or _pick(lang, "예식장", "the venue")
        if venue and venue.lat is not None and venue.lng is not None:
            return _pick(
                lang,
                f"{label} 위치를 지도로 보여 드릴게요. "
                "카카오맵이나 네이버 지도에서 길찾기를 할 수 있습니다.",
                f"Here is {label} on the map; Kakao Map and Naver Map can give you directions.",
            )
        if venue and venue.address:
            return _pick(
                lang,
                "청첩장에 지도 좌표가 없어 지도를 보여 드릴 수 없습니다. "
                f"주소는 {venue.address}입니다.",
                f"The invitation has no map coordinates, so I can't show a map. "
                f"The address is {venue.address}.",
            )
        return _pick(
            lang,
            "청첩장에 지도로 보여 드릴 장소 정보가 없습니다.",
            "The invitation has no venue location to show on a map.",
        )

    def _gift(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        accounts = [a for a in (ctx.gift_accounts or []) if a.number]
        if not accounts:
            return _pick(
                lang,
                "청첩장에 등록된 축의금 계좌가 없습니다.",
                "The invitation lists no gift accounts.",
            )
        lines = []
        for account in accounts:
            side = _SIDE.get((account.side or "").lower())
            side_label = (side[0] if lang == "ko" else side[1]) if side else account.side
            bank = f"{account.bank} " if account.bank else ""
            holder = (
                _pick(lang, f" (예금주 {account.holder})", f" (holder {account.holder})")
                if account.holder
                else ""
            )
            prefix = f"{side_label}: " if side_label else ""
            lines.append(f"- {prefix}{bank}{account.number}{holder}")
        heading = _pick(lang, "마음 전하실 곳:", "Gift accounts:")
        return heading + "\n" + "\n".join(lines)

    def _rsvp(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        rsvp = ctx.rsvp
        summary = rsvp.summary if rsvp else None
        parts: list[str] = []
        if summary and summary.responses is not None:
            if lang == "ko":
                text = f"지금까지 참석 여부 응답은 {summary.responses}건입니다"
                extra = []
                if summary.attending is not None:
                    extra.append(f"참석 {summary.attending}건")
                if summary.declined is not None:
                    extra.append(f"불참 {summary.declined}건")
                parts.append(text + (f" ({', '.join(extra)})." if extra else "."))
            else:
                text = f"So far there are {summary.responses} RSVP responses"
                extra = []
                if summary.attending is not None:
                    extra.append(f"{summary.attending} attending")
                if summary.declined is not None:
                    extra.append(f"{summary.declined} declined")
                parts.append(text + (f" ({', '.join(extra)})." if extra else "."))
        if summary and summary.headcount is not None:
            parts.append(
                _pick(
                    lang,
                    f"동반인을 포함한 예상 참석 인원은 {summary.headcount}명입니다.",
                    f"The expected headcount, companions included, is {summary.headcount}.",
                )
            )
        if summary and summary.by_side:
            sides = []
            for side, value in summary.by_side.items():
                count = value
                if isinstance(value, dict):
                    count = value.get("headcount", value.get("attending"))
                if count is None:
                    continue
                label = _SIDE.get(side.lower())
                name = (label[0] if lang == "ko" else label[1]) if label else side
                sides.append(_pick(lang, f"{name} {count}명", f"{name}: {count}"))
            if sides:
                parts.append(_pick(lang, "측별 인원: ", "By side: ") + ", ".join(sides) + ".")
        if rsvp and rsvp.deadline:
            day = format_day(rsvp.deadline, lang)
            parts.append(
                _pick(lang, f"참석 여부는 {day}까지 받습니다.", f"RSVPs are due by {day}.")
            )
        if rsvp and rsvp.open is False:
            parts.append(
                _pick(lang, "참석 여부 접수는 마감되었습니다.", "RSVP collection is closed.")
            )
        if not parts:
            return _pick(
                lang,
                "청첩장에 참석 여부(RSVP) 정보가 없습니다.",
                "The invitation has no RSVP information.",
            )
        return " ".join(parts)

    def _meal(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        parts: list[str] = []
        if ctx.meal:
            parts.append(_pick(lang, f"식사 안내: {ctx.meal}", f"Meal: {ctx.meal}"))
        options = ctx.rsvp.meal_options if ctx.rsvp else None
        names = [_option_name(o) for o in options or []]
        names = [n for n in names if n]
        if names:
            parts.append(_pick(lang, "식사 메뉴: ", "Meal options: ") + ", ".join(names) + ".")
        meals = ctx.rsvp.summary.meals if ctx.rsvp and ctx.rsvp.summary else None
        if meals:
            counts = ", ".join(_pick(lang, f"{k} {v}명", f"{k}: {v}") for k, v in meals.items())
            parts.append(_pick(lang, f"메뉴별 신청: {counts}.", f"Meal choices so far: {counts}."))
        if not parts:
            return _pick(
                lang,
                "청첩장에 식사 안내가 없습니다.",
                "The invitation doesn't say anything about the meal.",
            )
        return " ".join(parts)

    def _dress_code(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        if ctx.dress_code:
            return _pick(lang, f"드레스 코드: {ctx.dress_code}", f"Dress code: {ctx.dress_code}")
        return _pick(
            lang,
            "청첩장에 드레스 코드 안내가 없습니다. 신랑·신부에게 직접 문의해 주세요.",
            "The invitation doesn't mention a dress code; please ask the couple directly.",
        )

    def _couple(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        couple = ctx.couple
        people = []
        for role in ("groom", "bride"):
            person = getattr(couple, role) if couple else None
            if not person or not person.name:
                continue
            parents = " · ".join(p for p in (person.father, person.mother) if p)
            if lang == "ko":
                who = "신랑" if role == "groom" else "신부"
                people.append(f"{who}은 {person.name}" + (f"(혼주: {parents})" if parents else ""))
            else:
                who = "the groom" if role == "groom" else "the bride"
                people.append(
                    f"{who} is {person.name}" + (f" (parents: {parents})" if parents else "")
                )
        if not people:
            return _pick(
                lang,
                "청첩장에 신랑·신부 정보가 없습니다.",
                "The invitation doesn't name the couple.",
            )
        if lang == "ko":
            return ", ".join(people) + "입니다."
        sentence = " and ".join(people) + "."
        return sentence[0].upper() + sentence[1:]

    def _schedule(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        items = [_schedule_line(i) for i in ctx.schedule or []]
        items = [i for i in items if i]
        if not items:
            return _pick(
                lang,
                "청첩장에 식순 정보가 없습니다.",
                "The invitation has no schedule for the day.",
            )
        return _pick(lang, "식순:", "Schedule:") + "\n" + "\n".join(f"- {i}" for i in items)

    def _greeting(self, ctx: WeddingContext, lang: str, question: str) -> str:
        lowered = question.lower()
        if any(w in lowered for w in ("greeting", "invitation message", "인사말", "초대")):
            if ctx.greeting:
                return _pick(lang, "청첩장 인사말입니다:", "Here is the invitation's greeting:") + (
                    "\n" + ctx.greeting.strip()
                )
            return _pick(
                lang, "청첩장에 인사말이 없습니다.", "The invitation has no greeting message."
            )
        names = _couple_names(ctx, lang)
        if lang == "ko":
            whose = f"{names}의 결혼식" if names else "결혼식"
            return (
                f"안녕하세요! {whose} 도우미입니다. 예식 일시, 장소와 오시는 길, 주차, 지도, "
                "축의금 계좌, 참석 현황, 식사 안내를 물어보세요."
            )
        whose = f"{names}'s wedding" if names else "this wedding"
        return (
            f"Hello! I'm the assistant for {whose}. Ask me about the date and time, the venue "
            "and directions, parking, the map, gift accounts, RSVPs or meals."
        )

    def _unknown(self, ctx: WeddingContext, lang: str, _q: str) -> str:
        return _pick(
            lang,
            "죄송하지만 청첩장 정보로는 답변드리기 어려운 질문입니다. 예식 일시, 장소·오시는 길, "
            "주차, 지도, 축의금 계좌, 참석 현황, 식사에 대해 물어봐 주세요.",
            "Sorry, the invitation doesn't cover that. I can answer about the date and time, "
            "the venue and directions, parking, the map, gift accounts, RSVPs and meals.",
        )

    # -- prompt for real models -----------------------------------------------------------

    def build_messages(
        self,
        question: str,
        ctx: WeddingContext,
        intents: list[Intent],
        lang: str,
        history: list[HistoryMessage],
        history_limit: int,
    ) -> list[BaseMessage]:
        facts = self.facts(question, ctx, intents, lang)
        context_json = json.dumps(
            ctx.model_dump(by_alias=True, exclude_none=True), ensure_ascii=False, indent=1
        )
        system = SYSTEM_PROMPT.format(
            language="Korean" if lang == "ko" else "English",
            intents=", ".join(i.value for i in intents),
            facts="\n".join(f"- {f}" for f in facts),
            open=CONTEXT_OPEN,
            context=context_json,
            close=CONTEXT_CLOSE,
        )
        messages: list[BaseMessage] = [SystemMessage(content=system)]
        recent = [h for h in history if h.role in ("user", "assistant")]
        for item in recent[-history_limit:] if history_limit > 0 else []:
            cls = HumanMessage if item.role == "user" else AIMessage
            messages.append(cls(content=item.content))
        messages.append(HumanMessage(content=question))
        return messages


def extract_context(system_text: str) -> dict[str, Any]:
    """Inverse of :meth:`ContextAgent.build_messages` for the offline model."""
    match = _CONTEXT_RE.search(system_text)
    if not match:
        return {}
    try:
        value = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _option_name(option: Any) -> str | None:
    if isinstance(option, str):
        return option
    if isinstance(option, dict):
        for key in ("label", "name", "title", "value", "id"):
            if option.get(key):
                return str(option[key])
    return None


def _schedule_line(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        time = item.get("time") or item.get("at") or item.get("start")
        title = item.get("title") or item.get("label") or item.get("name") or item.get("event")
        if time and title:
            return f"{time} {title}"
        return str(title or time) if (title or time) else None
    return None


def _couple_names(ctx: WeddingContext, lang: str) -> str | None:
    couple = ctx.couple
    names = [p.name for p in ((couple.groom, couple.bride) if couple else ()) if p and p.name]
    if not names:
        return None
    return _pick(lang, " · ".join(names), " & ".join(names))
