"""The bus and rate-limit ports. The in-process adapters serve embedded mode; Redis ones
serve the distributed mode. Both honour the same contract (see tests/bus)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from chatconnect.model import DeviceAddress, Envelope


@dataclass(frozen=True)
class InboxChanged:
    """A device inbox received the envelope at `sequence` (carried when small enough)."""

    device: DeviceAddress
    sequence: int
    envelope: Envelope | None = None


@dataclass(frozen=True)
class DeviceRevoked:
    """A device was unlinked or replaced: close its connections."""

    device: DeviceAddress


@dataclass(frozen=True)
class Resync:
    """Events were dropped for this subscriber (it fell behind): re-read the store."""

    device: DeviceAddress


BusEvent = InboxChanged | DeviceRevoked | Resync


class Subscription(abc.ABC):
    """Events for one device, in publish order; bounded, never blocks publishers."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[BusEvent]:
        """Yields events until closed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stops delivery and releases the subscription."""


class Bus(abc.ABC):
    """Delivers events to the processes holding a device's connection."""

    @abc.abstractmethod
    async def subscribe(self, device: DeviceAddress) -> Subscription:
        """Starts receiving events for `device`."""

    @abc.abstractmethod
    async def publish(self, events: Sequence[InboxChanged | DeviceRevoked]) -> None:
        """Publishes a batch of events (one message per target process where possible).

        Publishing is best effort: the durable inbox is the truth, and a subscriber that
        misses events re-reads it.
        """


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one rate-limit check."""

    allowed: bool
    retry_after_seconds: float = 0.0


class RateLimiter(abc.ABC):
    """GCRA token buckets keyed by strings such as "send:<user>.<device>"."""

    @abc.abstractmethod
    async def acquire(
        self, key: str, *, rate_per_second: float, burst: int, cost: int = 1
    ) -> RateDecision:
        """Takes `cost` from the bucket `key` if it has room."""
