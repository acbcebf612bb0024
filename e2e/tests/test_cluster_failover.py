"""A Redis Cluster changing under a room that is being served: the slot of the room's
chat channel moves to another master, then the master that owns it is killed and its
replica takes over. After each, the next turn in the room still streams live to members
on both instances and is stored once. Needs a Cluster with replicas
(scripts/cluster-e2e.sh starts one), and runs last there: the killed master does not
come back."""

import os
import signal
from urllib.parse import urlparse

import pytest
import redis

from .stack import REDIS_MODE
from .test_chat import _answers, ask, join, text_of
from .wait import eventually

pytestmark = pytest.mark.skipif(
    REDIS_MODE != "cluster" or not os.environ.get("E2E_CLUSTER_REPLICAS"),
    reason="needs a Redis Cluster with replicas (scripts/cluster-e2e.sh)",
)


def _node(address: tuple[str, int]) -> redis.Redis:
    return redis.Redis(host=address[0], port=address[1])


def _masters(stack) -> list[tuple[str, int]]:
    u = urlparse(stack.redis_url.split(",")[0])
    nodes = redis.Redis(host=u.hostname, port=u.port).cluster("nodes")
    return [
        (a.split(":")[0], int(a.split(":")[1].split("@")[0]))
        for a, n in nodes.items()
        if "master" in n["flags"] and "fail" not in n["flags"]
    ]


def _move_slot(stack, slot: int, source: tuple[str, int], target: tuple[str, int]) -> None:
    """Moves one slot with its keys, as `redis-cli --cluster reshard` does."""
    src, dst = _node(source), _node(target)
    src_id, dst_id = src.cluster("myid"), dst.cluster("myid")
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", target[0], target[1], "", 0, 5000, "KEYS", *keys)
    for master in [target, source, *(m for m in _masters(stack) if m not in (source, target))]:
        _node(master).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)


def _answered_live(stack, a, b, api, owner, session_id, text):
    """Asks `text` from `a`; both members get every item live, in order; stored once."""
    mid = ask(a, text)
    done_a = a.wait_done(mid, timeout=60)
    done_b = b.wait_done(mid, timeout=60)
    assert done_a["type"] == done_b["type"] == "done", (done_a, done_b)
    for c in (a, b):
        seqs = [i["seq"] for i in c.items(mid)]
        assert seqs == list(range(len(seqs))), "live, in order, no gap"
    assert text_of(b.items(mid)) == done_b["content"]
    stored = _answers(api, owner, session_id, mid, timeout=15)
    assert [m["content"] for m in stored] == [done_a["content"]], "stored once"


def _owner_of(stack, key: str) -> tuple[str, int]:
    """The master serving `key`'s slot now, asked of every node still answering."""
    slot = redis.cluster.key_slot(key.encode())
    for u in (urlparse(u) for u in stack.redis_url.split(",")):
        try:
            for start, end, master, *_ in redis.Redis(host=u.hostname, port=u.port).cluster("slots"):
                if start <= slot <= end:
                    return master[0].decode() if isinstance(master[0], bytes) else master[0], int(master[1])
        except redis.ConnectionError:
            continue
    raise AssertionError("no node answers CLUSTER SLOTS")


def _kill(host: str, port: int) -> None:
    pid = redis.Redis(host=host, port=port).info("server")["process_id"]
    os.kill(int(pid), signal.SIGKILL)


def test_a_turn_after_the_channel_slot_moved_streams_live_to_both_instances(stack, couple, clients, api):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    b = clients(stack.b2.base, editor["token"]).connect()
    info = join(a, page)
    join(b, page)
    channel = f"chat:{info['session_id']}"
    _answered_live(stack, a, b, api, owner, info["session_id"], "When is the wedding?")

    # Redis drops the subscribers of a slot that moves (a `sunsubscribe` push).
    source = _owner_of(stack, channel)
    target = next(m for m in _masters(stack) if m != source)
    _move_slot(stack, redis.cluster.key_slot(channel.encode()), source, target)
    assert _owner_of(stack, channel) == target

    _answered_live(stack, a, b, api, owner, info["session_id"], "주차 되나요?")


def test_the_channel_master_failing_over_mid_answer(stack, couple, clients, api):
    """The master owning the room's slot (its channel, stream and turn hashes) dies while
    an answer streams. The worker waits for the promoted replica and finishes the answer,
    which is stored once; each member has every item, each once: live, and the part
    published before its instance had subscribed again from `resume`. The next turn
    streams live."""
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    b = clients(stack.b2.base, editor["token"]).connect()
    info = join(a, page)
    join(b, page)
    session_id = info["session_id"]
    channel = f"chat:{session_id}"
    first = ask(a, "Tell me everything about the wedding: date, venue, parking, and the meal.")
    a.wait_for("newMessage", lambda d: d.get("message_id") == first)

    dead = _owner_of(stack, channel)
    _kill(*dead)
    eventually(
        lambda: _owner_of(stack, channel) != dead,
        "a replica took over the channel's slot",
        30,
        retry_on=(redis.RedisError,),
    )

    # Answered, not failed at the idle bound: the worker's publishes waited for the replica.
    answers = _answers(api, owner, session_id, first, timeout=60)
    assert len(answers) == 1, "answered once"
    stored = answers[0]
    for c in (a, b):
        out = c.call("resume", {"session_id": session_id, "message_id": first, "after_seq": -1})
        whole = out["items"]
        assert [i["seq"] for i in whole] == list(range(len(whole))), "no gap"
        assert whole[-1]["type"] == "done" and whole[-1]["content"] == stored["content"]
        assert text_of(whole) == stored["content"]
        live = c.items(first)
        assert [i["seq"] for i in live] == sorted({i["seq"] for i in live}), "in order, each once"
        assert all(i == whole[i["seq"]] for i in live), "live items are the stream's"

    # Asked after the takeover: the backends and the worker find the new master by
    # themselves (no reconnect of the clients).
    _answered_live(stack, a, b, api, owner, session_id, "주차 되나요?")
