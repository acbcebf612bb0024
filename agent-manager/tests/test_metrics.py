"""Prometheus metrics: the API's /metrics behind its token, the worker's own endpoint, and
figures that move when a chat is answered."""

import re
import time
import urllib.request

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.config import get_settings

from .conftest import AUTH, METRICS_TOKEN, WORKER_METRICS_PORT, chat_body, collect, subscribed
from .samples import KO_CONTEXT

BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` carrying every given label (0 if none yet)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{[^}}]*\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def scrape_api(api) -> str:
    response = api.get("/metrics", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def scrape_worker() -> str:
    url = f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_metrics_are_off_without_a_token_and_refused_with_a_wrong_one(api):
    settings = get_settings().model_copy(update={"metrics_token": None})
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics", headers=BEARER).status_code == 404
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "agent_queue_depth" in scrape_api(api)


def test_an_answered_chat_moves_the_api_and_worker_figures(api, worker, redis_client):
    api_before, worker_before = scrape_api(api), scrape_worker()
    body = chat_body("예식장 위치 알려줘", KO_CONTEXT)
    with subscribed(redis_client, body["session_id"]) as pubsub:
        assert api.post("/chat", json=body, headers=AUTH).status_code == 202
        assert collect(pubsub, body["message_id"])[-1]["type"] == "done"
    api_after, worker_after = scrape_api(api), scrape_worker()

    name = "agent_enqueued_total"
    enqueued = sample(api_after, name, outcome="accepted") - sample(
        api_before, name, outcome="accepted"
    )
    assert enqueued >= 1
    # The task counter is bumped as the task returns, just after its last item.
    name = "agent_tasks_total"
    for _ in range(50):
        if sample(worker_after, name, outcome="done") > sample(worker_before, name, outcome="done"):
            break
        time.sleep(0.1)
        worker_after = scrape_worker()
    assert sample(worker_after, name, outcome="done") > sample(worker_before, name, outcome="done")
    name = "agent_time_to_first_item_seconds_count"
    assert sample(worker_after, name) > sample(worker_before, name)
