"""In-process bus and rate limiter for embedded mode (one process holds everything)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

from chatconnect.bus.gcra import gcra
from chatconnect.bus.ports import (
    Bus,
    BusEvent,
    DeviceRevoked,
    InboxChanged,
    RateDecision,
    RateLimiter,
    Resync,
    Subscription,
)
from chatconnect.model import DeviceAddress
from chatconnect.runtime.mailbox import Mailbox

_CLOSED = object()


class _QueueSubscription(Subscription):
    def __init__(self, bus: InProcessBus, device: DeviceAddress, capacity: int) -> None:
        self._bus = bus
        self.device = device
        self._queue: Mailbox[object] = Mailbox(capacity)
        self._overflowed = False

    def offer(self, event: BusEvent) -> None:
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Never block a publisher for a slow reader: drop, and tell the reader to
            # re-read the durable inbox once it catches up.
            self._overflowed = True

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        while True:
            if self._overflowed and self._queue.empty():
                self._overflowed = False
                yield Resync(self.device)
                continue
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield item  # type: ignore[misc]

    async def close(self) -> None:
        self._bus._remove(self)
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()


class InProcessBus(Bus):
    """Routes events to subscriptions in this process."""

    def __init__(self, *, subscriber_capacity: int = 1024) -> None:
        self._capacity = subscriber_capacity
        self._subscribers: dict[DeviceAddress, set[_QueueSubscription]] = defaultdict(set)

    async def subscribe(self, device: DeviceAddress) -> Subscription:
        subscription = _QueueSubscription(self, device, self._capacity)
        self._subscribers[device].add(subscription)
        return subscription

    async def publish(self, events: Sequence[InboxChanged | DeviceRevoked]) -> None:
        for event in events:
            for subscription in tuple(self._subscribers.get(event.device, ())):
                subscription.offer(event)

    def devices(self) -> list[DeviceAddress]:
        """Devices with at least one subscription in this process."""
        return list(self._subscribers)

    def resync_all(self) -> None:
        """Tells every subscriber to re-read the store (events may have been lost)."""
        self.resync(list(self._subscribers))

    def resync(self, devices: Sequence[DeviceAddress]) -> None:
        """Tells the subscribers of `devices` to re-read the store."""
        for device in devices:
            for subscription in tuple(self._subscribers.get(device, ())):
                subscription.offer(Resync(device))

    def _remove(self, subscription: _QueueSubscription) -> None:
        subscribers = self._subscribers.get(subscription.device)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.device]


class InProcessRateLimiter(RateLimiter):
    """GCRA buckets in a dict, pruned as they empty."""

    def __init__(self, *, max_buckets: int = 1_000_000) -> None:
        self._tats: dict[str, float] = {}
        self._max_buckets = max_buckets

    async def acquire(
        self, key: str, *, rate_per_second: float, burst: int, cost: int = 1
    ) -> RateDecision:
        now = time.monotonic()
        result = gcra(self._tats.get(key), now, rate=rate_per_second, burst=burst, cost=cost)
        if result.allowed:
            if len(self._tats) >= self._max_buckets:
                self._prune(now)
            self._tats[key] = result.new_tat
        return RateDecision(result.allowed, result.retry_after)

    def _prune(self, now: float) -> None:
        # A bucket whose TAT has passed is indistinguishable from an absent one.
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
