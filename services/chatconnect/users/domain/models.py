"""Accounts, verifications and sessions."""

from __future__ import annotations

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
