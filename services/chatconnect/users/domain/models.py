"""Accounts, verifications and sessions."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatconnect.keys.domain.models import DeviceKeys
from chatconnect.model import DeviceAddress, DeviceKind


@dataclass(frozen=True)
class Verification:
    """A code sent to a phone number, waiting to be proved."""

    verification_id: str
    phone_number: str
    request_id: str
    code_hash: bytes
    expires_at: float
    attempts: int = 0
    completed_request_id: str | None = None
    completed_user_id: str | None = None
    completed_incarnation: str | None = None
    completed_took_over: bool = False


@dataclass(frozen=True)
class NewDevice:
    """A device about to be created."""

    incarnation: str
    registration_id: int
    kind: DeviceKind
    keys: DeviceKeys
    encrypted_name: bytes = b""


@dataclass(frozen=True)
class Registration:
    """The outcome of registering a phone number."""

    user_id: str
    incarnation: str
    took_over: bool
    removed_devices: tuple[DeviceAddress, ...] = ()


@dataclass(frozen=True)
class DeviceSession:
    """Credentials handed to a device."""

    device: DeviceAddress
    access_token: str
    access_token_expires_at: float
    refresh_token: str


class Visibility(enum.IntEnum):
    """Who may see something (chatconnect.users.v1.Visibility)."""

    UNSPECIFIED = 0
    EVERYONE = 1
    CONTACTS = 2
    NOBODY = 3


@dataclass(frozen=True)
class PrivacySettings:
    """A user's privacy settings (chatconnect.users.v1.PrivacySettings); the defaults are
    what a new account has."""

    last_seen: Visibility = Visibility.EVERYONE
    online: Visibility = Visibility.EVERYONE
    profile_photo: Visibility = Visibility.EVERYONE
    about: Visibility = Visibility.EVERYONE
    status: Visibility = Visibility.CONTACTS
    read_receipts: bool = True
    group_add: Visibility = Visibility.EVERYONE


@dataclass(frozen=True)
class PrivacyChanges:
    """The privacy settings a user changes at once; None keeps the current value."""

    last_seen: Visibility | None = None
    online: Visibility | None = None
    profile_photo: Visibility | None = None
    about: Visibility | None = None
    status: Visibility | None = None
    read_receipts: bool | None = None
    group_add: Visibility | None = None

    def is_empty(self) -> bool:
        """True when nothing would change."""
        return self == PrivacyChanges()
