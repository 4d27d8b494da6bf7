"""Conversions between shared Protobuf messages and domain types, used by servicers."""

from __future__ import annotations

import enum
import math
from typing import TypeVar

from google.protobuf import timestamp_pb2

from chatconnect.common.v1 import common_pb2
from chatconnect.keys.domain.models import DeviceKeys, PreKey, SignedPreKey
from chatconnect.model import (
    Conversation,
    DeviceAddress,
    DeviceKind,
    DeviceSummary,
    Envelope,
    EnvelopeType,
    InboxGap,
    InboxItem,
    Notice,
    NoticeType,
    Receipt,
    ReceiptType,
)
from chatconnect.runtime.errors import FieldInvalid
from chatconnect.users.domain.models import DeviceSession
from chatconnect.users.v1 import users_pb2

E = TypeVar("E", bound=enum.IntEnum)


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    """A Timestamp for a time in epoch seconds (split first: seconds * 1e9 loses digits)."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return timestamp_pb2.Timestamp(seconds=whole, nanos=nanos)


def seconds(stamp: timestamp_pb2.Timestamp) -> float:
    """Epoch seconds of a Timestamp."""
    return stamp.seconds + stamp.nanos / 1e9


def address_to_wire(device: DeviceAddress) -> common_pb2.DeviceAddress:
    """DeviceAddress to the wire."""
    return common_pb2.DeviceAddress(user_id=device.user_id, device_id=device.device_id)


def address_from_wire(message: common_pb2.DeviceAddress) -> DeviceAddress:
    """DeviceAddress from the wire."""
    return DeviceAddress(message.user_id, message.device_id)


def conversation_to_wire(conversation: Conversation) -> common_pb2.ConversationRef:
    """Conversation to the wire."""
    if conversation.group_id:
        return common_pb2.ConversationRef(group_id=conversation.group_id)
    return common_pb2.ConversationRef(user_id=conversation.user_id)


def conversation_from_wire(message: common_pb2.ConversationRef) -> Conversation:
    """Conversation from the wire (both fields empty if unset)."""
    which = message.WhichOneof("target")
    if which == "group_id":
        return Conversation(group_id=message.group_id)
    if which == "user_id":
        return Conversation(user_id=message.user_id)
    return Conversation()


def device_summary_to_wire(device: DeviceSummary) -> common_pb2.DeviceInfo:
    """A directory entry to the wire."""
    return common_pb2.DeviceInfo(
        device_id=device.device_id,
        registration_id=device.registration_id,
        kind=int(device.kind),  # type: ignore[arg-type]
        created_time=timestamp(device.created_at),
    )


def _receipt_to_wire(receipt: Receipt) -> common_pb2.Receipt:
    return common_pb2.Receipt(
        type=int(receipt.type),  # type: ignore[arg-type]
        by=address_to_wire(receipt.by),
        server_message_ids=list(receipt.server_message_ids),
        time=timestamp(receipt.at),
    )


def _notice_to_wire(notice: Notice) -> common_pb2.ServerNotice:
    return common_pb2.ServerNotice(
        type=int(notice.type),  # type: ignore[arg-type]
        subject_user_id=notice.subject_user_id,
        devices=[device_summary_to_wire(d) for d in notice.devices],
    )


def envelope_to_wire(envelope: Envelope) -> common_pb2.Envelope:
    """An inbox envelope to the wire."""
    message = common_pb2.Envelope(
        server_message_id=envelope.server_message_id,
        sequence=envelope.sequence,
        type=int(envelope.type),  # type: ignore[arg-type]
        client_message_id=envelope.client_message_id,
        destination=conversation_to_wire(envelope.destination),
        content=envelope.content,
        server_time=timestamp(envelope.server_time),
        expire_time=timestamp(envelope.expire_time),
        urgent=envelope.urgent,
        group_log_position=envelope.group_log_position,
    )
    if envelope.sender is not None:
        message.sender.CopyFrom(address_to_wire(envelope.sender))
    if envelope.receipt is not None:
        message.receipt.CopyFrom(_receipt_to_wire(envelope.receipt))
    if envelope.notice is not None:
        message.notice.CopyFrom(_notice_to_wire(envelope.notice))
    return message


def gap_to_wire(gap: InboxGap) -> common_pb2.InboxGap:
    """An inbox gap to the wire."""
    return common_pb2.InboxGap(
        gap_id=gap.gap_id,
        first_sequence=gap.first_sequence,
        last_sequence=gap.last_sequence,
        reason=common_pb2.GAP_REASON_EXPIRED,
    )


def inbox_item_to_wire(item: InboxItem) -> common_pb2.InboxItem:
    """An inbox item (envelope or gap) to the wire."""
    if isinstance(item, InboxGap):
        return common_pb2.InboxItem(gap=gap_to_wire(item))
    return common_pb2.InboxItem(envelope=envelope_to_wire(item))


def device_keys_from_wire(message: users_pb2.DeviceKeys, identity_key: bytes) -> DeviceKeys:
    """Uploaded keys from the wire; `identity_key` is used when the message has none."""
    spk = message.signed_prekey
    return DeviceKeys(
        identity_key=message.identity_key or identity_key,
        signed_prekey=SignedPreKey(spk.key_id, spk.public_key, spk.signature),
        one_time_prekeys=tuple(PreKey(k.key_id, k.public_key) for k in message.one_time_prekeys),
    )


def session_to_wire(session: DeviceSession) -> users_pb2.DeviceSession:
    """Device credentials to the wire."""
    return users_pb2.DeviceSession(
        device=address_to_wire(session.device),
        access_token=session.access_token,
        access_token_expire_time=timestamp(session.access_token_expires_at),
        refresh_token=session.refresh_token,
    )


def enum_from_wire(enum_type: type[E], value: int, field_name: str) -> E:
    """A domain enum from a Protobuf enum number; unknown numbers are a bad request."""
    try:
        return enum_type(value)
    except ValueError:
        raise FieldInvalid(field_name, f"unknown value {value}") from None


def envelope_from_wire(message: common_pb2.Envelope) -> Envelope:
    """An envelope from the wire (used where envelopes travel between processes)."""
    receipt = None
    if message.HasField("receipt"):
        r = message.receipt
        receipt = Receipt(
            ReceiptType(r.type),
            address_from_wire(r.by),
            tuple(r.server_message_ids),
            seconds(r.time),
        )
    notice = None
    if message.HasField("notice"):
        n = message.notice
        notice = Notice(
            NoticeType(n.type),
            n.subject_user_id,
            tuple(
                DeviceSummary(
                    d.device_id, d.registration_id, DeviceKind(d.kind), seconds(d.created_time)
                )
                for d in n.devices
            ),
        )
    return Envelope(
        server_message_id=message.server_message_id,
        sequence=message.sequence,
        type=EnvelopeType(message.type),
        sender=address_from_wire(message.sender) if message.HasField("sender") else None,
        client_message_id=message.client_message_id,
        destination=conversation_from_wire(message.destination),
        content=message.content,
        server_time=seconds(message.server_time),
        expire_time=seconds(message.expire_time),
        urgent=message.urgent,
        group_log_position=message.group_log_position,
        receipt=receipt,
        notice=notice,
    )
