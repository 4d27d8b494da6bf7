"""The Bus and RateLimiter ports' contract, run against every adapter: in-process and Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from chatconnect.bus.inprocess import InProcessBus, InProcessRateLimiter
from chatconnect.bus.ports import Bus, DeviceRevoked, InboxChanged, RateLimiter, Resync
from chatconnect.bus.redis import RedisBus, RedisRateLimiter, channel_name, route_key
from chatconnect.model import Conversation, DeviceAddress, Envelope, EnvelopeType
from tests.servers import redis_url

BusFactory = Callable[[], Awaitable[Bus]]


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url())
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture(params=["inprocess", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Makes buses that share one backend (one process, or one Redis)."""
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    opened: list[RedisBus] = []
    shared = InProcessBus()
    client = aioredis.Redis.from_url(redis_url()) if request.param == "redis" else None

    async def make() -> Bus:
        if client is None:
            return shared
        bus = RedisBus(client, instance_id=uuid.uuid4().hex, namespace=namespace)
        await bus.start()
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()
    if client is not None:
        await client.aclose()


@pytest.fixture(params=["inprocess", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "inprocess":
        yield InProcessRateLimiter()
        return
    client = aioredis.Redis.from_url(redis_url())
    yield RedisRateLimiter(client, namespace=f"test-{uuid.uuid4().hex[:8]}")
    await client.aclose()


async def _take(subscription, count: int, timeout: float = 3.0) -> list:
    events = []
    iterator = subscription.__aiter__()
    for _ in range(count):
        events.append(await asyncio.wait_for(iterator.__anext__(), timeout))
    return events


ALICE = DeviceAddress("alice", 1)
BOB = DeviceAddress("bob", 1)


async def test_subscriber_gets_its_own_events_in_order(make_bus: BusFactory) -> None:
    holder, publisher = await make_bus(), await make_bus()
    subscription = await holder.subscribe(ALICE)
    await publisher.publish([InboxChanged(ALICE, 1), InboxChanged(BOB, 1), InboxChanged(ALICE, 2)])
    await publisher.publish([DeviceRevoked(ALICE)])
    events = await _take(subscription, 3)
    assert events == [InboxChanged(ALICE, 1), InboxChanged(ALICE, 2), DeviceRevoked(ALICE)]
    await subscription.close()


async def test_publishing_to_an_offline_device_is_harmless(make_bus: BusFactory) -> None:
    bus = await make_bus()
    await bus.publish([InboxChanged(BOB, 7)])
    subscription = await bus.subscribe(BOB)
    await bus.publish([InboxChanged(BOB, 8)])
    assert await _take(subscription, 1) == [InboxChanged(BOB, 8)]
    await subscription.close()


async def test_closed_subscription_gets_nothing_more(make_bus: BusFactory) -> None:
    holder, publisher = await make_bus(), await make_bus()
    first = await holder.subscribe(ALICE)
    await first.close()
    second = await holder.subscribe(ALICE)
    await publisher.publish([InboxChanged(ALICE, 1)])
    assert await _take(second, 1) == [InboxChanged(ALICE, 1)]
    await second.close()


async def test_envelopes_travel_with_the_event(make_bus: BusFactory) -> None:
    holder, publisher = await make_bus(), await make_bus()
    envelope = Envelope(
        server_message_id="m1",
        sequence=5,
        type=EnvelopeType.CIPHERTEXT,
        sender=BOB,
        client_message_id="c1",
        destination=Conversation(user_id="alice"),
        content=b"\x00\xff",
        server_time=1_700_000_000.25,
        expire_time=1_700_000_100.5,
        urgent=True,
    )
    subscription = await holder.subscribe(ALICE)
    await publisher.publish([InboxChanged(ALICE, 5, envelope)])
    (event,) = await _take(subscription, 1)
    assert event == InboxChanged(ALICE, 5, envelope)
    await subscription.close()


@dataclass
class TwoInstances:
    """Two Redis bus instances on one namespace: one holds devices, one publishes."""

    holder: RedisBus
    publisher: RedisBus
    namespace: str

    @property
    def holder_channel(self) -> str:
        return channel_name(self.namespace, self.holder.instance_id)


@pytest.fixture
async def instances(redis_client: aioredis.Redis) -> AsyncIterator[TwoInstances]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    holder = RedisBus(redis_client, instance_id="gw-b", namespace=namespace, route_ttl_seconds=60)
    publisher = RedisBus(redis_client, instance_id="gw-a", namespace=namespace)
    await holder.start()
    await publisher.start()
    yield TwoInstances(holder, publisher, namespace)
    await holder.close()
    await publisher.close()


async def test_redis_routes_expire_with_their_holder_and_come_back_after_a_flush(
    redis_client: aioredis.Redis, instances: TwoInstances
) -> None:
    holder, publisher, namespace = instances.holder, instances.publisher, instances.namespace
    subscription = await holder.subscribe(ALICE)
    assert await redis_client.get(route_key(namespace, ALICE)) == b"gw-b"
    # Redis loses its state: no route, so no push ...
    await redis_client.delete(route_key(namespace, ALICE))
    await publisher.publish([InboxChanged(ALICE, 1)])
    # ... until the holder's heartbeat writes its routes again, and, having found the route
    # gone, tells the device to re-read what it may have missed (event 1).
    await holder.renew_routes()
    await publisher.publish([InboxChanged(ALICE, 2)])
    assert await _take(subscription, 2) == [Resync(ALICE), InboxChanged(ALICE, 2)]
    # A heartbeat that finds the route in place changes nothing.
    await holder.renew_routes()
    await publisher.publish([InboxChanged(ALICE, 3)])
    assert await _take(subscription, 1) == [InboxChanged(ALICE, 3)]
    await subscription.close()
    assert await redis_client.get(route_key(namespace, ALICE)) is None


def _group_envelope(content: bytes) -> Envelope:
    return Envelope(
        server_message_id="g-m1",
        sequence=0,
        type=EnvelopeType.CIPHERTEXT,
        sender=BOB,
        client_message_id="g-c1",
        destination=Conversation(group_id="group-1"),
        content=content,
        server_time=1_700_000_000.25,
        expire_time=1_700_000_100.5,
        group_log_position=42,
    )


async def test_a_group_envelope_crosses_the_bus_once_for_all_its_devices(
    redis_client: aioredis.Redis, instances: TwoInstances
) -> None:
    holder, publisher, channel = instances.holder, instances.publisher, instances.holder_channel
    members = [DeviceAddress(f"member-{i}", 1) for i in range(50)]
    subscriptions = [await holder.subscribe(member) for member in members]
    watcher = redis_client.pubsub()
    await watcher.subscribe(channel)
    await watcher.get_message(timeout=1)  # the subscribe confirmation
    content = bytes(range(256)) * 40  # 10 KiB
    envelope = _group_envelope(content)
    await publisher.publish([InboxChanged(member, 0, envelope) for member in members])
    message = await watcher.get_message(timeout=3)
    assert message is not None
    # Fifty copies would be 50 times the content; one is about 1.4 times (base64).
    assert len(message["data"]) < 2 * len(content)
    for member, subscription in zip(members, subscriptions, strict=True):
        assert await _take(subscription, 1) == [InboxChanged(member, 0, envelope)]
        await subscription.close()
    await watcher.aclose()


async def test_a_message_from_the_version_before_still_reads(
    redis_client: aioredis.Redis, instances: TwoInstances
) -> None:
    from chatconnect.runtime import wire

    holder, channel = instances.holder, instances.holder_channel
    envelope = _group_envelope(b"sealed")
    subscriptions = [await holder.subscribe(device) for device in (ALICE, BOB)]
    carried = base64.b64encode(wire.envelope_to_wire(envelope).SerializeToString()).decode()
    # Before, every item carried its own copy of the envelope.
    old = [
        {"u": d.user_id, "d": d.device_id, "k": "inbox", "s": 0, "e": carried} for d in (ALICE, BOB)
    ]
    await redis_client.publish(channel, json.dumps(old))
    for device, subscription in zip((ALICE, BOB), subscriptions, strict=True):
        assert await _take(subscription, 1) == [InboxChanged(device, 0, envelope)]
        await subscription.close()


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'[{"u": "alice"}]', b'[{"u":"alice","d":1,"k":"inbox","s":1,"r":7}]', b"{}"],
)
async def test_an_unreadable_bus_message_makes_devices_reread_and_the_bus_goes_on(
    redis_client: aioredis.Redis,
    instances: TwoInstances,
    payload: bytes,
) -> None:
    holder, publisher, channel = instances.holder, instances.publisher, instances.holder_channel
    subscription = await holder.subscribe(ALICE)
    await redis_client.publish(channel, payload)
    assert await _take(subscription, 1) == [Resync(ALICE)]
    await publisher.publish([InboxChanged(ALICE, 2)])
    assert await _take(subscription, 1) == [InboxChanged(ALICE, 2)]
    await subscription.close()


async def test_rate_limit_admits_a_burst_then_refuses_with_a_hint(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    decisions = [await limiter.acquire(key, rate_per_second=10, burst=5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert 0 < decisions[-1].retry_after_seconds <= 0.11
    other = await limiter.acquire(uuid.uuid4().hex, rate_per_second=10, burst=5)
    assert other.allowed
    await asyncio.sleep(decisions[-1].retry_after_seconds + 0.02)
    assert (await limiter.acquire(key, rate_per_second=10, burst=5)).allowed
