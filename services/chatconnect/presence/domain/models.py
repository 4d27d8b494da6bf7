"""Presence as the presence service sees it: connected devices, last seen, typing."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatconnect.model import Conversation, DeviceAddress, DeviceKind


class PresenceState(enum.IntEnum):
    """A device's or user's state (chatconnect.presence.v1.PresenceState)."""

    UNSPECIFIED = 0
    ONLINE = 1
    AWAY = 2
    OFFLINE = 3


class TypingState(enum.IntEnum):
    """What a user does in a conversation (chatconnect.presence.v1.TypingState)."""

    UNSPECIFIED = 0
    TYPING = 1
    RECORDING_AUDIO = 2
    RECORDING_VIDEO = 3
    STOPPED = 4

    @property
    def recording(self) -> bool:
        """Recording audio or video rather than typing."""
        return self in (TypingState.RECORDING_AUDIO, TypingState.RECORDING_VIDEO)


@dataclass(frozen=True)
class DevicePresence:
    """One connected device (ONLINE or AWAY)."""

    device_id: int
    kind: DeviceKind
    state: PresenceState
    last_active: float
    """When the device was last ONLINE (its latest heartbeat while ONLINE)."""
    lease_until: float
    """When the device goes offline by itself unless a holder renews its lease."""


@dataclass(frozen=True)
class UserPresence:
    """A user's connected devices (in device id order) and when they were last seen."""

    user_id: str
    devices: tuple[DevicePresence, ...]
    last_seen: float | None
    """When the user was last ONLINE on a device that no longer is; None if unknown."""

    @property
    def online(self) -> bool:
        """Whether any device is online (not away)."""
        return any(d.state == PresenceState.ONLINE for d in self.devices)

    @property
    def state(self) -> PresenceState:
        """The most present state over the devices."""
        if self.online:
            return PresenceState.ONLINE
        if self.devices:
            return PresenceState.AWAY
        return PresenceState.OFFLINE

    @property
    def next_lapse(self) -> float | None:
        """When the first device lease runs out unless renewed (None: nothing connected)."""
        return min((d.lease_until for d in self.devices), default=None)


@dataclass(frozen=True)
class PresenceView:
    """A user's presence as one viewer may see it: hidden parts are None or empty."""

    user_id: str
    state: PresenceState
    """UNSPECIFIED when the subject's `online` setting hides it from the viewer."""
    devices: tuple[DevicePresence, ...]
    last_seen: float | None
    """None while online, when unknown, or when hidden from the viewer."""
    computed_at: float
    last_active_shown: bool
    """Whether the viewer may see when each device was last active (the `last_seen`
    setting guards it too)."""

    def same_as(self, other: PresenceView | None) -> bool:
        """Whether `other` shows the viewer the same thing (the time of computing aside;
        device lease renewals are not news)."""
        if other is None:
            return False
        return (
            self.state == other.state
            and self.last_seen == other.last_seen
            and [(d.device_id, d.kind, d.state) for d in self.devices]
            == [(d.device_id, d.kind, d.state) for d in other.devices]
        )


@dataclass(frozen=True)
class Subscription:
    """What one presence stream follows (duplicates removed, order kept)."""

    user_ids: tuple[str, ...] = ()
    conversations: tuple[Conversation, ...] = ()

    @property
    def groups(self) -> tuple[str, ...]:
        """The group conversations."""
        return tuple(c.group_id for c in self.conversations if c.group_id)

    @property
    def peers(self) -> tuple[str, ...]:
        """The users of the one-to-one conversations."""
        return tuple(c.user_id for c in self.conversations if c.user_id)


@dataclass(frozen=True)
class TypingIndicator:
    """A one-to-one typing event, seen from the receiver (`sender.user_id` is the peer)."""

    sender: DeviceAddress
    state: TypingState
    expire_at: float


@dataclass(frozen=True)
class GroupTyping:
    """Who is typing in a group, aggregated for one receiver."""

    group_id: str
    typing_count: int
    recording_count: int
    typing_user_ids: tuple[str, ...]
    expire_at: float
