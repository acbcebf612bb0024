"""The chat guarantee under faults (docs/chat.md, "The guarantee"): every accepted message
ends answered, stopped or failed within the bound, exactly once, and a client that
reconnects anywhere holds each answer whole. Invariants, not timings: each test breaks one
part for real (SIGKILL, SIGSTOP, a Redis restart, a database refusing connections) and then
checks the database and what every client received."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import redis as redis_lib
import socketio

from tests.client import ChatClient
from tests.wait import eventually

from .driver import Counts, User, check
from .harness import TURN_BOUND_S, Chaos, new_user


def _users(chaos: Chaos, n: int) -> list[User]:
    out = []
    for _ in range(n):
        owner, page = new_user(chaos)
        out.append(User(owner, page, chaos.alive, bound=TURN_BOUND_S))
    return out


def _run(users: list[User], messages: int | None, stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=u.run, args=(messages, stop), daemon=True) for u in users]
    for t in threads:
        t.start()
    return threads


def _join(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "some users never saw their turns end"


def _tally(chaos: Chaos, users: list[User]) -> Counts:
    total = Counts()
    api = chaos.api()
    for u in users:
        total.add(check(u, api))
        u.close()
    return total


def _assert_clean(total: Counts, *, all_answered: bool) -> None:
    assert total.accepted > 0
    assert total.problems == [], "\n".join(total.problems[:20])
    assert total.lost_user_messages == total.lost_answers == total.stuck_turns == 0
    assert total.duplicated_answers == total.conflicting_items == total.failed_then_answered == 0
    if all_answered:
        assert total.answered == total.accepted, f"{total.failed} of {total.accepted} failed"


def test_instance_killed_right_after_message_accepted(chaos):
    """The window of the lost hand-off: the ack is out, the instance dies at once."""
    users = _users(chaos, 3)
    for u in users:
        victim = chaos.add_backend()
        c = ChatClient(victim.base, u.owner["token"]).connect()
        u.clients.append(c)
        info = c.call("joinRoom", {"room": f"page-{u.page['id']}"})
        u.session_id = info["session_id"]
        acked = threading.Event()
        pending = [(f"k-{u.name}-{n}", "When is the wedding?") for n in range(3)]
        u.unacked = list(pending)

        def on_ack(out, cmid_text, u=u, acked=acked):
            if "message_id" in out:
                u.accepted.setdefault(out["message_id"], time.monotonic())
                u.unacked.remove(cmid_text)
                acked.set()

        for cmid, text in pending:
            c.sio.emit(
                "chat-message",
                {"text": text, "client_msg_id": cmid},
                namespace="/chat",
                callback=lambda out, ct=(cmid, text): on_ack(out, ct),
            )
        assert acked.wait(20), "no message was accepted"
        chaos.kill(victim)
        u.client = c  # dropped: the user reconnects elsewhere, re-sends, resumes
    _join(_run(users, 0, threading.Event()), timeout=3 * TURN_BOUND_S)
    _assert_clean(_tally(chaos, users), all_answered=True)


def test_instance_killed_during_steady_traffic(chaos):
    users = _users(chaos, 4)
    stop = threading.Event()
    threads = _run(users, None, stop)
    for _ in range(2):
        time.sleep(4)
        victim = chaos.alive()[0]
        chaos.kill(victim)
        time.sleep(1)
        chaos.add_backend()
    time.sleep(3)
    stop.set()
    _join(threads, timeout=3 * TURN_BOUND_S)
    total = _tally(chaos, users)
    assert sum(u.reconnects for u in users) > len(users), "some users were moved by the kills"
    _assert_clean(total, all_answered=True)


def test_worker_killed_mid_answer_and_restarted(chaos):
    owner, page = new_user(chaos)
    u = User(owner, page, chaos.alive, bound=TURN_BOUND_S)
    u._connect()
    question = "Tell me everything: when, where, parking, directions, gift accounts and the meal?"
    u.unacked = [("w-1", question)]
    u._send("w-1", question)
    (mid,) = u.accepted
    eventually(lambda: len(u.view(mid)) >= 2, "the answer started", 30)
    chaos.kill_worker()
    chaos.stack.start_worker(pool="prefork")
    _join(_run([u], 0, threading.Event()), timeout=2 * TURN_BOUND_S)
    _assert_clean(_tally(chaos, [u]), all_answered=False)
    # The turn ended with an error item in the user's language, or was answered by a
    # redelivery that continued after the last seq (both checked by _assert_clean).


def test_agent_manager_unreachable_then_hung_then_back(chaos):
    stack = chaos.stack
    users = _users(chaos, 2)
    try:
        stack.agent_api.stop(signal.SIGKILL)  # unreachable
        _join(_run(users, 1, threading.Event()), timeout=2 * TURN_BOUND_S)
        failed_early = [m for u in users for m in u.accepted if u.view(m)[-1]["type"] == "error"]
        assert failed_early, "with no agent-manager the turns end failed"
        korean = [u.view(m)[-1]["content"] for u in users for m in u.accepted]
        assert all(t.startswith(("죄송합니다", "Sorry")) for t in korean)

        api = stack.start_api(wait=True)
        os.kill(api.popen.pid, signal.SIGSTOP)  # hung: takes connections, answers nothing
        _join(_run(users, 1, threading.Event()), timeout=2 * TURN_BOUND_S)
    finally:
        if stack.agent_api and stack.agent_api.popen.poll() is None:
            os.kill(stack.agent_api.popen.pid, signal.SIGCONT)
    # Back: the hung requests reach the worker now, for turns already failed. They must
    # not be answered; new messages are (the breaker probes within seconds).
    _join(_run(users, 1, threading.Event()), timeout=2 * TURN_BOUND_S)
    time.sleep(5)  # what the resumed agent-manager does with the old requests
    total = _tally(chaos, users)
    _assert_clean(total, all_answered=False)
    last = [max(u.accepted) for u in users]
    api = chaos.api()
    for u, mid in zip(users, last, strict=True):
        stored = {
            m["id"]: m
            for m in api.req("GET", f"/api/chat/sessions/{u.session_id}/messages", u.owner["token"])["items"]
        }
        assert stored[mid]["status"] == "answered", "the agent-manager is back: answered again"


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_redis_restarted_mid_traffic(chaos, pool):
    chaos.kill_worker()
    chaos.stack.start_worker(pool=pool)
    users = _users(chaos, 3)
    stop = threading.Event()
    threads = _run(users, None, stop)
    time.sleep(4)
    chaos.redis.restart()  # SIGKILL and start again (from its append-only file)
    restarted = time.monotonic()
    # Service is back: a new message is accepted within seconds of the restart.
    owner, page = new_user(chaos)
    probe = ChatClient(chaos.alive()[0].base, owner["token"]).connect()
    probe.call("joinRoom", {"room": f"page-{page['id']}"})

    def accepted():
        return "message_id" in probe.call("chat-message", {"text": "hello?"})

    eventually(accepted, "a message is accepted again after the restart", 5 + 10)
    log_back = time.monotonic() - restarted
    time.sleep(4)
    stop.set()
    _join(threads, timeout=3 * TURN_BOUND_S)
    probe.disconnect()
    _assert_clean(_tally(chaos, users), all_answered=False)
    # The worker survived the restart and answers again.
    owner, page = new_user(chaos)
    u = User(owner, page, chaos.alive, bound=TURN_BOUND_S)
    _join(_run([u], 1, threading.Event()), timeout=2 * TURN_BOUND_S)
    assert chaos.stack.worker.popen.poll() is None, f"the {pool} worker exited on the Redis restart"
    _assert_clean(_tally(chaos, [u]), all_answered=True)
    print(f"accepting again {log_back:.1f}s after the Redis restart ({pool} worker)")


def test_resume_right_at_done_holds_the_whole_answer(chaos):
    owner, page = new_user(chaos)
    b = chaos.alive()[0]
    c = ChatClient(b.base, owner["token"]).connect()
    info = c.call("joinRoom", {"room": f"page-{page['id']}"})
    mid = c.call("chat-message", {"text": "Where is the venue? Show me the map"})["message_id"]
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 1)
    c.disconnect()
    seen = c.items(mid)
    r = redis_lib.Redis.from_url(chaos.redis.url)
    stream = f"chat:stream:{info['session_id']}"

    def ended():
        return any(json.loads(f[b"item"])["type"] == "done" for _, f in r.xrange(stream))

    eventually(ended, "the answer ended", TURN_BOUND_S)
    # Right at done (stored or not yet): the reply holds everything after what was seen.
    c2 = ChatClient(chaos.alive()[-1].base, owner["token"]).connect()
    c2.call("joinRoom", {"room": f"page-{page['id']}"})
    last = max(i["seq"] for i in seen)
    out = c2.call("resume", {"session_id": info["session_id"], "after_seq": last})
    assert set(out) == {"session_id", "messages", "items"}
    assert all("answer_to" in m for m in out["messages"]), "snake_case throughout"
    items = [i for i in out["items"] if i["message_id"] == mid]
    assert [i["seq"] for i in items] == list(range(last + 1, last + 1 + len(items)))
    assert items and items[-1]["type"] == "done"
    assert not [m for m in out["messages"] if m["answer_to"] == mid], "in items or messages, not both"
    whole = seen + items
    text = "".join(i.get("content", "") for i in whole if i["type"] == "text-delta")
    assert text == items[-1]["content"]
    c2.disconnect()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs a database server")
def test_database_refusing_connections_is_unavailable_not_unauthorized(chaos):
    owner, page = new_user(chaos)
    b = chaos.alive()[0]
    c = ChatClient(b.base, owner["token"]).connect()
    c.call("joinRoom", {"room": f"page-{page['id']}"})
    chaos.proxy.refuse()
    try:
        fresh = ChatClient(b.base, owner["token"])
        with pytest.raises(socketio.exceptions.ConnectionError):
            fresh.connect()
        message = json.dumps(fresh.connect_error)
        assert "unavailable" in message and "unauthorized" not in message, message
        for event, data in [
            ("joinRoom", {"room": f"page-{page['id']}"}),
            ("chat-message", {"text": "hello"}),
            ("resume", {"session_id": "0" * 26, "after_seq": 0}),
        ]:
            out = c.call(event, data, timeout=30)
            assert out.get("code") == "unavailable", (event, out)
    finally:
        chaos.proxy.accept()
    # Back: the same socket works again.
    eventually(
        lambda: "session_id" in c.call("joinRoom", {"room": f"page-{page['id']}"}, timeout=30), "back", 30
    )
    c.disconnect()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs a database server")
def test_resume_after_the_completion_store_failed_holds_the_whole_answer(chaos):
    owner, page = new_user(chaos)
    c = ChatClient(chaos.alive()[0].base, owner["token"]).connect()
    info = c.call("joinRoom", {"room": f"page-{page['id']}"})
    question = "Tell me everything: when, where, parking, directions, gift accounts and the meal?"
    mid = c.call("chat-message", {"text": question})["message_id"]
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 1)
    c.disconnect()
    seen = c.items(mid)
    r = redis_lib.Redis.from_url(chaos.redis.url)
    stream = f"chat:stream:{info['session_id']}"
    chaos.proxy.refuse()  # the answer ends while no instance can store it
    try:
        eventually(
            lambda: any(json.loads(f[b"item"])["type"] == "done" for _, f in r.xrange(stream)),
            "the answer ended",
            TURN_BOUND_S,
        )
        time.sleep(1)  # the completion consumers try, and fail, to store it
    finally:
        chaos.proxy.accept()
    c2 = ChatClient(chaos.alive()[-1].base, owner["token"]).connect()
    c2.call("joinRoom", {"room": f"page-{page['id']}"}, timeout=30)
    last = max(i["seq"] for i in seen)
    out = c2.call(
        "resume", {"session_id": info["session_id"], "message_id": mid, "after_seq": last}, timeout=30
    )
    items = [i for i in out["items"] if i["message_id"] == mid]
    assert [i["seq"] for i in items] == list(range(last + 1, last + 1 + len(items)))
    assert items and items[-1]["type"] == "done"
    assert (
        "".join(i.get("content", "") for i in seen + items if i["type"] == "text-delta")
        == items[-1]["content"]
    )
    c2.disconnect()
    # And the store is retried: the answer ends up stored, once.
    api = chaos.api()

    def stored():
        rows = api.req("GET", f"/api/chat/sessions/{info['session_id']}/messages", owner["token"])["items"]
        return [m for m in rows if m.get("answerTo") == mid]

    eventually(lambda: len(stored()) == 1, "the answer is stored after the database is back", 30)
