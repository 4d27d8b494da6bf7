"""The gateway's single-reader queue: order, bounds, waiting putters and cancellation."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from chatconnect.runtime import mailbox
from chatconnect.runtime.mailbox import Mailbox


async def test_items_come_out_in_order_and_a_waiting_reader_is_woken() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not reader.done()
    for n in range(3):
        box.put_nowait(n)
    assert await reader == 0
    assert [box.get_nowait(), box.get_nowait()] == [1, 2]
    assert box.empty()
    with pytest.raises(asyncio.QueueEmpty):
        box.get_nowait()


async def test_a_full_mailbox_refuses_put_nowait_and_holds_put_until_room() -> None:
    box: Mailbox[str] = Mailbox(2)
    box.put_nowait("a")
    box.put_nowait("b")
    assert box.full()
    with pytest.raises(asyncio.QueueFull):
        box.put_nowait("c")
    first, second = asyncio.create_task(box.put("c")), asyncio.create_task(box.put("d"))
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    assert box.get_nowait() == "a"
    await asyncio.sleep(0)
    assert first.done() and not second.done()  # putters go in arrival order
    assert [await box.get(), await box.get()] == ["b", "c"]
    await second
    assert box.get_nowait() == "d"


async def test_a_cancelled_putter_passes_its_turn_on_and_adds_nothing() -> None:
    box: Mailbox[str] = Mailbox(1)
    box.put_nowait("a")
    cancelled, waiting = asyncio.create_task(box.put("x")), asyncio.create_task(box.put("y"))
    await asyncio.sleep(0)
    box.get_nowait()  # wakes the first putter ...
    cancelled.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(waiting, 1)
    assert box.get_nowait() == "y"
    assert box.empty()


async def test_a_cancelled_reader_leaves_the_mailbox_usable() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    box.put_nowait(7)
    assert await asyncio.wait_for(box.get(), 1) == 7


async def test_a_second_waiting_reader_is_a_programming_error() -> None:
    box: Mailbox[int] = Mailbox()
    first = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await box.get()
    first.cancel()


async def test_an_emptied_mailbox_gives_back_the_memory_its_items_and_putters_took() -> None:
    # An idle connection's mailboxes are empty nearly all the time; one that once held
    # frames, or made a sender wait, must not keep paying for that (docs/hot-path.md).
    def held_by_mailboxes() -> int:
        snapshot = tracemalloc.take_snapshot()
        return sum(
            stat.size
            for stat in snapshot.filter_traces(
                [tracemalloc.Filter(True, mailbox.__file__)]
            ).statistics("filename")
        )

    box: Mailbox[int] = Mailbox(1)
    tracemalloc.start()
    try:
        box.put_nowait(0)
        waiting = [asyncio.create_task(box.put(n)) for n in range(1, 4)]
        await asyncio.sleep(0)
        assert held_by_mailboxes() > 1_000  # a deque of items and one of putters
        assert [await box.get() for _ in range(4)] == [0, 1, 2, 3]
        await asyncio.gather(*waiting)
        assert box.empty()
        assert held_by_mailboxes() == 0
    finally:
        tracemalloc.stop()
