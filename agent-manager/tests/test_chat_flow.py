"""End to end: POST /chat or a raw Celery message -> real worker -> Redis items."""

import base64
import json
import re
import time
import uuid

import pytest

from app.agents.offline import offline_answer, split_chunks
from app.core.config import TASK_NAME

from .conftest import (
    AUTH,
    QUEUE,
    ROOT,
    chat_body,
    collect,
    completions_for,
    drain,
    next_item,
    stream_items,
    subscribed,
)
from .samples import EN_CONTEXT, KO_CONTEXT


def assert_well_formed(items, body):
    """seq 0..n, text-deltas, then components, then exactly one final item."""
    assert [i["seq"] for i in items] == list(range(len(items)))
    for item in items:
        assert item["session_id"] == body["session_id"]
        assert item["message_id"] == body["message_id"]
        assert item["role"] == "assistant"
        # Redis time of publication, first in the JSON (the backend's relay lag reads it).
        assert isinstance(item["published_at_ms"], int)
    assert [i["published_at_ms"] for i in items] == sorted(i["published_at_ms"] for i in items)
    types = [i["type"] for i in items]
    assert types[-1] in ("done", "error")
    assert types.count("done") + types.count("error") == 1
    n_deltas = types.count("text-delta")
    assert types[:n_deltas] == ["text-delta"] * n_deltas
    assert set(types[n_deltas:-1]) <= {"component"}


