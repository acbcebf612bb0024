"""HTTP edge: service token, validation, health."""

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.config import get_settings

from .conftest import AUTH, REDIS_URL, TEST_DB, chat_body
from .samples import KO_CONTEXT


@pytest.mark.parametrize(
    "headers", [{}, {"X-Service-Token": "wrong"}, {"X-Service-Token": ""}, {"Authorization": "x"}]
)
def test_chat_requires_the_service_token(api, headers):
    response = api.post("/chat", json=chat_body("언제?", KO_CONTEXT), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    stop = api.post("/chat/msg-1/stop", headers=headers)
    assert stop.status_code == 401


def test_token_header_name_is_configurable():
    settings = get_settings().model_copy(update={"service_token_header": "X-Agent-Key"})
    with TestClient(create_app(settings)) as client:
        body = chat_body("", {})  # invalid body: reaching 422 proves auth passed
        assert client.post("/chat", json=body, headers=AUTH).status_code == 401
        ok = client.post("/chat", json=body, headers={"X-Agent-Key": AUTH["X-Service-Token"]})
        assert ok.status_code == 422


def test_unconfigured_token_refuses_everything():
    settings = get_settings().model_copy(update={"service_token": None})
    with TestClient(create_app(settings)) as client:
        response = client.post("/chat", json=chat_body("hi", {}), headers=AUTH)
        assert response.status_code == 401


BAD_BODIES = [
    {"message": ""},
    {"message": "   "},
    {"message": "x" * 4001},
    {"session_id": "has space"},
    {"session_id": "a" * 129},
    {"message_id": None},
    {"wedding_context": "not an object"},
    {"wedding_context": {"blob": "x" * 70_000}},
    {"history": [{"role": "robot", "content": "hi"}]},
    {"history": [{"role": "user", "content": "x"}] * 51},
    {"unexpected": 1},
]


@pytest.mark.parametrize("override", BAD_BODIES)
def test_bad_bodies_are_422(api, override):
    body = chat_body("언제예요?", KO_CONTEXT, **override)
    response = api.post("/chat", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]


def test_missing_fields_and_non_json_are_422(api):
    assert api.post("/chat", json={"message": "hi"}, headers=AUTH).status_code == 422
    response = api.post(
        "/chat", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_numeric_ids_are_accepted_as_strings(api, worker):
    body = chat_body("hi", {}, user_id=7, page_id=42)
    response = api.post("/chat", json=body, headers=AUTH)
    assert response.status_code == 202


def test_stop_validates_message_id(api):
    assert api.post("/chat/bad%20id/stop", headers=AUTH).status_code == 422


def test_health_ok_with_redis_and_worker(api, worker):
    response = api.get("/health")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["redis"] == {"ok": True}
    assert data["worker"]["ok"] is True
    assert worker in data["worker"]["workers"]


def test_health_503_when_no_worker_answers():
    # a broker database no worker listens on: the ping gets no reply within the timeout
    empty_db = (TEST_DB + 1) % 16
    broker = REDIS_URL.rsplit("/", 1)[0] + f"/{empty_db}"
    settings = get_settings().model_copy(
        update={"broker_url": broker, "health_ping_timeout_seconds": 1.0}
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "degraded"
    assert data["redis"] == {"ok": True}
    assert data["worker"]["ok"] is False
    assert data["worker"]["workers"] == []


def test_health_503_when_redis_is_down():
    down = "redis://127.0.0.1:1/0"
    settings = get_settings().model_copy(
        update={"redis_url": down, "broker_url": down, "health_ping_timeout_seconds": 0.3}
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    data = response.json()
    assert data["redis"]["ok"] is False
    assert data["worker"]["ok"] is False


def test_chat_503_when_the_broker_is_down():
    down = "redis://127.0.0.1:1/0"
    settings = get_settings().model_copy(update={"redis_url": down, "broker_url": down})
    with TestClient(create_app(settings)) as client:
        response = client.post("/chat", json=chat_body("hi", {}), headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"
