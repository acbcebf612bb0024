"""The chat over RabbitMQ end to end: the backends publish the Celery task over AMQP
(publisher confirms), the real worker consumes it with kombu's pyamqp transport, the answer
comes back through Redis. A chat turn answered, stop, resume; the worker killed mid-answer
(RabbitMQ redelivers at once, the turn still ends answered exactly once); the task waiting
on the queue for a worker that starts later; the broker dropping every connection."""

import functools
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from urllib.parse import unquote, urlsplit

import amqp
import httpx
import pytest
import redis

from tests.stack import AGENT_DIR, AGENT_PY, METRICS_TOKEN, REDIS_URL, SERVICE_TOKEN
from tests.test_chat import ask, join, text_of
from tests.wait import eventually

from .conftest import AGENT_METRICS_TOKEN, AMQP_URL

QUESTION_LONG = "Tell me everything: when, where, parking, directions, gift accounts and the meal?"


#: The broker's round trips and redeliveries take longer than the defaults allow for.
_eventually = functools.partial(eventually, timeout=30.0)


def stored(api, owner, session_id):
    return api.req("GET", f"/api/chat/sessions/{session_id}/messages", owner["token"])["items"]


def handoffs_accepted(backend) -> float:
    text = httpx.get(f"{backend.base}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == 'mocheong_chat_handoffs_total{outcome="accepted"}':
            return float(value)
    return 0.0


def test_a_turn_handed_off_over_amqp_is_answered_and_stored(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    before = handoffs_accepted(stack.b1) + handoffs_accepted(stack.b2)
    mid = ask(c, "주차 되나요?")
    done = c.wait_done(mid)
    assert done["type"] == "done" and "2시간" in done["content"]
    items = c.items(mid)
    assert [i["seq"] for i in items] == list(range(len(items)))
    assert done["content"] == text_of(items)
    _eventually(
        lambda: handoffs_accepted(stack.b1) + handoffs_accepted(stack.b2) >= before + 1,
        "the confirmed publish is counted as an accepted hand-off",
    )
    # Not through the Redis list: the worker's queue lives in RabbitMQ only.
    assert redis.Redis.from_url(REDIS_URL).exists(stack.queue) == 0
    _eventually(lambda: len(stored(api, owner, info["session_id"])) >= 2, "question and answer stored")
    answer, question = stored(api, owner, info["session_id"])[:2]
    assert question["id"] == mid and question["status"] == "answered"
    assert answer["answerTo"] == mid and answer["content"] == done["content"]


def test_stop_mid_answer_over_amqp(stack, couple, clients, api):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    mid = ask(c, QUESTION_LONG)
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("type") == "text-delta")
    c.call("stop-generation", {"message_id": mid})
    done = c.wait_done(mid)
    assert done["stopped"] is True and done["content"] == text_of(c.items(mid))

    def answers():
        return [m for m in stored(api, owner, info["session_id"]) if m.get("answerTo") == mid]

    _eventually(lambda: answers(), "the stopped answer is stored")
    assert answers()[0]["status"] == "stopped" and answers()[0]["content"] == done["content"]


def test_resume_on_the_other_instance_misses_nothing(stack, couple, clients):
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    mid = ask(c, QUESTION_LONG)
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 2)
    c.disconnect()
    seen = c.items(mid)
    c2 = clients(stack.b2.base, owner["token"]).connect()
    join(c2, page)
    last = seen[-1]["seq"]
    out = c2.call("resume", {"session_id": info["session_id"], "message_id": mid, "after_seq": last})
    missed = out["items"]
    if not any(i["type"] == "done" for i in missed):
        c2.wait_done(mid)
        after = missed[-1]["seq"] if missed else last
        missed += [i for i in c2.items(mid) if i["seq"] > after]
    whole = seen + missed
    assert [i["seq"] for i in whole] == list(range(len(whole))), "the whole answer, each item once"
    assert whole[-1]["type"] == "done" and text_of(whole) == whole[-1]["content"]


