"""Many concurrent small writes as one: group commit for a store without transactions.

A large group's message is acknowledged by hundreds of members within milliseconds, and
each acknowledgement is a tiny write. Made one by one they cost a round trip each; made
together they cost one. Nothing waits on a timer: whatever arrives while a write is in
flight goes into the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Hands everything submitted while a flush runs to the next flush, as one batch.

    `submit` returns once the flush that covers its item has succeeded, and raises that
    flush's error otherwise, so each caller's write is exactly as durable as if it had
    been made alone.
    """

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[None]], *, max_batch: int) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Writes `item` with whatever else is waiting; returns once it is written."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, written))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        await written

    async def _flush_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._flush([item for item, _ in batch])
            except asyncio.CancelledError:  # shutting down: nobody is left waiting
                for _, written in [*batch, *self._pending]:
                    written.cancel()
                raise
            except Exception as exc:  # every waiter gets the error of its own batch
                for _, written in batch:
                    if not written.done():  # a cancelled caller no longer waits
                        written.set_exception(exc)
            else:
                for _, written in batch:
                    if not written.done():
                        written.set_result(None)
