"""A stream's teardown finishes even when the handler running it is cancelled."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from chatconnect.runtime.teardown import run_to_end


async def test_a_caller_cancelled_mid_teardown_leaves_the_teardown_to_finish() -> None:
    steps: list[str] = []
    halfway = asyncio.Event()
    release = asyncio.Event()

    async def teardown() -> None:
        steps.append("first")
        halfway.set()
        await release.wait()
        steps.append("last")

    async def handler() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await run_to_end(teardown(), what="test stream")

    running = asyncio.create_task(handler())
    await asyncio.sleep(0)
    running.cancel()  # the stream ends: the teardown starts
    await asyncio.wait_for(halfway.wait(), 1)
    running.cancel()  # and the client's reset lands in the middle of it
    with pytest.raises(asyncio.CancelledError):
        await running
    assert steps == ["first"]
    release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert steps == ["first", "last"]


async def test_a_failed_teardown_is_logged_and_not_raised() -> None:
    async def teardown() -> None:
        raise ConnectionError("store away")

    with capture_logs() as logs:
        await run_to_end(teardown(), what="test stream")
        await asyncio.sleep(0)
    failures = [entry for entry in logs if entry["event"] == "teardown failed"]
    assert [(f["what"], f["error"]) for f in failures] == [
        ("test stream", "ConnectionError('store away')")
    ]
