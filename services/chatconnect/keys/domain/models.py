"""Public key material as the directory stores it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PreKey:
    """A one-time prekey (X25519 public key)."""

    key_id: int
    public_key: bytes


@dataclass(frozen=True)
class SignedPreKey:
    """A signed prekey: X25519 public key signed by the account identity key (Ed25519)."""

    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class DeviceKeys:
    """What a device publishes when it registers or links."""

    identity_key: bytes
    signed_prekey: SignedPreKey
    one_time_prekeys: tuple[PreKey, ...] = ()


@dataclass(frozen=True)
class PreKeyBundle:
    """Everything needed to start a session with one device."""

    device_id: int
    registration_id: int
    identity_key: bytes
    signed_prekey: SignedPreKey
    one_time_prekey: PreKey | None
