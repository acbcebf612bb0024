"""Per-room subscriptions across two instances: an instance listens to a session's
channel only while it holds a member of the room, and a member joining mid-answer misses
nothing (live items after the join answer, the rest from `resume`)."""

from urllib.parse import urlparse

import redis
from redis.cluster import ClusterNode, RedisCluster

from .stack import REDIS_MODE
from .test_chat import ask, join
from .wait import eventually


def listeners(stack, session_id: str) -> int:
    """How many instances listen to the session's channel now: PUBSUB NUMSUB, or on a
    Cluster PUBSUB SHARDNUMSUB on the node owning the channel's slot."""
    channel = f"chat:{session_id}"
    if REDIS_MODE != "cluster":
        [(_, n)] = redis.Redis.from_url(stack.redis_url).pubsub_numsub(channel)
        return int(n)
    seeds = [urlparse(u) for u in stack.redis_url.split(",")]
    cluster = RedisCluster(startup_nodes=[ClusterNode(u.hostname, u.port) for u in seeds])
    node = cluster.get_node_from_key(channel)
    _, n = redis.Redis(host=node.host, port=node.port).execute_command("PUBSUB", "SHARDNUMSUB", channel)
    cluster.close()
    return int(n)


def test_an_instance_listens_only_to_rooms_it_holds_members_of(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    b = clients(stack.b2.base, editor["token"]).connect()
    session = join(a, page)["session_id"]
    # Answered once subscribed; the other instance holds nobody of the room.
    assert listeners(stack, session) == 1
    mid = ask(a, "When is the wedding?")
    a.wait_done(mid)
    assert listeners(stack, session) == 1, "the other instance never subscribed"

    join(b, page)
    assert listeners(stack, session) == 2
    join(b, page)  # joining again changes nothing
    assert listeners(stack, session) == 2

    b.disconnect()
    eventually(lambda: listeners(stack, session) == 1, "instance 2 stops after its last member")
    a.disconnect()
    eventually(lambda: listeners(stack, session) == 0, "nobody listens once the room is empty")


def test_a_member_joining_mid_answer_misses_nothing(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    session = join(a, page)["session_id"]
    mid = ask(a, "Tell me everything: when, where, parking, directions, gift accounts and the meal?")
    a.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("seq", -1) >= 2)

    # The editor joins on the instance that holds nobody of the room, mid-answer.
    assert listeners(stack, session) == 1
    b = clients(stack.b2.base, editor["token"]).connect()
    join(b, page)
    assert listeners(stack, session) == 2, "subscribed before the join was answered"
    out = b.call("resume", {"session_id": session, "message_id": mid})
    b.wait_done(mid)

    # Live items after the join, the rest from the durable stream: every seq, each once.
    by_seq = {}
    for item in out["items"] + b.items(mid):
        if item["message_id"] == mid:
            assert by_seq.setdefault(item["seq"], item) == item, "one content per (message_id, seq)"
    done = a.wait_done(mid)
    assert sorted(by_seq) == list(range(done["seq"] + 1)), "a gap between resume and live items"
    assert by_seq[done["seq"]] == done
    live = [i["seq"] for i in b.items(mid)]
    assert live == list(range(live[0], live[0] + len(live))), "live items in order, no gap"


def test_a_new_conversation_reaches_members_on_the_other_instance(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    b = clients(stack.b2.base, editor["token"]).connect()
    first = join(a, page)["session_id"]
    join(b, page)

    # B starts a new conversation: A (other instance) is told, and its instance now
    # listens to the new session too.
    fresh = b.call("joinRoom", {"room": f"page-{page['id']}", "newSession": True})["session_id"]
    assert fresh != first
    info = a.wait_for("session-info", lambda d: d["session_id"] == fresh)
    assert info["room"] == f"page-{page['id']}"
    eventually(lambda: listeners(stack, fresh) == 2, "instance 1 subscribes to the new session")

    # A's answer in the new session reaches B, and B's question reaches A.
    a.call("joinRoom", {"room": f"page-{page['id']}"})
    mid = ask(b, "When is the wedding?")
    a.wait_for("newMessage", lambda d: d.get("message_id") == mid and d.get("role") == "user")
    assert a.wait_done(mid) == b.wait_done(mid)
