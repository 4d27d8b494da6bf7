"""Fixtures of the groups tests: registered accounts calling GroupsService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.conftest import Server

from .helpers import GroupsCaller

People = Callable[[int], Awaitable[list[GroupsCaller]]]


@pytest.fixture
async def people(any_server: Server) -> AsyncIterator[People]:
    """Registers accounts (on both stacks) and gives each a GroupsService caller."""
    opened: list[GroupsCaller] = []

    async def make(count: int) -> list[GroupsCaller]:
        accounts = await asyncio.gather(*(any_server.register() for _ in range(count)))
        callers = [GroupsCaller(any_server, a) for a in accounts]
        opened.extend(callers)
        return callers

    yield make
    for caller in opened:
        await caller.close()
