"""Presence in this process's memory (the embedded mode: one process holds every
connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.ports import FeedEvent, Holder, PresenceFeed, PresenceStore


@dataclass
class _Device:
    kind: DeviceKind
    state: PresenceState = PresenceState.ONLINE
    last_active: float | None = None
    holders: dict[str, float] = field(default_factory=dict)
    """holder id -> lease end"""

    def live(self, now: float) -> bool:
        return any(until > now for until in self.holders.values())

    def prune(self, now: float) -> None:
        for holder_id in [h for h, until in self.holders.items() if until <= now]:
            del self.holders[holder_id]

    @property
    def visible(self) -> bool:
        return self.state != PresenceState.OFFLINE


class InProcessPresenceStore(PresenceStore):
    """Leases and state in dictionaries; request ids and write gates with expiry."""

    def __init__(self) -> None:
        self._users: dict[str, dict[int, _Device]] = {}
        self._gates: dict[str, float] = {}
        self._requests: dict[tuple[DeviceAddress, str], tuple[str, float]] = {}

    def _device(self, device: DeviceAddress, kind: DeviceKind) -> _Device:
        devices = self._users.setdefault(device.user_id, {})
        entry = devices.get(device.device_id)
        if entry is None:
            entry = devices[device.device_id] = _Device(kind)
        entry.kind = kind
        return entry

    def _lease(self, holder: Holder, now: float, ttl_seconds: float) -> bool:
        entry = self._device(holder.device, holder.kind)
        was_live = entry.live(now)
        entry.prune(now)
        if not was_live:
            entry.state = PresenceState.ONLINE
        entry.holders[holder.holder_id] = now + ttl_seconds
        if entry.state == PresenceState.ONLINE:
            entry.last_active = now
        return not was_live

    async def hold(self, holder: Holder, now: float, *, ttl_seconds: float) -> bool:
        return self._lease(holder, now, ttl_seconds)

    async def renew(
        self, holders: Sequence[Holder], now: float, *, ttl_seconds: float
    ) -> list[DeviceAddress]:
        return [h.device for h in holders if self._lease(h, now, ttl_seconds)]

    async def release(self, holder: Holder, now: float) -> bool:
        entry = self._users.get(holder.device.user_id, {}).get(holder.device.device_id)
        if entry is None:
            return False
        was_visible = entry.live(now) and entry.visible
        entry.holders.pop(holder.holder_id, None)
        entry.prune(now)
        if entry.live(now):
            return False
        if was_visible and entry.state == PresenceState.ONLINE:
            entry.last_active = now
        return was_visible

    async def set_state(
        self, device: DeviceAddress, state: PresenceState, now: float
    ) -> bool | None:
        entry = self._users.get(device.user_id, {}).get(device.device_id)
        if entry is None or not entry.live(now):
            return None
        old = entry.state
        if PresenceState.ONLINE in (old, state):
            entry.last_active = now
        entry.state = state
        return old != state

    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        return [self._read_one(user_id, now) for user_id in user_ids]

    def _read_one(self, user_id: str, now: float) -> UserPresence:
        devices: list[DevicePresence] = []
        seen: float | None = None
        for device_id in sorted(self._users.get(user_id, {})):
            entry = self._users[user_id][device_id]
            connected = entry.live(now) and entry.visible
            if connected and entry.last_active is not None:
                lease = max(entry.holders.values())
                devices.append(
                    DevicePresence(device_id, entry.kind, entry.state, entry.last_active, lease)
                )
            if entry.last_active is not None and not (
                connected and entry.state == PresenceState.ONLINE
            ):
                seen = max(seen or entry.last_active, entry.last_active)
        return UserPresence(user_id, tuple(devices), seen)

    async def open_stream(self, device: DeviceAddress, now: float) -> str | None:
        entry = self._users.get(device.user_id, {}).get(device.device_id)
        if entry is None:
            return None
        live = [h for h, until in entry.holders.items() if until > now and h.startswith("s")]
        return live[0] if live else None

    async def claim_write(self, user_id: str, *, interval_seconds: float) -> bool:
        now = time.monotonic()
        if self._gates.get(user_id, 0.0) > now:
            return False
        if len(self._gates) > 100_000:
            self._gates = {u: t for u, t in self._gates.items() if t > now}
        self._gates[user_id] = now + interval_seconds
        return True

    async def remember(
        self, device: DeviceAddress, request_id: str, result: str, *, ttl_seconds: float
    ) -> str:
        now = time.monotonic()
        kept = self._requests.get((device, request_id))
        if kept is not None and kept[1] > now:
            return kept[0]
        if len(self._requests) > 100_000:
            self._requests = {k: v for k, v in self._requests.items() if v[1] > now}
        self._requests[(device, request_id)] = (result, now + ttl_seconds)
        return result

    async def recall(self, device: DeviceAddress, request_id: str) -> str | None:
        kept = self._requests.get((device, request_id))
        return kept[0] if kept is not None and kept[1] > time.monotonic() else None


_CLOSED = object()


class InProcessPresenceFeed(PresenceFeed):
    """Events handed to this process's single consumer, for the topics it follows."""

    def __init__(self) -> None:
        self._followed: set[str] = set()
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    async def publish(self, events: Mapping[str, Sequence[FeedEvent]]) -> None:
        for topic, batch in events.items():
            if topic in self._followed:
                for event in batch:
                    self._queue.put_nowait((topic, event))

    async def follow(self, topics: Collection[str]) -> None:
        self._followed.update(topics)

    async def unfollow(self, topics: Collection[str]) -> None:
        self._followed.difference_update(topics)

    async def events(self) -> AsyncIterator[tuple[str, FeedEvent]]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield item  # type: ignore[misc]

    async def close(self) -> None:
        self._queue.put_nowait(_CLOSED)
