"""Follow-ups through the real path: POST /chat with the session history -> real worker."""

from .conftest import AUTH, chat_body, collect, subscribed
from .eval_contexts import GROOM_ONLY
from .samples import KO_CONTEXT


def ask(api, redis_client, question, context, history):
    body = chat_body(question, context, history=history)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        items = collect(pubsub, body["message_id"])
    assert items[-1]["type"] == "done"
    return items[-1]["content"]


def test_follow_up_uses_the_session_history(api, worker, redis_client):
    first = ask(api, redis_client, "신랑측 계좌 알려줘", KO_CONTEXT, [])
    assert "신랑측: 국민은행 123-456-789012" in first and "신한은행" not in first
    history = [
        {"role": "user", "content": "신랑측 계좌 알려줘"},
        {"role": "assistant", "content": first},
    ]
    second = ask(api, redis_client, "신부측은요?", KO_CONTEXT, history)
    assert "신부측: 신한은행 110-222-333444" in second
    assert "국민은행" not in second


def test_english_follow_up_declines_the_missing_side(api, worker, redis_client):
    history = [
        {"role": "user", "content": "Which account is the groom's?"},
        {"role": "assistant", "content": "Gift accounts: ..."},
    ]
    answer = ask(api, redis_client, "what about the bride?", GROOM_ONLY, history)
    assert "no account for the bride's side" in answer
    assert "For reference" in answer
