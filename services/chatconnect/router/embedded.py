"""The embedded (SQLite) message store."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

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
from chatconnect.router.domain.models import Delivery, PendingSend, SendResult
from chatconnect.router.ports import MessageStore
from chatconnect.storage.sqlite import Database, Row, Transaction


def _extra(envelope: Envelope) -> str | None:
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


def _envelope(row: Row) -> Envelope:
    sender = (
        DeviceAddress(row["sender_user_id"], row["sender_device_id"])
        if row["sender_user_id"] is not None
        else None
    )
    return Envelope(
        server_message_id=row["server_message_id"],
        sequence=row["sequence"],
        type=EnvelopeType(row["type"]),
        sender=sender,
        client_message_id=row["client_message_id"],
        destination=Conversation(row["destination_user_id"], row["destination_group_id"]),
        content=row["content"],
        server_time=row["server_time"],
        expire_time=row["expires_at"],
        urgent=bool(row["urgent"]),
        **_from_extra(row["extra"]),
    )


def _parse_gap_id(gap_id: str) -> tuple[int, int] | None:
    parts = gap_id.split(":")
    if len(parts) != 3 or parts[0] != "gap":
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


def _runs(sequences: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted sequences, as (first, last) pairs."""
    return _merge([(seq, seq) for seq in sequences])


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges joined where they touch or overlap, in order."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


