"""The chat gateway end to end: real Socket.IO clients, two backend instances, the real
agent-manager API and Celery worker (offline model), Redis, and the database."""

import json
import time
import uuid

import httpx
import pytest
import redis
import socketio

from .client import Api
from .stack import METRICS_TOKEN, REDIS_URL
from .wait import eventually


def join(client, page):
    info = client.call("joinRoom", {"room": f"page-{page['id']}"})
    assert "session_id" in info, info
    return info


def ask(client, text, **extra):
    accepted = client.call("chat-message", {"text": text, **extra})
    assert "message_id" in accepted, accepted
    return accepted["message_id"]


def text_of(items):
    return "".join(i.get("content", "") for i in items if i["type"] == "text-delta")


def test_full_flow_streams_deltas_then_done_and_stores_both(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    assert info["room"] == f"page-{page['id']}" and info["page_id"] == page["id"]
    mid = ask(c, "주차 되나요?")
    done = c.wait_done(mid)
    assert done["type"] == "done", done
    items = c.items(mid)
    seqs = [i["seq"] for i in items]
    assert seqs == list(range(len(items))), "items arrive in seq order with no gap"
    deltas = [i for i in items if i["type"] == "text-delta"]
    assert deltas, "the answer is streamed"
    assert done["content"] == text_of(items)
    assert "2시간" in done["content"], "grounded in the page's parking note"

    # Stored: the user message on accept, the answer by the completion consumer.
    def history():
        return api.req("GET", f"/api/chat/sessions/{info['session_id']}/messages", owner["token"])["items"]

    eventually(lambda: len(history()) >= 2, "the question and the answer are stored", timeout=10)
    newest, question = history()[:2]
    assert question["id"] == mid and question["role"] == "user" and question["status"] == "answered"
    assert newest["role"] == "assistant" and newest["answerTo"] == mid
    assert newest["content"] == done["content"]


def test_map_question_gets_a_map_component(stack, couple, clients):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    join(c, page)
    mid = ask(c, "Where is the venue? Show me the map")
    done = c.wait_done(mid)
    components = [i for i in c.items(mid) if i["type"] == "component"]
    assert components and components[0]["component"]["kind"] == "map"
    assert done["components"][0]["lat"] == pytest.approx(37.5247)


@pytest.mark.parametrize("token", [None, "not-a-jwt", ""])
def test_bad_or_missing_token_is_refused_at_the_handshake(stack, clients, token):
    c = clients(stack.b1.base, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect()
    # The server's reason reaches the client as the namespace's connect_error.
    assert "unauthorized" in json.dumps(c.connect_error).lower(), c.connect_error


def test_someone_elses_room_is_refused(stack, couple, clients, api):
    _, _, page = couple
    stranger = api.register("stranger")
    c = clients(stack.b1.base, stranger["token"]).connect()
    out = c.call("joinRoom", {"room": f"page-{page['id']}"})
    assert out["code"] == "not_found"
    out = c.call("chat-message", {"text": "hello"})
    assert out["code"] == "not_joined", "nothing can be sent without a room"


def test_two_instances_see_everything_of_their_room(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    b = clients(stack.b2.base, editor["token"]).connect()
    join(a, page)
    join(b, page)
    mid = ask(a, "When is the wedding?")
    user_msg = b.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("role") == "user")
    assert user_msg["content"] == "When is the wedding?"
    done_a = a.wait_done(mid)
    done_b = b.wait_done(mid)
    assert done_a == done_b
    assert [i["seq"] for i in b.items(mid)] == [i["seq"] for i in a.items(mid)]
    # The sender does not get its own message back as newMessage.
    assert not [d for e, d in a.events if e == "newMessage" and d.get("role") == "user"]


def test_celery_handoff_is_answered_by_the_same_worker(stack, couple, clients):
    owner, _, page = couple
    celery_backend = stack.start_backend("backend-celery", AGENT_HANDOFF="celery", AGENT_MANAGER_URL="")
    c = clients(celery_backend.base, owner["token"]).connect()
    join(c, page)
    mid = ask(c, "축의금 계좌 알려주세요")
    done = c.wait_done(mid)
    assert done["type"] == "done"
    assert "110-123-456789" in done["content"]


def test_celery_handoff_to_a_redis_broker_of_its_own(stack, couple, clients):
    """AGENT_BROKER_URL naming another Redis URL than REDIS_URL: the task is pushed there,
    through a connection of its own (here the same server under another spelling)."""
    owner, _, page = couple
    if not REDIS_URL.endswith("/0"):
        pytest.skip("needs a REDIS_URL ending in /0")
    broker_url = REDIS_URL.removesuffix("/0")
    queue = f"{stack.queue}-broker-{uuid.uuid4().hex[:6]}"
    b = stack.start_backend(
        "backend-broker",
        AGENT_HANDOFF="celery",
        AGENT_MANAGER_URL="",
        AGENT_QUEUE=queue,
        AGENT_BROKER_URL=broker_url,
    )
    r = redis.Redis.from_url(REDIS_URL)
    with stack.only(b):
        c = clients(b.base, owner["token"]).connect()
        join(c, page)
        ask(c, "question")
        eventually(lambda: r.llen(queue) >= 1, "pushed onto the broker's list")
    b.proc.stop()
    envelope = json.loads(r.rpop(queue))
    assert envelope["headers"]["task"] == "agent.process_chat_message"


def test_stop_mid_answer_keeps_the_partial_text(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    mid = ask(c, "Tell me everything: when, where, parking, directions, gift accounts and the meal?")
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("type") == "text-delta")
    c.call("stop-generation", {"message_id": mid})
    done = c.wait_done(mid)
    assert done["type"] == "done" and done["stopped"] is True
    assert done["content"] == text_of(c.items(mid))
    stored = _answers(api, owner, info["session_id"], mid)
    assert stored and stored[0]["status"] == "stopped" and stored[0]["content"] == done["content"]


def test_resume_after_a_dropped_connection_misses_nothing(stack, couple, clients):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    mid = ask(c, "Tell me everything: when, where, parking, directions, gift accounts and the meal?")
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 2)
    c.disconnect()
    seen = c.items(mid)
    last_seq = seen[-1]["seq"]

    # The phone comes back on the other instance.
    c2 = clients(stack.b2.base, owner["token"]).connect()
    join(c2, page)
    out = c2.call("resume", {"session_id": info["session_id"], "message_id": mid, "after_seq": last_seq})
    # In progress or already ended, the rest of the answer comes from the durable stream,
    # and the stored copy (if any) is left out of `messages`: nothing twice.
    missed = out["items"]
    assert not [m for m in out["messages"] if m["answer_to"] == mid]
    assert [i["seq"] for i in missed] == list(range(last_seq + 1, last_seq + 1 + len(missed))), "no gap"
    if not any(i["type"] == "done" for i in missed):
        c2.wait_done(mid)
        after = missed[-1]["seq"] if missed else last_seq
        missed += [i for i in c2.items(mid) if i["seq"] > after]
    seqs = [i["seq"] for i in seen + missed]
    assert seqs == list(range(len(seqs))), "the whole answer, each item once"
    done = missed[-1]
    assert done["type"] == "done"
    assert text_of(seen + missed) == done["content"]


def test_invalid_and_too_fast_messages_are_refused_and_not_stored(stack, couple, clients, api):
    owner, _, page = couple
    limited = stack.start_backend("backend-limited", CHAT_RATE_PER_MINUTE="2", CHAT_MAX_MESSAGE_CHARS="50")
    c = clients(limited.base, owner["token"]).connect()
    info = join(c, page)
    assert c.call("chat-message", {"text": "x" * 51})["code"] == "invalid_message"
    assert c.call("chat-message", {"text": "   "})["code"] == "invalid_message"
    assert c.call("chat-message", "not an object")["code"] == "invalid_payload"
    ask(c, "one")
    ask(c, "two")
    assert c.call("chat-message", {"text": "three"})["code"] == "rate_limited"
    msgs = api.req("GET", f"/api/chat/sessions/{info['session_id']}/messages", owner["token"])["items"]
    assert sorted(m["content"] for m in msgs if m["role"] == "user") == ["one", "two"]


def test_same_client_msg_id_is_stored_once(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    first = c.call("chat-message", {"text": "hi", "client_msg_id": "c-1"})
    again = c.call("chat-message", {"text": "hi", "client_msg_id": "c-1"})
    assert first["message_id"] == again["message_id"]
    c.wait_done(first["message_id"])
    msgs = api.req("GET", f"/api/chat/sessions/{info['session_id']}/messages", owner["token"])["items"]
    assert len([m for m in msgs if m["role"] == "user"]) == 1


def _pending_question(stack, couple, clients):
    """A stored user message whose answer has not been written: it was handed off onto a
    Celery queue no worker reads, so it stays pending until its first-item deadline.

    Every instance's outbox dispatcher may hand off any instance's message, so every
    other instance is paused until the quiet one has handed this one off; otherwise one
    of them could hand it to the real agent first."""
    owner, _, page = couple
    nobody = f"{stack.queue}-nobody-{uuid.uuid4().hex[:6]}"
    quiet = stack.start_backend(
        "backend-quiet", AGENT_HANDOFF="celery", AGENT_MANAGER_URL="", AGENT_QUEUE=nobody
    )
    with stack.only(quiet):
        c = clients(quiet.base, owner["token"]).connect()
        info = join(c, page)
        mid = ask(c, "question")
        r = redis.Redis.from_url(REDIS_URL)
        eventually(lambda: r.llen(nobody) >= 1, "handed off to the unread queue")
    quiet.proc.stop()
    return owner, info["session_id"], mid


def _done_item(session_id, mid, text):
    return json.dumps(
        {
            "session_id": session_id,
            "message_id": mid,
            "seq": 0,
            "role": "assistant",
            "type": "done",
            "content": text,
            "components": [],
            "stopped": False,
        }
    )


def _answers(api, owner, session_id, mid, want=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        msgs = api.req("GET", f"/api/chat/sessions/{session_id}/messages", owner["token"])["items"]
        found = [m for m in msgs if m.get("answerTo") == mid]
        if len(found) >= want:
            break
        time.sleep(0.2)
    return found


def test_a_duplicated_completion_is_stored_once(stack, couple, clients, api):
    owner, session_id, mid = _pending_question(stack, couple, clients)
    r = redis.Redis.from_url(REDIS_URL)
    item = _done_item(session_id, mid, "the one answer")
    for _ in range(2):
        r.xadd(
            stack.completion_stream,
            {"message_id": mid, "session_id": session_id, "type": "done", "item": item},
        )
    assert len(_answers(api, owner, session_id, mid)) == 1
    time.sleep(1.0)  # give the second copy every chance to be (wrongly) stored
    answers = _answers(api, owner, session_id, mid)
    assert len(answers) == 1 and answers[0]["content"] == "the one answer"


def test_completions_of_a_dead_instance_are_claimed_by_another(stack, couple, clients, api):
    owner, session_id, mid = _pending_question(stack, couple, clients)
    r = redis.Redis.from_url(REDIS_URL)
    stream = f"{stack.completion_stream}:claim"
    r.xgroup_create(stream, "backend", id="0", mkstream=True)
    r.xadd(
        stream,
        {
            "message_id": mid,
            "session_id": session_id,
            "type": "done",
            "item": _done_item(session_id, mid, "rescued answer"),
        },
    )
    # An instance read the entry and died before acknowledging it.
    got = r.xreadgroup("backend", "dead-instance", {stream: ">"}, count=10)
    assert got and got[0][1], "the dead instance holds the entry"
    assert _answers(api, owner, session_id, mid, timeout=1.0) == []
    stack.start_backend("backend-rescuer", AGENT_COMPLETION_STREAM=stream, CHAT_CLAIM_IDLE_MS="500")
    answers = _answers(api, owner, session_id, mid, timeout=15)
    assert len(answers) == 1 and answers[0]["content"] == "rescued answer"
    # The acknowledgement follows the commit by a moment.
    eventually(
        lambda: r.xpending(stream, "backend")["pending"] == 0, "acknowledged after the commit", timeout=10
    )


def test_an_ended_answer_without_a_completion_entry_is_stored_from_the_stream(stack, couple, clients, api):
    """The worker's final item went out (stream + turn hash) but its completion entry did
    not (on a Cluster it is appended after the item's script; a worker dying in between
    leaves none). The deadline sweeper stores the answer from the durable stream."""
    owner, session_id, mid = _pending_question(stack, couple, clients)
    r = redis.Redis.from_url(REDIS_URL)
    r.xadd(f"chat:stream:{session_id}", {"item": _done_item(session_id, mid, "from the stream")})
    seconds, _ = r.time()
    r.hset(f"chat:turn:{mid}", mapping={"next_seq": 1, "final": 1, "at_ms": (seconds - 5) * 1000})
    assert _answers(api, owner, session_id, mid, timeout=1.0) == []
    # An instance whose idle bound (1 s) has passed for that turn.
    sweeper = stack.start_backend("backend-sweeper", CHAT_IDLE_TIMEOUT_MS="1000")
    try:
        answers = _answers(api, owner, session_id, mid, timeout=15)
    finally:
        sweeper.proc.stop()
    assert len(answers) == 1 and answers[0]["content"] == "from the stream"


def test_presence_and_read_receipts(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    join(a, page)
    b = clients(stack.b2.base, editor["token"]).connect()
    join(b, page)
    a.wait_for("presence", lambda d: set(d["online"]) >= {owner["id"], editor["id"]})
    mid = ask(a, "When is the wedding?")
    b.wait_done(mid)
    # B has not read A's question yet: re-joining reports it as unread.
    assert b.call("joinRoom", {"room": f"page-{page['id']}"})["unread"] >= 1
    ack = b.call("read", {"message_id": mid})
    assert ack["message_id"] == mid
    receipt = a.wait_for("read", lambda d: d["message_id"] == mid)
    assert receipt["user_id"] == editor["id"]
    b.disconnect()
    a.wait_for("presence", lambda d: editor["id"] not in d["online"])


def test_history_is_paged_newest_first_by_cursor(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    for n in range(3):
        c.wait_done(ask(c, f"When is the wedding? #{n}"))
    sid = info["session_id"]
    first = api.req("GET", f"/api/chat/sessions/{sid}/messages?limit=2", owner["token"])
    assert len(first["items"]) == 2 and first["nextCursor"] == first["items"][-1]["id"]
    second = api.req(
        "GET", f"/api/chat/sessions/{sid}/messages?limit=2&before={first['nextCursor']}", owner["token"]
    )
    ids = [m["id"] for m in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    stranger = Api(stack.b1.base).register("nosy")
    Api(stack.b1.base).req("GET", f"/api/chat/sessions/{sid}/messages", stranger["token"], expect=404)
    sessions = api.req("GET", f"/api/pages/{page['id']}/chat/sessions", owner["token"])
    assert sessions[0]["id"] == sid and sessions[0]["active"] is True


def test_suspension_closes_the_users_sockets_on_every_instance(stack, couple, clients, admin_token):
    owner, editor, page = couple
    victim = clients(stack.b1.base, editor["token"]).connect()
    bystander = clients(stack.b1.base, owner["token"]).connect()
    join(victim, page)
    join(bystander, page)
    # Suspended through the other instance: the event crosses Redis.
    Api(stack.b2.base).req(
        "POST", f"/api/admin/users/{editor['id']}/suspend", admin_token, {"reason": "abuse"}
    )
    assert victim.disconnected.wait(10), "the suspended user's socket is closed"
    assert not bystander.disconnected.is_set(), "other users stay connected"
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients(stack.b2.base, editor["token"]).connect()


def _live(base, token):
    return Api(base).req("GET", "/api/admin/stats", token)["live"]


def _reported(live, server_id):
    """What the instance `server_id` last reported, as another instance sees it."""
    found = [i for i in live["cluster"]["instances"] if i["serverId"] == server_id]
    return found[0]["chatSockets"] if found else None


def _settled_sockets(base, token):
    """The instance's own socket count once earlier tests' sockets have finished closing."""
    last = _live(base, token)["instance"]["chatSockets"]
    for _ in range(30):
        time.sleep(1)
        now = _live(base, token)["instance"]["chatSockets"]
        if now == last:
            return now
        last = now
    raise AssertionError("the socket count never settled")


def test_admin_stats_count_chat_sockets_across_instances(stack, couple, clients, admin_token):
    owner, editor, _ = couple
    b1, b2 = stack.b1.base, stack.b2.base
    b1_id = _live(b1, admin_token)["instance"]["serverId"]
    before = _settled_sockets(b1, admin_token)
    mine = [clients(b1, owner["token"]).connect(), clients(b1, editor["token"]).connect()]
    eventually(
        lambda: _live(b1, admin_token)["instance"]["chatSockets"] == before + 2,
        "instance 1 counts its two new sockets",
    )
    # Instance 2 sees instance 1's sockets through its heartbeat (every 5 s).
    eventually(
        lambda: _reported(_live(b2, admin_token), b1_id) == before + 2,
        "instance 2 sees instance 1's sockets",
    )
    live = _live(b2, admin_token)
    assert len(live["cluster"]["instances"]) >= 2
    assert live["cluster"]["chatSockets"] == sum(i["chatSockets"] for i in live["cluster"]["instances"])

    for c in mine:
        c.disconnect()
    eventually(
        lambda: _live(b1, admin_token)["instance"]["chatSockets"] <= before,
        "closed sockets are no longer counted",
    )


def _chat_figures(stack) -> dict[str, float]:
    """The chat counters of /metrics, summed over every running instance (any instance
    may hand off a message or store its answer)."""
    want = (
        'mocheong_chat_handoffs_total{outcome="accepted"}',
        'mocheong_chat_turns_total{state="answered"}',
        # One sample per item an instance hands to its sockets (the client below).
        "mocheong_chat_relay_lag_seconds_count",
    )
    total = dict.fromkeys(want, 0.0)
    for b in [b for b in stack.backends if b.proc.popen.poll() is None]:
        text = httpx.get(f"{b.base}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name in total:
                total[name] += float(value)
    return total


def test_metrics_count_hand_offs_and_answered_turns(stack, couple, clients, api):
    owner, _, page = couple
    before = _chat_figures(stack)
    c = clients(stack.b1.base, owner["token"]).connect()
    join(c, page)
    mid = ask(c, "식장 어디예요?")
    done = c.wait_done(mid)
    assert done["type"] == "done"
    # Every item carries its publication time (Redis clock, ms), which the lag is read from.
    assert isinstance(done.get("published_at_ms"), int), done

    def moved():
        after = _chat_figures(stack)
        return all(after[k] >= before[k] + 1 for k in before)

    eventually(moved, "the hand-off, the answered turn and the relay lag are counted in /metrics")
