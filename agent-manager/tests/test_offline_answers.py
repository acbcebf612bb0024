"""The offline answerer: grounded in the context only, Korean and English, declines plainly."""

import pytest

from app.agents.intents import Intent, analyze, classify, detect_language
from app.agents.map_agent import MapAgent
from app.agents.offline import OfflineChatModel, offline_answer, split_chunks
from app.schemas import parse_wedding_context

from .samples import EN_CONTEXT, KO_CONTEXT

CASES = [
    # (context, question, must contain, must not contain)
    (KO_CONTEXT, "결혼식 언제예요?", ["2027년 5월 15일 토요일 오후 12시 30분"], []),
    (KO_CONTEXT, "예식장 어디야?", ["더채플앳청담 3층 채플홀", "서울 강남구 선릉로 757"], []),
    (KO_CONTEXT, "지하철로 어떻게 가요?", ["지하철 안내:", "청담역 13번 출구"], ["셔틀버스가"]),
    (KO_CONTEXT, "오시는 길 알려줘", ["오시는 길:", "청담역 13번 출구", "셔틀버스가"], []),
    (KO_CONTEXT, "주차 가능한가요?", ["주차 안내:", "2시간 무료"], []),
    (
        KO_CONTEXT,
        "축의금 계좌 알려줘",
        ["신랑측: 국민은행 123-456-789012 (예금주 김민준)", "신부측: 신한은행 110-222-333444"],
        [],
    ),
    (
        KO_CONTEXT,
        "지금 참석 인원 몇 명이야?",
        ["응답은 42건", "참석 35건", "불참 7건", "61명", "신랑측 33명", "2027년 5월 1일까지"],
        [],
    ),
    (KO_CONTEXT, "식사 메뉴는 뭐예요?", ["식사 메뉴: 한식, 양식", "한식 30명"], []),
    (KO_CONTEXT, "드레스 코드 있어요?", ["드레스 코드 안내가 없습니다"], []),
    (KO_CONTEXT, "오늘 날씨 어때?", ["답변드리기 어려운"], []),
    (KO_CONTEXT, "안녕하세요", ["김민준 · 이서연의 결혼식 도우미"], []),
    (KO_CONTEXT, "인사말 보여줘", ["함께 한 곳을 바라보며"], []),
    (KO_CONTEXT, "Where is the wedding?", ["takes place at 더채플앳청담"], ["예식 장소는"]),
    (EN_CONTEXT, "When is the wedding?", ["Saturday, October 9, 2027 at 12:00 PM"], []),
    (EN_CONTEXT, "How do I get there by bus?", ["Bus:", "- Bus 7 to Garden Lane"], ["shuttle"]),
    (EN_CONTEXT, "Is there parking?", ["doesn't mention parking"], []),
    (EN_CONTEXT, "Can you show me a map?", ["no map coordinates", "12 Garden Lane"], []),
    (EN_CONTEXT, "What should I wear? Is there a dress code?", ["Garden formal"], []),
    (EN_CONTEXT, "Which bank account can I send a gift to?", ["lists no gift accounts"], []),
    (
        EN_CONTEXT,
        "How many people are attending?",
        ["80 RSVP responses", "64 attending", "16 declined", "is 120", "closed"],
        [],
    ),
    (EN_CONTEXT, "What food will be served?", ["doesn't say anything about the meal"], []),
    (EN_CONTEXT, "결혼식 식순 알려줘", ["식순:", "- 12:00 Ceremony", "- 13:30 Lunch"], []),
    (
        EN_CONTEXT,
        "Who is getting married?",
        ["The groom is James Park and the bride is Emily Stone."],
        [],
    ),
    (EN_CONTEXT, "What's the capital of France?", ["doesn't cover that"], ["Paris"]),
    ({}, "When is the wedding?", ["doesn't give the date and time"], []),
    ({}, "계좌번호 알려주세요", ["등록된 축의금 계좌가 없습니다"], []),
]


@pytest.mark.parametrize(("context", "question", "expected", "forbidden"), CASES)
def test_offline_answer(context, question, expected, forbidden):
    answer = offline_answer(question, context)
    for text in expected:
        assert text in answer, f"{text!r} missing from {answer!r}"
    for text in forbidden:
        assert text not in answer


