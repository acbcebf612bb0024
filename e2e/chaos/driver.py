"""Simulated users for the chaos tests and the soak run: each sends messages one after the
other on a socket to any live backend, and when the socket drops it does what a real
client does -- connects to another instance, sends again what was not acknowledged (same
`client_msg_id`), and resumes the answer it was following. Everything it receives is kept,
so the run can be checked afterwards: every accepted message answered (or failed) exactly
once, every answer whole with contiguous seqs, no `(message_id, seq)` with two contents."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.client import Api, ChatClient
from tests.stack import Backend

log = logging.getLogger("chaos")

QUESTIONS = [
    "주차 되나요?",
    "When is the wedding?",
    "Where is the venue? Show me the map",
    "축의금 계좌 알려주세요",
    "Tell me everything: when, where, parking, directions, gift accounts and the meal?",
    "식사 메뉴가 뭐예요?",
]


@dataclass
class User:
    owner: dict
    page: dict
    alive: Callable[[], list[Backend]]
    #: Longest a turn may take to end (the stated bound plus slack for a busy machine).
    bound: float
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    session_id: str | None = None
    accepted: dict[str, float] = field(default_factory=dict)  # message_id -> when acked
    statuses: dict[str, str] = field(default_factory=dict)  # status in the latest ack
    given_up: set[str] = field(default_factory=set)
    clients: list[ChatClient] = field(default_factory=list)
    resumed_items: list[dict] = field(default_factory=list)
    unacked: list[tuple[str, str]] = field(default_factory=list)
    reconnects: int = 0
    client: ChatClient | None = None
    progress: dict[str, float] = field(default_factory=dict)  # message_id -> last new item
    #: Turns the user learned the end of from resume's stored `messages` (the stream lost
    #: their items, e.g. Redis restarted without persistence): message_id -> status, text.
    resolved: dict[str, dict] = field(default_factory=dict)

    # --- what the user saw ---------------------------------------------------------------
    def copies(self) -> dict[tuple[str, int], list[dict]]:
        seen: dict[tuple[str, int], list[dict]] = {}
        items = [i for c in self.clients for i in _assistant_items(c)] + list(self.resumed_items)
        for item in items:
            seen.setdefault((item["message_id"], item["seq"]), []).append(item)
        return seen

    def view(self, mid: str) -> list[dict]:
        """The answer as the user holds it: one item per seq (copies are checked apart)."""
        by_seq = {seq: items[0] for (m, seq), items in self.copies().items() if m == mid}
        return [by_seq[s] for s in sorted(by_seq)]

    def ended(self, mid: str) -> bool:
        return mid in self.resolved or any(i["type"] in ("done", "error") for i in self.view(mid))

    def outstanding(self) -> list[str]:
        """Answers not complete yet: not ended, or ended with a seq missing (live items are
        at-most-once; a socket that joined a moment late misses some -- resume has them)."""
        return sorted(
            m
            for m in self.accepted
            if m not in self.given_up
            and (not self.ended(m) or (m not in self.resolved and _has_gap(self.view(m))))
        )

    # --- acting -----------------------------------------------------------------------------
    def _connect(self) -> None:
        backends = self.alive()
        random.shuffle(backends)
        last: Exception | None = None
        for b in backends:
            c = ChatClient(b.base, self.owner["token"])
            try:
                c.connect()
                info = c.call("joinRoom", {"room": f"page-{self.page['id']}"})
                if "session_id" not in info:
                    raise ConnectionError(f"join refused: {info}")
            except Exception as e:  # noqa: BLE001 - an instance just killed: try another
                c.disconnect()
                last = e
                continue
            self.clients.append(c)
            self.client = c
            self.session_id = info["session_id"]
            return
        raise ConnectionError(f"no backend took the connection: {last!r}")

    def _resume(self) -> None:
        out = self.outstanding()
        if not out:
            return
        mid = out[0]
        seqs = [i["seq"] for i in self.view(mid)]
        after = -1
        while after + 1 in seqs:
            after += 1
        reply = self.client.call(
            "resume", {"session_id": self.session_id, "message_id": mid, "after_seq": after}
        )
        if "items" not in reply:
            raise ConnectionError(f"resume refused: {reply}")
        self.resumed_items += reply["items"]
        in_items = {i["message_id"] for i in reply["items"]}
        rows = {m["id"]: m for m in reply["messages"]}
        for m in reply["messages"]:
            q = rows.get(m.get("answer_to") or "")
            if m["role"] == "assistant" and q and q["id"] in self.accepted and q["id"] not in in_items:
                self.resolved[q["id"]] = {"status": q["status"], "content": m["content"]}
        for q in rows.values():
            if q["id"] in self.accepted and q["status"] == "failed" and q["id"] not in in_items:
                self.resolved.setdefault(q["id"], {"status": "failed", "content": None})

    def _send(self, cmid: str, text: str) -> None:
        out = self.client.call("chat-message", {"text": text, "client_msg_id": cmid}, timeout=10)
        if "message_id" not in out:
            if out.get("code") == "unavailable":
                time.sleep(0.3)
                return  # stays unacked: sent again
            raise AssertionError(f"message refused: {out}")
        self.accepted.setdefault(out["message_id"], time.monotonic())
        self.statuses[out["message_id"]] = out.get("status", "pending")
        self.unacked.remove((cmid, text))

    def _drop(self) -> None:
        if self.client:
            self.client.disconnect()
        self.client = None

    def run(self, messages: int | None, stop: threading.Event) -> None:
        sent = 0
        while True:
            done_sending = stop.is_set() or (messages is not None and sent >= messages)
            if done_sending and not self.unacked and not self.outstanding():
                break
            try:
                if self.client is None or self.client.disconnected.is_set():
                    self._drop()
                    self._connect()
                    self.reconnects += 1
                    self._resume()
                if self.unacked:
                    self._send(*self.unacked[0])
                    continue
                out = self.outstanding()
                if out:
                    self._wait_end(out)
                    continue
                if not done_sending:
                    self.unacked.append((uuid.uuid4().hex, random.choice(QUESTIONS)))
                    sent += 1
            except Exception as e:  # noqa: BLE001 - the instance died under us: reconnect
                log.info("user %s: %r; reconnecting", self.name, e)
                self._drop()
                time.sleep(0.2)

    def _wait_end(self, out: list[str]) -> None:
        before = {m: len(self.view(m)) for m in out}
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if self.client is None or self.client.disconnected.is_set():
                return
            if not self.outstanding():
                return
            time.sleep(0.05)
        # A client that hears nothing for a while, or sees a seq missing (live items are
        # at-most-once: a Redis restart drops some), asks for the rest with resume.
        now = time.monotonic()
        for mid in out:
            if len(self.view(mid)) != before[mid]:
                self.progress[mid] = now
        stale = [
            m
            for m in self.outstanding()
            if now - self.progress.get(m, self.accepted[m]) > 3 or _has_gap(self.view(m))
        ]
        if stale:
            self._resume()
            for m in stale:
                self.progress[m] = now
        for mid in out:
            if time.monotonic() - self.accepted[mid] > self.bound:
                log.warning("user %s: turn %s did not end within %.0fs", self.name, mid, self.bound)
                self.given_up.add(mid)

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()


def _has_gap(view: list[dict]) -> bool:
    return [i["seq"] for i in view] != list(range(len(view)))


def _assistant_items(c: ChatClient) -> list[dict]:
    with c._lock:
        return [
            d
            for e, d in c.events
            if e == "newMessage" and isinstance(d, dict) and d.get("role") == "assistant"
        ]


@dataclass
class Counts:
    accepted: int = 0
    answered: int = 0
    failed: int = 0
    lost_user_messages: int = 0
    lost_answers: int = 0
    stuck_turns: int = 0
    duplicated_answers: int = 0
    conflicting_items: int = 0
    incomplete_views: int = 0
    failed_then_answered: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        for k, v in vars(other).items():
            if k == "problems":
                self.problems += v
            else:
                setattr(self, k, getattr(self, k) + v)


def stored_messages(api: Api, token: str, session_id: str) -> list[dict]:
    out: list[dict] = []
    before = None
    while True:
        path = f"/api/chat/sessions/{session_id}/messages?limit=100"
        page = api.req("GET", path + (f"&before={before}" if before else ""), token)
        out += page["items"]
        before = page.get("nextCursor")
        if not before:
            return out


def check(user: User, api: Api, settle: float = 15.0) -> Counts:
    """Counts what went wrong for one user, from the database and from what it received.
    The answer is stored a moment after its `done` went out (the completion consumer), so a
    turn still `pending` is looked at again for up to `settle` seconds."""
    deadline = time.monotonic() + settle
    while True:
        c = _check(user, api)
        if not c.stuck_turns or time.monotonic() > deadline:
            return c
        time.sleep(0.5)


def _check(user: User, api: Api) -> Counts:
    c = Counts(accepted=len(user.accepted))
    if not user.session_id:
        return c
    rows = stored_messages(api, user.owner["token"], user.session_id)
    by_id = {m["id"]: m for m in rows}
    answers: dict[str, list[dict]] = {}
    for m in rows:
        if m["role"] == "assistant":
            answers.setdefault(m["answerTo"], []).append(m)
    copies = user.copies()
    for (mid, seq), items in copies.items():
        if any(i != items[0] for i in items[1:]):
            c.conflicting_items += 1
            c.problems.append(f"{mid} seq {seq}: different contents {items}")
    for mid in user.accepted:
        q = by_id.get(mid)
        if q is None:
            c.lost_user_messages += 1
            c.problems.append(f"{mid}: accepted but not stored")
            continue
        view = user.view(mid)
        finals = [i for i in view if i["type"] in ("done", "error")]
        stored = answers.get(mid, [])
        if q["status"] == "pending" or mid in user.given_up:
            c.stuck_turns += 1
            c.problems.append(f"{mid}: still {q['status']} (given up: {mid in user.given_up})")
            continue
        if len(stored) > 1 or len(finals) > 1:
            c.duplicated_answers += 1
            c.problems.append(f"{mid}: {len(stored)} stored answers, {len(finals)} final items")
        if q["status"] in ("answered", "stopped"):
            c.answered += 1
            if not stored:
                c.lost_answers += 1
                c.problems.append(f"{mid}: {q['status']} without a stored answer")
        elif q["status"] == "failed":
            c.failed += 1
            if stored:
                c.failed_then_answered += 1
                c.problems.append(f"{mid}: failed and answered")
        if not finals:
            got = user.resolved.get(mid)
            if got is None:
                c.lost_answers += 1
                c.problems.append(f"{mid}: the user never got the end of the answer")
            elif got["status"] != q["status"] or (stored and got["content"] != stored[0]["content"]):
                c.incomplete_views += 1
                c.problems.append(f"{mid}: resume gave {got['status']} but it is {q['status']}")
            continue
        seqs = [i["seq"] for i in view]
        whole = seqs == list(range(len(seqs))) and view[-1] is finals[0]
        deltas = "".join(i.get("content", "") for i in view if i["type"] == "text-delta")
        if finals[0]["type"] == "done":
            whole = whole and finals[0]["content"] == deltas
            if stored:
                whole = whole and stored[0]["content"] == finals[0]["content"]
        elif q["status"] != "failed":
            c.problems.append(f"{mid}: error item but status {q['status']}")
            c.incomplete_views += 1
        if not whole:
            c.incomplete_views += 1
            c.problems.append(f"{mid}: the user's copy is not whole: seqs {seqs}")
    return c
