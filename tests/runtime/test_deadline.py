"""`within`: a bounded wait for one future, as the store adapters use it for every call."""

from __future__ import annotations

import asyncio

import pytest

from chatconnect.runtime.deadline import within


async def test_a_future_done_in_time_gives_its_result_and_leaves_no_timer() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    loop.call_later(0.01, future.set_result, "row")
    assert await within(loop, future, 5.0) == "row"
    # The deadline's timer went with the wait: nothing fires into the finished future.
    await asyncio.sleep(0.02)
    assert future.result() == "row"


async def test_a_failure_comes_through_as_itself() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    future.set_exception(ValueError("disk"))
    with pytest.raises(ValueError, match="disk"):
        await within(loop, future, 5.0)


async def test_past_the_deadline_the_future_is_cancelled_and_timeout_raised() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    with pytest.raises(TimeoutError, match=r"within 0\.05 s"):
        await within(loop, future, 0.05)
    assert future.cancelled()


async def test_a_shielded_future_outlives_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    with pytest.raises(TimeoutError):
        await within(loop, asyncio.shield(future), 0.01)
    assert not future.done()
    future.set_result("later")
    assert await within(loop, asyncio.shield(future), 0.01) == "later"


async def test_cancelling_the_waiting_task_is_a_cancellation_not_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    waiting = asyncio.create_task(within(loop, future, 5.0))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert future.cancelled()


async def test_a_cancellation_arriving_with_the_deadline_still_wins() -> None:
    """The deadline fires and, before the waiting task runs again, somebody cancels the
    task (a client hanging up, shutdown): the task must end cancelled, as it would under
    asyncio.timeout, not swallow the cancellation as a timeout."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    waiting: asyncio.Task[str] | None = None

    def cancel_the_waiter(_: asyncio.Future[str]) -> None:
        # Registered before the waiter's own wake-up, so it runs first.
        assert waiting is not None
        waiting.cancel()

    future.add_done_callback(cancel_the_waiter)
    waiting = asyncio.create_task(within(loop, future, 0.01))
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert future.cancelled()
