"""Two wedding contexts in the shape the Rust backend sends."""

KO_CONTEXT = {
    "pageId": "page-ko-1",
    "slug": "minjun-seoyeon",
    "couple": {
        "groom": {"name": "김민준", "father": "김철수", "mother": "이영희"},
        "bride": {"name": "이서연", "father": "이상호", "mother": "박미경"},
    },
    "wedding": {"dateTime": "2027-05-15T12:30:00+09:00", "timeZone": "Asia/Seoul"},
    "venue": {
        "name": "더채플앳청담",
        "hall": "3층 채플홀",
        "address": "서울 강남구 선릉로 757",
        "lat": 37.5226,
        "lng": 127.0413,
        "transport": "7호선 청담역 13번 출구에서 도보 5분, 셔틀버스가 10분 간격으로 운행합니다.",
        "parking": "건물 지하 주차장 이용 시 2시간 무료입니다.",
    },
    "greeting": "서로 마주보며 다져온 사랑을 이제 함께 한 곳을 바라보며 걸어가려 합니다.",
    "giftAccounts": [
        {"side": "groom", "holder": "김민준", "bank": "국민은행", "number": "123-456-789012"},
        {"side": "bride", "holder": "이서연", "bank": "신한은행", "number": "110-222-333444"},
    ],
    "rsvp": {
        "open": True,
        "deadline": "2027-05-01",
        "mealOptions": ["한식", "양식"],
        "summary": {
            "responses": 42,
            "attending": 35,
            "declined": 7,
            "headcount": 61,
            "meals": {"한식": 30, "양식": 31},
            "bySide": {"groom": 33, "bride": 28},
        },
    },
}

EN_CONTEXT = {
    "pageId": "page-en-1",
    "couple": {"groom": {"name": "James Park"}, "bride": {"name": "Emily Stone"}},
    "wedding": {"dateTime": "2027-10-09T16:00:00Z", "timeZone": "America/New_York"},
    "venue": {
        "name": "Rosewood Garden",
        "address": "12 Garden Lane, Portland, ME",
        "transport": ["Bus 7 to Garden Lane", "Free shuttle from Union Station at 11 AM"],
    },
    "dressCode": "Garden formal, pastel colours welcome",
    "schedule": [{"time": "12:00", "title": "Ceremony"}, {"time": "13:30", "title": "Lunch"}],
    "rsvp": {
        "open": False,
        "summary": {"responses": 80, "attending": 64, "declined": 16, "headcount": 120},
    },
    "someFutureField": {"kept": True},
}
