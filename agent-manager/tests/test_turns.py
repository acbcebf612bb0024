"""The worker's half of the chat guarantee: nothing after the backend failed a turn, and a
redelivered answer never sends a seq twice or two different items under one seq."""

import json
import time

from app.agents.offline import offline_answer, split_chunks

from .conftest import AUTH, chat_body, collect, completions_for, drain, stream_items, subscribed
from .samples import EN_CONTEXT, KO_CONTEXT


def _seed(redis_client, body, deltas):
    """What an earlier attempt (a killed worker) published before it died."""
    for seq, text in enumerate(deltas):
        item = {
            "session_id": body["session_id"],
            "message_id": body["message_id"],
            "seq": seq,
            "role": "assistant",
            "type": "text-delta",
            "content": text,
        }
        redis_client.xadd(f"chat:stream:{body['session_id']}", {"item": json.dumps(item)})
    redis_client.hset(f"chat:turn:{body['message_id']}", mapping={"next_seq": len(deltas)})


def test_a_turn_failed_before_it_started_is_not_answered(api, worker, redis_client):
    body = chat_body("When is the wedding?", EN_CONTEXT)
    redis_client.hset(f"chat:turn:{body['message_id']}", "failed", "1")
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        _wait_claim_done(redis_client, body["message_id"])
        assert drain(pubsub, 0.5) == []
    assert completions_for(redis_client, body["message_id"]) == []


def test_a_turn_failed_mid_answer_gets_nothing_more(api, worker, redis_client):
    body = chat_body("축의금 계좌랑 참석 인원, 식사 메뉴, 주차, 오시는 길 모두 알려줘", KO_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        first = json.loads(_first_message(pubsub))
        # The backend's deadline sweeper marks the turn failed.
        redis_client.hset(f"chat:turn:{body['message_id']}", "failed", "1")
        _wait_claim_done(redis_client, body["message_id"])
        later = drain(pubsub, 0.5)
    seqs = [first["seq"], *(i["seq"] for i in later)]
    assert len(seqs) < len(split_chunks(offline_answer(body["message"], KO_CONTEXT)))
    assert all(i["type"] == "text-delta" for i in later), "no done or error after the failure"
    assert completions_for(redis_client, body["message_id"]) == []


def test_a_redelivered_answer_continues_after_the_last_seq_sent(api, worker, redis_client):
    question = "Tell me about parking and how to get there"
    body = chat_body(question, EN_CONTEXT)
    full = offline_answer(question, EN_CONTEXT)
    chunks = split_chunks(full)
    assert len(chunks) > 4
    _seed(redis_client, body, chunks[:3])
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        items = collect(pubsub, body["message_id"])
    assert items[0]["seq"] == 3, "seqs already sent are not sent again"
    assert items[-1]["type"] == "done" and items[-1]["content"] == full
    stored = stream_items(redis_client, body["session_id"])
    assert [i["seq"] for i in stored] == list(range(len(stored))), "one item per seq"
    assert "".join(i["content"] for i in stored if i["type"] == "text-delta") == full


def test_a_redelivered_answer_that_differs_ends_with_an_error_not_a_new_text(
    api, worker, redis_client
):
    body = chat_body("Tell me about parking and how to get there", EN_CONTEXT)
    _seed(redis_client, body, ["A ", "different ", "generation "])
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        items = collect(pubsub, body["message_id"])
    assert [(i["seq"], i["type"]) for i in items] == [(3, "error")]
    assert items[0]["content"].startswith("Sorry")
    stored = stream_items(redis_client, body["session_id"])
    assert [i["seq"] for i in stored] == [0, 1, 2, 3]


def _first_message(pubsub, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            return message["data"]
    raise AssertionError("no item")


def _wait_claim_done(redis_client, message_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (redis_client.get(f"chat:claim:{message_id}") or "").startswith("done:"):
            return
        time.sleep(0.05)
    raise AssertionError("the task did not finish")