class SqliteMessageStore(MessageStore):
    """Sends and inboxes in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_send(self, sender: DeviceAddress, client_message_id: str) -> SendResult | None:
        row = await self._db.fetchone(
            "find_send",
            "SELECT server_message_id, server_time FROM sends WHERE sender_user_id = ? "
            "AND sender_device_id = ? AND client_message_id = ?",
            (sender.user_id, sender.device_id, client_message_id),
        )
        if row is None:
            return None
        return SendResult(client_message_id, row["server_message_id"], row["server_time"], True)

    async def commit(self, send: PendingSend) -> tuple[SendResult, list[Delivery]]:
        async with self._db.write("commit_send") as tx:
            if send.sender is not None:
                inserted = await tx.execute(
                    "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        send.sender.user_id,
                        send.sender.device_id,
                        send.client_message_id,
                        send.server_message_id,
                        send.server_time,
                        send.expire_time,
                    ),
                )
                if inserted == 0:
                    row = await tx.fetchone(
                        "SELECT server_message_id, server_time FROM sends WHERE "
                        "sender_user_id = ? AND sender_device_id = ? AND client_message_id = ?",
                        (send.sender.user_id, send.sender.device_id, send.client_message_id),
                    )
                    assert row is not None
                    return SendResult(
                        send.client_message_id, row["server_message_id"], row["server_time"], True
                    ), []
            committed = [await self._append(tx, d) for d in send.deliveries]
        result = SendResult(send.client_message_id, send.server_message_id, send.server_time)
        return result, committed

    async def _append(self, tx: Transaction, delivery: Delivery) -> Delivery:
        recipient = delivery.recipient
        head = await tx.fetchone(
            "INSERT INTO inbox_heads VALUES (?, ?, 1) ON CONFLICT (user_id, device_id) "
            "DO UPDATE SET last_sequence = last_sequence + 1 RETURNING last_sequence",
            (recipient.user_id, recipient.device_id),
        )
        assert head is not None
        envelope = dataclasses.replace(delivery.envelope, sequence=int(head["last_sequence"]))
        sender = envelope.sender
        await tx.execute(
            "INSERT INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
                int(envelope.urgent),
                _extra(envelope),
            ),
        )
        return Delivery(recipient, envelope)

    async def read(
        self, device: DeviceAddress, *, after_sequence: int, limit: int, now: float
    ) -> list[InboxItem]:
        params = (device.user_id, device.device_id, after_sequence, limit)
        rows = await self._db.fetchall(
            "read_inbox",
            "SELECT * FROM inbox WHERE user_id = ? AND device_id = ? AND sequence > ? "
            "ORDER BY sequence LIMIT ?",
            params,
        )
        if any(row["expires_at"] <= now for row in rows):
            # Retention is enforced on read: turn what expired into gaps, then read again.
            await self._expire(now, device=device, limit=None)
            return await self.read(device, after_sequence=after_sequence, limit=limit, now=now)
        gaps = await self._db.fetchall(
            "read_gaps",
            "SELECT first_sequence, last_sequence FROM inbox_gaps WHERE user_id = ? AND "
            "device_id = ? AND last_sequence > ? ORDER BY first_sequence LIMIT ?",
            params,
        )
        items: list[InboxItem] = [_envelope(r) for r in rows]
        items.extend(InboxGap(g["first_sequence"], g["last_sequence"]) for g in gaps)
        items.sort(key=lambda i: i.sequence if isinstance(i, Envelope) else i.first_sequence)
        return items[:limit]

    async def acknowledge(self, device: DeviceAddress, ids: Sequence[str]) -> list[Envelope]:
        gap_ids = [g for g in map(_parse_gap_id, ids) if g is not None]
        message_ids = [i for i in ids if not i.startswith("gap:")]
        removed: list[Envelope] = []
        async with self._db.write("acknowledge") as tx:
            if message_ids:
                marks = ",".join("?" * len(message_ids))
                rows = await tx.fetchall(
                    f"DELETE FROM inbox WHERE user_id = ? AND device_id = ? AND "
                    f"server_message_id IN ({marks}) RETURNING *",
                    (device.user_id, device.device_id, *message_ids),
                )
                removed = [_envelope(r) for r in rows]
            for first, last in gap_ids:
                key = (device.user_id, device.device_id, first)
                await tx.execute(
                    "DELETE FROM inbox_gaps WHERE user_id = ? AND device_id = ? AND "
                    "first_sequence = ? AND last_sequence <= ?",
                    (*key, last),
                )
                # A gap that grew after the device saw it keeps its unseen tail.
                await tx.execute(
                    "UPDATE inbox_gaps SET first_sequence = ? WHERE user_id = ? AND "
                    "device_id = ? AND first_sequence = ? AND last_sequence > ?",
                    (last + 1, *key, last),
                )
        return removed

    async def sweep(self, now: float, *, limit: int) -> int:
        expired = await self._expire(now, device=None, limit=limit)
        async with self._db.write("sweep_sends") as tx:
            await tx.execute(
                "DELETE FROM sends WHERE (sender_user_id, sender_device_id, client_message_id) "
                "IN (SELECT sender_user_id, sender_device_id, client_message_id FROM sends "
                "WHERE expires_at <= ? LIMIT ?)",
                (now, limit),
            )
        return expired

    async def _add_gaps(
        self, tx: Transaction, user_id: str, device_id: int, runs: list[tuple[int, int]]
    ) -> None:
        # A run that touches a gap already recorded extends it, so one expired stretch is
        # always one gap, however many sweeps it took.
        key = (user_id, device_id)
        existing = await tx.fetchall(
            "DELETE FROM inbox_gaps WHERE user_id = ? AND device_id = ? "
            "RETURNING first_sequence, last_sequence",
            key,
        )
        ranges = [(g["first_sequence"], g["last_sequence"]) for g in existing]
        await tx.executemany(
            "INSERT INTO inbox_gaps VALUES (?, ?, ?, ?)",
            [(*key, first, last) for first, last in _merge(ranges + runs)],
        )

    async def _expire(self, now: float, *, device: DeviceAddress | None, limit: int | None) -> int:
        where = "expires_at <= ?"
        params: list[Any] = [now]
        if device is not None:
            where += " AND user_id = ? AND device_id = ?"
            params += [device.user_id, device.device_id]
        if limit is not None:
            where = (
                "(user_id, device_id, sequence) IN "
                f"(SELECT user_id, device_id, sequence FROM inbox WHERE {where} LIMIT ?)"
            )
            params.append(limit)
        async with self._db.write("expire_inbox") as tx:
            rows = await tx.fetchall(
                f"DELETE FROM inbox WHERE {where} RETURNING user_id, device_id, sequence", params
            )
            by_inbox: dict[tuple[str, int], list[int]] = defaultdict(list)
            for row in rows:
                by_inbox[(row["user_id"], row["device_id"])].append(row["sequence"])
            for (user, dev), seqs in by_inbox.items():
                await self._add_gaps(tx, user, dev, _runs(seqs))
        return len(rows)
