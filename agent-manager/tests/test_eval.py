"""Evaluation set of the offline answerer: questions with the facts an answer must hold.

Each case is (context, earlier questions, question, must contain, must not contain). A
decline case names the decline it expects and forbids the fact that would be a wrong answer
(the groom's account when the bride's was asked, the subway when a shuttle was asked). The
whole set runs in CI: every case is its own test, and ``test_eval_accuracy`` prints the score
and fails below ``THRESHOLD``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.agents.offline import offline_answer

from .eval_contexts import (
    DRESS_SHUTTLE,
    ENGLISH,
    GROOM_ONLY,
    MISSING_VENUE,
    NO_ACCOUNTS,
    PARENTS,
)
from .samples import EN_CONTEXT, KO_CONTEXT

#: Share of cases that must pass. Every case passes today; the margin (5 of 285) leaves room
#: for a deliberate trade-off in a later rule change without hiding a broken area.
THRESHOLD = 0.98


@dataclass(frozen=True)
class Case:
    context: dict
    question: str
    has: tuple[str, ...] = ()
    hasnt: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    tag: str = ""

    def answer(self) -> str:
        return offline_answer(self.question, self.context, list(self.before))

    def problems(self, answer: str) -> list[str]:
        return [f"missing {t!r}" for t in self.has if t not in answer] + [
            f"unexpected {t!r}" for t in self.hasnt if t in answer
        ]


G, N, E, P, M, D = GROOM_ONLY, NO_ACCOUNTS, ENGLISH, PARENTS, MISSING_VENUE, DRESS_SHUTTLE
GROOM_ACCOUNT = "356-910234-56707"

REGRESSIONS = [
    # the two wrong answers and its follow-up
    Case(
        G,
        "Can I send money to the bride?",
        ("no account for the bride's side", "For reference", "Groom's side", GROOM_ACCOUNT),
        ("Gift accounts:",),
        tag="bride-money-groom-only",
    ),
    Case(
        G,
        "Is there a shuttle bus from Busan?",
        ("no shuttle bus information", "Busan", "For reference", "청담역 13번 출구"),
        ("Getting there:",),
        tag="shuttle-from-busan",
    ),
    Case(
        KO_CONTEXT,
        "신부측은요?",
        ("신부측: 신한은행 110-222-333444",),
        ("123-456-789012", "답변드리기 어려운"),
        before=("신랑측 계좌 알려줘",),
        tag="follow-up-bride-side",
    ),
    Case(
        E,
        "what can you do?",
        ("I answer from the invitation", "gift accounts"),
        ("Sorry", "doesn't cover"),
        tag="capability-no-sorry",
    ),
]

CASES = [
    *REGRESSIONS,
    # --- GROOM_ONLY: one groom-side account, subway only, Korean --------------------------
    Case(G, "결혼식 언제예요?", ("2027년 4월 24일 토요일 오후 1시",)),
    Case(G, "몇 시에 시작해요?", ("오후 1시에 시작합니다",)),
    Case(G, "몇시예요", ("오후 1시",)),
    Case(G, "예식 날짜가 며칠이죠?", ("2027년 4월 24일 토요일",)),
    Case(G, "무슨 요일이야?", ("토요일",)),
    Case(G, "예식장 어디야?", ("더채플앳청담 5층 그랜드홀", "서울 강남구 선릉로 757")),
    Case(G, "주소 알려줘", ("서울 강남구 선릉로 757",)),
    Case(G, "몇 층이에요?", ("5층 그랜드홀",)),
    Case(G, "주차돼요?", ("주차 안내:", "2시간 무료")),
    Case(G, "주차 가능한가요?", ("주차 안내:", "2시간 무료")),
    Case(G, "차 가져가도 돼?", ("주차 안내:", "2시간 무료")),
    Case(G, "쥬차 되나여", ("2시간 무료",)),
    Case(G, "자차로 가면 주차 몇 시간 무료야?", ("2시간 무료",), ("오후 1시",)),
    Case(G, "지하철로 어떻게 가요?", ("지하철 안내:", "청담역 13번 출구")),
    Case(
        G,
        "셔틀버스 있어요?",
        ("셔틀버스 안내는 없습니다", "참고로", "청담역 13번 출구"),
        ("셔틀버스 안내:",),
    ),
    Case(G, "버스 타고 가려면?", ("버스 안내는 없습니다", "참고로", "청담역")),
    Case(G, "부산에서 KTX 타고 가는데 어떻게 가요?", ("기차", "안내는 없습니다", "청담역")),
    Case(G, "신랑측 계좌 알려줘", ("신랑측: 하나은행 356-910234-56707 (예금주 이재민)",)),
    Case(
        G,
        "신부측 계좌번호 알려주세요",
        ("신부측 계좌는 나와 있지 않습니다", "참고로", "신랑측"),
        ("마음 전하실 곳:",),
    ),
    Case(G, "신부한테 축의금 보내고 싶어요", ("신부측 계좌는 나와 있지 않습니다", GROOM_ACCOUNT)),
    Case(G, "신부 쪽 게좌는?", ("신부측 계좌는 나와 있지 않습니다",), ("마음 전하실 곳:",)),
    Case(G, "축의금 계좌", ("마음 전하실 곳:", GROOM_ACCOUNT)),
    Case(G, "양가 계좌 다 알려줘", (GROOM_ACCOUNT, "신부측 계좌는 나와 있지 않습니다")),
    Case(
        G, "혼주 계좌도 있어?", ("혼주(부모님) 계좌는 나와 있지 않습니다", "참고로", GROOM_ACCOUNT)
    ),
    Case(G, "신랑 아버지 계좌 알려줘", ("신랑측 아버지 계좌는 나와 있지 않습니다",)),
    Case(G, "참석 인원 몇 명이야?", ("응답은 20건", "30명", "신랑측 17명", "신부측 13명")),
    Case(G, "신랑측 하객 몇 명 와?", ("신랑측 예상 참석 인원은 17명",), ("신부측 13명",)),
    Case(G, "참석 여부 언제까지 알려줘야 돼?", ("2027년 4월 10일까지",), ("오후 1시",)),
    Case(G, "RSVP 마감일이 언제야?", ("2027년 4월 10일까지",)),
    Case(G, "식사는 뭐 나와요?", ("2층 연회장 한식 뷔페",)),
    Case(G, "밥 뷔페야?", ("한식 뷔페",)),
    Case(G, "드레스코드 있나요?", ("드레스 코드 안내가 없습니다",)),
    Case(G, "뭐 입고 가야 돼?", ("드레스 코드 안내가 없습니다",)),
    Case(G, "아이 데려가도 되나요?", ("아이 동반에 대한 안내는 없습니다",)),
    Case(G, "화환 보내도 돼요?", ("화환에 대한 안내는 없습니다", "참고로 예식 장소는")),
    Case(G, "사진 찍어도 돼?", ("사진 촬영에 대한 안내는 없습니다",)),
    Case(G, "신랑 연락처 알려줘", ("010-1234-5678",)),
    Case(G, "신부 전화번호는?", ("신부 연락처는 나와 있지 않습니다",), ("010-1234-5678",)),
    Case(G, "신랑 부모님 성함이 어떻게 되나요?", ("신랑 혼주는 이정호 · 최미숙",)),
    Case(G, "신부는 누구야?", ("박하은",), ("이재민",)),
    Case(G, "지도 보여줘", ("지도로 보여 드릴게요",)),
    Case(G, "안녕하세요", ("안녕하세요!", "이재민 · 박하은의 결혼식 도우미")),
    Case(G, "뭐 물어볼 수 있어?", ("답해 드릴 수 있어요",), ("답변드리기 어려운",)),
    Case(G, "고마워요", ("천만에요",)),
    Case(G, "오늘 날씨 어때?", ("답변드리기 어려운",)),
    Case(G, "What about parking?", ("Parking:", "2시간 무료")),
    # follow-ups on GROOM_ONLY
    Case(G, "신부측은요?", ("신부측 계좌는 나와 있지 않습니다",), before=("신랑측 계좌 알려줘",)),
    Case(
        G,
        "what about the bride?",
        ("no account for the bride's side",),
        before=("Which account can I send money to for the groom?",),
    ),
    Case(G, "거기 주차는?", ("주차 안내:", "2시간 무료"), before=("예식장 어디야?",)),
    Case(G, "신부측은?", ("신부측 예상 참석 인원은 13명",), before=("신랑측 몇 명 와?",)),
    Case(G, "부산에서는요?", ("부산", "안내는 없습니다"), before=("셔틀 있어요?",)),
    Case(G, "그럼 시간은?", ("오후 1시",), before=("예식장 어디예요?",)),
    Case(G, "주소는?", ("선릉로 757",), before=("예식 언제야?",)),
    # --- NO_ACCOUNTS: no accounts, bus + subway, schedule ---------------------------------
    Case(N, "축의금 계좌 알려주세요", ("등록된 축의금 계좌가 없습니다",)),
    Case(N, "신랑측 계좌요", ("등록된 축의금 계좌가 없습니다",)),
    Case(N, "Can I send money to the groom?", ("lists no gift accounts",)),
    Case(N, "마음 전할 곳 있나요", ("등록된 축의금 계좌가 없습니다",)),
    Case(N, "언제 어디서 해요?", ("2027년 9월 18일 토요일 오전 11시", "라움아트센터 B1 하모니홀")),
    Case(N, "버스로 가는 방법", ("버스 안내:", "간선 146, 341번"), ("9호선",)),
    Case(N, "지하철역 몇 번 출구로 나가요?", ("7번 출구",), ("간선",)),
    Case(N, "오시는 길", ("오시는 길:", "9호선 언주역", "간선 146")),
    Case(N, "택시 타면 어디서 내려요?", ("택시 안내는 없습니다", "참고로", "언주역")),
    Case(N, "주차 공간 넉넉해요?", ("200대 주차 가능",)),
    Case(N, "식순 알려줘", ("11:00 예식", "12:00 식사")),
    Case(N, "인사말 보여줘", ("두 사람이 사랑으로",)),
    Case(N, "식사 메뉴 뭐예요?", ("식사 안내가 없습니다", "12:00 식사")),
    Case(N, "참석 응답 몇 개 왔어?", ("응답은 0건",)),
    Case(N, "RSVP 마감 언제까지야?", ("회신 마감일은 나와 있지 않습니다", "받고 있습니다")),
    Case(N, "신랑 부모님 성함은?", ("신랑 부모님 성함은 나와 있지 않습니다",)),
    Case(N, "혼주가 누구예요?", ("부모님 성함은 나와 있지 않습니다",)),
    Case(N, "Who is the groom?", ("The groom is 정우성",), ("한지민",)),
    Case(N, "주차는요?", ("200대",), before=("버스로 가는 방법",)),
    Case(N, "지하철은요?", ("9호선 언주역",), ("간선",), before=("버스로 어떻게 가요?",)),
    Case(N, "신부측은요?", ("등록된 축의금 계좌가 없습니다",), before=("신랑측 계좌요",)),
    Case(N, "hi", ("Hello!", "정우성 & 한지민")),
    Case(N, "넌 누구야?", ("답해 드릴 수 있어요",)),
    Case(N, "how does this work?", ("I answer from the invitation",)),
    Case(N, "가족끼리 몇 명 가도 되나요?", ("응답은 0건",)),
    # --- ENGLISH: English-only page --------------------------------------------------------
    Case(E, "When is the wedding?", ("Saturday, June 5, 2027 at 5:30 PM",)),
    Case(E, "What time does it start?", ("starts at 5:30 PM",)),
    Case(E, "what date is it?", ("June 5, 2027",)),
    Case(E, "Where is the venue?", ("The Huntington Estate Rose Garden Terrace", "1151 Oxford")),
    Case(E, "What's the address?", ("1151 Oxford Rd, San Marino, CA",)),
    Case(E, "Which hall is it in?", ("Rose Garden Terrace",)),
    Case(E, "Is there a shuttle?", ("Shuttle bus:", "Pasadena Hilton at 4:30 PM"), ("Metro A",)),
    Case(E, "Is there a shuttle bus from Busan?", ("Pasadena Hilton", "Busan")),
    Case(E, "Can I take the subway?", ("Subway:", "Metro A Line"), ("Pasadena",)),
    Case(E, "how do i get there", ("Getting there:", "Metro A Line", "Pasadena Hilton")),
    Case(E, "Can I get a taxi?", ("Taxi:", "10-minute taxi")),
    Case(E, "Is there a bus?", ("no bus information", "For reference", "Metro A Line")),
    Case(E, "Where can I park?", ("Parking:", "valet"), ("The wedding takes place",)),
    Case(E, "Can I drive there?", ("valet",)),
    Case(E, "What's the dress code?", ("Black tie optional",)),
    Case(E, "what should I wear", ("Black tie optional",)),
    Case(E, "Can we bring our kids?", ("About children:", "children stay home")),
    Case(E, "Are children welcome?", ("children stay home",)),
    Case(E, "Can I take photos during the ceremony?", ("About photos:", "cameras away")),
    Case(E, "Should I send flowers?", ("says nothing about flowers", "For reference")),
    Case(E, "What food will be served?", ("Three-course dinner", "Beef, Fish, Vegetarian")),
    Case(E, "Is there a vegetarian option?", ("vegetarian option is available",)),
    Case(E, "When is the RSVP deadline?", ("RSVPs are due by May 1, 2027",), ("June 5",)),
    Case(E, "how many people are coming?", ("50 RSVP responses", "44 attending", "is 80")),
    Case(E, "What's the schedule?", ("17:30 Ceremony", "19:30 Dinner and dancing")),
    Case(E, "Where should I send a gift?", ("lists no gift accounts",)),
    Case(E, "bank account for the bride?", ("lists no gift accounts",)),
    Case(E, "Who are the groom's parents?", ("The parents of the groom are Robert Kim",)),
    Case(
        E,
        "and the bride's?",
        ("doesn't name the parents of the bride",),
        before=("Who are the groom's parents?",),
    ),
    Case(E, "What's the bride's phone number?", ("+1-626-555-0100",)),
    Case(
        E,
        "and the groom?",
        ("no phone number for the groom",),
        before=("What's the bride's phone number?",),
    ),
    Case(E, "Hello!", ("Hello!", "Daniel Kim & Sarah Lee")),
    Case(E, "thanks!", ("You're welcome",)),
    Case(E, "What's the capital of France?", ("doesn't cover that",), ("Paris",)),
    Case(E, "Whats the adress", ("1151 Oxford",)),
    Case(E, "is parkign free?", ("valet",)),
    Case(E, "what about parking there?", ("valet",), before=("Where is the venue?",)),
    Case(E, "and the time?", ("5:30 PM",), before=("Where is the venue?",)),
    Case(E, "주차 돼요?", ("주차 안내:", "valet")),
    Case(E, "Is there a map?", ("on the map",)),
    # --- PARENTS: accounts of the couple and of their parents -------------------------------
    Case(P, "계좌 알려줘", ("111-22-333333", "222-3333-4444-55", "110-444-555666")),
    Case(
        P,
        "혼주 계좌 알려주세요",
        (
            "신랑측 아버지: 농협 222-3333-4444-55",
            "신랑측 어머니: 우리은행",
            "신부측 아버지: 기업은행",
        ),
        ("111-22-333333", "110-444-555666"),
    ),
    Case(
        P,
        "신랑 부모님 계좌",
        ("신랑측 아버지: 농협", "신랑측 어머니: 우리은행"),
        ("기업은행", "111-22-333333"),
    ),
    Case(
        P,
        "신부 어머니 계좌 있어요?",
        ("신부측 어머니 계좌는 나와 있지 않습니다", "참고로"),
        ("마음 전하실 곳:",),
    ),
    Case(P, "신부 아버님께 송금하려면?", ("신부측 아버지: 기업은행 555-666777-01-011",), ("농협",)),
    Case(P, "신랑측 계좌", ("111-22-333333", "222-3333-4444-55", "1002-333-444555"), ("신한",)),
    Case(P, "신부측 계좌", ("110-444-555666", "555-666777-01-011"), ("국민은행",)),
    Case(P, "신랑 본인 계좌만 알려줘", ("111-22-333333",)),
    Case(
        P,
        "Can I send money to the groom's parents?",
        ("Groom's father: 농협", "Groom's mother: 우리은행"),
        ("111-22-333333",),
    ),
    Case(P, "bride's mother account?", ("no account for the bride's mother", "For reference")),
    Case(
        P, "양가 혼주 성함 알려줘", ("신랑 혼주는 최병철 · 윤영자", "신부 혼주는 김동수 · 이순자")
    ),
    Case(P, "신랑 아버지 성함", ("최병철",)),
    Case(P, "신부측은요?", ("신부측 아버지: 기업은행",), ("농협",), before=("신랑 부모님 계좌",)),
    Case(
        P,
        "어머니는요?",
        ("신부측 어머니 계좌는 나와 있지 않습니다",),
        before=("신부 아버지 계좌 알려줘",),
    ),
    Case(P, "예식장 어디예요?", ("그랜드 조선 부산 2층 그랜드볼룸", "해운대해변로 292")),
    Case(P, "지도 보여줘", ("지도 좌표가 없어", "해운대해변로 292")),
    Case(P, "서울에서 KTX 타고 가요", ("안내는 없습니다", "참고로", "해운대역")),
    Case(P, "지하철 몇 호선이에요?", ("2호선 해운대역",)),
    Case(P, "주차 되나요", ("4시간 무료",)),
    Case(P, "신랑측 인원 몇 명?", ("신랑측 예상 참석 인원은 80명",)),
    Case(P, "신부측 하객 수", ("신부측 예상 참석 인원은 70명",)),
    Case(P, "총 몇 명 와요?", ("150명", "신랑측 80명", "신부측 70명")),
    Case(P, "회신 마감일", ("2027년 10월 20일까지",)),
    Case(P, "예식 시간", ("오후 2시 30분",)),
    Case(P, "식사는?", ("식사 안내가 없습니다",)),
    Case(P, "셔틀 있나요?", ("셔틀버스 안내는 없습니다", "해운대역")),
    # --- MISSING_VENUE: a date without time, a venue name only -------------------------------
    Case(M, "예식 몇 시예요?", ("시작 시간은 나와 있지 않습니다", "2027년 8월 21일 토요일")),
    Case(M, "What time is the wedding?", ("doesn't give the start time", "August 21, 2027")),
    Case(M, "결혼식 언제야", ("2027년 8월 21일 토요일",), ("오전 12시",)),
    Case(M, "When is it?", ("August 21, 2027",), ("12:00 AM",)),
    Case(M, "주소 알려줘", ("주소는 나와 있지 않습니다", "가든하우스")),
    Case(M, "What's the address?", ("doesn't give the address", "가든하우스")),
    Case(M, "어디서 해요?", ("가든하우스", "주소는 나와 있지 않습니다")),
    Case(M, "몇 층이에요?", ("홀(층) 정보는 나와 있지 않습니다", "가든하우스")),
    Case(M, "주차 돼요?", ("주차 안내가 없습니다",), ("2시간",)),
    Case(M, "지하철로 가는 법", ("지하철 안내는 없습니다",)),
    Case(M, "오시는 길 알려줘", ("대중교통 안내가 없습니다",)),
    Case(M, "Is there a shuttle?", ("no shuttle bus information",)),
    Case(M, "지도 보여줘", ("지도로 보여 드릴 장소 정보가 없습니다",)),
    Case(
        M, "신랑측 계좌 알려줘", ("신랑측 계좌는 나와 있지 않습니다", "3333-01-1234567", "참고로")
    ),
    Case(M, "신부 계좌", ("신부측: 카카오뱅크 3333-01-1234567",)),
    Case(M, "Can I send money to the groom?", ("no account for the groom's side", "Bride's side")),
    Case(M, "참석 여부 아직 받아요?", ("마감되었습니다",)),
    Case(M, "RSVP still open?", ("RSVP collection is closed",)),
    Case(M, "드레스코드", ("드레스 코드 안내가 없습니다",)),
    Case(M, "식순", ("식순 정보가 없습니다",)),
    Case(M, "인사말", ("인사말이 없습니다",)),
    Case(M, "신랑 이름이 뭐예요?", ("오세훈",), ("유리",)),
    Case(M, "그럼 신부는?", ("유리",), ("오세훈",), before=("신랑 이름이 뭐예요?",)),
    # --- DRESS_SHUTTLE: dress code, shuttle from Busan, notices --------------------------------
    Case(D, "드레스코드 있어요?", ("세미 정장 (흰색 옷은 피해 주세요)",)),
    Case(D, "하객 복장 어떻게 입어야 해요?", ("세미 정장",)),
    Case(D, "흰 옷 입어도 돼?", ("흰색 옷은 피해 주세요",)),
    Case(D, "셔틀버스 있어요?", ("셔틀버스 안내:", "부산역에서 오전 7시 출발")),
    Case(D, "부산에서 셔틀 있나요?", ("부산역에서 오전 7시 출발",), ("다만",)),
    Case(D, "Is there a shuttle bus from Busan?", ("Shuttle bus:", "부산역에서 오전 7시")),
    Case(
        D,
        "대구에서 셔틀 있어요?",
        ("셔틀버스 안내:", "대구에서 출발하는 셔틀버스에 대한 안내는 없습니다"),
    ),
    Case(D, "KTX 타고 가면 어떻게 가요?", ("기차", "서울역 하차 후 택시로 약 20분")),
    Case(D, "SRT로 가도 돼요?", ("서울역 하차",)),
    Case(D, "지하철 타고 가요", ("여의도역 3번 출구",), ("부산역",)),
    Case(D, "택시로 얼마나 걸려요?", ("택시로 약 20분",)),
    Case(D, "주차 가능?", ("2시간 무료", "혼잡하니")),
    Case(D, "화환 보내도 되나요?", ("화환 안내:", "정중히 사양합니다")),
    Case(D, "꽃 보내도 돼?", ("정중히 사양합니다",)),
    Case(D, "Can I send a flower wreath?", ("About flowers", "정중히 사양합니다")),
    Case(D, "아이 데려가도 돼요?", ("아이 동반 안내:", "아이 동반 환영합니다")),
    Case(D, "애기랑 같이 가도 되나?", ("유아 의자",)),
    Case(D, "사진 찍어도 되나요?", ("사진 촬영 안내:", "자유롭게")),
    Case(D, "촬영 가능해요?", ("자유롭게",)),
    Case(D, "식사 어디서 해요?", ("1층 연회장 뷔페",)),
    Case(D, "신랑측 계좌", ("토스뱅크 1000-1234-5678",), ("케이뱅크",)),
    Case(D, "신부측은요?", ("케이뱅크 100-200-300400",), ("토스뱅크",), before=("신랑측 계좌",)),
    Case(D, "참석 여부 마감이 언제예요?", ("2027년 10월 1일까지",)),
    Case(D, "언제 결혼해요?", ("2027년 10월 16일 토요일 오후 12시",)),
    Case(D, "부산에서 어떻게 가요?", ("부산에서 오시는 길:", "부산역에서 오전 7시")),
    Case(D, "서울역에서는요?", ("서울역 하차 후 택시",), before=("부산에서 어떻게 가요?",)),
    Case(D, "그럼 지하철은?", ("여의도역",), before=("셔틀버스 있어요?",)),
    Case(D, "신랑 혼주 성함", ("신랑 혼주는 강대호",)),
    Case(D, "셔틀 신청 해야 돼요?", ("사전 신청",)),
    # --- mixed languages, spacing and politeness variants ----------------------------------
    Case(G, "신부측 account 알려줘", ("신부측 계좌는 나와 있지 않습니다",), ("마음 전하실 곳:",)),
    Case(
        G,
        "What about 신부측?",
        ("no account for the bride's side",),
        before=("Can I send money to the groom?",),
    ),
    Case(G, "Is there 주차?", ("Parking:", "2시간 무료")),
    Case(G, "신 부 측 계 좌 번 호", ("신부측 계좌는 나와 있지 않습니다",)),
    Case(G, "혹시 셔틀 운행하나요", ("셔틀버스 안내는 없습니다",), ("셔틀버스 안내:",)),
    Case(G, "안녕! 주차 돼?", ("주차 안내:",), ("도우미입니다",)),
    Case(G, "예식 시간이 어떻게 되시나요", ("오후 1시",)),
    Case(G, "How long is parking free?", ("2시간 무료",), ("1:00 PM",)),
    Case(D, "부산에서 가는 셔틀 몇 시에 출발해요?", ("부산역에서 오전 7시 출발",), ("2027년",)),
    Case(
        P,
        "엄마 계좌는?",
        ("신랑측 어머니: 우리은행",),
        ("111-22-333333",),
        before=("신랑측 계좌 알려줘",),
    ),
    # --- a second batch, written after the rules (first run: 35 of 41 right) -------------
    Case(G, "결혼식 몇시에 해?", ("오후 1시에 시작합니다",)),
    Case(G, "식장까지 지하철 타면 몇 분 걸려요?", ("도보 5분",), ("예식 장소는",)),
    Case(G, "주차장 있어?", ("주차 안내:",)),
    Case(G, "주차비 무료인가요?", ("2시간 무료",)),
    Case(G, "축의금은 어디로 보내면 돼요?", ("마음 전하실 곳:", GROOM_ACCOUNT), ("예식 장소는",)),
    Case(G, "신부님 계좌 알려주세요", ("신부측 계좌는 나와 있지 않습니다",)),
    Case(G, "신부 쪽으로 송금하고 싶은데요", ("신부측 계좌는 나와 있지 않습니다",)),
    Case(G, "신랑신부 이름 알려줘", ("신랑은 이재민", "신부는 박하은")),
    Case(G, "Where's the wedding?", ("takes place at 더채플앳청담",)),
    Case(G, "what's the date?", ("Saturday, April 24, 2027",)),
    Case(G, "Is there a dress code?", ("doesn't mention a dress code",)),
    Case(G, "How do I get there from Seoul Station by KTX?", ("no train (KTX/SRT)", "청담역")),
    Case(G, "can I bring my kids", ("says nothing about children",)),
    Case(G, "Are flowers ok?", ("says nothing about flowers",)),
    Case(G, "What's the deadline to RSVP?", ("RSVPs are due by April 10, 2027",)),
    Case(G, "How many guests on the bride's side?", ("Bride's side: 13",), ("17",)),
    Case(G, "who's the bride's dad?", ("박성수",), ("이정호",)),
    Case(G, "식사 몇 시부터예요?", ("한식 뷔페",)),
    Case(G, "청첩장 문구 보여줘", ("인사말이 없습니다",)),
    Case(G, "ㅎㅇ", ("안녕하세요!",)),
    Case(G, "뭐해줄수있어", ("답해 드릴 수 있어요",)),
    Case(G, "택시 타고 가도 돼?", ("택시 안내는 없습니다", "청담역")),
    Case(D, "셔틀 몇 시 출발?", ("오전 7시 출발",)),
    Case(D, "부산역 셔틀 탈 수 있어요?", ("부산역에서 오전 7시",)),
    Case(D, "광주에서 가는 교통편", ("광주에서 오는 교통편 안내는 없습니다", "참고로")),
    Case(D, "What should guests wear?", ("세미 정장",)),
    Case(D, "can kids come?", ("아이 동반 환영합니다",)),
    Case(D, "No flowers?", ("정중히 사양합니다",)),
    Case(P, "아버님 계좌 좀", ("신랑측 아버지: 농협", "신부측 아버지: 기업은행"), ("국민은행",)),
    Case(
        P,
        "신부 부모님 계좌번호",
        ("신부측 아버지: 기업은행", "신부측 어머니 계좌는 나와 있지 않습니다"),
        ("농협",),
    ),
    Case(P, "groom's mom account number", ("Groom's mother: 우리은행",), ("농협",)),
    Case(P, "양가 부모님 계좌 다 주세요", ("신랑측 아버지", "신랑측 어머니", "신부측 아버지")),
    Case(E, "what time should we arrive", ("5:30 PM",)),
    Case(E, "what's for dinner", ("Three-course dinner",)),
    Case(E, "Is the ceremony indoors?", ("doesn't cover that",)),
    Case(M, "주차는 어디에 해요?", ("주차 안내가 없습니다",), ("예식 장소는",)),
    Case(M, "Where do I park?", ("doesn't mention parking",)),
    # a question of its own after another is not a follow-up
    Case(G, "오늘 날씨는요?", ("답변드리기 어려운",), ("주차 안내:",), before=("주차 돼요?",)),
    Case(
        G,
        "Is there anything else?",
        ("doesn't cover that",),
        ("Parking:",),
        before=("Is there parking?",),
    ),
    Case(G, "그럼 그건요?", ("주차 안내:",), before=("주차 돼요?",)),
    # --- a third batch, English paraphrases and near misses (first run: 25 of 29 right) ---
    Case(G, "Where's the ceremony being held?", ("takes place at 더채플앳청담",)),
    Case(G, "Is parking available at the venue?", ("Parking:",), ("takes place",)),
    Case(G, "식장에서 주차 돼요?", ("주차 안내:",), ("예식 장소는",)),
    Case(G, "How much time do I get for free parking?", ("2시간 무료",), ("1:00 PM",)),
    Case(G, "Which subway exit should I use?", ("13번 출구",)),
    Case(G, "Is the bride's account listed?", ("no account for the bride's side",)),
    Case(G, "I'd like to wire a gift to the groom", (GROOM_ACCOUNT,)),
    Case(G, "Can you give me the groom's bank details?", (GROOM_ACCOUNT,)),
    Case(G, "What's the groom's name?", ("The groom is 이재민",), ("박하은",)),
    Case(G, "When do RSVPs close?", ("April 10, 2027",)),
    Case(G, "Any shuttle service?", ("no shuttle bus information",)),
    Case(G, "Can I take the train from Busan?", ("no train (KTX/SRT) information", "Busan")),
    Case(G, "Good morning", ("Hello!",)),
    Case(G, "Help", ("I answer from the invitation",)),
    Case(G, "Can I take pictures?", ("says nothing about photos",)),
    Case(G, "What's the weather like?", ("doesn't cover that",)),
    Case(G, "오시는길좀", ("오시는 길:",)),
    Case(G, "혼주분들 성함이요", ("신랑 혼주는 이정호 · 최미숙", "신부 혼주는 박성수 · 김은정")),
    Case(G, "예식 끝나는 시간은?", ("끝나는 시간은 나와 있지 않습니다", "참고로 예식 시작은")),
    Case(G, "When does it end?", ("doesn't say when the wedding ends",)),
    Case(N, "몇 시에 끝나요?", ("끝나는 시간은 나와 있지 않습니다", "12:00 식사")),
    Case(G, "신랑측 혼주 연락처", ("신랑측 혼주 연락처는 나와 있지 않습니다",), ("010-1234-5678",)),
    Case(G, "groom's parents phone number?", ("no phone number for the groom's parents",)),
    Case(G, "축의금 얼마 내야 돼?", ("축의금 액수에 대한 안내는 없습니다", "참고로")),
    Case(G, "How much money should I give?", ("doesn't suggest an amount",)),
    # --- KO_CONTEXT / EN_CONTEXT (tests/samples.py) -------------------------------------------
    Case(KO_CONTEXT, "셔틀버스 있어요?", ("셔틀버스 안내:", "10분 간격"), ("청담역 13번",)),
    Case(KO_CONTEXT, "지하철로 가려면", ("청담역 13번 출구",), ("10분 간격",)),
    Case(KO_CONTEXT, "신부측 계좌 주세요", ("신부측: 신한은행 110-222-333444",), ("국민은행",)),
    Case(KO_CONTEXT, "신랑측 인원은?", ("신랑측 예상 참석 인원은 33명",)),
    Case(KO_CONTEXT, "신부측은요?", ("28명",), before=("신랑측 인원은?",)),
    Case(EN_CONTEXT, "Is there a shuttle?", ("Union Station at 11 AM",), ("Bus 7",)),
    Case(EN_CONTEXT, "When is the RSVP deadline?", ("doesn't give an RSVP deadline", "closed")),
    Case(EN_CONTEXT, "What time is the ceremony?", ("12:00 PM",)),
    Case(EN_CONTEXT, "신부측 계좌 알려줘", ("등록된 축의금 계좌가 없습니다",)),
    Case(
        EN_CONTEXT,
        "What about the bride?",
        ("bride is Emily Stone",),
        ("James",),
        before=("Who is the groom?",),
    ),
]


def _id(case: Case) -> str:
    return case.tag or f"{case.context.get('pageId')}:{case.question}"


@pytest.mark.parametrize("case", REGRESSIONS, ids=_id)
def test_regression(case: Case) -> None:
    answer = case.answer()
    assert not case.problems(answer), f"{case.question!r} -> {answer!r}"


def test_eval_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    failures = []
    for case in CASES:
        answer = case.answer()
        if problems := case.problems(answer):
            failures.append(f"  [{_id(case)}] {'; '.join(problems)}\n    answer: {answer!r}")
    passed = len(CASES) - len(failures)
    contexts = len({c.context["pageId"] for c in CASES})
    accuracy = passed / len(CASES)
    with capsys.disabled():
        print(
            f"\noffline answer evaluation: {passed}/{len(CASES)} = {accuracy:.1%} "
            f"over {contexts} wedding contexts (threshold {THRESHOLD:.0%})"
        )
        for line in failures:
            print(line)
    assert accuracy >= THRESHOLD, f"{len(failures)} of {len(CASES)} cases fail"


def test_eval_set_size() -> None:
    assert len(CASES) >= 150
    assert len({c.context["pageId"] for c in CASES}) >= 5