def test_answer_language_follows_question():
    assert detect_language("주차 돼요?") == "ko"
    assert detect_language("Is there parking?") == "en"
    assert "주차" in offline_answer("주차 돼요?", KO_CONTEXT)
    assert "Parking:" in offline_answer("Is there parking?", KO_CONTEXT)


def test_classifier_routes_questions():
    assert classify("결혼식 언제예요?") == [Intent.WHEN]
    assert classify("지도 보여줘") == [Intent.MAP]
    assert set(classify("Where is it and where can I park?")) == {Intent.WHERE, Intent.PARKING}
    assert classify("hello, where is the venue?") == [Intent.WHERE]
    assert classify("blah") == [Intent.UNKNOWN]


def test_map_component_for_place_questions_only():
    ctx = parse_wedding_context(KO_CONTEXT)
    [component] = MapAgent().components(ctx, classify("예식장 위치 지도로 보여줘"))
    assert component == {
        "kind": "map",
        "name": "더채플앳청담",
        "address": "서울 강남구 선릉로 757",
        "lat": 37.5226,
        "lng": 127.0413,
        "links": {
            "kakao": "https://map.kakao.com/link/map/"
            "%EB%8D%94%EC%B1%84%ED%94%8C%EC%95%B3%EC%B2%AD%EB%8B%B4,37.5226,127.0413",
            "naver": "https://map.naver.com/p/search/"
            "%EC%84%9C%EC%9A%B8%20%EA%B0%95%EB%82%A8%EA%B5%AC%20%EC%84%A0%EB%A6%89%EB%A1%9C%20757",
        },
    }
    assert MapAgent().components(ctx, classify("축의금 계좌 알려줘")) == []
    # no coordinates -> no map component
    assert MapAgent().components(parse_wedding_context(EN_CONTEXT), [Intent.MAP]) == []


def test_tolerates_malformed_sections():
    ctx = parse_wedding_context({**KO_CONTEXT, "venue": "not an object", "rsvp": [1, 2]})
    assert ctx.venue is None and ctx.rsvp is None
    assert ctx.couple is not None and ctx.couple.groom.name == "김민준"
    assert "장소 정보가 없습니다" in offline_answer("어디예요?", {**KO_CONTEXT, "venue": 3})


def test_unknown_keys_are_kept():
    ctx = parse_wedding_context(EN_CONTEXT)
    assert ctx.model_extra == {"someFutureField": {"kept": True}}


def test_split_chunks_reassembles_exactly():
    text = "예식은 2027년 5월 15일\n\n- a  b \n"
    chunks = split_chunks(text)
    assert len(chunks) > 3
    assert "".join(chunks) == text


def test_offline_model_streams_chunks_through_langchain():
    from app.agents.context_agent import ContextAgent

    ctx = parse_wedding_context(KO_CONTEXT)
    messages = ContextAgent().build_messages(analyze("주차 돼요?"), ctx, [], 10)
    model = OfflineChatModel(chunk_delay_ms=0)
    chunks = [c.content for c in model.stream(messages)]
    assert len(chunks) > 3
    assert "".join(chunks) == offline_answer("주차 돼요?", KO_CONTEXT)
    assert model.invoke(messages).content == "".join(chunks)


def _with_parents_details():
    couple = {
        "groom": {
            **KO_CONTEXT["couple"]["groom"],
            "fatherDetails": {"deceased": False, "phone": "010-5555-6666"},
            "motherDetails": {"deceased": True, "phone": None},
        },
        "bride": {**KO_CONTEXT["couple"]["bride"], "fatherDetails": {"phone": None}},
    }
    return {**KO_CONTEXT, "couple": couple}


def test_deceased_parents_are_marked_and_only_shown_phones_are_given():
    ctx = _with_parents_details()
    mother = KO_CONTEXT["couple"]["groom"]["mother"]
    assert f"故 {mother}" in offline_answer("신랑측 혼주가 누구예요?", ctx)
    assert "010-5555-6666" in offline_answer("신랑 아버지 연락처 알려줘", ctx)
    assert "010-5555-6666" in offline_answer("What is the groom's father's phone number?", ctx)
    # The bride's parents' phones are not in the context (hidden or none): declined.
    answer = offline_answer("신부측 혼주 연락처", ctx)
    assert "나와 있지 않습니다" in answer and "010-" not in answer
