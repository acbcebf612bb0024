"""The Redis client for pub/sub, streams, flags and claims: one server, or a Redis Cluster
(``AGENT_REDIS_MODE=cluster``, ``AGENT_REDIS_URL`` = comma-separated seed nodes)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import redis
from redis.cluster import ClusterNode, RedisCluster

from app.core.config import Settings


def connect(settings: Settings, **options: Any) -> redis.Redis:
    if not settings.redis_cluster:
        return redis.Redis.from_url(settings.redis_url, health_check_interval=30, **options)
    nodes = []
    password = None
    for url in filter(None, (u.strip() for u in settings.redis_url.split(","))):
        parsed = urlparse(url)
        nodes.append(ClusterNode(parsed.hostname or "127.0.0.1", parsed.port or 6379))
        password = password or parsed.password
    # RedisCluster routes each command (and each script, by its first key) to the node
    # owning the slot, and follows MOVED/ASK when slots move.
    return RedisCluster(startup_nodes=nodes, password=password, **options)  # type: ignore[return-value]
