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
    group_membership_version: int = 0
    """Group sends: the membership version the client encrypted for."""
    group_content: bytes = b""
    """Group sends: the message encrypted once with the sender's sender key."""


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
class Acknowledged:
    """What the server still needs of an envelope its device acknowledged: whom to send
    the delivery receipt to, or which group's tally to advance. Not the content, so a
    store can answer from its id lookup without reading the envelope back."""

    server_message_id: str
    sequence: int
    type: EnvelopeType
    sender: DeviceAddress | None
    group_id: str
    server_time: float

    @classmethod
    def of(cls, envelope: Envelope) -> Acknowledged:
        return cls(
            envelope.server_message_id,
            envelope.sequence,
            envelope.type,
            envelope.sender,
            envelope.destination.group_id,
            envelope.server_time,
        )


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
    destination: Conversation | None = None
    """The conversation, for a client send with no inbox deliveries (a large group's
    message, stored in the group log); otherwise the deliveries' envelopes say it."""


@dataclass(frozen=True)
class GroupMessage:
    """What the router keeps about an accepted group message."""

    group_id: str
    server_message_id: str
    sender: DeviceAddress
    server_time: float
    expire_time: float
    recipient_count: int
    """Members the message went to (every member but the sender, at the send)."""


@dataclass(frozen=True)
class ReceiptCounts:
    """Members that reached a group message."""

    delivered: int
    read: int
    played: int


@dataclass(frozen=True)
class ReceivedMessage:
    """A message a receipt is about, as the reader identifies it."""

    sender_user_id: str
    server_message_id: str
    group_id: str = ""
