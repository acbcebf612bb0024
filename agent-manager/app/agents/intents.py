"""What a question needs: intent classification and language detection (deterministic)."""

from __future__ import annotations

import re
from enum import StrEnum


class Intent(StrEnum):
    WHEN = "when"
    WHERE = "where"
    DIRECTIONS = "directions"
    PARKING = "parking"
    MAP = "map"
    GIFT = "gift"
    RSVP = "rsvp"
    MEAL = "meal"
    DRESS_CODE = "dress_code"
    COUPLE = "couple"
    SCHEDULE = "schedule"
    GREETING = "greeting"
    UNKNOWN = "unknown"


# English patterns are matched on word starts of the lower-cased text; Korean ones as substrings.
_PATTERNS: dict[Intent, tuple[str, ...]] = {
    Intent.WHEN: (
        r"\bwhen\b",
        r"\bdate\b",
        r"\bwhat time\b",
        r"\bwhat day\b",
        "언제",
        "날짜",
        "일시",
        "몇 시",
        "몇시",
        "며칠",
        "무슨 요일",
        "예식 시간",
        "예식시간",
    ),
    Intent.WHERE: (
        r"\bwhere\b",
        r"\bvenue\b",
        r"\blocation\b",
        r"\bplace\b",
        r"\baddress\b",
        r"\bhall\b",
        "어디",
        "장소",
        "식장",
        "주소",
        "웨딩홀",
        "예식장",
        "위치",
    ),
    Intent.DIRECTIONS: (
        r"\bdirections?\b",
        r"\bget there\b",
        r"\bgetting there\b",
        r"\bsubway\b",
        r"\bbus\b",
        r"\btrain\b",
        r"\btransport",
        r"\bstation\b",
        r"\bmetro\b",
        r"\btaxi\b",
        "오시는",
        "가는 길",
        "가는길",
        "교통",
        "지하철",
        "버스",
        "역에서",
        "찾아가",
        "오는 길",
    ),
    Intent.PARKING: (
        r"\bpark",
        r"\bcar\b",
        r"\bdrive\b",
        r"\bdriving\b",
        "주차",
        "자가용",
        "운전",
        "차를",
        "차로",
        "차량",
    ),
    Intent.MAP: (
        r"\bmaps?\b",
        r"\bnavigat",
        r"\bgps\b",
        "지도",
        "약도",
        "내비",
        "네비",
        "위치",
    ),
    Intent.GIFT: (
        r"\baccounts?\b",
        r"\bbank\b",
        r"\bgifts?\b",
        r"\bmoney\b",
        r"\btransfer\b",
        r"\bcongratulatory\b",
        "계좌",
        "축의금",
        "마음 전하",
        "마음전하",
        "송금",
        "입금",
        "은행",
        "부조",
    ),
    Intent.RSVP: (
        r"\brsvp",
        r"\battend",
        r"\bheadcount\b",
        r"\bhow many\b",
        r"\bresponses?\b",
        r"\bcoming\b",
        "참석",
        "인원",
        "몇 명",
        "몇명",
        "응답",
        "회신",
        "불참",
    ),
    Intent.MEAL: (
        r"\bmeals?\b",
        r"\bfood\b",
        r"\bmenu\b",
        r"\bbuffet\b",
        r"\beat\b",
        r"\bdinner\b",
        r"\blunch\b",
        r"\bvegetarian\b",
        "식사",
        "메뉴",
        "뷔페",
        "음식",
        "밥",
        "식권",
    ),
    Intent.DRESS_CODE: (
        r"\bdress",
        r"\bwear\b",
        r"\battire\b",
        r"\boutfit\b",
        r"\bclothes\b",
        "드레스",
        "복장",
        "옷",
        "입고",
    ),
    Intent.COUPLE: (
        r"\bwho\b",
        r"\bnames?\b",
        r"\bcouple\b",
        r"\bparents\b",
        "누구",
        "이름",
        "혼주",
        "부모님",
    ),
    Intent.SCHEDULE: (
        r"\bschedule\b",
        r"\bprogram\b",
        r"\btimeline\b",
        r"\border of\b",
        "식순",
        "일정",
        "순서",
        "진행",
    ),
    Intent.GREETING: (
        r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b",
        r"\bgreeting",
        r"\binvitation message\b",
        "안녕",
        "반가",
        "인사말",
        "초대 글",
        "초대글",
        "초대의 글",
    ),
}

_COMPILED = {intent: [re.compile(p) for p in patterns] for intent, patterns in _PATTERNS.items()}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def detect_language(text: str) -> str:
    """``ko`` when the text contains Hangul, else ``en``."""
    return "ko" if _HANGUL.search(text) else "en"


def classify(text: str) -> list[Intent]:
    """Intents of a question, in a stable order; ``[UNKNOWN]`` when nothing matches.

    A plain greeting only counts when no other intent was found ("hi, where is it?" is WHERE).
    """
    lowered = text.lower()
    found = [
        intent for intent, patterns in _COMPILED.items() if any(p.search(lowered) for p in patterns)
    ]
    if len(found) > 1 and Intent.GREETING in found and not _asks_greeting_text(lowered):
        found.remove(Intent.GREETING)
    return found or [Intent.UNKNOWN]


def _asks_greeting_text(lowered: str) -> bool:
    return any(w in lowered for w in ("greeting", "invitation message", "인사말", "초대"))
