"""Waiting for one future with a deadline, cheaply enough for every store call.

Each store call waits for a future that another thread completes (SQLite's thread, the
Cassandra driver's I/O thread), and bounds that wait. `asyncio.wait_for` and
`asyncio.timeout` look up the running loop and the current task several times per call,
and on Python 3.11 each lookup is a `getpid` system call (its check for a fork, gone in
3.12). In a py-spy profile of the embedded 1:1 closed loop those calls were 11 % of the
event loop's thread (docs/hot-path.md). `within` takes the loop from its caller and arms
one timer.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T")


class _Expiry:
    """The timer's callback: cancels the future and remembers that it did."""

    __slots__ = ("fired", "future")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.fired = False

    def __call__(self) -> None:
        if not self.future.done():
            self.fired = True
            self.future.cancel()


async def within(loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], seconds: float) -> T:
    """`future`'s result. If it is not done within `seconds` it is cancelled and this
    raises TimeoutError; a cancellation of the waiting task propagates as CancelledError,
    as with `asyncio.wait_for`. `loop` is the running loop, `future` one of its futures
    (to wait without cancelling it, pass `asyncio.shield(future)`)."""
    expiry = _Expiry(future)
    timer = loop.call_later(seconds, expiry)
    try:
        return await future
    except asyncio.CancelledError:
        task = asyncio.current_task(loop)
        # The deadline cancelled the future, and nobody cancelled this task meanwhile
        # (that cancellation must win, as it does in asyncio.timeout).
        if expiry.fired and (task is None or task.cancelling() == 0):
            raise TimeoutError(f"not done within {seconds:g} s") from None
        raise
    finally:
        timer.cancel()
