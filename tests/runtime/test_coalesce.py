"""Group commit for stores without transactions: batching, durability, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chatconnect.runtime.coalesce import Coalescer


class Store:
    """Records each write; a write takes until `release` is set, or fails if told to."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.written: set[int] = set()
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next: Exception | None = None

    async def write(self, items: Sequence[int]) -> None:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.written.update(items)


async def test_writes_that_arrive_during_a_write_go_together_in_the_next() -> None:
    store = Store()
    coalescer = Coalescer(store.write, max_batch=100)
    store.release.clear()
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)  # the first write is now in flight
    others = [asyncio.create_task(coalescer.submit(n)) for n in range(1, 11)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in [first, *others])  # nothing returns unwritten
    store.release.set()
    await asyncio.gather(first, *others)
    assert store.batches == [[0], list(range(1, 11))]
    assert store.written == set(range(11))


async def test_a_batch_never_exceeds_its_limit() -> None:
    store = Store()
    coalescer = Coalescer(store.write, max_batch=4)
    await asyncio.gather(*(coalescer.submit(n) for n in range(10)))
    assert [len(batch) for batch in store.batches] == [4, 4, 2]
    assert store.written == set(range(10))


async def test_a_failed_write_fails_its_own_callers_only() -> None:
    store = Store()
    coalescer = Coalescer(store.write, max_batch=100)
    store.release.clear()
    store.fail_next = ConnectionError("store away")
    doomed = [asyncio.create_task(coalescer.submit(n)) for n in range(3)]
    await asyncio.sleep(0)
    later = asyncio.create_task(coalescer.submit(7))
    store.release.set()
    for task in doomed:
        with pytest.raises(ConnectionError, match="store away"):
            await task
    await later
    assert store.written == {7}


async def test_a_caller_that_gives_up_leaves_the_others_written() -> None:
    store = Store()
    coalescer = Coalescer(store.write, max_batch=100)
    store.release.clear()
    impatient = asyncio.create_task(coalescer.submit(1))
    patient = asyncio.create_task(coalescer.submit(2))
    await asyncio.sleep(0)
    impatient.cancel()
    store.release.set()
    await patient
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert store.written == {1, 2}  # already handed to the store: written all the same
