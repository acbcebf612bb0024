"""Local fake model servers speaking the real streaming wire formats over HTTP.

- OpenAI-compatible ``POST .../chat/completions`` with ``"stream": true``: Server-Sent Events
  of ``data: {chat.completion.chunk}`` lines, ending with ``data: [DONE]``. A mid-stream
  failure is a ``data: {"error": {...}}`` line, which the OpenAI SDK raises as ``APIError``.
- Anthropic ``POST /v1/messages`` with ``"stream": true``: named events ``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``),
  ``content_block_stop``, ``message_delta``, ``message_stop``; a mid-stream failure is
  ``event: error`` with ``{"type": "error", "error": {"type": "overloaded_error", ...}}``.

A test gives the server a :class:`Script`: the text pieces to stream, a delay before the
headers and between pieces, and where to fail. The server records every request body and
how many pieces it managed to write before the client went away.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    pieces: list[str]
    delay_before_headers: float = 0.0
    delay_between: float = 0.0
    fail_after: int | None = None  # send an in-stream error after this many pieces
    stall_after: int | None = None  # stop writing (keep the connection open) after this many
    stall_seconds: float = 5.0


@dataclass
class Record:
    path: str
    body: dict[str, Any]
    sent: int = 0
    client_gone: bool = False


@dataclass
class FakeModelServer:
    """One server; ``openai_url`` and ``anthropic_url`` are the base URLs to configure."""

    script: Script = field(default_factory=lambda: Script(pieces=["ok"]))
    requests: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                record = Record(path=self.path, body=body)
                fake.requests.append(record)
                script = fake.script
                time.sleep(script.delay_before_headers)
                if self.path.endswith("/chat/completions"):
                    events = _openai_events(script, body.get("model", "fake"))
                elif self.path.endswith("/messages"):
                    events = _anthropic_events(script, body.get("model", "fake"))
                else:
                    self.send_error(404)
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for kind, payload in events:
                        if kind == "piece_sent":
                            record.sent += 1
                            time.sleep(script.delay_between)
                            continue
                        if kind == "stall":
                            time.sleep(script.stall_seconds)
                            return
                        self.wfile.write(payload)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    record.client_gone = True
                finally:
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _steps(script: Script, piece_event: Any, error_event: bytes) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for n, piece in enumerate(script.pieces):
        if script.fail_after is not None and n == script.fail_after:
            out.append(("write", error_event))
            return out
        if script.stall_after is not None and n == script.stall_after:
            out.append(("stall", b""))
            return out
        out.append(("write", piece_event(piece)))
        out.append(("piece_sent", b""))
    return out


def _openai_events(script: Script, model: str) -> list[tuple[str, bytes]]:
    base = {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    error = _sse({"error": {"message": "upstream model crashed", "type": "server_error"}})
    events = [("write", chunk({"role": "assistant", "content": ""}))]
    steps = _steps(script, lambda p: chunk({"content": p}), error)
    events += steps
    if (steps and steps[-1][0] == "piece_sent") or not script.pieces:
        events.append(("write", chunk({}, "stop")))
        events.append(("write", _sse("[DONE]")))
    return events


def _anthropic_events(script: Script, model: str) -> list[tuple[str, bytes]]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        },
    }
    error = _sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        "error",
    )
    events = [
        ("write", _sse(start, "message_start")),
        (
            "write",
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
        ),
        ("write", _sse({"type": "ping"}, "ping")),
    ]

    def delta(piece: str) -> bytes:
        return _sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
            "content_block_delta",
        )

    steps = _steps(script, delta, error)
    events += steps
    if (steps and steps[-1][0] == "piece_sent") or not script.pieces:
        events += [
            ("write", _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")),
            (
                "write",
                _sse(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": len(script.pieces)},
                    },
                    "message_delta",
                ),
            ),
            ("write", _sse({"type": "message_stop"}, "message_stop")),
        ]
    return events
