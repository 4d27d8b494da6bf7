"""Shared fixtures: a real ChatConnect server on loopback and real SDK clients.

`server` starts the whole system in this test's event loop, listening on a free loopback
port with its own data directory; tests talk to it only through gRPC. Settings can be
changed per test with `@pytest.mark.settings(section={"key": value})`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from chatconnect.cli import DEV_TEST_CODE
from chatconnect.client import Account, ChatClient, link_device, register_account
from chatconnect.runtime import logging as runtime_logging
from chatconnect.runtime.app import SERVED
from chatconnect.runtime.server import serve
from chatconnect.runtime.settings import Settings, load_settings
from chatconnect.storage.cql_config import ScyllaConfig
from tests.servers import redis_url

pytest_plugins = ["tests.scylla", "tests.devices.backends", "tests.kube"]

_numbers = itertools.count(random.randint(0, 10_000))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**sections): settings overrides for `server`")
    runtime_logging.configure("warning", "console")


def fictional_number() -> str:
    """A fresh fictional phone number (+1 NXX 555-01XX) for registration."""
    n = next(_numbers)
    return f"+1{200 + (n // 100) % 800}55501{n % 100:02d}"


async def send_through_a_failure(
    sender: ChatClient,
    recipient: ChatClient,
    recipient_user_id: str,
    *,
    total: int,
    fail_at: int,
    fail: Callable[[], None],
) -> None:
    """Sends `total` texts, calling `fail` (a server killed, say) before text `fail_at`;
    the recipient must receive every one, in order, exactly once."""
    sent = []
    for i in range(total):
        if i == fail_at:
            fail()
        result = await sender.send_text(recipient_user_id, f"n{i}")
        sent.append(result.server_message_id)
    texts = [(await recipient.receive_message(timeout=20)).text for _ in range(total)]
    assert texts == [f"n{i}" for i in range(total)]
    with pytest.raises(TimeoutError):
        await recipient.receive_message(timeout=0.5)
    assert len(set(sent)) == total


@dataclass
class Server:
    """A running server: its address and settings."""

    target: str
    settings: Settings

    async def register(self) -> Account:
        """Registers a new account with a primary device."""
        return await register_account(self.target, fictional_number(), code=DEV_TEST_CODE)

    async def link(self, approver: Account) -> Account:
        """Links a new device to `approver`'s account."""
        return await link_device(self.target, approver)

    def client(self, account: Account, **options: Any) -> ChatClient:
        """A client for `account` (not yet connected)."""
        return ChatClient(self.target, account, **options)

    def channel(self) -> grpc.aio.Channel:
        """A raw channel to the server."""
        return grpc.aio.insecure_channel(self.target)


def distributed_overrides(config: ScyllaConfig, redis: str) -> dict[str, dict[str, Any]]:
    """Settings that put a server on the test ScyllaDB keyspace and a Redis."""
    return {
        "server": {"store": "scylla", "bus": "redis", "redis_url": redis},
        "scylla": {
            "contact_points": config.contact_points,
            "port": config.port,
            "keyspace": config.keyspace,
            "replication": config.replication,
        },
    }


@contextlib.asynccontextmanager
async def running_server(
    data_dir: Path, *sections: dict[str, dict[str, Any]]
) -> AsyncIterator[Server]:
    """The whole system in this event loop, on a free loopback port; `sections` override
    settings, later ones winning."""
    overrides: dict[str, dict[str, Any]] = {
        "server": {
            "listen": "127.0.0.1:0",
            "data_dir": str(data_dir),
            "drain_seconds": 0.5,
            "sqlite_synchronous": "NORMAL",
        },
        "users": {"test_numbers_code": DEV_TEST_CODE},
        # Every test server links from 127.0.0.1, and distributed ones share the test Redis
        # and with it the per-IP link bucket: tests of that limit lower it themselves.
        "devices": {"link_begins_per_minute": 100_000},
        "logging": {"level": "warning"},
    }
    for extra in sections:
        for section, values in extra.items():
            overrides.setdefault(section, {}).update(values)
    settings = load_settings(None, env={}, overrides=overrides)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings,
            SERVED,
            on_ready=ready.set_result,
            stop=stop,
        )
    )
    done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield Server(ready.result(), settings)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _marked(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    marker = request.node.get_closest_marker("settings")
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The whole system, embedded, on a free loopback port."""
    async with running_server(tmp_path / "data", _marked(request)) as running:
        yield running


@pytest.fixture
async def scylla_server(
    request: pytest.FixtureRequest, tmp_path: Path, scylla_keyspace: ScyllaConfig
) -> AsyncIterator[Server]:
    """The whole system on the test ScyllaDB keyspace and the test Redis."""
    distributed = distributed_overrides(scylla_keyspace, redis_url())
    async with running_server(tmp_path / "data", distributed, _marked(request)) as running:
        yield running


@pytest.fixture(params=["embedded", "distributed"])
async def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The whole system twice: embedded (SQLite, in-process bus), then on the test
    ScyllaDB keyspace and the test Redis. For end-to-end tests every store must pass."""
    sections = [_marked(request)]
    if request.param == "distributed":
        keyspace: ScyllaConfig = request.getfixturevalue("scylla_keyspace")
        sections.insert(0, distributed_overrides(keyspace, redis_url()))
    async with running_server(tmp_path / "data", *sections) as running:
        yield running


@pytest.fixture
async def clients(server: Server) -> AsyncIterator[Callable[[Account], Awaitable[ChatClient]]]:
    """Connects clients and closes them after the test."""
    opened: list[ChatClient] = []

    async def connect(account: Account, **options: Any) -> ChatClient:
        client = server.client(account, **options)
        await client.connect()
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()
