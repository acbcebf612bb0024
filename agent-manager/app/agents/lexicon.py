"""Text normalisation and the small lexicon the deterministic answerer understands.

Korean cues are matched as substrings of the *compact* form (lower-cased, spaces and
punctuation removed), so spacing variants ("주차 가능" / "주차가능") and particles or
endings after a stem ("주차돼요", "주차는요", "주차 가능한가요") all match the stem. English
cues are regular expressions matched on the lower-cased text with single spaces.
Common typos are rewritten first, so every rule sees the intended word.
"""

from __future__ import annotations

import re
import unicodedata

# Korean typos, rewritten in the compact form (keys are never valid words themselves).
KO_TYPOS: dict[str, str] = {
    "게좌": "계좌",
    "겨좌": "계좌",
    "계좌번효": "계좌번호",
    "쥬차": "주차",
    "주챠": "주차",
    "쭈차": "주차",
    "죽의금": "축의금",
    "추의금": "축의금",
    "축이금": "축의금",
    "측의금": "축의금",
    "셔뜰": "셔틀",
    "셔를": "셔틀",
    "셔틀뻐스": "셔틀버스",
    "셔틀버쓰": "셔틀버스",
    "신랑축": "신랑측",
    "신부축": "신부측",
    "언재": "언제",
    "몇씨": "몇시",
    "멷시": "몇시",
    "드래스": "드레스",
    "지하쳘": "지하철",
    "쥬소": "주소",
    "예식쟝": "예식장",
    "화한": "화환",
    "오시는걸": "오시는길",
    "몇일": "며칠",
    "뷔폐": "뷔페",
    "부페": "뷔페",
}

# English typos, rewritten as whole words.
EN_TYPOS: dict[str, str] = {
    "adress": "address",
    "addres": "address",
    "parkng": "parking",
    "parkign": "parking",
    "shutle": "shuttle",
    "shuttel": "shuttle",
    "acount": "account",
    "accout": "account",
    "acounts": "accounts",
    "weding": "wedding",
    "wedidng": "wedding",
    "brides": "bride's",
    "grooms": "groom's",
    "diretions": "directions",
    "directons": "directions",
    "dresscode": "dress code",
    "resturant": "restaurant",
    "recieve": "receive",
    "vennue": "venue",
    "veneu": "venue",
    "childern": "children",
    "photograph": "photo",
}

_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w]+")
_EN_WORD = re.compile(r"[a-z']+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")


