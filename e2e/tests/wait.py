"""Waiting for what the stack does in the background."""

import time
from collections.abc import Callable


def eventually(
    check: Callable[[], object],
    what: str,
    timeout: float = 15.0,
    retry_on: tuple[type[BaseException], ...] = (),
) -> None:
    """Polls `check` until it holds; fails with `what` after `timeout` seconds. An
    exception of `retry_on` raised by `check` counts as "not yet" (a node failing over)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except retry_on:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
