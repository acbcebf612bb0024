"""Redis key names shared with the Rust backend (documented in docs/agent-manager.md).

On a Redis Cluster (``AGENT_REDIS_MODE=cluster``) a session's keys carry the hash tag
``{chat:<session_id>}`` -- the channel's own name -- so the channel ``chat:<session_id>``,
the session stream and the session's turn hashes share one slot, as the publish script
needs. A single server keeps the plain names."""


def _tag(session_id: str) -> str:
    return "{chat:" + session_id + "}"


def channel(session_id: str) -> str:
    """Pub/sub channel with every streamed item (the same name in both modes)."""
    return f"chat:{session_id}"


def session_stream(session_id: str, cluster: bool = False) -> str:
    """Durable per-session stream (resume after a reconnect)."""
    return f"chat:stream:{_tag(session_id) if cluster else session_id}"


def cancel_flag(message_id: str) -> str:
    """Set (any value) to stop the answer to ``message_id``."""
    return f"chat:cancel:{message_id}"


def claim(message_id: str) -> str:
    """Idempotency claim: which task answers ``message_id`` and whether it has finished."""
    return f"chat:claim:{message_id}"


def turn(session_id: str, message_id: str, cluster: bool = False) -> str:
    """Turn state shared with the backend: ``next_seq``, ``at_ms`` (Redis time of the last
    item), ``final`` once done/error went out, ``failed`` once the backend's deadline failed
    it (nothing may be published after that)."""
    if cluster:
        return f"chat:turn:{_tag(session_id)}:{message_id}"
    return f"chat:turn:{message_id}"