def spaced(text: str) -> str:
    """Lower-cased, NFC, single spaces, English typos fixed."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()
    text = text.replace("\u2019", "'")
    return _EN_WORD.sub(lambda m: EN_TYPOS.get(m.group(0), m.group(0)), text)


def compact(text: str) -> str:
    """The spaced form without spaces and punctuation, Korean typos fixed."""
    squeezed = _NOT_WORD.sub("", spaced(text))
    for wrong, right in KO_TYPOS.items():
        squeezed = squeezed.replace(wrong, right)
    return squeezed


def detect_language(text: str) -> str:
    """``ko`` or ``en``: the language most words of the question are in.

    A word holding Hangul counts for Korean; a plain Latin word for English, except
    all-caps names like KTX/SRT. Ties go to Korean ("주차 parking?" is Korean).
    """
    ko = en = 0
    for word in text.split():
        if _HANGUL.search(word):
            ko += 1
        elif _LATIN_WORD.match(word.strip("?!.,:;\"'()")) and not word.isupper():
            en += 1
    if ko == 0:
        return "en"
    return "ko" if ko >= en else "en"


class Cues:
    """Korean substrings (compact form) and English regexes for one concept."""

    def __init__(self, ko: tuple[str, ...] = (), en: tuple[str, ...] = ()) -> None:
        # the same normalisation as the text (NFKC turns "ㅎㅇ" into conjoining jamo)
        self.ko = tuple(unicodedata.normalize("NFKC", k) for k in ko)
        self.en = tuple(re.compile(p) for p in en)

    def found(self, compact_text: str, spaced_text: str) -> bool:
        return any(k in compact_text for k in self.ko) or any(
            p.search(spaced_text) for p in self.en
        )

    def in_text(self, text: str) -> bool:
        return self.found(compact(text), spaced(text))


# -- transport modes: used both for questions and for the lines of the page's directions --

MODES: dict[str, Cues] = {
    "shuttle": Cues(("셔틀",), (r"\bshuttles?\b",)),
    "train": Cues(
        ("ktx", "srt", "기차", "열차", "고속철", "itx", "무궁화", "새마을"),
        (r"\btrains?\b", r"\bktx\b", r"\bsrt\b", r"\brail", r"\bamtrak\b"),
    ),
    "subway": Cues(
        ("지하철", "전철", "호선", "출구"),
        (r"\bsubway\b", r"\bmetro\b", r"\bunderground\b", r"\bline \d", r"\bexit \d"),
    ),
    # "bus" but not "shuttle bus"; "Busan" is not a bus.
    "bus": Cues(("버스",), (r"(?<!shuttle )\bbus(es)?\b",)),
    "taxi": Cues(("택시",), (r"\btaxis?\b", r"\bcabs?\b", r"\buber\b")),
    "car": Cues(
        (
            "자가용",
            "자차",
            "운전",
            "차로오",
            "차로가",
            "차가져",
            "차를가져",
            "차끌고",
            "차타고",
            "내비",
        ),
        (r"\bby car\b", r"\bdriv(e|ing)\b", r"\bcar\b"),
    ),
    "walk": Cues(("도보", "걸어"), (r"\bwalk",)),
}

MODE_NAMES = {
    "shuttle": ("셔틀버스", "shuttle bus"),
    "train": ("KTX·SRT 등 기차", "train (KTX/SRT)"),
    "subway": ("지하철", "subway"),
    "bus": ("버스", "bus"),
    "taxi": ("택시", "taxi"),
    "car": ("자가용", "car"),
    "walk": ("도보", "walking"),
}

# Korean ``"버스"`` is inside ``"셔틀버스"``: a line or question about a shuttle bus is
# not about the city bus unless it says "버스" elsewhere too.
_SHUTTLE_BUS = re.compile("셔틀버스")


def modes_in(text: str) -> list[str]:
    """Transport modes a text mentions, in :data:`MODES` order."""
    c, s = compact(text), spaced(text)
    found = []
    for mode, cues in MODES.items():
        probe = _SHUTTLE_BUS.sub("셔틀", c) if mode == "bus" else c
        if mode == "car" and "셔틀" in c and not any(k in c for k in ("자가용", "자차", "운전")):
            continue  # "셔틀 차로 모십니다" is the shuttle
        if cues.found(probe, s):
            found.append(mode)
    return found


# Cities a guest may travel from (Korean name, English name).
CITIES: tuple[tuple[str, str], ...] = (
    ("서울", "seoul"),
    ("부산", "busan"),
    ("대구", "daegu"),
    ("대전", "daejeon"),
    ("광주", "gwangju"),
    ("울산", "ulsan"),
    ("인천", "incheon"),
    ("수원", "suwon"),
    ("제주", "jeju"),
    ("강릉", "gangneung"),
    ("전주", "jeonju"),
    ("포항", "pohang"),
    ("창원", "changwon"),
    ("청주", "cheongju"),
    ("천안", "cheonan"),
)


def origin_in(text: str) -> tuple[str, str] | None:
    """A city the question travels *from* ("부산에서", "from Busan")."""
    c, s = compact(text), spaced(text)
    for ko, en in CITIES:
        if f"{ko}에서" in c or f"{ko}출발" in c or f"{ko}역에서" in c or f"{ko}부터" in c:
            return ko, en
        if re.search(rf"\bfrom {en}\b", s):
            return ko, en
    return None


def mentions_city(text: str, city: tuple[str, str]) -> bool:
    return city[0] in compact(text) or re.search(rf"\b{city[1]}\b", spaced(text)) is not None
