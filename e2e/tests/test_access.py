"""Access changes reach open sockets: a user who loses a page stops hearing its room,
on every instance, at once."""

import time

from .client import Api
from .test_chat import ask, join


def _room_closed(client, page):
    return client.wait_for("room-closed", lambda d: d.get("room") == f"page-{page['id']}", timeout=10)


def test_a_removed_editor_receives_nothing_more_from_the_room(stack, couple, clients):
    owner, editor, page = couple
    a = clients(stack.b1.base, owner["token"]).connect()
    # The editor's socket sits on the other instance: the removal crosses Redis.
    b = clients(stack.b2.base, editor["token"]).connect()
    join(a, page)
    join(b, page)
    before = ask(a, "When is the wedding?")
    b.wait_done(before)

    removal = f"/api/pages/{page['id']}/editors/{editor['id']}"
    Api(stack.b1.base).req("DELETE", removal, owner["token"], expect=204)
    assert _room_closed(b, page)["reason"] == "access_revoked"
    seen = len(b.events)

    after = ask(a, "Where is the venue?")
    a.wait_done(after)
    time.sleep(1)  # let any stray relay delivery arrive before looking
    leaked = [d for e, d in b.events[seen:] if e == "newMessage"]
    assert leaked == [], f"the removed editor still received {leaked}"
    assert not b.disconnected.is_set(), "the socket itself stays open (other pages)"
    out = b.call("joinRoom", {"room": f"page-{page['id']}"})
    assert out["code"] == "not_found", "and cannot join again"


def test_deleting_a_page_empties_its_room(stack, couple, clients, api):
    owner, editor, page = couple
    b = clients(stack.b2.base, editor["token"]).connect()
    join(b, page)
    api.req("DELETE", f"/api/pages/{page['id']}", owner["token"], expect=204)
    assert _room_closed(b, page)["reason"] == "access_revoked"
