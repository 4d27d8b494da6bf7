"""Last seen end to end: real time while connected, durable in coalesced writes (never per
message), and read from the durable store when the ephemeral one knows nothing."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis.asyncio as aioredis

from chatconnect.client import Account
from chatconnect.presence.v1 import presence_service_pb2 as pb
from tests.conftest import Server, running_server

from .durable import last_seen_row
from .helpers import OFFLINE, stub


async def _row_appears(server: Server, user_id: str) -> tuple[float, float]:
    for _ in range(50):
        row = await last_seen_row(server, user_id)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("no durable last-seen row was written")


@pytest.mark.settings(presence={"device_heartbeat_seconds": 0.2})
async def test_last_seen_is_written_once_per_interval_not_per_message(
    any_server: Server,
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    client = any_server.client(alice)
    await client.connect()
    try:
        # Coming online writes once; then nothing until last_seen_write_interval (60 s).
        first = await _row_appears(any_server, alice.user_id)
        for n in range(20):
            await client.send_text(bob.user_id, f"message {n}")
            await asyncio.sleep(0.05)  # several lease renewals happen meanwhile
        assert await last_seen_row(any_server, alice.user_id) == first
    finally:
        await client.close()
    closed_at = time.time()
    # Going offline writes at once, with the real time.
    row = await _row_changes(any_server, alice.user_id, first)
    assert closed_at - 1 <= row[0] <= time.time()


async def _row_changes(
    server: Server, user_id: str, old: tuple[float, float]
) -> tuple[float, float]:
    for _ in range(50):
        row = await last_seen_row(server, user_id)
        if row is not None and row != old:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the durable last-seen row was not written again")


@pytest.mark.settings(presence={"device_heartbeat_seconds": 0.2})
async def test_last_seen_survives_losing_the_ephemeral_store(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    client = any_server.client(alice)
    await client.connect()
    first = await _row_appears(any_server, alice.user_id)
    await client.close()
    row = await _row_changes(any_server, alice.user_id, first)
    settings = any_server.settings
    if settings.server.store == "scylla":
        # Redis lost its state (restarted empty): the same server answers from the
        # durable row.
        client_redis = aioredis.Redis.from_url(settings.server.redis_url)
        try:
            assert await client_redis.delete(f"cc:presence:{{{alice.user_id}}}") == 1
        finally:
            await client_redis.aclose()
        target = any_server
        async with target.channel() as channel:
            response = await _get(channel, bob, alice.user_id)
    else:
        # A new process (empty memory) on the same database.
        async with running_server(settings.server.data_dir) as fresh, fresh.channel() as channel:
            response = await _get(channel, bob, alice.user_id)
    [presence] = response.presences
    assert presence.state == OFFLINE
    assert presence.last_seen_time.ToMicroseconds() / 1e6 == pytest.approx(row[0], abs=1e-3)


async def _get(channel: grpc.aio.Channel, viewer: Account, user_id: str) -> pb.GetPresenceResponse:
    request = pb.GetPresenceRequest(user_ids=[user_id])
    return await stub(channel).GetPresence(request, metadata=viewer.metadata())