def test_map_question_streams_text_then_map_then_done(api, worker, redis_client):
    question = "예식장 위치 지도로 보여줘"
    body = chat_body(question, KO_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        response = api.post("/chat", json=body, headers=AUTH)
        assert response.status_code == 202
        assert response.json() == {"status": "accepted", "message_id": body["message_id"]}
        items = collect(pubsub, body["message_id"])

    assert_well_formed(items, body)
    deltas = [i["content"] for i in items if i["type"] == "text-delta"]
    components = [i["component"] for i in items if i["type"] == "component"]
    done = items[-1]
    expected = offline_answer(question, KO_CONTEXT)
    assert len(deltas) == len(split_chunks(expected)) > 3
    assert done["type"] == "done"
    assert done["content"] == "".join(deltas) == expected
    assert done["stopped"] is False
    assert len(components) == 1
    assert components[0]["kind"] == "map"
    assert components[0]["lat"] == 37.5226 and components[0]["lng"] == 127.0413
    assert components[0]["links"]["kakao"].endswith(",37.5226,127.0413")
    assert done["components"] == components

    # the durable per-session stream holds the same items, in order
    assert stream_items(redis_client, body["session_id"]) == items
    assert 0 < redis_client.ttl(f"chat:stream:{body['session_id']}") <= 86_400
    # the completion stream holds exactly the final item, with routing fields
    [entry] = completions_for(redis_client, body["message_id"])
    assert entry["session_id"] == body["session_id"]
    assert entry["page_id"] == body["page_id"] and entry["user_id"] == body["user_id"]
    assert entry["type"] == "done"
    assert json.loads(entry["item"]) == done


def test_question_without_place_has_no_component(api, worker, redis_client):
    body = chat_body("When is the wedding?", EN_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        items = collect(pubsub, body["message_id"])
    assert_well_formed(items, body)
    assert [i["type"] for i in items if i["type"] != "text-delta"] == ["done"]
    assert items[-1]["components"] == []
    assert "Saturday, October 9, 2027 at 12:00 PM" in items[-1]["content"]


def raw_envelope(kwargs, task_id, queue):
    """A Celery protocol v2 message exactly as the Rust backend builds it (see docs)."""
    body = [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": TASK_NAME,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": "()",
            "kwargsrepr": "{}",
            "origin": "mocheong-backend@test",
            "ignore_result": True,
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def test_raw_celery_envelope_pushed_by_the_backend_is_answered(worker, redis_client):
    question = "How do I get there by bus?"
    body = chat_body(question, EN_CONTEXT)
    envelope = raw_envelope(body, str(uuid.uuid4()), QUEUE)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        redis_client.lpush(QUEUE, json.dumps(envelope))
        items = collect(pubsub, body["message_id"])
    assert_well_formed(items, body)
    assert items[-1]["type"] == "done"
    assert items[-1]["content"] == offline_answer(question, EN_CONTEXT)
    assert "Bus 7 to Garden Lane" in items[-1]["content"]
    assert len(completions_for(redis_client, body["message_id"])) == 1


def test_stop_mid_stream_keeps_the_partial_answer(api, worker, redis_client):
    question = "축의금 계좌랑 참석 인원, 식사 메뉴, 주차, 오시는 길 모두 알려줘"
    full = offline_answer(question, KO_CONTEXT)
    body = chat_body(question, KO_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        first = next_item(pubsub, time.monotonic() + 20)
        assert first["type"] == "text-delta"
        stop = api.post(f"/chat/{body['message_id']}/stop", headers=AUTH)
        assert stop.status_code == 202
        assert stop.json() == {"status": "stopping", "message_id": body["message_id"]}
        items = [first, *collect(pubsub, body["message_id"])]

    assert_well_formed(items, body)
    done = items[-1]
    deltas = [i["content"] for i in items if i["type"] == "text-delta"]
    assert done["type"] == "done"
    assert done["stopped"] is True
    assert done["content"] == "".join(deltas)
    assert full.startswith(done["content"])
    assert 1 <= len(deltas) < len(split_chunks(full))
    assert done["components"] == []
    [entry] = completions_for(redis_client, body["message_id"])
    assert json.loads(entry["item"])["stopped"] is True


def test_stop_flag_set_by_backend_before_start(worker, redis_client, api):
    """The backend may SET chat:cancel:<message_id> itself; the answer is then empty."""
    body = chat_body("결혼식 언제예요?", KO_CONTEXT)
    redis_client.set(f"chat:cancel:{body['message_id']}", "1", ex=60)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        items = collect(pubsub, body["message_id"])
    assert isinstance(items[0].pop("published_at_ms"), int)
    assert items == [
        {
            "session_id": body["session_id"],
            "message_id": body["message_id"],
            "seq": 0,
            "role": "assistant",
            "type": "done",
            "content": "",
            "components": [],
            "stopped": True,
        }
    ]


def test_duplicate_deliveries_answer_once(api, worker, redis_client):
    body = chat_body("Is there a dress code?", EN_CONTEXT)
    envelope = json.dumps(raw_envelope(body, str(uuid.uuid4()), QUEUE))
    with subscribed(redis_client, body["session_id"]) as pubsub:
        # the same message via HTTP twice (two task ids) and the same raw task twice
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        redis_client.lpush(QUEUE, envelope, envelope)
        items = collect(pubsub, body["message_id"])
        # give the three duplicates time to be consumed and (not) answered
        deadline = time.monotonic() + 10
        while redis_client.llen(QUEUE) and time.monotonic() < deadline:
            time.sleep(0.1)
        items += drain(pubsub, 1.5)

    finals = [i for i in items if i["type"] in ("done", "error")]
    assert len(finals) == 1
    assert finals[0]["content"] == "Dress code: Garden formal, pastel colours welcome"
    assert [i["seq"] for i in items] == list(range(len(items)))
    assert len(completions_for(redis_client, body["message_id"])) == 1
    assert redis_client.get(f"chat:claim:{body['message_id']}").startswith("done:")


def test_envelope_documented_for_the_backend_is_accepted(worker, redis_client):
    """The JSON example in docs/agent-manager.md, with fresh ids, is answered by the worker."""
    doc = ROOT.parent / "docs" / "agent-manager.md"
    if not doc.exists():
        pytest.skip("docs are not part of this checkout")
    blocks = re.findall(r"```json\n(.*?)\n```", doc.read_text(), re.S)
    envelope = json.loads(next(b for b in blocks if '"body"' in b and '"headers"' in b))
    args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    ids = chat_body("", {})
    kwargs.update(session_id=ids["session_id"], message_id=ids["message_id"])
    envelope["body"] = base64.b64encode(json.dumps([args, kwargs, embed]).encode()).decode()
    task_id = str(uuid.uuid4())
    envelope["headers"].update(id=task_id, root_id=task_id)
    envelope["properties"].update(correlation_id=task_id, delivery_tag=str(uuid.uuid4()))
    envelope["properties"]["delivery_info"]["routing_key"] = QUEUE
    with subscribed(redis_client, ids["session_id"]) as pubsub:
        redis_client.lpush(QUEUE, json.dumps(envelope))
        items = collect(pubsub, ids["message_id"])
    assert items[-1]["type"] == "done"
    assert items[-1]["content"] == "The wedding is on Saturday, May 15, 2027 at 12:30 PM."


def test_invalid_task_payload_ends_with_one_error(worker, redis_client):
    body = chat_body("", KO_CONTEXT)  # empty message: invalid
    with subscribed(redis_client, body["session_id"]) as pubsub:
        redis_client.lpush(QUEUE, json.dumps(raw_envelope(body, str(uuid.uuid4()), QUEUE)))
        items = collect(pubsub, body["message_id"])
    assert [(i["seq"], i["type"]) for i in items] == [(0, "error")]
    assert items[0]["content"] == "invalid chat task payload"
