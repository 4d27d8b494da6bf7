"""Who is connected: leases held by streams, states set by clients, and last seen.

Every change others could see is published on the user's topic; subscribers re-read.
Last seen lives in the ephemeral store in real time and reaches the durable store at most
once per user per `last_seen_write_interval` while the user is active, and once when the
user stops being online - never per message.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from chatconnect.bus.ports import RateLimiter
from chatconnect.devices.ports import DeviceStore
from chatconnect.model import Clock, DeviceAddress, DeviceKind
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.errors import StateInvalid
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.ports import (
    Holder,
    LastSeenStore,
    PresenceChanged,
    PresenceFeed,
    PresenceStore,
    user_topic,
)
from chatconnect.runtime.errors import RateLimited, RequestIdMissing
from chatconnect.runtime.logging import get_logger

log = get_logger("presence")

SETTABLE = (PresenceState.ONLINE, PresenceState.AWAY, PresenceState.OFFLINE)


def new_holder_id(kind: str) -> str:
    """A fresh holder id: "c..." for a Connect stream, "s..." for a Subscribe stream."""
    return f"{kind}{uuid.uuid4().hex}"


class PresenceService:
    """Connects, renews and disconnects devices, and sets their state."""

    def __init__(
        self,
        *,
        store: PresenceStore,
        last_seen: LastSeenStore,
        feed: PresenceFeed,
        limiter: RateLimiter,
        devices: DeviceStore,
        config: PresenceConfig,
        clock: Clock,
    ) -> None:
        self._devices = devices
        self._store = store
        self._last_seen = last_seen
        self._feed = feed
        self._limiter = limiter
        self._config = config
        self._clock = clock
        self._holders: dict[str, Holder] = {}
        self._next_write: dict[str, float] = {}
        """user -> when this process next tries a coalesced durable write (monotonic)"""

    @property
    def store(self) -> PresenceStore:
        """The ephemeral store (read by the subscription side)."""
        return self._store

    async def connected(self, device: DeviceAddress, kind: DeviceKind, *, holder: str) -> Holder:
        """A stream (`holder`, from new_holder_id) of `device` opened: the device is
        connected until the stream ends or this process stops renewing its lease. An
        UNSPECIFIED kind is looked up in the device's record."""
        if kind == DeviceKind.UNSPECIFIED:
            kind = await self._kind(device)
        lease = Holder(device, holder, kind)
        self._holders[holder] = lease
        if await self._store.hold(
            lease, self._clock(), ttl_seconds=self._config.device_lease_seconds
        ):
            await self._changed([device.user_id])
        await self._write_coalesced([device.user_id])
        return lease

    async def _kind(self, device: DeviceAddress) -> DeviceKind:
        for record in await self._devices.list_devices(device.user_id):
            if record.device_id == device.device_id:
                return record.kind
        return DeviceKind.UNSPECIFIED

    async def disconnected(self, holder: Holder) -> None:
        """The holder's stream ended: the device goes offline at once unless another
        stream still holds it."""
        self._holders.pop(holder.holder_id, None)
        now = self._clock()
        if await self._store.release(holder, now):
            await self._changed([holder.device.user_id])
            await self._write_if_not_online(holder.device.user_id)

    async def renew_all(self) -> None:
        """Renews every lease this process holds (one round trip), and writes last seen
        of active users when their coalescing interval has passed."""
        holders = list(self._holders.values())
        if not holders:
            return
        back = await self._store.renew(
            holders, self._clock(), ttl_seconds=self._config.device_lease_seconds
        )
        if back:
            await self._changed(list(dict.fromkeys(d.user_id for d in back)))
        await self._write_coalesced(list(dict.fromkeys(h.device.user_id for h in holders)))

    async def keep_leases(self) -> None:
        """Renews the leases every `device_heartbeat_seconds`, until cancelled."""
        while True:
            await asyncio.sleep(self._config.device_heartbeat_seconds)
            try:
                await self.renew_all()
            except Exception:
                # A missed renewal only shortens the leases; the next one may succeed.
                log.exception("presence lease renewal failed")

    async def update_state(
        self, device: DeviceAddress, state: PresenceState, *, request_id: str
    ) -> DevicePresence | None:
        """Sets the caller device's state; its presence afterwards (None: not connected,
        i.e. OFFLINE). A repeat of `request_id` changes nothing."""
        if not request_id:
            raise RequestIdMissing()
        if state not in SETTABLE:
            raise StateInvalid("state", "must be ONLINE, AWAY or OFFLINE")
        if await self._store.recall(device, request_id) is None:
            decision = await self._limiter.acquire(
                f"presence-update:{device}",
                rate_per_second=self._config.presence_updates_per_minute / 60.0,
                burst=self._config.presence_update_burst,
            )
            if not decision.allowed:
                raise RateLimited("device", decision.retry_after_seconds)
            first = await self._store.remember(
                device, request_id, str(int(state)), ttl_seconds=self._config.request_id_ttl_seconds
            )
            if first == str(int(state)) and await self._store.set_state(
                device, state, self._clock()
            ):
                await self._changed([device.user_id])
                await self._write_if_not_online(device.user_id)
        [presence] = await self._store.read([device.user_id], self._clock())
        return next((d for d in presence.devices if d.device_id == device.device_id), None)

    async def _changed(self, user_ids: list[str]) -> None:
        await self._feed.publish({user_topic(u): [PresenceChanged(u)] for u in user_ids})

    async def _write_coalesced(self, user_ids: list[str]) -> None:
        """At most one durable write per user per interval: first a local check (no store
        call), then the store's gate shared by every process."""
        interval = self._config.last_seen_write_interval
        tick = time.monotonic()
        due = [u for u in user_ids if self._next_write.get(u, 0.0) <= tick]
        if not due:
            return
        for user_id in due:
            self._next_write[user_id] = tick + interval
        if len(self._next_write) > 10 * max(len(self._holders), 1_000):
            self._next_write = {u: t for u, t in self._next_write.items() if t > tick}
        claimed = [u for u in due if await self._store.claim_write(u, interval_seconds=interval)]
        if not claimed:
            return
        now = self._clock()
        for presence in await self._store.read(claimed, now):
            await self._record(presence, now)

    async def _write_if_not_online(self, user_id: str) -> None:
        """The user may have stopped being online: keep when, durably, at once."""
        now = self._clock()
        [presence] = await self._store.read([user_id], now)
        if not presence.online:
            await self._record(presence, now)

    async def _record(self, presence: UserPresence, now: float) -> None:
        seen = now if presence.online else presence.last_seen
        if seen is not None:
            await self._last_seen.record(presence.user_id, seen, now)
