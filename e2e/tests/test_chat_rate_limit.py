"""The per-user chat limit is one limit for the whole deployment, not one per instance."""

from .test_chat import ask, join


def test_two_instances_share_the_per_user_limit(stack, couple, clients, api):
    owner, _, page = couple
    first = stack.start_backend("backend-rate-1", CHAT_RATE_PER_MINUTE="2")
    second = stack.start_backend("backend-rate-2", CHAT_RATE_PER_MINUTE="2")
    on_first = clients(first.base, owner["token"]).connect()
    on_second = clients(second.base, owner["token"]).connect()
    info = join(on_first, page)
    join(on_second, page)

    ask(on_first, "one")
    ask(on_second, "two")
    # a third message in the minute is refused on either instance
    assert on_first.call("chat-message", {"text": "three"})["code"] == "rate_limited"
    assert on_second.call("chat-message", {"text": "four"})["code"] == "rate_limited"

    msgs = api.req("GET", f"/api/chat/sessions/{info['session_id']}/messages", owner["token"])["items"]
    assert sorted(m["content"] for m in msgs if m["role"] == "user") == ["one", "two"]
