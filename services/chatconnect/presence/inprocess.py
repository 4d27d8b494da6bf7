"""Presence in this process's memory (the embedded mode: one process holds every
connection)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.ports import PresenceStore


@dataclass
class _Lease:
    presence: DevicePresence
    expires_at: float


class InProcessPresenceStore(PresenceStore):
    """Leases and last seen in dictionaries."""

    def __init__(self) -> None:
        self._leases: dict[str, dict[int, _Lease]] = {}
        self._last_seen: dict[str, float] = {}

    async def heartbeat(
        self,
        device: DeviceAddress,
        kind: DeviceKind,
        state: PresenceState,
        now: float,
        *,
        ttl_seconds: float,
    ) -> bool:
        leases = self._leases.setdefault(device.user_id, {})
        old = leases.get(device.device_id)
        changed = old is None or old.expires_at <= now or old.presence.state != state
        leases[device.device_id] = _Lease(
            DevicePresence(device.device_id, kind, state, now), now + ttl_seconds
        )
        return changed

    async def went_offline(self, device: DeviceAddress, now: float) -> bool:
        old = self._leases.get(device.user_id, {}).pop(device.device_id, None)
        self._seen(device.user_id, now)
        return old is not None and old.expires_at > now

    def _seen(self, user_id: str, at: float) -> None:
        self._last_seen[user_id] = max(self._last_seen.get(user_id, at), at)

    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        return [self._read_one(user_id, now) for user_id in user_ids]

    def _read_one(self, user_id: str, now: float) -> UserPresence:
        leases = self._leases.get(user_id, {})
        for device_id, lease in list(leases.items()):
            if lease.expires_at <= now:
                del leases[device_id]
                self._seen(user_id, lease.presence.last_active)
        devices = tuple(leases[d].presence for d in sorted(leases))
        return UserPresence(user_id, devices, self._last_seen.get(user_id))
