import os
import subprocess
import uuid

import pytest

from .client import Api, ChatClient
from .stack import BACKEND_BIN, JWT_SECRET, Stack


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    s.database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite://{s.workdir}/e2e.db?mode=rwc"
    # These tests inject answers for questions no worker answers: a loaded machine must
    # not fail those turns first. The turn deadlines are the chaos suite's (e2e/chaos).
    s.backend_env = {"CHAT_FIRST_ITEM_TIMEOUT_MS": "120000"}
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


@pytest.fixture(autouse=True)
def own_backends_stopped(stack):
    """Stops the instances a test started for itself when it ends, so that no later test
    finds an instance it did not ask for (each one's outbox dispatcher takes any turn)."""
    started_before = len(stack.backends)
    yield
    stack.stop_backends_after(started_before)


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
        "POST", f"/api/pages/{page['id']}/editors", owner["token"], {"email": editor["email"]}, expect=202
    )
    # An invitation makes nobody an editor until the invited user accepts it.
    mine = api.req("GET", "/api/me/editor-invitations", editor["token"])
    invitation = next(i for i in mine if i["pageId"] == page["id"])
    api.req("POST", f"/api/me/editor-invitations/{invitation['id']}/accept", editor["token"], {})
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


@pytest.fixture
def admin_token(stack, api):
    """An access token of a fresh admin. The first admin comes from the command line,
    never from an endpoint."""
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    subprocess.run(
        [str(BACKEND_BIN), "create-admin", "--email", email, "--name", "ops"],
        env={
            **os.environ,
            "DATABASE_URL": stack.database_url,
            "JWT_SECRET": JWT_SECRET,
            "DATA_DIR": str(stack.workdir / "data"),
            "ADMIN_PASSWORD": "correct horse 42",
        },
        check=True,
        capture_output=True,
        timeout=60,
    )
    out = api.req("POST", "/api/auth/login", json={"email": email, "password": "correct horse 42"})
    return out["accessToken"]
