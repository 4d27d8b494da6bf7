"""A FIFO with one consumer, for the per-connection queues of the gateway.

`asyncio.Queue` builds four deques up front (items, waiting getters, waiting putters, and
its `join` event's waiters), about 3 KB even when empty. A gateway keeps several queues
per open connection, each with exactly one reader and no use for `join`, so at 10,000
idle connections those empty deques alone cost over 100 MB. A Mailbox holds a deque of
items only while it has items; one slot for its reader; and a deque of putters only
while a put waits. (An empty deque still takes about 760 bytes: an idle connection's
mailboxes are empty nearly all the time, and one that held its handshake's frames would
otherwise keep that deque for the life of the connection.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Items in arrival order for one reader at a time; `capacity` 0 means unbounded.

    The same names and errors as `asyncio.Queue` (`put`, `put_nowait`, `get`,
    `get_nowait`, `empty`, `full`, QueueFull, QueueEmpty) for the subset a single
    consumer needs."""

    __slots__ = ("_capacity", "_items", "_loop", "_putters", "_reader")

    def __init__(self, capacity: int = 0) -> None:
        self._items: deque[T] | None = None
        self._capacity = capacity
        self._reader: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """Learnt at the first wait: looking the running loop up costs a getpid system
        call on Python 3.11 (runtime/deadline.py), and a stream's reader waits for every
        frame."""

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self._capacity <= len(self)

    def put_nowait(self, item: T) -> None:
        """Adds `item`; raises asyncio.QueueFull when the mailbox is full."""
        if self.full():
            raise asyncio.QueueFull
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def put(self, item: T) -> None:
        """Adds `item`, waiting while the mailbox is full (putters go in arrival order)."""
        while self.full():
            if self._putters is None:
                self._putters = deque()
            waiter = self._running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled: give the turn this putter may have been woken for to the next.
                if self._putters is not None and waiter in self._putters:
                    self._putters.remove(waiter)
                if not self.full():
                    self._wake_putter()
                raise
        self.put_nowait(item)

    def get_nowait(self) -> T:
        """The oldest item; raises asyncio.QueueEmpty when there is none."""
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        self._wake_putter()
        return item

    async def get(self) -> T:
        """The oldest item, waiting for one. Only one reader may wait at a time."""
        while not self._items:
            if self._reader is not None:
                raise RuntimeError("a Mailbox has one reader; another is already waiting")
            self._reader = self._running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        return self.get_nowait()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            waiter = putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if putters is not None and not putters:
            self._putters = None
