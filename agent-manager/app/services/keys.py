"""Redis key names shared with the Rust backend (documented in docs/agent-manager.md)."""


def channel(session_id: str) -> str:
    """Pub/sub channel with every streamed item."""
    return f"chat:{session_id}"


def session_stream(session_id: str) -> str:
    """Durable per-session stream (resume after a reconnect)."""
    return f"chat:stream:{session_id}"


def cancel_flag(message_id: str) -> str:
    """Set (any value) to stop the answer to ``message_id``."""
    return f"chat:cancel:{message_id}"


def claim(message_id: str) -> str:
    """Idempotency claim: which task answers ``message_id`` and whether it has finished."""
    return f"chat:claim:{message_id}"


def turn(message_id: str) -> str:
    """Turn state shared with the backend: ``next_seq``, ``at_ms`` (Redis time of the last
    item), ``final`` once done/error went out, ``failed`` once the backend's deadline failed
    it (nothing may be published after that)."""
    return f"chat:turn:{message_id}"
