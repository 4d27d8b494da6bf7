"""The in-process bus: per-device routing, order, bounded queues and Resync, close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from chatconnect.bus.inprocess import InProcessBus
from chatconnect.bus.ports import BusEvent, DeviceRevoked, InboxChanged, Resync, Subscription
from chatconnect.model import DeviceAddress

BOB = DeviceAddress("bob", 1)
BOB_LAPTOP = DeviceAddress("bob", 2)
CAROL = DeviceAddress("carol", 1)


async def take(subscription: Subscription, n: int, timeout: float = 1.0) -> list[BusEvent]:
    """The next `n` events of `subscription`."""
    got: list[BusEvent] = []

    async def collect() -> None:
        iterator: AsyncIterator[BusEvent] = aiter(subscription)
        while len(got) < n:
            got.append(await anext(iterator))

    await asyncio.wait_for(collect(), timeout)
    return got


async def nothing_pending(subscription: Subscription) -> bool:
    try:
        await take(subscription, 1, timeout=0.05)
    except TimeoutError:
        return True
    return False


async def test_a_subscriber_receives_its_own_devices_events_in_publish_order() -> None:
    bus = InProcessBus()
    bob, laptop = await bus.subscribe(BOB), await bus.subscribe(BOB_LAPTOP)
    await bus.publish([InboxChanged(BOB, 1), InboxChanged(CAROL, 1), InboxChanged(BOB_LAPTOP, 1)])
    await bus.publish([InboxChanged(BOB, 2), DeviceRevoked(BOB_LAPTOP)])
    await bus.publish([InboxChanged(BOB, 3)])
    assert await take(bob, 3) == [InboxChanged(BOB, 1), InboxChanged(BOB, 2), InboxChanged(BOB, 3)]
    assert await take(laptop, 2) == [InboxChanged(BOB_LAPTOP, 1), DeviceRevoked(BOB_LAPTOP)]
    assert await nothing_pending(bob)
    assert await nothing_pending(laptop)


async def test_every_subscription_of_a_device_gets_every_event() -> None:
    bus = InProcessBus()
    first, second = await bus.subscribe(BOB), await bus.subscribe(BOB)
    await bus.publish([InboxChanged(BOB, 1), InboxChanged(BOB, 2)])
    assert await take(first, 2) == await take(second, 2) == [
        InboxChanged(BOB, 1), InboxChanged(BOB, 2),
    ]


async def test_publishing_to_nobody_is_fine() -> None:
    bus = InProcessBus()
    await asyncio.wait_for(bus.publish([InboxChanged(CAROL, 1), DeviceRevoked(CAROL)]), 1)
    await bus.publish([])


async def test_a_slow_subscriber_never_blocks_publishing_and_gets_resync() -> None:
    bus = InProcessBus(subscriber_capacity=4)
    slow = await bus.subscribe(BOB)
    other = await bus.subscribe(CAROL)
    events = [InboxChanged(BOB, n) for n in range(1, 11)]
    for event in events:
        await asyncio.wait_for(bus.publish([event]), 0.5)
    await asyncio.wait_for(bus.publish([InboxChanged(CAROL, 1)]), 0.5)
    assert await take(slow, 5) == [*events[:4], Resync(BOB)]
    assert await nothing_pending(slow)
    # Other subscribers are unaffected.
    assert await take(other, 1) == [InboxChanged(CAROL, 1)]
    # Once caught up, the subscriber receives live events again.
    await bus.publish([InboxChanged(BOB, 11), InboxChanged(BOB, 12)])
    assert await take(slow, 2) == [InboxChanged(BOB, 11), InboxChanged(BOB, 12)]


async def test_one_batch_larger_than_the_queue_also_ends_in_resync() -> None:
    bus = InProcessBus(subscriber_capacity=4)
    slow = await bus.subscribe(BOB)
    await asyncio.wait_for(bus.publish([InboxChanged(BOB, n) for n in range(1, 11)]), 0.5)
    assert await take(slow, 5) == [*(InboxChanged(BOB, n) for n in range(1, 5)), Resync(BOB)]


async def test_close_ends_iteration() -> None:
    bus = InProcessBus()
    subscription = await bus.subscribe(BOB)
    received: list[BusEvent] = []

    async def reader() -> None:
        async for event in subscription:
            received.append(event)

    task = asyncio.create_task(reader())
    await bus.publish([InboxChanged(BOB, 1)])
    await asyncio.sleep(0.01)
    await subscription.close()
    await asyncio.wait_for(task, 1)
    assert received == [InboxChanged(BOB, 1)]
    # A closed subscription receives nothing more, and publishing still works.
    await asyncio.wait_for(bus.publish([InboxChanged(BOB, 2)]), 0.5)
    assert received == [InboxChanged(BOB, 1)]


async def test_close_ends_iteration_even_when_the_queue_is_full() -> None:
    bus = InProcessBus(subscriber_capacity=2)
    subscription = await bus.subscribe(BOB)
    await bus.publish([InboxChanged(BOB, n) for n in range(1, 6)])
    await subscription.close()

    async def drain() -> list[BusEvent]:
        return [event async for event in subscription]

    drained = await asyncio.wait_for(drain(), 1)
    assert all(isinstance(e, InboxChanged) for e in drained)
    assert len(drained) <= 2
