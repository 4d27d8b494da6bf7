"""The contract of the PresenceStore port, run against the in-process and the Redis adapter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.inprocess import InProcessPresenceStore
from chatconnect.presence.ports import PresenceStore
from chatconnect.presence.redis import RedisPresenceStore
from tests.servers import redis_url

NOW = 1_700_000_000.0
TTL = 30.0
ONLINE, AWAY = PresenceState.ONLINE, PresenceState.AWAY
PHONE, WEB = DeviceKind.PHONE, DeviceKind.WEB


@pytest.fixture(params=["inprocess", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PresenceStore]:
    if request.param == "inprocess":
        yield InProcessPresenceStore()
        return
    client = aioredis.Redis.from_url(redis_url())
    try:
        # A namespace of its own: the store starts empty.
        yield RedisPresenceStore(client, namespace=f"t{uuid.uuid4().hex[:8]}")
    finally:
        await client.aclose()


@pytest.fixture
def alice() -> str:
    return f"alice-{uuid.uuid4().hex[:8]}"


async def test_a_user_never_seen_is_offline_without_last_seen(store: PresenceStore) -> None:
    assert await store.read(["nobody"], NOW) == [UserPresence("nobody", (), None)]


async def test_a_heartbeat_puts_a_device_online_until_its_lease_ends(
    store: PresenceStore, alice: str
) -> None:
    phone = DeviceAddress(alice, 1)
    assert await store.heartbeat(phone, PHONE, ONLINE, NOW, ttl_seconds=TTL)
    [seen] = await store.read([alice], NOW + TTL - 1)
    assert seen == UserPresence(alice, (DevicePresence(1, PHONE, ONLINE, NOW),), None)
    assert seen.online
    # The gateway holding it crashed: no more heartbeats, and the lease runs out.
    [gone] = await store.read([alice], NOW + TTL)
    assert gone == UserPresence(alice, (), NOW)
    assert not gone.online


async def test_heartbeats_report_only_what_others_would_see_change(
    store: PresenceStore, alice: str
) -> None:
    phone = DeviceAddress(alice, 1)
    assert await store.heartbeat(phone, PHONE, ONLINE, NOW, ttl_seconds=TTL)
    assert not await store.heartbeat(phone, PHONE, ONLINE, NOW + 10, ttl_seconds=TTL)
    assert await store.heartbeat(phone, PHONE, AWAY, NOW + 20, ttl_seconds=TTL)
    assert not await store.heartbeat(phone, PHONE, AWAY, NOW + 25, ttl_seconds=TTL)
    # After the lease ran out, the next heartbeat brings the device back: a change.
    assert await store.heartbeat(phone, PHONE, AWAY, NOW + 25 + TTL, ttl_seconds=TTL)
    [seen] = await store.read([alice], NOW + 26 + TTL)
    assert seen.devices == (DevicePresence(1, PHONE, AWAY, NOW + 25 + TTL),)
    assert not seen.online  # away is not online


async def test_going_offline_records_last_seen_at_once(store: PresenceStore, alice: str) -> None:
    phone, web = DeviceAddress(alice, 1), DeviceAddress(alice, 2)
    await store.heartbeat(phone, PHONE, ONLINE, NOW, ttl_seconds=TTL)
    await store.heartbeat(web, WEB, ONLINE, NOW + 1, ttl_seconds=TTL)
    assert await store.went_offline(web, NOW + 5)
    [seen] = await store.read([alice], NOW + 6)
    assert seen == UserPresence(alice, (DevicePresence(1, PHONE, ONLINE, NOW),), NOW + 5)
    assert await store.went_offline(phone, NOW + 7)
    assert await store.read([alice], NOW + 8) == [UserPresence(alice, (), NOW + 7)]
    # Going offline twice, or after the lease ended, changes nothing others see.
    assert not await store.went_offline(phone, NOW + 9)
    [again] = await store.read([alice], NOW + 10)
    assert again.devices == () and again.last_seen == NOW + 9


async def test_last_seen_never_moves_back(store: PresenceStore, alice: str) -> None:
    phone = DeviceAddress(alice, 1)
    await store.heartbeat(phone, PHONE, ONLINE, NOW, ttl_seconds=TTL)
    await store.went_offline(phone, NOW + 50)
    await store.went_offline(DeviceAddress(alice, 2), NOW + 40)  # a late, older report
    [seen] = await store.read([alice], NOW + 60)
    assert seen.last_seen == NOW + 50


async def test_users_are_read_in_the_order_asked_and_devices_by_id(
    store: PresenceStore, alice: str
) -> None:
    bob = f"bob-{uuid.uuid4().hex[:8]}"
    await asyncio.gather(
        store.heartbeat(DeviceAddress(alice, 3), WEB, ONLINE, NOW, ttl_seconds=TTL),
        store.heartbeat(DeviceAddress(alice, 1), PHONE, AWAY, NOW, ttl_seconds=TTL),
        store.heartbeat(DeviceAddress(bob, 1), PHONE, ONLINE, NOW, ttl_seconds=TTL),
    )
    results = await store.read([bob, "nobody", alice], NOW + 1)
    assert [r.user_id for r in results] == [bob, "nobody", alice]
    assert [d.device_id for d in results[2].devices] == [1, 3]
    assert [(d.kind, d.state) for d in results[2].devices] == [(PHONE, AWAY), (WEB, ONLINE)]
    assert results[0].online and not results[1].online and results[2].online
