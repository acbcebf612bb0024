"""What a question asks: topics (intents) plus the details that narrow them (deterministic).

``analyze(question, previous)`` returns a :class:`Query`: the intents, the language, and the
slots — which side (groom / bride), whether parents are meant, which transport modes,
travelling from which city, and which aspect (time or date, address or hall). A follow-up
that names no topic ("신부측은요?", "what about the bride?") takes the topic of the previous
question and replaces only the slots it names. Every rule is a cue in this file or in
:mod:`app.agents.lexicon`, so any answer can be traced to the words that caused it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from app.agents.lexicon import Cues, compact, detect_language, modes_in, origin_in, spaced

__all__ = ["Intent", "Query", "analyze", "classify", "detect_language", "resolve"]


class Intent(StrEnum):
    WHEN = "when"
    WHERE = "where"
    DIRECTIONS = "directions"
    PARKING = "parking"
    MAP = "map"
    GIFT = "gift"
    RSVP = "rsvp"
    RSVP_DEADLINE = "rsvp_deadline"
    MEAL = "meal"
    DRESS_CODE = "dress_code"
    CHILDREN = "children"
    FLOWERS = "flowers"
    PHOTOS = "photos"
    COUPLE = "couple"
    CONTACT = "contact"
    SCHEDULE = "schedule"
    INVITATION_TEXT = "invitation_text"
    GREETING = "greeting"
    CAPABILITY = "capability"
    THANKS = "thanks"
    UNKNOWN = "unknown"


#: Intents that are small talk rather than a question about the wedding.
SMALL_TALK = frozenset({Intent.GREETING, Intent.CAPABILITY, Intent.THANKS})

_CUES: dict[Intent, Cues] = {
    Intent.WHEN: Cues(
        ("언제", "날짜", "일시", "몇시", "며칠", "요일", "예식시간", "시작시간", "몇월", "시작하",
         "시작해", "시간이", "시간은", "시간알려", "시간좀", "시간이요"),
        (r"\bwhen\b", r"\bdate\b", r"\bwhat time\b", r"\bwhat day\b", r"\btime\b",
         r"\bstarts?\b", r"\bbegins?\b", r"\bo'clock\b", r"\bday of the week\b"),
    ),
    Intent.WHERE: Cues(
        ("어디", "장소", "식장", "주소", "웨딩홀", "예식장", "위치", "몇층", "무슨홀", "어느홀",
         "홀이름", "홀은", "홀이"),
        (r"\bwhere\b", r"\bvenue\b", r"\blocation\b", r"\bplace\b", r"\baddress\b",
         r"\bhall\b", r"\bfloor\b", r"\bwhich room\b"),
    ),
    Intent.DIRECTIONS: Cues(
        ("오시는길", "가는길", "오는길", "가는방법", "오는방법", "어떻게가", "어떻게와", "찾아가",
         "교통", "역에서", "역까지", "몇번출구"),
        (r"\bdirections?\b", r"\bget there\b", r"\bgetting there\b", r"\bhow (do|can|should) i "
         r"(get|go|travel)\b", r"\bhow to get\b", r"\btransport", r"\btransit\b", r"\bstation\b",
         r"\btravel\b", r"\broute\b"),
    ),
    Intent.PARKING: Cues(
        ("주차", "발렛", "발레파킹"),
        (r"\bpark(ing)?\b", r"\bvalet\b"),
    ),
    Intent.MAP: Cues(
        ("지도", "약도", "카카오맵", "네이버지도", "길찾기", "네비", "내비"),
        (r"\bmaps?\b", r"\bnavigat", r"\bgps\b"),
    ),
    Intent.GIFT: Cues(
        ("계좌", "축의금", "마음전하", "마음을전", "마음전할", "송금", "입금", "이체", "은행",
         "부조", "돈보내", "돈을보내", "축하금", "봉투"),
        (r"\baccounts?\b", r"\bbank\b", r"\bgifts?\b", r"\bmoney\b", r"\btransfer\b",
         r"\bcongratulatory\b", r"\bcash\b", r"\bwire\b"),
    ),
    Intent.RSVP: Cues(
        ("참석", "인원", "몇명", "응답", "회신", "불참", "하객수", "온대", "오신대",
         "오는사람"),
        (r"\brsvps?\b", r"\battend", r"\bheadcount\b", r"\bhow many\b", r"\bresponses?\b",
         r"\bcoming\b", r"\bguest (count|list)\b"),
    ),
    Intent.MEAL: Cues(
        ("식사", "메뉴", "뷔페", "음식", "밥", "식권", "피로연", "연회", "코스요리", "채식",
         "먹을"),
        (r"\bmeals?\b", r"\bfood\b", r"\bmenu\b", r"\bbuffet\b", r"\beat\b", r"\bdinner\b",
         r"\blunch\b", r"\bvegetarian\b", r"\bvegan\b", r"\breception\b", r"\bcatering\b"),
    ),
    Intent.DRESS_CODE: Cues(
        ("드레스코드", "복장", "옷", "입고", "입어", "정장", "하객룩", "의상", "넥타이"),
        (r"\bdress", r"\bwear\b", r"\battire\b", r"\boutfit\b", r"\bclothes\b", r"\bsuit\b",
         r"\btie\b"),
    ),
    Intent.CHILDREN: Cues(
        ("아이", "애기", "아기", "어린이", "유아", "자녀", "키즈", "아동", "애들", "유모차",
         "애데리고", "애를데리고"),
        (r"\bchild(ren)?\b", r"\bkids?\b", r"\bbab(y|ies)\b", r"\binfants?\b", r"\btoddlers?\b",
         r"\bstroller\b"),
    ),
    Intent.FLOWERS: Cues(
        ("화환", "꽃", "조화", "화분"),
        (r"\bflowers?\b", r"\bwreaths?\b", r"\bbouquets?\b", r"\bfloral\b"),
    ),
    Intent.PHOTOS: Cues(
        ("사진", "촬영", "포토", "스냅", "카메라", "동영상", "영상"),
        (r"\bphotos?\b", r"\bpictures?\b", r"\bpics?\b", r"\bcamera\b", r"\bphotographer\b",
         r"\bvideo\b", r"\bfilm(ing)?\b"),
    ),
    Intent.COUPLE: Cues(
        ("누구", "이름", "성함", "결혼하는사람"),
        (r"\bwho\b", r"\bnames?\b", r"\bcouple\b", r"\bgetting married\b"),
    ),
    Intent.CONTACT: Cues(
        ("연락처", "전화번호", "핸드폰", "휴대폰", "전화", "연락"),
        (r"\bcontact\b", r"\bphone\b", r"\bcall\b", r"\bnumber to reach\b", r"\breach (him|her|"
         r"them|the)\b"),
    ),
    Intent.SCHEDULE: Cues(
        ("식순", "일정", "순서", "진행", "타임라인", "스케줄", "시간표"),
        (r"\bschedule\b", r"\bprogram", r"\btimeline\b", r"\border of\b", r"\bitinerary\b",
         r"\bagenda\b"),
    ),
    Intent.INVITATION_TEXT: Cues(
        ("인사말", "초대글", "초대의글", "초대말", "초대문구", "청첩장문구", "모시는글"),
        (r"\bgreeting (message|text)\b", r"\binvitation (message|text|wording)\b",
         r"\bthe greeting\b", r"\bwhat does the invitation say\b"),
    ),
    Intent.GREETING: Cues(
        ("안녕", "반가워", "반갑", "하이", "헬로", "ㅎㅇ", "ㅎㅇㅎㅇ"),
        (r"^(hi|hello|hey|howdy|good (morning|afternoon|evening))\b",),
    ),
    Intent.CAPABILITY: Cues(
        ("뭐할수있", "뭘할수있", "무엇을할수", "뭘물어", "뭐물어", "무엇을물어", "뭐가능",
         "무슨기능", "기능이", "뭘도와", "뭐도와", "무엇을도와", "할수있는게", "사용법",
         "어떻게써", "뭐알려줄수", "뭘알려줄수", "너는누구", "넌누구", "누구세요", "뭐하는",
         "해줄수있", "뭐해줘", "무엇을해줄", "뭐알아", "뭘알아"),
        (r"\bwhat can you\b", r"\bwhat can i ask\b", r"\bwhat do you know\b",
         r"\bhow does this work\b", r"\bcapabilit", r"\bwho are you\b", r"\bwhat are you\b",
         r"^help\b", r"\bcan you help\b", r"\bwhat do you do\b"),
    ),
    Intent.THANKS: Cues(
        ("고마워", "고맙", "감사", "땡큐"),
        (r"\bthanks?\b", r"\bthank you\b", r"\bcheers\b"),
    ),
}  # fmt: skip

# Cues that make a question specifically about a topic even when a generic one is present.
_WHERE_STRONG = Cues(
    ("장소", "식장", "주소", "웨딩홀", "예식장", "위치", "몇층", "무슨홀", "어느홀", "홀이름",
     "어디서해", "어디에서해", "어디서하", "어디에서하", "어디예요", "어디야", "어디에요", "어딘"),
    (r"\bvenue\b", r"\blocation\b", r"\baddress\b", r"\bhall\b", r"\bfloor\b",
     r"\bwhere is (it|the (wedding|venue|ceremony|reception))\b", r"\bwhere('s| is) it\b",
     r"\bwhere (is|will) the wedding\b", r"\bwhich room\b"),
)  # fmt: skip
_WHEN_STRONG = Cues(
    ("언제", "날짜", "일시", "며칠", "요일", "몇월", "예식시간"),
    (r"\bwhen is the wedding\b", r"\bdate\b", r"\bwhat day\b", r"\bday of the week\b"),
)
_DEADLINE = Cues(
    ("까지", "마감", "기한", "데드라인"),
    (r"\bdeadline\b", r"\bdue\b", r"\bby when\b", r"\buntil when\b", r"\blast day\b",
     r"\bcut-?off\b", r"\bclose[sd]?\b", r"\bstill open\b"),
)  # fmt: skip
_TIME_ASPECT = Cues(
    ("몇시", "시간", "시작"),
    (r"\bwhat time\b", r"\btime\b", r"\bstarts?\b", r"\bbegins?\b", r"\bo'clock\b"),
)
_DATE_ASPECT = Cues(
    ("날짜", "며칠", "요일", "몇월", "무슨날"),
    (r"\bdate\b", r"\bwhat day\b", r"\bday of the week\b", r"\bwhich day\b"),
)
_ADDRESS_ASPECT = Cues(("주소",), (r"\baddress\b",))
_HALL_ASPECT = Cues(
    ("몇층", "무슨홀", "어느홀", "홀이름", "홀은", "홀이", "층이"),
    (r"\bhall\b", r"\bfloor\b", r"\bwhich room\b"),
)

_END_ASPECT = Cues(
    ("끝나", "종료", "마치", "끝시간", "끝은"),
    (r"\bends?\b", r"\bfinish", r"\bover\b", r"\bhow long\b", r"\buntil what time\b"),
)
_AMOUNT_ASPECT = Cues(("얼마", "금액", "액수"), (r"\bhow much\b", r"\bamount\b"))

_GROOM = Cues(("신랑", "남편될", "예비신랑"), (r"\bgroom('s)?\b", r"\bhusband\b"))
_BRIDE = Cues(("신부", "예비신부"), (r"\bbride('s)?\b", r"\bwife\b"))
_BOTH = Cues(
    ("양가", "양쪽", "둘다", "두분", "신랑신부", "신랑과신부", "신랑이랑신부", "신랑님과신부님"),
    (r"\bboth\b", r"\beach side\b", r"\bbride and groom\b", r"\bgroom and bride\b"),
)
_PARENTS = Cues(
    ("혼주", "부모", "아버지", "어머니", "아버님", "어머님", "부친", "모친", "아빠", "엄마"),
    (r"\bparents?\b", r"\bfathers?\b", r"\bmothers?\b", r"\bdad\b", r"\bmom\b", r"\bmum\b",
     r"\bin-laws?\b"),
)  # fmt: skip
_FATHER = Cues(("아버지", "아버님", "부친", "아빠"), (r"\bfather\b", r"\bdad\b"))
_MOTHER = Cues(("어머니", "어머님", "모친", "엄마"), (r"\bmother\b", r"\bmom\b", r"\bmum\b"))

# A question made only of these words leans on the previous one ("그럼 그건요?", "and that?").
# Anything else in it means it asks something of its own ("오늘 날씨는요?" is not a follow-up).
_KO_FILLERS = re.compile(
    "그럼|그러면|그건|그거|거기|그쪽|저기|혹시|어때요|어때|어떻게돼요|어떻게되나요|어떻게돼|있어요|있나요|"
    "있어|요|은|는|도|이|가"
)
_EN_FILLERS = frozenset(
    [
        "and",
        "also",
        "what",
        "about",
        "how",
        "the",
        "for",
        "same",
        "of",
        "that",
        "it",
        "there",
        "then",
        "one",
        "ones",
        "is",
        "so",
        "ok",
        "okay",
    ]
)


def _bare_follow_up(c: str, s: str) -> bool:
    if re.search(r"[a-z]", s):
        words = re.findall(r"[a-z']+", s)
        return bool(words) and all(w in _EN_FILLERS for w in words)
    return bool(c) and not _KO_FILLERS.sub("", c)


#: Intents that are about a subject of the wedding (not small talk, not unknown).
TOPICS = tuple(i for i in _CUES if i not in SMALL_TALK)


@dataclass(frozen=True)
class Query:
    """One analysed question."""

    text: str
    lang: str
    intents: list[Intent]
    sides: frozenset[str] = frozenset()  # {"groom", "bride"}; empty = not said
    parents: bool = False
    relations: frozenset[str] = frozenset()  # {"father", "mother"}; empty = either
    modes: tuple[str, ...] = ()
    origin: tuple[str, str] | None = None
    aspects: frozenset[str] = frozenset()  # time, date, address, hall, end, amount
    follow_up: bool = False
    resolved_from: str | None = None  # the earlier question a follow-up leaned on

    @property
    def topics(self) -> list[Intent]:
        return [i for i in self.intents if i in TOPICS]


def _sides(c: str, s: str) -> frozenset[str]:
    if _BOTH.found(c, s):
        return frozenset({"groom", "bride"})
    found = set()
    if _GROOM.found(c, s):
        found.add("groom")
    if _BRIDE.found(c, s.replace("bridal", "")):
        found.add("bride")
    return frozenset(found)


def _raw_intents(c: str, s: str) -> list[Intent]:
    return [intent for intent, cues in _CUES.items() if cues.found(c, s)]


def _refine(found: list[Intent], c: str, s: str, modes: tuple[str, ...]) -> list[Intent]:
    """Drop intents that only a generic word in the question suggested."""
    has = set(found)
    if modes:
        # a transport mode is a directions question; a car means parking
        has.add(Intent.DIRECTIONS if set(modes) - {"car"} else Intent.PARKING)
        if modes == ("car",) and not _CUES[Intent.DIRECTIONS].found(c, s):
            has.discard(Intent.DIRECTIONS)
    specific = has - {Intent.WHERE, Intent.WHEN, Intent.COUPLE, Intent.RSVP} - SMALL_TALK
    # "식장까지 / 식장에서 주차 / parking at the venue": the venue is where, not what is asked
    to_venue = any(k in c for k in ("식장까지", "웨딩홀까지", "식장에", "웨딩홀에")) or re.search(
        r"\b(to|at|near|in|from) the (venue|hall)\b", s
    )
    if Intent.WHERE in has and specific and (to_venue or not _WHERE_STRONG.found(c, s)):
        has.discard(Intent.WHERE)  # "where can I park?" asks about parking
    if Intent.WHEN in has and specific and not _WHEN_STRONG.found(c, s):
        has.discard(Intent.WHEN)  # "주차 몇 시간 무료?" / "what time does the shuttle leave?"
    if Intent.CAPABILITY in has and not _sides(c, s):
        has.discard(Intent.COUPLE)  # "넌 누구야?" asks about the assistant
    if Intent.RSVP in has and _DEADLINE.found(c, s):
        has.add(Intent.RSVP_DEADLINE)
    if Intent.RSVP_DEADLINE in has:
        has.discard(Intent.RSVP)
        has.discard(Intent.WHEN)
    if Intent.COUPLE in has and (specific - {Intent.RSVP_DEADLINE}):
        has.discard(Intent.COUPLE)  # "who do I send money to?" / "혼주 계좌"
    if Intent.CONTACT in has and Intent.GIFT in has:
        has.discard(Intent.CONTACT)  # "계좌 번호"
    if Intent.DRESS_CODE in has and Intent.PHOTOS in has and "드레스" not in c:
        has.discard(Intent.DRESS_CODE)
    if Intent.MEAL in has and Intent.SCHEDULE in has and "피로연" in c:
        has.discard(Intent.SCHEDULE)
    if has - SMALL_TALK:
        # "hi, where is it?" asks where; "thanks! and parking?" asks about parking
        has -= SMALL_TALK
    elif Intent.CAPABILITY in has:
        has.discard(Intent.GREETING)
    return [i for i in Intent if i in has]


def _aspects(c: str, s: str) -> frozenset[str]:
    found = set()
    for name, cues in (
        ("time", _TIME_ASPECT),
        ("date", _DATE_ASPECT),
        ("address", _ADDRESS_ASPECT),
        ("hall", _HALL_ASPECT),
        ("end", _END_ASPECT),
        ("amount", _AMOUNT_ASPECT),
    ):
        if cues.found(c, s):
            found.add(name)
    if "time" in found and ("언제" in c or re.search(r"\bwhen\b", s)):
        found.add("date")
    return frozenset(found)


def analyze(text: str, previous: Query | None = None) -> Query:
    """Analyse ``text``; a follow-up without a topic leans on ``previous``."""
    c, s = compact(text), spaced(text)
    modes = tuple(m for m in modes_in(text) if m != "walk")
    parents = _PARENTS.found(c, s)
    relations = frozenset(
        r for r, cues in (("father", _FATHER), ("mother", _MOTHER)) if cues.found(c, s)
    )
    query = Query(
        text=text,
        lang=detect_language(text),
        intents=_refine(_raw_intents(c, s), c, s, modes),
        sides=_sides(c, s),
        parents=parents,
        relations=relations,
        modes=modes,
        origin=origin_in(text),
        aspects=_aspects(c, s),
        follow_up=_bare_follow_up(c, s),
    )
    return _lean_on(query, previous)


def _lean_on(query: Query, previous: Query | None) -> Query:
    """Give a topic-less follow-up the previous question's topic and slots."""
    if previous is None or not previous.topics:
        return _or_unknown(query)
    names_slot = bool(query.sides or query.parents or query.origin or query.aspects)
    if query.topics:
        return query
    if not (names_slot or query.follow_up) or set(query.intents) & SMALL_TALK:
        return _or_unknown(query)
    return replace(
        query,
        intents=previous.topics,
        sides=query.sides or previous.sides,
        parents=query.parents or previous.parents,
        relations=query.relations or previous.relations,
        modes=query.modes or previous.modes,
        origin=query.origin or previous.origin,
        aspects=query.aspects or previous.aspects,
        resolved_from=previous.text,
    )


def _or_unknown(query: Query) -> Query:
    if query.intents:
        return query
    if query.sides or query.parents:
        # "신랑 부모님은?" with nothing earlier: about the people
        return replace(query, intents=[Intent.COUPLE])
    return replace(query, intents=[Intent.UNKNOWN])


def resolve(question: str, earlier_questions: list[str]) -> Query:
    """Analyse ``question`` after the user's earlier questions (oldest first)."""
    previous: Query | None = None
    for earlier in earlier_questions[-6:]:
        previous = analyze(earlier, previous)
    return analyze(question, previous)


def classify(text: str) -> list[Intent]:
    """Intents of a single question, in a stable order; ``[UNKNOWN]`` when nothing matches."""
    return analyze(text).intents
