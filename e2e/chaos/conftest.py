"""Fixtures of the chaos suite; the stack itself is in harness.py."""

import pytest

from .harness import TURN_BOUND_S, Chaos, chaos_stack, new_user

__all__ = ["TURN_BOUND_S", "Chaos", "new_user"]


@pytest.fixture(scope="session")
def chaos():
    with chaos_stack() as c:
        yield c
