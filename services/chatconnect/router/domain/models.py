"""Sends as the router sees them."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.model import Conversation, DeviceAddress, DeviceSummary, Envelope, EnvelopeType


@dataclass(frozen=True)
class DeviceCiphertext:
    """The ciphertext for one recipient device."""

    device: DeviceAddress
    registration_id: int
    type: EnvelopeType
    content: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """A client's send: one ciphertext per addressed device."""

    client_message_id: str
    destination: Conversation
    ciphertexts: tuple[DeviceCiphertext, ...]
    urgent: bool = False
    shard_epoch: int = 0


@dataclass(frozen=True)
class SendResult:
    """An accepted send."""

    client_message_id: str
    server_message_id: str
    server_time: float
    duplicate: bool = False


@dataclass(frozen=True)
class DeviceListMismatch:
    """How the devices a send addressed differ from one user's current devices."""

    user_id: str
    missing: tuple[int, ...]
    extra: tuple[int, ...]
    stale: tuple[int, ...]
    current: tuple[DeviceSummary, ...]


@dataclass(frozen=True)
class Delivery:
    """One envelope for one device inbox (its sequence is assigned on commit)."""

    recipient: DeviceAddress
    envelope: Envelope


@dataclass(frozen=True)
class PendingSend:
    """Everything a send writes, in one atomic, idempotent commit.

    `sender` is None for server-generated envelopes (receipts, notices), which need no
    idempotency record.
    """

    sender: DeviceAddress | None
    client_message_id: str
    server_message_id: str
    server_time: float
    expire_time: float
    deliveries: tuple[Delivery, ...]
