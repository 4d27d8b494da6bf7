"""Ports of the presence service.

`PresenceStore` is the ephemeral state (Redis, or this process's memory): which devices
are connected, in which state, and when each was last active. Online state is a lease per
holder (a Connect or Subscribe stream): a device stays connected until `ttl_seconds` after
the last renewal of any of its holders, so the devices of a crashed process go offline by
themselves. Every adapter passes tests/presence/test_store_contract.py.

`LastSeenStore` is the durable, coalesced copy of last seen (SQLite or CQL); it is written
at most once per user per `presence.last_seen_write_interval` and when a user goes offline,
never per message (tests/presence/test_last_seen_contract.py).

`PresenceFeed` carries changes between processes: presence changed, typing, stream
control. Events are hints about ephemeral state: one that is lost costs at most a stale
indicator until the next change, and a subscriber told `FeedLost` re-reads everything.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import (
    PresenceState,
    Subscription,
    TypingState,
    UserPresence,
)


@dataclass(frozen=True)
class Holder:
    """One stream that keeps a device connected."""

    device: DeviceAddress
    holder_id: str
    kind: DeviceKind


class PresenceStore(abc.ABC):
    """Per-holder leases, per-device state and last activity; request ids; write gates."""

    @abc.abstractmethod
    async def hold(self, holder: Holder, now: float, *, ttl_seconds: float) -> bool:
        """Starts (or renews) `holder`'s lease until `now + ttl_seconds`. A device that had
        no live holder comes back ONLINE. True when that changes what others see."""

    @abc.abstractmethod
    async def renew(
        self, holders: Sequence[Holder], now: float, *, ttl_seconds: float
    ) -> list[DeviceAddress]:
        """Renews many leases in one round trip, keeping each device's state; rebuilds a
        lease that was lost (lapsed, or the store restarted empty). Returns the devices
        that others now see come back."""

    @abc.abstractmethod
    async def release(self, holder: Holder, now: float) -> bool:
        """The holder's stream ended. When it was the device's last live holder the device
        goes offline at once (last active `now` if it was ONLINE): True when others see it
        go."""

    @abc.abstractmethod
    async def set_state(
        self, device: DeviceAddress, state: PresenceState, now: float
    ) -> bool | None:
        """Sets a connected device ONLINE, AWAY or OFFLINE (it stays connected, and
        invisible while OFFLINE). None when the device holds no live lease (nothing is
        changed); otherwise whether others see a change."""

    @abc.abstractmethod
    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        """The presence of each user, in the order asked. A device whose leases all ran
        out is offline, and its last activity counts toward last seen."""

    @abc.abstractmethod
    async def open_stream(self, device: DeviceAddress, now: float) -> str | None:
        """The holder id of the device's live Subscribe stream (a holder whose id starts
        with "s"), if any."""

    @abc.abstractmethod
    async def claim_write(self, user_id: str, *, interval_seconds: float) -> bool:
        """True at most once per user per `interval_seconds` (over every process): the
        gate of coalesced last-seen writes."""

    @abc.abstractmethod
    async def remember(
        self, device: DeviceAddress, request_id: str, result: str, *, ttl_seconds: float
    ) -> str:
        """Keeps `result` for (device, request_id) unless one is kept already; returns the
        kept one (the first)."""

    @abc.abstractmethod
    async def recall(self, device: DeviceAddress, request_id: str) -> str | None:
        """The result kept for (device, request_id), if any."""


class LastSeenStore(abc.ABC):
    """The durable last seen of each user."""

    @abc.abstractmethod
    async def record(self, user_id: str, last_seen: float, now: float) -> None:
        """Stores `last_seen` unless a later one is stored; `now` is the write time."""

    @abc.abstractmethod
    async def read(self, user_ids: Sequence[str]) -> dict[str, float]:
        """The stored last seen of each user that has one."""


@dataclass(frozen=True)
class PresenceChanged:
    """What others see of `user_id` may have changed: re-read it."""

    user_id: str


@dataclass(frozen=True)
class TypingSignal:
    """A device typed in a conversation (topic: the receiver user or the group)."""

    sender: DeviceAddress
    group_id: str
    """Empty for a one-to-one conversation."""
    state: TypingState
    expire_at: float


@dataclass(frozen=True)
class StreamOpened:
    """The device opened Subscribe stream `stream_id`; any other stream of it ends."""

    stream_id: str


@dataclass(frozen=True)
class SubscriptionChanged:
    """UpdateSubscription replaced what stream `stream_id` follows."""

    stream_id: str
    subscription: Subscription


@dataclass(frozen=True)
class FeedLost:
    """Events may have been lost (the feed reconnected): re-read everything."""


FeedEvent = PresenceChanged | TypingSignal | StreamOpened | SubscriptionChanged | FeedLost


def user_topic(user_id: str) -> str:
    """Presence changes of a user."""
    return f"u:{user_id}"


def typing_topic(receiver_user_id: str) -> str:
    """One-to-one typing addressed to a user's devices."""
    return f"t:{receiver_user_id}"


def group_topic(group_id: str) -> str:
    """Typing in a group."""
    return f"g:{group_id}"


def device_topic(device: DeviceAddress) -> str:
    """Control of a device's presence stream."""
    return f"d:{device.user_id}:{device.device_id}"


class PresenceFeed(abc.ABC):
    """Publishes events by topic to every process that follows the topic."""

    @abc.abstractmethod
    async def publish(self, events: Mapping[str, Sequence[FeedEvent]]) -> None:
        """Publishes events by topic; best effort."""

    @abc.abstractmethod
    async def follow(self, topics: Collection[str]) -> None:
        """Starts receiving `topics` in this process."""

    @abc.abstractmethod
    async def unfollow(self, topics: Collection[str]) -> None:
        """Stops receiving `topics` in this process."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[tuple[str, FeedEvent]]:
        """(topic, event) for every followed topic, until closed; one consumer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stops the feed; `events` ends."""
