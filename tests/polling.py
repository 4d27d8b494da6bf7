"""Waiting for something a running system does on its own time (a heartbeat, a
reconciliation), without guessing how long it takes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], what: str, *, timeout: float = 20.0) -> T:
    """Polls `check` until it returns something truthy; fails with the last value seen
    after `timeout` seconds. Assertion errors inside `check` count as "not yet"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            result = await check()
            if result:
                return result
            last = result
        except AssertionError as error:
            last = error
        if loop.time() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s; last seen: {last!r}")
        await asyncio.sleep(0.2)
