"""Wedding contexts of the evaluation set (tests/test_eval.py), in the shape the backend sends.

Each one stresses something different: only a groom-side account, no accounts at all, an
English-only page, parents' accounts, a page with almost no venue details, and a page with a
dress code, a shuttle from another city and notices about flowers, children and photos.
"""

GROOM_ONLY = {
    "pageId": "eval-groom-only",
    "couple": {
        "groom": {
            "name": "이재민",
            "father": "이정호",
            "mother": "최미숙",
            "contact": "010-1234-5678",
        },
        "bride": {"name": "박하은", "father": "박성수", "mother": "김은정"},
    },
    "wedding": {"dateTime": "2027-04-24T13:00:00+09:00", "timeZone": "Asia/Seoul"},
    "venue": {
        "name": "더채플앳청담",
        "hall": "5층 그랜드홀",
        "address": "서울 강남구 선릉로 757",
        "lat": 37.5226,
        "lng": 127.0413,
        "transport": "7호선 청담역 13번 출구 도보 5분",
        "parking": "건물 지하 주차장 2시간 무료",
    },
    "giftAccounts": [
        {"side": "groom", "holder": "이재민", "bank": "하나은행", "number": "356-910234-56707"}
    ],
    "rsvp": {
        "open": True,
        "deadline": "2027-04-10T14:59:59Z",
        "mealOptions": ["한식 뷔페"],
        "summary": {
            "responses": 20,
            "attending": 18,
            "declined": 2,
            "headcount": 30,
            "bySide": {"groom": {"responses": 11, "headcount": 17}, "bride": {"headcount": 13}},
        },
    },
    "meal": "2층 연회장 한식 뷔페",
}

NO_ACCOUNTS = {
    "pageId": "eval-no-accounts",
    "couple": {"groom": {"name": "정우성"}, "bride": {"name": "한지민"}},
    "wedding": {"dateTime": "2027-09-18T11:00:00+09:00", "timeZone": "Asia/Seoul"},
    "venue": {
        "name": "라움아트센터",
        "hall": "B1 하모니홀",
        "address": "서울 강남구 언주로 564",
        "lat": 37.5076,
        "lng": 127.0361,
        "transport": {
            "지하철": "9호선 언주역 7번 출구 도보 3분",
            "버스": "간선 146, 341번 언주역 하차",
        },
        "parking": "200대 주차 가능, 3시간 무료",
    },
    "greeting": "두 사람이 사랑으로 만나 하나의 길을 걷습니다. 귀한 걸음 하시어 축복해 주세요.",
    "giftAccounts": [],
    "rsvp": {"open": True, "mealOptions": [], "summary": {"responses": 0}},
    "schedule": [{"time": "11:00", "title": "예식"}, {"time": "12:00", "title": "식사"}],
}

ENGLISH = {
    "pageId": "eval-english",
    "couple": {
        "groom": {"name": "Daniel Kim", "father": "Robert Kim"},
        "bride": {"name": "Sarah Lee", "contact": "+1-626-555-0100"},
    },
    "wedding": {"dateTime": "2027-06-05T17:30:00-07:00", "timeZone": "America/Los_Angeles"},
    "venue": {
        "name": "The Huntington Estate",
        "hall": "Rose Garden Terrace",
        "address": "1151 Oxford Rd, San Marino, CA",
        "lat": 34.1291,
        "lng": -118.1145,
        "transport": [
            "Metro A Line to Allen station, then a 10-minute taxi",
            "Free shuttle from the Pasadena Hilton at 4:30 PM",
        ],
        "parking": "Complimentary valet parking at the main gate",
    },
    "notes": [
        "Adults only: we kindly ask that children stay home for the evening.",
        "Unplugged ceremony: please keep phones and cameras away during the vows.",
    ],
    "dressCode": "Black tie optional",
    "meal": "Three-course dinner; a vegetarian option is available",
    "rsvp": {
        "open": True,
        "deadline": "2027-05-01",
        "mealOptions": ["Beef", "Fish", "Vegetarian"],
        "summary": {"responses": 50, "attending": 44, "declined": 6, "headcount": 80},
    },
    "schedule": [
        {"time": "17:30", "title": "Ceremony"},
        {"time": "18:30", "title": "Cocktail hour"},
        {"time": "19:30", "title": "Dinner and dancing"},
    ],
}

