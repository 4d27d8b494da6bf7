"""Teardown that finishes even when the task running it is cancelled.

A stream handler undoes what its stream set up (presence, routes, the registry of open
streams) when the stream ends. gRPC cancels the handler's task when the client resets the
stream, and that reset often lands just after the client's half-close, while the handler
is already tearing down: a cancellation at one of the teardown's awaits would skip the
rest of it and leave the device online until its lease ran out. So the teardown runs as
its own task, which the handler's cancellation does not reach.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from chatconnect.runtime.logging import get_logger

log = get_logger("runtime.teardown")

# asyncio keeps only weak references to tasks: a teardown outliving its caller is held here.
_running: set[asyncio.Task[None]] = set()


async def run_to_end(teardown: Coroutine[Any, Any, None], *, what: str) -> None:
    """Runs `teardown` to its end. If the caller is cancelled meanwhile, the caller gets
    CancelledError at once and the teardown still finishes; a failure is logged, never
    raised, since nothing is left to handle it."""
    task = asyncio.ensure_future(teardown)
    _running.add(task)
    task.add_done_callback(_running.discard)
    task.add_done_callback(lambda done: _log_failure(done, what))
    with contextlib.suppress(Exception):  # logged by _log_failure
        await asyncio.shield(task)


def _log_failure(task: asyncio.Task[None], what: str) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("teardown failed", what=what, error=repr(error), exc_info=error)