def test_worker_killed_mid_answer_the_task_is_redelivered_and_answered_once(stack, couple, clients, api):
    """RabbitMQ requeues the unacknowledged task as soon as the dead worker's connection
    closes (no visibility timeout to wait out, unlike Redis): the restarted worker gets it
    marked redelivered, continues after the last seq the stream holds, and the turn ends
    answered, well before any of its deadlines."""
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    info = join(c, page)
    mid = ask(c, QUESTION_LONG)
    c.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 2)
    os.killpg(stack.worker.popen.pid, signal.SIGKILL)  # the worker and its pool, mid-answer
    stack.worker.popen.wait(timeout=10)
    stack.start_worker(pool="prefork", name="agent-worker-restarted")
    done = c.wait_done(mid, timeout=90)
    assert done["type"] == "done", done
    items = c.items(mid)
    assert [i["seq"] for i in items] == list(range(len(items))), "no seq lost or sent twice"
    assert [i["type"] for i in items].count("done") == 1
    assert text_of(items) == done["content"]

    def answers():
        return [m for m in stored(api, owner, info["session_id"]) if m.get("answerTo") == mid]

    _eventually(lambda: answers(), "the answer is stored")
    time.sleep(1.0)  # any second completion would be stored by now
    (answer,) = answers()
    assert answer["status"] == "complete" and answer["content"] == done["content"]
    question = next(m for m in stored(api, owner, info["session_id"]) if m["id"] == mid)
    assert question["status"] == "answered"


def test_a_task_published_before_any_worker_consumes_waits_on_the_queue(stack, couple, clients):
    """The backend declares the queue when it is missing, as kombu does (durable, no
    arguments): the task waits there, and a worker started later declares the same queue
    without a conflict and answers it."""
    owner, _, page = couple
    queue = f"{stack.queue}-late-{uuid.uuid4().hex[:6]}"
    late = stack.start_backend("backend-late", AGENT_QUEUE=queue)
    # Every instance's outbox may hand off any message: the others wait until the late
    # one has published this one onto its own queue.
    with stack.only(late):
        c = clients(late.base, owner["token"]).connect()
        join(c, page)
        mid = ask(c, "When is the wedding?")
        _eventually(lambda: handoffs_accepted(late) >= 1, "confirmed by RabbitMQ with no consumer")
    late_worker = _worker_on(stack, queue)
    try:
        done = c.wait_done(mid, timeout=60)
        assert done["type"] == "done" and "2099" in done["content"], done
    finally:
        late_worker.stop()
        late.proc.stop()


def _amqp_connection() -> amqp.Connection:
    u = urlsplit(AMQP_URL)
    conn = amqp.Connection(
        f"{u.hostname}:{u.port or 5672}",
        userid=unquote(u.username or "guest"),
        password=unquote(u.password or "guest"),
        virtual_host=unquote(u.path[1:]) or "/",
    )
    conn.connect()
    return conn


def test_a_queue_declared_with_other_arguments_is_used_as_it_is(stack, couple, clients):
    """A queue someone declared otherwise (here with a priority limit) is not redeclared
    (that would be PRECONDITION_FAILED, an error in the log): the backend checks it exists
    (a passive declare) and publishes. The
    task read back with py-amqp, kombu's client, is the protocol v2 message Celery reads."""
    owner, _, page = couple
    queue = f"{stack.queue}-odd-{uuid.uuid4().hex[:6]}"
    conn = _amqp_connection()
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-max-priority": 5})
        odd = stack.start_backend("backend-odd", AGENT_QUEUE=queue)
        with stack.only(odd):
            c = clients(odd.base, owner["token"]).connect()
            join(c, page)
            mid = ask(c, "When is the wedding?")
            _eventually(lambda: handoffs_accepted(odd) >= 1, "published onto the existing queue")
        odd.proc.stop()
        # A refused declare closes the channel, which the AMQP client logs as an error.
        assert "Channel closed" not in odd.proc.log.read_text(errors="replace"), "no declare was refused"
        msg = ch.basic_get(queue, no_ack=True)
        assert msg is not None, "the task is on the queue"
        headers = msg.properties["application_headers"]
        assert msg.properties["content_type"] == "application/json"
        assert msg.properties["content_encoding"] == "utf-8"
        assert msg.properties["delivery_mode"] == 2
        assert msg.properties["correlation_id"] == headers["id"] == headers["root_id"]
        assert headers["task"] == "agent.process_chat_message" and headers["lang"] == "py"
        assert headers["parent_id"] is None and headers["eta"] is None and headers["retries"] == 0
        assert headers["timelimit"] == [None, None] and headers["origin"].startswith("mocheong-backend@")
        args, kwargs, embed = json.loads(msg.body)
        assert args == [] and kwargs["message_id"] == mid and kwargs["message"] == "When is the wedding?"
        assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
        ch.queue_delete(queue)
    finally:
        conn.close()


