"""Context agent: reads the wedding context and states the facts a question needs.

Every sentence is built from the context only. When the context lacks what was asked, the
agent says exactly that ("the invitation lists no account for the bride's side") and then may
offer the nearest fact it does hold, labelled as such ("for reference, the only account it
lists is the groom's side's") — a different fact is never presented as the answer. The same
facts ground the real models (system prompt) and are the offline answerer's whole answer.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.agents.intents import Intent, Query
from app.agents.lexicon import MODE_NAMES, Cues, mentions_city, modes_in
from app.schemas import GiftAccount, HistoryMessage, WeddingContext

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
_SIDE_WHO = {"groom": ("신랑", "the groom"), "bride": ("신부", "the bride")}
_RELATION = {
    "father": ("아버지", "father"),
    "mother": ("어머니", "mother"),
    "parents": ("혼주", "parents"),
}
_SENTENCES = re.compile(r"(?<=[.!?。])\s+|\n+")

SYSTEM_PROMPT = """You are the AI assistant of a Mocheong wedding invitation page. You talk to
the couple and the editors of their page, like a careful wedding planner.

Rules:
- Answer ONLY from the wedding details (the JSON at the end) and the facts below. Never
  invent dates, times, places, account numbers, names, counts, shuttle or train services.
- Answer exactly what was asked. If the details do not hold it, say so plainly first (for
  example "the invitation lists no account for the bride's side"), then you may offer the
  nearest fact the details do hold, clearly labelled as something else. Never present a
  different fact (the groom's account, the subway directions) as the answer.
- Respect sides: groom's side (신랑측), bride's side (신부측), both (양가), parents (혼주).
- Answer in {language}, the language of the question, briefly and warmly.
- Earlier turns are given for follow-ups ("신부측은요?", "what about the bride?").
- A map card is attached separately when useful, so do not print raw map URLs.

Question as understood by the router: {understood}
Relevant facts (already checked against the details; prefer their wording), one block
per topic:
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


def _lines(value: Any) -> list[str]:
    """A free-form field as separate statements (list items, ``label: text``, sentences)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip().lstrip("-•· ").strip() for p in _SENTENCES.split(value) if p.strip()]
    if isinstance(value, list):
        return [line for v in value for line in _lines(v)]
    if isinstance(value, dict):
        return [f"{k}: {line}" for k, v in value.items() for line in _lines(v)]
    return [str(value)]


def _statements(value: Any) -> list[str]:
    """Like :func:`_lines`, also splitting "A, B" when each part is a different transport."""
    out: list[str] = []
    for line in _lines(value):
        parts = [p.strip() for p in re.split(r",\s+|;\s+| / ", line) if p.strip()]
        if len(parts) > 1 and all(modes_in(p) for p in parts):
            out.extend(parts)
        else:
            out.append(line)
    return out


def _bullets(lines: list[str]) -> str:
    seen: list[str] = []
    for line in lines:
        if line not in seen:
            seen.append(line)
    return "\n".join(f"- {line}" for line in seen)


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


def _has_time(ctx: WeddingContext) -> bool:
    raw = ctx.wedding.date_time if ctx.wedding else None
    return bool(raw) and ("T" in raw or " " in raw.strip())


def format_date(moment: date, lang: str) -> str:
    weekday = moment.weekday()
    if lang == "ko":
        return f"{moment.year}년 {moment.month}월 {moment.day}일 {_WEEKDAYS_KO[weekday]}"
    return f"{_WEEKDAYS_EN[weekday]}, {_MONTHS_EN[moment.month - 1]} {moment.day}, {moment.year}"


def format_time(moment: datetime, lang: str) -> str:
    hour = moment.hour % 12 or 12
    if lang == "ko":
        half = "오전" if moment.hour < 12 else "오후"
        minute = f" {moment.minute}분" if moment.minute else ""
        return f"{half} {hour}시{minute}"
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def format_datetime(moment: datetime, lang: str) -> str:
    if lang == "ko":
        return f"{format_date(moment, lang)} {format_time(moment, lang)}"
    return f"{format_date(moment, lang)} at {format_time(moment, lang)}"


def format_day(value: str, lang: str, time_zone: str | None = None) -> str:
    """A deadline as a local calendar day (an instant like ``...T14:59:59Z`` in its zone)."""
    day: date
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None and time_zone:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                moment = moment.astimezone(ZoneInfo(time_zone))
        day = moment.date()
    except ValueError:
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


def _person(ctx: WeddingContext, side: str) -> Any:
    return getattr(ctx.couple, side, None) if ctx.couple else None


def _parent_details(person: Any, relation: str) -> Any:
    return getattr(person, f"{relation}_details", None) if person else None


def _parent_names(person: Any) -> list[str]:
    """The parents' names as the invitation prints them: 故 before a deceased parent's."""
    names = []
    for relation in ("father", "mother"):
        name = getattr(person, relation, None) if person else None
        if not name:
            continue
        details = _parent_details(person, relation)
        names.append(f"故 {name}" if details and details.deceased else name)
    return names


def _norm_name(name: Any) -> str:
    return re.sub(r"\s+", "", str(name or ""))


_RELATION_WORDS = {
    "father": ("father", "dad", "아버지", "부친", "아빠", "아버님"),
    "mother": ("mother", "mom", "mum", "어머니", "모친", "엄마", "어머님"),
    "parents": ("parents", "parent", "혼주", "부모", "부모님"),
    "self": ("self", "groom", "bride", "본인", "신랑", "신부"),
}


def account_relation(account: GiftAccount, ctx: WeddingContext) -> str:
    """``self``, ``father``, ``mother``, ``parents`` or ``""`` (holder not recognised).

    An explicit ``relation`` on the account wins; otherwise the holder's name is compared with
    the names of that side's person and parents.
    """
    explicit = str(getattr(account, "relation", None) or getattr(account, "role", None) or "")
    explicit = explicit.strip().lower()
    for relation, words in _RELATION_WORDS.items():
        if explicit in words:
            return relation
    person = _person(ctx, (account.side or "").lower())
    holder = _norm_name(account.holder)
    if person and holder:
        if holder == _norm_name(person.father):
            return "father"
        if holder == _norm_name(person.mother):
            return "mother"
        if holder == _norm_name(person.name):
            return "self"
    return ""


def _account_label(account: GiftAccount, relation: str, lang: str) -> str:
    side = (account.side or "").lower()
    if side not in _SIDE:
        return account.side or ""
    if relation in _RELATION:
        ko_rel, en_rel = _RELATION[relation]
        en_who = _SIDE_WHO[side][1].split()[-1].title()
        return _pick(lang, f"{_SIDE[side][0]} {ko_rel}", f"{en_who}'s {en_rel}")
    return _SIDE[side][0] if lang == "ko" else _SIDE[side][1]


def _account_line(account: GiftAccount, relation: str, lang: str) -> str:
    label = _account_label(account, relation, lang)
    bank = f"{account.bank} " if account.bank else ""
    holder = (
        _pick(lang, f" (예금주 {account.holder})", f" (holder {account.holder})")
        if account.holder
        else ""
    )
    prefix = f"{label}: " if label else ""
    return f"- {prefix}{bank}{account.number}{holder}"


def _whose(side: str | None, relations: frozenset[str] | set[str], parents: bool, lang: str) -> str:
    """Who the question is about, for a decline: "신부측 혼주", "the groom's father"."""
    if lang == "ko":
        base = _SIDE[side][0] if side else ""
        if parents:
            rel = "·".join(_RELATION[r][0] for r in sorted(relations)) if relations else "혼주"
            return f"{base} {rel}".strip() if side else f"{rel}(부모님)"
        return base or "요청하신 쪽"
    who = _SIDE_WHO[side][1] if side else ""
    if parents:
        rel = " or ".join(_RELATION[r][1] for r in sorted(relations)) if relations else "parents"
        return f"{who}'s {rel}" if side else f"the couple's {rel}"
    return f"{who}'s side" if side else "that side"


# Topic words searched in every free-text field of the page (for children, flowers, photos...).
_TOPIC_TEXT: dict[Intent, Cues] = {
    Intent.CHILDREN: Cues(
        ("아이", "어린이", "유아", "아기", "자녀", "키즈", "아동", "유모차", "수유"),
        (r"\bchild(ren)?\b", r"\bkids?\b", r"\bbab(y|ies)\b", r"\binfants?\b", r"\bstroller"),
    ),
    Intent.FLOWERS: Cues(
        ("화환", "꽃", "조화", "화분"), (r"\bflowers?\b", r"\bwreaths?\b", r"\bfloral\b")
    ),
    Intent.PHOTOS: Cues(
        ("사진", "촬영", "포토", "스냅", "플래시"),
        (r"\bphotos?\b", r"\bpictures?\b", r"\bcameras?\b", r"\bphotograph", r"\bflash\b"),
    ),
    Intent.MEAL: Cues(
        ("식사", "뷔페", "연회", "피로연", "음식", "코스"),
        (r"\bmeals?\b", r"\bbuffet\b", r"\blunch\b", r"\bdinner\b", r"\breception\b"),
    ),
    Intent.DRESS_CODE: Cues(
        ("드레스코드", "복장", "정장", "하객룩"), (r"\bdress code\b", r"\battire\b")
    ),
}
_KNOWN_KEYS = {
    "pageId", "slug", "status", "couple", "wedding", "venue", "giftAccounts", "rsvp",
    "dressCode", "meal", "schedule", "greeting",
}  # fmt: skip


def _free_text(ctx: WeddingContext) -> list[str]:
    """Statements of every free-text field: notices and other extra keys, then the rest."""
    lines: list[str] = []
    for key, value in (ctx.model_extra or {}).items():
        if key not in _KNOWN_KEYS:
            lines += _lines(value)
    venue = ctx.venue
    if venue:
        lines += _statements(venue.transport) + _lines(venue.parking)
        lines += [line for v in (venue.model_extra or {}).values() for line in _lines(v)]
    lines += _lines(ctx.greeting) + _lines(ctx.meal) + _lines(ctx.dress_code)
    lines += [line for item in ctx.schedule or [] if (line := _schedule_line(item))]
    return lines


class ContextAgent:
    """Turns (analysed question, wedding context) into grounded facts and model messages."""

    def facts(self, query: Query, ctx: WeddingContext) -> list[str]:
        return [self.fact(intent, query, ctx) for intent in query.intents]

    def fact(self, intent: Intent, query: Query, ctx: WeddingContext) -> str:
        handler = getattr(self, f"_{intent.value}")
        return handler(ctx, query.lang, query)

    # -- one method per intent ------------------------------------------------------------

    def _when(self, ctx: WeddingContext, lang: str, q: Query) -> str:
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
        day = format_date(moment, lang)
        if "end" in q.aspects:
            return self._end_time(ctx, lang, moment)
        if not _has_time(ctx):
            text = _pick(lang, f"예식 날짜는 {day}입니다.", f"The wedding is on {day}.")
            if "time" in q.aspects:
                text = _pick(
                    lang,
                    f"청첩장에 예식 시작 시간은 나와 있지 않습니다. 날짜는 {day}입니다.",
                    f"The invitation doesn't give the start time. The date is {day}.",
                )
            return text
        at = format_time(moment, lang)
        if "time" in q.aspects and "date" not in q.aspects:
            return _pick(
                lang, f"예식은 {at}에 시작합니다 ({day}).", f"The wedding starts at {at} ({day})."
            )
        when = format_datetime(moment, lang)
        return _pick(lang, f"예식은 {when}에 시작합니다.", f"The wedding is on {when}.")

    def _end_time(self, ctx: WeddingContext, lang: str, moment: datetime) -> str:
        start = format_datetime(moment, lang) if _has_time(ctx) else format_date(moment, lang)
        text = _pick(
            lang,
            f"청첩장에 예식이 끝나는 시간은 나와 있지 않습니다. 참고로 예식 시작은 {start}입니다.",
            f"The invitation doesn't say when the wedding ends. For reference, it starts "
            f"{'on ' + start}.",
        )
        schedule = [i for i in (_schedule_line(x) for x in ctx.schedule or []) if i]
        if schedule:
            text += "\n" + _pick(lang, "식순:", "Schedule:") + "\n" + _bullets(schedule)
        return text

    def _where(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        venue = ctx.venue
        name = venue.name if venue else None
        label = _venue_label(ctx)
        address = venue.address if venue else None
        if not label and not address:
            return _pick(
                lang,
                "청첩장에 예식 장소 정보가 없습니다.",
                "The invitation doesn't say where the wedding takes place.",
            )
        if "address" in q.aspects and not address:
            return _pick(
                lang,
                f"청첩장에 예식장 주소는 나와 있지 않습니다. 참고로 예식 장소는 {label}입니다.",
                f"The invitation doesn't give the address. For reference, the venue is {label}.",
            )
        if "hall" in q.aspects and not (venue and venue.hall):
            text = _pick(
                lang,
                "청첩장에 홀(층) 정보는 나와 있지 않습니다.",
                "The invitation doesn't say which hall or floor.",
            )
            where = name or address
            ko = f" 참고로 예식 장소는 {where}입니다."
            return text + _pick(lang, ko, f" For reference, the venue is {where}.")
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

    def _directions(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        venue = ctx.venue
        lines = _statements(venue.transport) if venue else []
        address = venue.address if venue else None
        asked = [m for m in q.modes if m != "car"]
        if not asked and not q.origin:
            if lines:
                return _pick(lang, "오시는 길:", "Getting there:") + "\n" + _bullets(lines)
            missing = _pick(
                lang,
                "청첩장에 대중교통 안내가 없습니다.",
                "The invitation has no public-transport directions.",
            )
            if address:
                missing += _pick(lang, f" 주소는 {address}입니다.", f" The address is {address}.")
            return missing
        return self._modes_answer(lines, address, asked, q.origin, lang)

    def _modes_answer(
        self,
        lines: list[str],
        address: str | None,
        asked: list[str],
        origin: tuple[str, str] | None,
        lang: str,
    ) -> str:
        city = (origin[0] if lang == "ko" else origin[1].title()) if origin else None
        parts: list[str] = []
        matched: list[str] = []
        for mode in asked:
            name = MODE_NAMES[mode][0 if lang == "ko" else 1]
            found = [line for line in lines if mode in modes_in(line)]
            if origin and found and not any(mentions_city(line, origin) for line in found):
                parts.append(
                    _pick(lang, f"{name} 안내:", f"{name[0].upper() + name[1:]}:")
                    + "\n"
                    + _bullets(found)
                )
                parts.append(
                    _pick(
                        lang,
                        f"다만 청첩장에 {city}에서 출발하는 {name}에 대한 안내는 없습니다.",
                        f"The invitation doesn't say whether there is a {name} from {city}.",
                    )
                )
                matched += found
            elif found:
                parts.append(
                    _pick(lang, f"{name} 안내:", f"{name[0].upper() + name[1:]}:")
                    + "\n"
                    + _bullets(found)
                )
                matched += found
            else:
                parts.append(
                    _pick(
                        lang,
                        f"청첩장에 {city + '에서 오는 ' if city else ''}{name} 안내는 없습니다.",
                        f"The invitation has no {name} information"
                        + (f" for travelling from {city}." if city else "."),
                    )
                )
        if not asked and origin:
            found = [line for line in lines if mentions_city(line, origin)]
            if found:
                parts.append(
                    _pick(lang, f"{city}에서 오시는 길:", f"From {city}:") + "\n" + _bullets(found)
                )
                matched += found
            else:
                parts.append(
                    _pick(
                        lang,
                        f"청첩장에 {city}에서 오는 교통편 안내는 없습니다.",
                        f"The invitation has no directions for travelling from {city}.",
                    )
                )
        if not matched:
            other = lines
            if other:
                parts.append(
                    _pick(
                        lang,
                        "참고로 청첩장에 있는 오시는 길 안내는 다음과 같습니다"
                        "(요청하신 교통편 아님):",
                        "For reference, these are the directions it does give "
                        "(not what you asked about):",
                    )
                    + "\n"
                    + _bullets(other)
                )
            elif address:
                parts.append(
                    _pick(
                        lang,
                        f"참고로 예식장 주소는 {address}입니다.",
                        f"For reference, the venue address is {address}.",
                    )
                )
        return "\n".join(parts)

    def _parking(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        venue = ctx.venue
        lines = _lines(venue.parking) if venue else []
        transport = _statements(venue.transport) if venue else []
        lines += [t for t in transport if "car" in modes_in(t) or "주차" in t or "parking" in t]
        if lines:
            return _pick(lang, "주차 안내:", "Parking:") + _block(_bullets(lines))
        text = _pick(
            lang,
            "청첩장에 주차 안내가 없습니다. 예식장에 직접 문의해 주세요.",
            "The invitation doesn't mention parking; please check with the venue.",
        )
        if transport and Intent.DIRECTIONS not in q.intents:
            text += "\n" + _pick(
                lang,
                "참고로 청첩장에 있는 대중교통 안내입니다:",
                "For reference, the public-transport directions it gives:",
            )
            text += "\n" + _bullets(transport)
        elif venue and venue.address and Intent.WHERE not in q.intents:
            text += _pick(
                lang,
                f" 참고로 예식장 주소는 {venue.address}입니다.",
                f" For reference, the venue address is {venue.address}.",
            )
        return text

    def _map(self, ctx: WeddingContext, lang: str, q: Query) -> str:
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

    def _gift(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        accounts = [(a, account_relation(a, ctx)) for a in ctx.gift_accounts or [] if a.number]
        if not accounts:
            return _pick(
                lang,
                "청첩장에 등록된 축의금 계좌가 없습니다.",
                "The invitation lists no gift accounts.",
            )
        if "amount" in q.aspects:
            return (
                _pick(
                    lang,
                    "청첩장에 축의금 액수에 대한 안내는 없습니다. 참고로 등록된 계좌입니다:",
                    "The invitation doesn't suggest an amount. "
                    "For reference, the accounts it lists:",
                )
                + "\n"
                + "\n".join(_account_line(a, r, lang) for a, r in accounts)
            )
        wanted_relations = set(q.relations) or {"father", "mother", "parents"}

        def fits(account: GiftAccount, relation: str, side: str | None) -> bool:
            if side and (account.side or "").lower() != side:
                return False
            if q.parents:
                return relation in wanted_relations or (relation == "parents" and bool(q.relations))
            return True

        sides: list[str | None] = [x for x in ("groom", "bride") if x in q.sides] or [None]
        parts: list[str] = []
        chosen: list[tuple[GiftAccount, str]] = []
        missing: list[str] = []
        for side in sides:
            found = [(a, r) for a, r in accounts if fits(a, r, side)]
            if found:
                chosen += [f for f in found if f not in chosen]
            else:
                missing.append(_whose(side, q.relations, q.parents, lang))
            if found and side and q.parents and not q.relations:
                # "신부 부모님 계좌": say which parent has none
                have = {r for _a, r in found}
                if "parents" not in have:
                    absent = frozenset({"father", "mother"} - have)
                    if absent:
                        missing.append(_whose(side, absent, True, lang))
        if chosen:
            heading = _pick(lang, "마음 전하실 곳:", "Gift accounts:")
            parts.append(heading + "\n" + "\n".join(_account_line(a, r, lang) for a, r in chosen))
        for who in missing:
            parts.append(
                _pick(
                    lang,
                    f"청첩장에 {who} 계좌는 나와 있지 않습니다.",
                    f"The invitation lists no account for {who}.",
                )
            )
        if not chosen:
            who = " · ".join(missing) if lang == "ko" else " or ".join(missing)
            parts.append(
                _pick(
                    lang,
                    f"참고로 청첩장에 있는 계좌는 아래뿐이며, {who} 계좌가 아닙니다:",
                    f"For reference, the invitation only lists these accounts (not for {who}):",
                )
                + "\n"
                + "\n".join(_account_line(a, r, lang) for a, r in accounts)
            )
        return "\n".join(parts)

    def _rsvp(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        rsvp = ctx.rsvp
        summary = rsvp.summary if rsvp else None
        if q.sides and len(q.sides) == 1:
            return self._rsvp_side(ctx, lang, next(iter(q.sides)))
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
        sides = [
            _pick(lang, f"{_SIDE[s][0]} {n}명", f"{_SIDE[s][1]}: {n}")
            for s in ("groom", "bride")
            if (n := _side_count(summary, s)) is not None
        ]
        if sides:
            parts.append(_pick(lang, "측별 인원: ", "By side: ") + ", ".join(sides) + ".")
        if rsvp and rsvp.deadline:
            day = format_day(rsvp.deadline, lang, ctx.wedding.time_zone if ctx.wedding else None)
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

    def _rsvp_side(self, ctx: WeddingContext, lang: str, side: str) -> str:
        summary = ctx.rsvp.summary if ctx.rsvp else None
        count = _side_count(summary, side)
        ko_side, en_side = _SIDE[side]
        if count is not None:
            return _pick(
                lang,
                f"{ko_side} 예상 참석 인원은 {count}명입니다.",
                f"{en_side}: {count} expected guests.",
            )
        text = _pick(
            lang,
            f"청첩장 응답에 {ko_side} 인원은 따로 집계되어 있지 않습니다.",
            f"The RSVPs have no separate count for the {en_side.lower()}.",
        )
        if summary and summary.headcount is not None:
            text += _pick(
                lang,
                f" 참고로 전체 예상 인원은 {summary.headcount}명입니다.",
                f" For reference, the total expected headcount is {summary.headcount}.",
            )
        return text

    def _rsvp_deadline(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        rsvp = ctx.rsvp
        closed = rsvp is not None and rsvp.open is False
        if rsvp and rsvp.deadline:
            day = format_day(rsvp.deadline, lang, ctx.wedding.time_zone if ctx.wedding else None)
            text = _pick(lang, f"참석 여부는 {day}까지 받습니다.", f"RSVPs are due by {day}.")
        else:
            text = _pick(
                lang,
                "청첩장에 참석 여부 회신 마감일은 나와 있지 않습니다.",
                "The invitation doesn't give an RSVP deadline.",
            )
        if closed:
            text += _pick(lang, " 참석 여부 접수는 마감되었습니다.", " RSVP collection is closed.")
        elif rsvp and rsvp.open:
            text += _pick(lang, " 지금은 참석 여부를 받고 있습니다.", " RSVPs are currently open.")
        return text

    def _meal(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        parts: list[str] = []
        if ctx.meal:
            meal = ctx.meal.strip()
            meal += "" if meal.endswith((".", "!", "?", "。")) else "."
            parts.append(_pick(lang, f"식사 안내: {meal}", f"Meal: {meal}"))
        options = ctx.rsvp.meal_options if ctx.rsvp else None
        names = [_option_name(o) for o in options or []]
        names = [n for n in names if n]
        if names:
            parts.append(_pick(lang, "식사 메뉴: ", "Meal options: ") + ", ".join(names) + ".")
        meals = ctx.rsvp.summary.meals if ctx.rsvp and ctx.rsvp.summary else None
        if meals:
            counts = ", ".join(_pick(lang, f"{k} {v}명", f"{k}: {v}") for k, v in meals.items())
            parts.append(_pick(lang, f"메뉴별 신청: {counts}.", f"Meal choices so far: {counts}."))
        if parts:
            return " ".join(parts)
        text = _pick(
            lang,
            "청첩장에 식사 안내가 없습니다.",
            "The invitation doesn't say anything about the meal.",
        )
        return text + self._related(ctx, lang, Intent.MEAL)

    def _dress_code(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        if ctx.dress_code:
            return _pick(lang, f"드레스 코드: {ctx.dress_code}", f"Dress code: {ctx.dress_code}")
        notes = self._mentions(ctx, Intent.DRESS_CODE)
        if notes:
            return _pick(lang, "복장 안내:", "About what to wear:") + "\n" + _bullets(notes)
        return _pick(
            lang,
            "청첩장에 드레스 코드 안내가 없습니다. 신랑·신부에게 직접 문의해 주세요.",
            "The invitation doesn't mention a dress code; please ask the couple directly.",
        )

    def _children(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        return self._notice(
            ctx,
            lang,
            Intent.CHILDREN,
            ("아이 동반 안내:", "About children:"),
            (
                "청첩장에 아이 동반에 대한 안내는 없습니다. 신랑·신부에게 직접 문의해 주세요.",
                "The invitation says nothing about children; please ask the couple directly.",
            ),
        )

    def _flowers(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        text = self._notice(
            ctx,
            lang,
            Intent.FLOWERS,
            ("화환 안내:", "About flowers and wreaths:"),
            (
                "청첩장에 화환에 대한 안내는 없습니다.",
                "The invitation says nothing about flowers or wreaths.",
            ),
        )
        if self._mentions(ctx, Intent.FLOWERS):
            return text
        label = _venue_label(ctx)
        address = ctx.venue.address if ctx.venue else None
        if label or address:
            where = ", ".join(p for p in (label, address) if p)
            text += _pick(
                lang,
                f" 참고로 예식 장소는 {where}입니다.",
                f" For reference, the venue is {where}.",
            )
        return text

    def _photos(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        return self._notice(
            ctx,
            lang,
            Intent.PHOTOS,
            ("사진 촬영 안내:", "About photos:"),
            (
                "청첩장에 사진 촬영에 대한 안내는 없습니다.",
                "The invitation says nothing about photos.",
            ),
        )

    def _couple(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        sides = [x for x in ("groom", "bride") if x in q.sides] or ["groom", "bride"]
        if q.parents:
            return self._parents(ctx, lang, sides)
        people = []
        for role in sides:
            person = _person(ctx, role)
            if not person or not person.name:
                continue
            parents = " · ".join(_parent_names(person))
            if lang == "ko":
                who = "신랑은" if role == "groom" else "신부는"
                people.append(f"{who} {person.name}" + (f"(혼주: {parents})" if parents else ""))
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

    def _parents(self, ctx: WeddingContext, lang: str, sides: list[str]) -> str:
        parts = []
        for side in sides:
            person = _person(ctx, side)
            ko_who, en_who = _SIDE_WHO[side]
            names = _parent_names(person)
            if names:
                parts.append(
                    _pick(
                        lang,
                        f"{ko_who} 혼주는 {' · '.join(names)}입니다.",
                        f"The parents of {en_who} are {' and '.join(names)}.",
                    )
                )
            else:
                parts.append(
                    _pick(
                        lang,
                        f"청첩장에 {ko_who} 부모님 성함은 나와 있지 않습니다.",
                        f"The invitation doesn't name the parents of {en_who}.",
                    )
                )
        return " ".join(parts)

    def _contact(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        sides = [x for x in ("groom", "bride") if x in q.sides] or ["groom", "bride"]
        parts = []
        if q.parents:
            # Only the parents' phones the couple shows on the page are in the context
            # (the backend leaves hidden ones out); the couple's own are not theirs.
            for side in sides:
                person = _person(ctx, side)
                for relation in sorted(q.relations or {"father", "mother"}):
                    details = _parent_details(person, relation)
                    phone = details.phone if details else None
                    if relation in _RELATION and phone:
                        ko_rel, en_rel = _RELATION[relation]
                        en_who = _SIDE_WHO[side][1].split()[-1].title()
                        parts.append(
                            _pick(
                                lang,
                                f"{_SIDE[side][0]} {ko_rel} 연락처: {phone}",
                                f"{en_who}'s {en_rel}: {phone}",
                            )
                        )
            if parts:
                return "\n".join(parts)
            who = " · ".join(_whose(s, q.relations, True, lang) for s in q.sides) or _whose(
                None, q.relations, True, lang
            )
            parts.append(
                _pick(
                    lang,
                    f"청첩장에 {who} 연락처는 나와 있지 않습니다.",
                    f"The invitation gives no phone number for {who}.",
                )
            )
            return parts[0]
        for side in sides:
            person = _person(ctx, side)
            contact = getattr(person, "contact", None) if person else None
            ko_who, en_who = _SIDE_WHO[side]
            if contact:
                parts.append(_pick(lang, f"{ko_who} 연락처: {contact}", f"{en_who}: {contact}"))
            else:
                parts.append(
                    _pick(
                        lang,
                        f"청첩장에 {ko_who} 연락처는 나와 있지 않습니다.",
                        f"The invitation gives no phone number for {en_who}.",
                    )
                )
        text = "\n".join(parts)
        return text[0].upper() + text[1:]

    def _schedule(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        items = [_schedule_line(i) for i in ctx.schedule or []]
        items = [i for i in items if i]
        if not items:
            return _pick(
                lang,
                "청첩장에 식순 정보가 없습니다.",
                "The invitation has no schedule for the day.",
            )
        return _pick(lang, "식순:", "Schedule:") + "\n" + "\n".join(f"- {i}" for i in items)

    def _invitation_text(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        if ctx.greeting:
            return _pick(lang, "청첩장 인사말입니다:", "Here is the invitation's greeting:") + (
                "\n" + ctx.greeting.strip()
            )
        return _pick(lang, "청첩장에 인사말이 없습니다.", "The invitation has no greeting message.")

    def _greeting(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        names = _couple_names(ctx, lang)
        if lang == "ko":
            whose = f"{names}의 결혼식" if names else "결혼식"
            return f"안녕하세요! {whose} 도우미입니다. {CAPABILITIES_KO} 물어보세요."
        whose = f"{names}'s wedding" if names else "this wedding"
        return f"Hello! I'm the assistant for {whose}. Ask me about {CAPABILITIES_EN}."

    def _capability(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        return _pick(
            lang,
            f"청첩장에 담긴 정보로 {CAPABILITIES_KO} 답해 드릴 수 있어요. "
            "청첩장에 없는 내용은 없다고 분명히 말씀드립니다.",
            f"I answer from the invitation's details: {CAPABILITIES_EN}. "
            "When the invitation doesn't say something, I tell you so.",
        )

    def _thanks(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        return _pick(
            lang,
            "천만에요! 더 궁금한 점이 있으면 언제든 물어보세요.",
            "You're welcome! Ask me anything else about the wedding.",
        )

    def _unknown(self, ctx: WeddingContext, lang: str, q: Query) -> str:
        return _pick(
            lang,
            f"청첩장 정보로는 답변드리기 어려운 질문입니다. {CAPABILITIES_KO} 물어봐 주세요.",
            f"The invitation doesn't cover that. I can answer about {CAPABILITIES_EN}.",
        )

    # -- free-text notices ----------------------------------------------------------------

    @staticmethod
    def _mentions(ctx: WeddingContext, intent: Intent) -> list[str]:
        cues = _TOPIC_TEXT[intent]
        return [line for line in _free_text(ctx) if cues.in_text(line)]

    def _notice(
        self,
        ctx: WeddingContext,
        lang: str,
        intent: Intent,
        heading: tuple[str, str],
        missing: tuple[str, str],
    ) -> str:
        notes = self._mentions(ctx, intent)
        if notes:
            return _pick(lang, *heading) + "\n" + _bullets(notes)
        return _pick(lang, *missing)

    def _related(self, ctx: WeddingContext, lang: str, intent: Intent) -> str:
        notes = self._mentions(ctx, intent)
        if not notes:
            return ""
        ko = "참고로 청첩장에 있는 관련 내용:"
        heading = _pick(lang, ko, "For reference, related lines on the invitation:")
        return "\n" + heading + "\n" + _bullets(notes)

    # -- prompt for real models -----------------------------------------------------------

    def build_messages(
        self,
        query: Query,
        ctx: WeddingContext,
        history: list[HistoryMessage],
        history_limit: int,
    ) -> list[BaseMessage]:
        facts = self.facts(query, ctx)
        context_json = json.dumps(
            ctx.model_dump(by_alias=True, exclude_none=True), ensure_ascii=False, indent=1
        )
        system = SYSTEM_PROMPT.format(
            language="Korean" if query.lang == "ko" else "English",
            understood=describe(query),
            facts="\n\n".join(facts),  # one block per topic
            open=CONTEXT_OPEN,
            context=context_json,
            close=CONTEXT_CLOSE,
        )
        messages: list[BaseMessage] = [SystemMessage(content=system)]
        recent = [h for h in history if h.role in ("user", "assistant")]
        for item in recent[-history_limit:] if history_limit > 0 else []:
            cls = HumanMessage if item.role == "user" else AIMessage
            messages.append(cls(content=item.content))
        messages.append(HumanMessage(content=query.text))
        return messages


CAPABILITIES_KO = (
    "예식 일시, 장소와 오시는 길(지하철·버스·셔틀), 주차, 지도, 축의금 계좌(신랑측·신부측·혼주), "
    "참석 현황과 회신 마감, 식사, 드레스 코드, 식순을"
)
CAPABILITIES_EN = (
    "the date and time, the venue and directions (subway, bus, shuttle), parking, the map, "
    "gift accounts (groom's side, bride's side, parents), RSVPs and the RSVP deadline, meals, "
    "the dress code and the schedule"
)


def describe(query: Query) -> str:
    """The router's reading of a question, for the system prompt (and logs)."""
    parts = ["topics: " + ", ".join(i.value for i in query.intents)]
    if query.sides:
        parts.append("side: " + " and ".join(sorted(query.sides)))
    if query.parents:
        parts.append(
            "about the parents"
            + (f" ({', '.join(sorted(query.relations))})" if query.relations else "")
        )
    if query.modes:
        parts.append("transport: " + ", ".join(query.modes))
    if query.origin:
        parts.append(f"travelling from: {query.origin[1].title()}")
    if query.aspects:
        parts.append("asks for: " + ", ".join(sorted(query.aspects)))
    if query.resolved_from:
        parts.append(f"follow-up to: {query.resolved_from!r}")
    return "; ".join(parts)


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


def _side_count(summary: Any, side: str) -> Any:
    by_side = summary.by_side if summary else None
    if not by_side:
        return None
    value = by_side.get(side)
    if isinstance(value, dict):
        value = value.get("headcount", value.get("attending"))
    return value


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
