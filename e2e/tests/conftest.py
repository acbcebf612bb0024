import os

import pytest

from .client import Api, ChatClient
from .stack import Stack


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    s.database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite://{s.workdir}/e2e.db?mode=rwc"
    try:
        s.start_agent()
        # One after the other: the first applies the migrations.
        s.b1 = s.start_backend("backend-1")
        s.b2 = s.start_backend("backend-2")
        yield s
    finally:
        s.stop_all()
        failed = [p for p in s.procs if p.popen.returncode not in (0, -15, None)]
        for p in failed:
            print(f"--- {p.name} (exit {p.popen.returncode}) ---\n{p.tail()}")


@pytest.fixture
def api(stack):
    return Api(stack.b1.base)


@pytest.fixture
def couple(stack, api):
    """An owner with a page and an editor on it; returns (owner, editor, page)."""
    owner = api.register("owner")
    editor = api.register("editor")
    page = api.create_page(owner)
    api.req(
        "POST", f"/api/pages/{page['id']}/editors", owner["token"], {"email": editor["email"]}, expect=201
    )
    return owner, editor, page


@pytest.fixture
def clients():
    made: list[ChatClient] = []

    def make(base: str, token: str | None) -> ChatClient:
        c = ChatClient(base, token)
        made.append(c)
        return c

    yield make
    for c in made:
        c.disconnect()