def _worker_on(stack, queue):
    """A threads worker consuming `queue` (the stack's own worker keeps its queue)."""
    env = {**stack.agent_env(), "AGENT_QUEUE": queue}
    return stack.spawn(
        f"agent-worker-{queue[-6:]}",
        [str(AGENT_PY), "-m", "celery", "-A", "app.worker.celery_app", "worker", "-Q", queue,
         "--pool", "threads", "-c", "2", "-n", f"{queue}@localhost",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        env,
        cwd=AGENT_DIR,
    )  # fmt: skip


def test_the_api_path_and_health_work_over_amqp(stack):
    """POST /chat on the agent-manager publishes through kombu (confirmed), /health pings
    the worker over AMQP, /metrics reads the queue depth from RabbitMQ."""
    headers = {"X-Service-Token": SERVICE_TOKEN}
    health = httpx.get(f"{stack.agent_url}/health", timeout=10).json()
    assert health["worker"]["ok"] is True, health
    session, mid = f"amqp-{uuid.uuid4().hex[:8]}", f"m-{uuid.uuid4().hex[:8]}"
    body = {
        "message": "When is the wedding?",
        "session_id": session,
        "message_id": mid,
        "user_id": "1",
        "page_id": "1",
        "wedding_context": {"wedding": {"dateTime": "2027-05-15T12:30:00+09:00"}},
        "history": [],
    }
    r = httpx.post(f"{stack.agent_url}/chat", json=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    red = redis.Redis.from_url(REDIS_URL)
    stream = f"chat:stream:{session}"

    def ended():
        return any(b'"type":"done"' in f[b"item"].replace(b" ", b"") for _, f in red.xrange(stream))

    _eventually(ended, "the worker answered the task the API published")
    metrics = httpx.get(
        f"{stack.agent_url}/metrics", headers={"Authorization": f"Bearer {AGENT_METRICS_TOKEN}"}, timeout=10
    ).text
    depth = [line for line in metrics.splitlines() if line.startswith("agent_queue_depth ")]
    assert depth and float(depth[0].split()[1]) >= 0


def test_the_broker_dropping_every_connection_is_survived(stack, couple, clients):
    """What a RabbitMQ restart looks like to its clients: the broker closes every
    connection. The backend reconnects on its next hand-off, the worker on its own."""
    vhost = os.environ.get("TEST_AMQP_VHOST")
    ctl = shutil.which("rabbitmqctl")
    if not vhost or not ctl:
        pytest.skip("needs rabbitmqctl and the run's own vhost (scripts/amqp-e2e.sh)")
    owner, _, page = couple
    c = clients(stack.b1.base, owner["token"]).connect()
    join(c, page)
    c.wait_done(ask(c, "When is the wedding?"))  # the backends hold a live link
    subprocess.run(
        [ctl, "-q", "close_all_connections", "-p", vhost, "e2e: broker restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for n in range(2):
        done = c.wait_done(ask(c, f"Where is the venue? #{n}"), timeout=60)
        assert done["type"] == "done"
