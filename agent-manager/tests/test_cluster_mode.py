"""Redis Cluster mode: key names share the channel's slot, and the config refuses a
Celery broker on the Cluster (the end-to-end run on a real Cluster is
scripts/cluster-e2e.sh)."""

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.services import keys


def _slot_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first non-empty {...}, else all of it."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


def test_a_sessions_keys_hash_like_its_channel_on_a_cluster():
    channel = keys.channel("01S")
    for key in (keys.session_stream("01S", cluster=True), keys.turn("01S", "01M", cluster=True)):
        assert _slot_tag(key) == channel, key
    # A single server keeps the contract's names.
    assert keys.session_stream("01S") == "chat:stream:01S"
    assert keys.turn("01S", "01M") == "chat:turn:01M"


def test_cluster_mode_needs_a_broker_of_its_own(monkeypatch):
    monkeypatch.delenv("AGENT_BROKER_URL", raising=False)  # the suite's conftest sets one
    monkeypatch.setenv("AGENT_REDIS_URL", "redis://a:7000,redis://b:7001")
    with pytest.raises(ValidationError, match="AGENT_BROKER_URL"):
        Settings(redis_mode="cluster")
    ok = Settings(redis_mode="cluster", broker_url="redis://broker:6379/0")
    assert ok.redis_cluster and ok.celery_broker_url == "redis://broker:6379/0"
