"""The embedded (SQLite) message store."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Any

from chatconnect.model import DeviceAddress, Envelope, InboxGap, InboxItem
from chatconnect.router.domain.models import Acknowledged, Delivery, PendingSend, SendResult
from chatconnect.router.origins_embedded import delete_expired_origins, insert_send_origin
from chatconnect.router.ports import ExpirySweeper, MessageStore
from chatconnect.router.records import (
    ACKNOWLEDGED_COLUMNS,
    acknowledged_from_row,
    envelope_from_row,
    inbox_row,
    merge,
    parse_gap_id,
    runs,
    send_row,
)
from chatconnect.storage.sqlite import Database, Transaction
from chatconnect.storage.sqlite_thread import all_rows, changed_rows, first_row


class SqliteMessageStore(MessageStore, ExpirySweeper):
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
        return await self._db.run_write("commit_send", partial(_commit_send, send))

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
        items: list[InboxItem] = [envelope_from_row(r) for r in rows]
        items.extend(InboxGap(g["first_sequence"], g["last_sequence"]) for g in gaps)
        items.sort(key=lambda i: i.sequence if isinstance(i, Envelope) else i.first_sequence)
        return items[:limit]

    async def acknowledge(self, device: DeviceAddress, ids: Sequence[str]) -> list[Acknowledged]:
        return await self._db.run_write("acknowledge", partial(_acknowledge, device, ids))

    async def sweep(self, now: float, *, limit: int) -> int:
        expired = await self._expire(now, device=None, limit=limit)
        async with self._db.write("sweep_sends") as tx:
            await delete_expired_origins(tx, now, limit=limit)
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
            [(*key, first, last) for first, last in merge(ranges + runs)],
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
                await self._add_gaps(tx, user, dev, runs(seqs))
        return len(rows)


def _commit_send(send: PendingSend, conn: sqlite3.Connection) -> tuple[SendResult, list[Delivery]]:
    """A send's whole write transaction, run on the database's thread in one hop (every
    message takes this path, twice with its delivery receipt): claims the client message
    id, records the origin, and appends to each addressed device's inbox."""
    if send.sender is not None:
        claimed = changed_rows(
            conn,
            "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            send_row(send.sender, send),
        )
        if not claimed:
            row = first_row(
                conn,
                "SELECT server_message_id, server_time FROM sends WHERE "
                "sender_user_id = ? AND sender_device_id = ? AND client_message_id = ?",
                (send.sender.user_id, send.sender.device_id, send.client_message_id),
            )
            assert row is not None
            return SendResult(
                send.client_message_id, row["server_message_id"], row["server_time"], True
            ), []
    insert_send_origin(conn, send)
    committed = [_append(conn, d) for d in send.deliveries]
    return SendResult(send.client_message_id, send.server_message_id, send.server_time), committed


def _acknowledge(
    device: DeviceAddress, ids: Sequence[str], conn: sqlite3.Connection
) -> list[Acknowledged]:
    """Removes the acknowledged messages and gaps from the device's inbox; returns the
    messages removed, in sequence order."""
    gap_ids = [g for g in map(parse_gap_id, ids) if g is not None]
    message_ids = [i for i in ids if not i.startswith("gap:")]
    removed: list[Acknowledged] = []
    if message_ids:
        marks = ",".join("?" * len(message_ids))
        rows = all_rows(
            conn,
            f"DELETE FROM inbox WHERE user_id = ? AND device_id = ? AND "
            f"server_message_id IN ({marks}) RETURNING {ACKNOWLEDGED_COLUMNS}",
            (device.user_id, device.device_id, *message_ids),
        )
        removed = sorted(map(acknowledged_from_row, rows), key=lambda a: a.sequence)
    for first, last in gap_ids:
        key = (device.user_id, device.device_id, first)
        changed_rows(
            conn,
            "DELETE FROM inbox_gaps WHERE user_id = ? AND device_id = ? AND "
            "first_sequence = ? AND last_sequence <= ?",
            (*key, last),
        )
        # A gap that grew after the device saw it keeps its unseen tail.
        changed_rows(
            conn,
            "UPDATE inbox_gaps SET first_sequence = ? WHERE user_id = ? AND "
            "device_id = ? AND first_sequence = ? AND last_sequence > ?",
            (last + 1, *key, last),
        )
    return removed


def _append(conn: sqlite3.Connection, delivery: Delivery) -> Delivery:
    """Appends one envelope to its device's inbox at the device's next sequence."""
    recipient = delivery.recipient
    head = first_row(
        conn,
        "INSERT INTO inbox_heads VALUES (?, ?, 1) ON CONFLICT (user_id, device_id) "
        "DO UPDATE SET last_sequence = last_sequence + 1 RETURNING last_sequence",
        (recipient.user_id, recipient.device_id),
    )
    assert head is not None
    envelope = dataclasses.replace(delivery.envelope, sequence=int(head["last_sequence"]))
    changed_rows(
        conn,
        "INSERT INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        inbox_row(recipient, envelope),
    )
    return Delivery(recipient, envelope)
