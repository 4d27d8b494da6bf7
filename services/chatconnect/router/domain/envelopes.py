"""Ids of sends and the bus events that announce their envelopes."""

from __future__ import annotations

import uuid

from chatconnect.bus.ports import InboxChanged
from chatconnect.model import DeviceAddress, Envelope, EnvelopeType
from chatconnect.router.domain.models import Delivery, OutgoingMessage

PUSH_INLINE_BYTES = 64 * 1024
"""Envelopes up to this size travel inside the bus event; larger ones are re-read."""


def new_server_message_id() -> str:
    """A fresh server message id."""
    return uuid.uuid4().hex


def inbox_event(delivery: Delivery) -> InboxChanged:
    """The bus event telling the recipient's connection about a committed delivery."""
    envelope = delivery.envelope
    inline = envelope if len(envelope.content) <= PUSH_INLINE_BYTES else None
    return InboxChanged(delivery.recipient, envelope.sequence, inline)


def client_envelope(
    sender: DeviceAddress,
    message: OutgoingMessage,
    *,
    server_message_id: str,
    type: EnvelopeType,
    content: bytes,
    now: float,
    expire_time: float,
) -> Envelope:
    """An envelope of a client's send, before the store gives it a sequence."""
    return Envelope(
        server_message_id=server_message_id,
        sequence=0,
        type=type,
        sender=sender,
        client_message_id=message.client_message_id,
        destination=message.destination,
        content=content,
        server_time=now,
        expire_time=expire_time,
        urgent=message.urgent,
    )
