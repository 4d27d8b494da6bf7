"""Fixtures of the end-to-end device-sync tests: SDK clients on `any_server`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chatconnect.client import Account, ChatClient
from tests.conftest import Server


@pytest.fixture
async def connect(any_server: Server) -> AsyncIterator[Callable[[Account], Awaitable[ChatClient]]]:
    """Connects SDK clients to `any_server` and closes them after the test."""
    opened: list[ChatClient] = []

    async def open_client(account: Account, **options: Any) -> ChatClient:
        client = any_server.client(account, **options)
        await client.connect()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()
