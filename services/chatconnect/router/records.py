"""How envelopes and gaps are stored, shared by every MessageStore adapter."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

from chatconnect.model import (
    Conversation,
    DeviceAddress,
    DeviceKind,
    DeviceSummary,
    Envelope,
    EnvelopeType,
    Notice,
    NoticeType,
    Receipt,
    ReceiptType,
)
from chatconnect.router.domain.models import Acknowledged, PendingSend
from chatconnect.router.domain.origins import MessageOrigin


def extra_json(envelope: Envelope) -> str | None:
    """Receipts and notices, as JSON (they are small and read only by clients)."""
    if envelope.receipt is not None:
        r = envelope.receipt
        return json.dumps(
            {
                "receipt": [
                    int(r.type),
                    r.by.user_id,
                    r.by.device_id,
                    list(r.server_message_ids),
                    r.at,
                ]
            }
        )
    if envelope.notice is not None:
        n = envelope.notice
        return json.dumps(
            {
                "notice": [
                    int(n.type),
                    n.subject_user_id,
                    [
                        [d.device_id, d.registration_id, int(d.kind), d.created_at]
                        for d in n.devices
                    ],
                ]
            }
        )
    return None


def _from_extra(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    data: dict[str, Any] = json.loads(text)
    out: dict[str, Any] = {}
    if "receipt" in data:
        kind, user, device, ids, at = data["receipt"]
        out["receipt"] = Receipt(ReceiptType(kind), DeviceAddress(user, device), tuple(ids), at)
    if "notice" in data:
        kind, subject, devices = data["notice"]
        out["notice"] = Notice(
            NoticeType(kind),
            subject,
            tuple(DeviceSummary(d[0], d[1], DeviceKind(d[2]), d[3]) for d in devices),
        )
    return out


class RowLike(Protocol):
    """A stored row: SQLite's Row and the CQL driver's dict both index by column name."""

    def __getitem__(self, column: str) -> Any: ...


def envelope_from_row(row: RowLike) -> Envelope:
    """The envelope stored in an inbox row (column names as in both schemas)."""
    return Envelope(
        server_message_id=row["server_message_id"],
        sequence=row["sequence"],
        type=EnvelopeType(row["type"]),
        sender=_sender(row),
        client_message_id=row["client_message_id"],
        destination=Conversation(row["destination_user_id"], row["destination_group_id"]),
        content=row["content"],
        server_time=row["server_time"],
        expire_time=row["expires_at"],
        urgent=bool(row["urgent"]),
        **_from_extra(row["extra"]),
    )


def _sender(row: RowLike) -> DeviceAddress | None:
    """The sending device; None for envelopes the server generated."""
    if row["sender_user_id"] is None:
        return None
    return DeviceAddress(row["sender_user_id"], row["sender_device_id"])


ACKNOWLEDGED_COLUMNS = (
    "server_message_id, sequence, type, sender_user_id, sender_device_id, "
    "destination_group_id, server_time"
)
"""The inbox columns an acknowledgement needs (`acknowledged_from_row`)."""


def acknowledged_from_row(row: RowLike) -> Acknowledged:
    """What an acknowledgement needs of a stored envelope (ACKNOWLEDGED_COLUMNS)."""
    return Acknowledged(
        server_message_id=row["server_message_id"],
        sequence=int(row["sequence"]),
        type=EnvelopeType(row["type"]),
        sender=_sender(row),
        group_id=row["destination_group_id"] or "",
        server_time=row["server_time"],
    )


def parse_gap_id(gap_id: str) -> tuple[int, int] | None:
    """(first, last) of an InboxGap id (gap:F:L), or None for a message id."""
    parts = gap_id.split(":")
    if len(parts) != 3 or parts[0] != "gap":
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


def runs(sequences: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted sequences, as (first, last) pairs."""
    return merge([(seq, seq) for seq in sequences])


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges joined where they touch or overlap, in order."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def send_row(sender: DeviceAddress, send: PendingSend) -> tuple[Any, ...]:
    """The first values of a send's row (its claim of the client message id), in the
    column order both schemas share."""
    return (
        sender.user_id,
        sender.device_id,
        send.client_message_id,
        send.server_message_id,
        send.server_time,
        send.expire_time,
    )


def origin_row(origin: MessageOrigin) -> tuple[Any, ...]:
    """The values of a message origin's row, in the column order both schemas share."""
    return (
        origin.server_message_id,
        origin.sender.user_id,
        origin.sender.device_id,
        origin.destination.user_id,
        origin.destination.group_id,
        origin.server_time,
        origin.expire_time,
    )


def inbox_row(recipient: DeviceAddress, envelope: Envelope) -> tuple[Any, ...]:
    """The values of an inbox row, in the column order both schemas share."""
    sender = envelope.sender
    return (
        recipient.user_id,
        recipient.device_id,
        envelope.sequence,
        envelope.server_message_id,
        int(envelope.type),
        sender.user_id if sender else None,
        sender.device_id if sender else None,
        envelope.client_message_id,
        envelope.destination.user_id,
        envelope.destination.group_id,
        envelope.content,
        envelope.server_time,
        envelope.expire_time,
        envelope.urgent,
        extra_json(envelope),
    )


def log_row(group_id: str, position: int, envelope: Envelope) -> tuple[Any, ...]:
    """The values of a group log row (group_id, position, then the inbox row's envelope
    columns), in the column order both schemas share."""
    return (group_id, position, *inbox_row(DeviceAddress(group_id, 0), envelope)[3:])


LOG_COLUMNS = (
    "position AS sequence, server_message_id, type, sender_user_id, sender_device_id, "
    "client_message_id, destination_user_id, destination_group_id, content, server_time, "
    "expires_at, urgent, extra"
)
"""A group log row selected so that `log_entry_from_row` reads it like an inbox row."""


def log_entry_from_row(row: RowLike) -> Envelope:
    """The envelope of a group log row selected with LOG_COLUMNS."""
    envelope = envelope_from_row(row)
    return dataclasses.replace(envelope, sequence=0, group_log_position=envelope.sequence)
