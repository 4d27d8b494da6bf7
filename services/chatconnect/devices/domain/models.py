"""Devices and link requests."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.model import DeviceKind


@dataclass(frozen=True)
class DeviceRecord:
    """A linked device as its own account sees it."""

    user_id: str
    device_id: int
    incarnation: str
    registration_id: int
    kind: DeviceKind
    encrypted_name: bytes
    created_at: float
    last_seen_at: float

    @property
    def primary(self) -> bool:
        """The device that registered the account."""
        return self.device_id == 1


@dataclass(frozen=True)
class LinkRequest:
    """A new device waiting to be approved by an existing one."""

    link_code: str
    secret_hash: bytes
    request_id: str
    ephemeral_key: bytes
    kind: DeviceKind
    expires_at: float
    approved_user_id: str | None = None
    approved_request_id: str | None = None
    provisioning: bytes | None = None
    device_id: int | None = None
    incarnation: str | None = None
    completed_request_id: str | None = None
