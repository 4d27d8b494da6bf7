"""Presence as the presence service sees it: which devices are online, and last seen."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatconnect.model import DeviceKind


class PresenceState(enum.IntEnum):
    """A device's state (chatconnect.presence.v1.PresenceState)."""

    UNSPECIFIED = 0
    ONLINE = 1
    AWAY = 2
    OFFLINE = 3


@dataclass(frozen=True)
class DevicePresence:
    """One connected device."""

    device_id: int
    kind: DeviceKind
    state: PresenceState
    last_active: float


@dataclass(frozen=True)
class UserPresence:
    """A user's connected devices (in device id order) and when they were last seen."""

    user_id: str
    devices: tuple[DevicePresence, ...]
    last_seen: float | None
    """When the user's last device went offline; None if never seen."""

    @property
    def online(self) -> bool:
        """Whether any device is online (not away)."""
        return any(d.state == PresenceState.ONLINE for d in self.devices)