PARENTS = {
    "pageId": "eval-parents",
    "couple": {
        "groom": {"name": "최준호", "father": "최병철", "mother": "윤영자"},
        "bride": {"name": "김나래", "father": "김동수", "mother": "이순자"},
    },
    "wedding": {"dateTime": "2027-11-06T14:30:00+09:00", "timeZone": "Asia/Seoul"},
    "venue": {
        "name": "그랜드 조선 부산",
        "hall": "2층 그랜드볼룸",
        "address": "부산 해운대구 해운대해변로 292",
        "transport": "부산 지하철 2호선 해운대역 5번 출구 도보 7분",
        "parking": "호텔 주차장 4시간 무료",
    },
    "giftAccounts": [
        {"side": "groom", "holder": "최준호", "bank": "국민은행", "number": "111-22-333333"},
        {"side": "groom", "holder": "최병철", "bank": "농협", "number": "222-3333-4444-55"},
        {"side": "groom", "holder": "윤영자", "bank": "우리은행", "number": "1002-333-444555"},
        {"side": "bride", "holder": "김나래", "bank": "신한은행", "number": "110-444-555666"},
        {"side": "bride", "holder": "김동수", "bank": "기업은행", "number": "555-666777-01-011"},
    ],
    "rsvp": {
        "open": True,
        "deadline": "2027-10-20",
        "summary": {
            "responses": 100,
            "attending": 90,
            "declined": 10,
            "headcount": 150,
            "bySide": {"groom": 80, "bride": 70},
        },
    },
}

MISSING_VENUE = {
    "pageId": "eval-missing-venue",
    "couple": {"groom": {"name": "오세훈"}, "bride": {"name": "유리"}},
    "wedding": {"dateTime": "2027-08-21", "timeZone": "Asia/Seoul"},
    "venue": {"name": "가든하우스"},
    "giftAccounts": [
        {"side": "bride", "holder": "유리", "bank": "카카오뱅크", "number": "3333-01-1234567"}
    ],
    "rsvp": {"open": False},
}

DRESS_SHUTTLE = {
    "pageId": "eval-dress-shuttle",
    "couple": {
        "groom": {"name": "강민호", "father": "강대호"},
        "bride": {"name": "송하늘", "mother": "정미란"},
    },
    "wedding": {"dateTime": "2027-10-16T12:00:00+09:00", "timeZone": "Asia/Seoul"},
    "venue": {
        "name": "더파티움 여의도",
        "hall": "2층 그랜드홀",
        "address": "서울 영등포구 국제금융로6길 30",
        "lat": 37.5216,
        "lng": 126.9246,
        "transport": {
            "지하철": "5·9호선 여의도역 3번 출구 도보 5분",
            "셔틀": "부산역에서 오전 7시 출발 (사전 신청)",
            "KTX": "서울역 하차 후 택시로 약 20분",
        },
        "parking": ["건물 지하 주차장 2시간 무료", "주말에는 혼잡하니 대중교통을 이용해 주세요"],
    },
    "dressCode": "세미 정장 (흰색 옷은 피해 주세요)",
    "notice": [
        "화환은 정중히 사양합니다. 마음만 감사히 받겠습니다.",
        "아이 동반 환영합니다. 유아 의자가 준비되어 있습니다.",
        "식장 내 사진 촬영은 자유롭게 해 주세요.",
    ],
    "giftAccounts": [
        {"side": "groom", "holder": "강민호", "bank": "토스뱅크", "number": "1000-1234-5678"},
        {"side": "bride", "holder": "송하늘", "bank": "케이뱅크", "number": "100-200-300400"},
    ],
    "meal": "1층 연회장 뷔페",
    "rsvp": {"open": True, "deadline": "2027-10-01"},
}
