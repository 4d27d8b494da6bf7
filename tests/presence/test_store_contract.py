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
from chatconnect.presence.ports import Holder, PresenceStore
from chatconnect.presence.redis import RedisPresenceStore
from tests.servers import redis_url

NOW = 1_700_000_000.0
TTL = 30.0
ONLINE, AWAY, OFFLINE = PresenceState.ONLINE, PresenceState.AWAY, PresenceState.OFFLINE
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
    return str(uuid.uuid4())


def phone_of(user_id: str, holder: str = "c1") -> Holder:
    return Holder(DeviceAddress(user_id, 1), holder, PHONE)


async def test_a_user_never_seen_is_offline_without_last_seen(store: PresenceStore) -> None:
    assert await store.read(["nobody"], NOW) == [UserPresence("nobody", (), None)]


async def test_a_lease_keeps_a_device_online_until_it_runs_out(
    store: PresenceStore, alice: str
) -> None:
    assert await store.hold(phone_of(alice), NOW, ttl_seconds=TTL)
    [seen] = await store.read([alice], NOW + TTL - 1)
    assert seen == UserPresence(alice, (DevicePresence(1, PHONE, ONLINE, NOW, NOW + TTL),), None)
    assert seen.online and seen.state == ONLINE
    # The process holding it crashed: no more renewals, and the lease runs out.
    [gone] = await store.read([alice], NOW + TTL)
    assert gone == UserPresence(alice, (), NOW)
    assert gone.state == OFFLINE


async def test_renewals_report_only_devices_that_come_back(
    store: PresenceStore, alice: str
) -> None:
    phone = phone_of(alice)
    assert await store.hold(phone, NOW, ttl_seconds=TTL)
    assert await store.renew([phone], NOW + 10, ttl_seconds=TTL) == []
    # Lapsed (or the store lost it): the next renewal brings it back, ONLINE.
    back = await store.renew([phone], NOW + 50, ttl_seconds=TTL)
    assert back == [phone.device]
    [seen] = await store.read([alice], NOW + 51)
    assert seen.devices == (DevicePresence(1, PHONE, ONLINE, NOW + 50, NOW + 50 + TTL),)


async def test_a_device_stays_connected_while_any_holder_holds_it(
    store: PresenceStore, alice: str
) -> None:
    connect, subscribe = phone_of(alice, "c1"), phone_of(alice, "s1")
    assert await store.hold(connect, NOW, ttl_seconds=TTL)
    assert not await store.hold(subscribe, NOW + 1, ttl_seconds=TTL)
    assert await store.open_stream(connect.device, NOW + 2) == "s1"
    assert not await store.release(connect, NOW + 2)
    [still] = await store.read([alice], NOW + 3)
    assert still.online
    assert await store.release(subscribe, NOW + 4)
    assert await store.read([alice], NOW + 5) == [UserPresence(alice, (), NOW + 4)]
    assert await store.open_stream(connect.device, NOW + 5) is None
    # Releasing again changes nothing others see.
    assert not await store.release(subscribe, NOW + 6)


async def test_states_are_kept_across_renewals_and_reset_on_return(
    store: PresenceStore, alice: str
) -> None:
    phone = phone_of(alice)
    await store.hold(phone, NOW, ttl_seconds=TTL)
    assert await store.set_state(phone.device, AWAY, NOW + 5) is True
    assert await store.set_state(phone.device, AWAY, NOW + 6) is False
    await store.renew([phone], NOW + 10, ttl_seconds=TTL)
    [away] = await store.read([alice], NOW + 11)
    assert away.state == AWAY and away.last_seen == NOW + 5  # last ONLINE at NOW + 5
    assert away.devices[0].last_active == NOW + 5
    assert await store.set_state(phone.device, OFFLINE, NOW + 12) is True
    [hidden] = await store.read([alice], NOW + 13)
    assert hidden.devices == () and hidden.state == OFFLINE
    # After the lease ran out, the device comes back ONLINE.
    await store.renew([phone], NOW + 100, ttl_seconds=TTL)
    [back] = await store.read([alice], NOW + 101)
    assert back.state == ONLINE


async def test_setting_the_state_of_a_device_without_a_lease_changes_nothing(
    store: PresenceStore, alice: str
) -> None:
    assert await store.set_state(DeviceAddress(alice, 1), AWAY, NOW) is None
    assert await store.read([alice], NOW) == [UserPresence(alice, (), None)]


async def test_last_seen_never_moves_back(store: PresenceStore, alice: str) -> None:
    phone, web = phone_of(alice), Holder(DeviceAddress(alice, 2), "c2", WEB)
    await store.hold(web, NOW, ttl_seconds=TTL)
    await store.hold(phone, NOW + 10, ttl_seconds=TTL)
    await store.release(phone, NOW + 25)
    await store.release(web, NOW + 20)  # a late, older report
    [seen] = await store.read([alice], NOW + 26)
    assert seen.last_seen == NOW + 25


async def test_users_are_read_in_the_order_asked_and_devices_by_id(
    store: PresenceStore, alice: str
) -> None:
    bob = str(uuid.uuid4())
    await asyncio.gather(
        store.hold(Holder(DeviceAddress(alice, 3), "c3", WEB), NOW, ttl_seconds=TTL),
        store.hold(Holder(DeviceAddress(alice, 1), "c1", PHONE), NOW, ttl_seconds=TTL),
        store.hold(Holder(DeviceAddress(bob, 1), "c1", PHONE), NOW, ttl_seconds=TTL),
    )
    await store.set_state(DeviceAddress(alice, 1), AWAY, NOW)
    results = await store.read([bob, "nobody", alice], NOW + 1)
    assert [r.user_id for r in results] == [bob, "nobody", alice]
    assert [(d.device_id, d.kind, d.state) for d in results[2].devices] == [
        (1, PHONE, AWAY),
        (3, WEB, ONLINE),
    ]


async def test_the_write_gate_opens_once_per_interval(store: PresenceStore, alice: str) -> None:
    assert await store.claim_write(alice, interval_seconds=0.3)
    assert not await store.claim_write(alice, interval_seconds=0.3)
    await asyncio.sleep(0.35)
    assert await store.claim_write(alice, interval_seconds=0.3)


async def test_request_ids_keep_the_first_result(store: PresenceStore, alice: str) -> None:
    device = DeviceAddress(alice, 1)
    assert await store.recall(device, "r1") is None
    assert await store.remember(device, "r1", "first", ttl_seconds=60) == "first"
    assert await store.remember(device, "r1", "second", ttl_seconds=60) == "first"
    assert await store.recall(device, "r1") == "first"
    assert await store.recall(DeviceAddress(alice, 2), "r1") is None
