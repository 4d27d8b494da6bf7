"""The ScyllaDB message store: sends and per-device inboxes, for the distributed mode.

A commit cannot be one transaction here, so it is a claim followed by idempotent writes:

1. every recipient's sequence is drawn from the `SequenceAllocator` (never reused);
2. the send is claimed with `INSERT ... IF NOT EXISTS` on its idempotency key (the only
   lightweight transaction of the hot path), recording the plan (recipient → sequence) and
   one write time;
3. each recipient's inbox row and its id lookup go in one single-partition batch, written
   `USING TIMESTAMP` the recorded write time;
4. the send is marked done.

A retry that finds a claim not marked done (the first attempt died, or timed out, between 2
and 4) rewrites the plan's rows with the same sequences and the same write time: identical
cells, so nothing is duplicated, and an envelope the device already acknowledged stays
deleted because its tombstone is newer. Only then is the send reported as sent; so nothing
is acknowledged before all of it is durable.

Retention: inbox rows carry a TTL of the retention plus `gap_grace`; a read that meets an
envelope past its retention turns it (and its neighbours) into a gap, as the embedded store
does. The grace keeps an expired envelope around long enough for a returning device to be
told what it missed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

from chatconnect.model import DeviceAddress, Envelope, InboxGap, InboxItem
from chatconnect.router.domain.models import Acknowledged, Delivery, PendingSend, SendResult
from chatconnect.router.origins_scylla import send_origin_statements
from chatconnect.router.ports import MessageStore
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
from chatconnect.router.sequences import SequenceAllocator
from chatconnect.storage.cql import CqlSession, Row, Statement, ttl

_INBOX_COLUMNS = (
    "user_id, device_id, sequence, server_message_id, type, sender_user_id, "
    "sender_device_id, client_message_id, destination_user_id, destination_group_id, "
    "content, server_time, expires_at, urgent, extra"
)
_INSERT_INBOX = (
    f"INSERT INTO inbox ({_INBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "USING TTL ? AND TIMESTAMP ?"
)
_INSERT_INDEX = (
    "INSERT INTO inbox_by_message (user_id, device_id, server_message_id, sequence, type, "
    "sender_user_id, sender_device_id, destination_group_id, server_time) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
)
_GAP_CQL = "INSERT INTO inbox_gaps (user_id, device_id, first_sequence, last_sequence) "


def _plan_key(device: DeviceAddress) -> str:
    return f"{device.device_id}/{device.user_id}"


def _now_micros() -> int:
    return time.time_ns() // 1000


class ScyllaMessageStore(MessageStore):
    """Sends and inboxes in ScyllaDB, sequences from Redis backed by ScyllaDB."""

    def __init__(
        self, cql: CqlSession, sequences: SequenceAllocator, *, gap_grace_seconds: int
    ) -> None:
        self._cql = cql
        self._sequences = sequences
        self._grace = gap_grace_seconds

    # --- sends ---------------------------------------------------------------------------

    async def find_send(self, sender: DeviceAddress, client_message_id: str) -> SendResult | None:
        row = await self._claim_of(sender, client_message_id)
        # An unfinished claim is not a send yet: the retry must go through `commit`.
        if row is None or not row["done"]:
            return None
        return SendResult(client_message_id, row["server_message_id"], row["server_time"], True)

    async def _claim_of(self, sender: DeviceAddress, client_message_id: str) -> Row | None:
        rows = await self._cql.execute(
            "find_send",
            "SELECT server_message_id, server_time, done FROM sends WHERE sender_user_id = ? "
            "AND sender_device_id = ? AND client_message_id = ?",
            (sender.user_id, sender.device_id, client_message_id),
        )
        return rows[0] if rows else None

    async def commit(self, send: PendingSend) -> tuple[SendResult, list[Delivery]]:
        deliveries = await self._number(send.deliveries)
        result = SendResult(send.client_message_id, send.server_message_id, send.server_time)
        write_time = _now_micros()
        if send.sender is None:
            # Receipts and notices have no idempotency key; their writes are all there is.
            await self._write(deliveries, write_time)
            return result, deliveries
        # Before the claim: every path that reports the send (this one, or a retry that
        # finishes it) finds the origin durable; a lost race leaves an unknown id to expire.
        await self._cql.execute_many("record_origin", send_origin_statements(send))
        applied, seen = await self._cql.conditional(
            "claim_send",
            "INSERT INTO sends (sender_user_id, sender_device_id, client_message_id, "
            "server_message_id, server_time, expires_at, write_time, plan, done) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, false) IF NOT EXISTS USING TTL ?",
            (
                *send_row(send.sender, send),
                write_time,
                {_plan_key(d.recipient): d.envelope.sequence for d in deliveries},
                ttl(send.expire_time - send.server_time),
            ),
        )
        if applied:
            await self._write(deliveries, write_time)
            await self._mark_done(send.sender, send.client_message_id, send)
            return result, deliveries
        return await self._finish(send, seen)

    async def _number(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        sequences = await asyncio.gather(
            *(self._sequences.allocate(d.recipient) for d in deliveries)
        )
        return [
            Delivery(d.recipient, dataclasses.replace(d.envelope, sequence=seq))
            for d, seq in zip(deliveries, sequences, strict=True)
        ]

    async def _finish(self, send: PendingSend, claim: Row) -> tuple[SendResult, list[Delivery]]:
        """The send was claimed before: report it, completing its writes if they may not
        all have happened."""
        assert send.sender is not None
        original = SendResult(
            send.client_message_id, claim["server_message_id"], claim["server_time"], True
        )
        if claim["done"]:
            return original, []
        plan: dict[str, int] = claim["plan"] or {}
        redo = [
            Delivery(
                d.recipient,
                dataclasses.replace(
                    d.envelope,
                    sequence=plan[_plan_key(d.recipient)],
                    server_message_id=claim["server_message_id"],
                    server_time=claim["server_time"],
                    expire_time=claim["expires_at"],
                ),
            )
            for d in send.deliveries
            if _plan_key(d.recipient) in plan
        ]
        await self._write(redo, claim["write_time"])
        await self._mark_done(send.sender, send.client_message_id, send)
        return original, redo

    async def _mark_done(
        self, sender: DeviceAddress, client_message_id: str, send: PendingSend
    ) -> None:
        await self._cql.execute(
            "finish_send",
            "UPDATE sends USING TTL ? SET done = true WHERE sender_user_id = ? "
            "AND sender_device_id = ? AND client_message_id = ?",
            (
                ttl(send.expire_time - send.server_time),
                sender.user_id,
                sender.device_id,
                client_message_id,
            ),
        )

    async def _write(self, deliveries: Sequence[Delivery], write_time: int) -> None:
        await self._cql.batches(
            "write_inbox", [self._inbox_rows(d, write_time) for d in deliveries]
        )

    def _inbox_rows(self, delivery: Delivery, write_time: int) -> list[Statement]:
        recipient, envelope = delivery.recipient, delivery.envelope
        lifetime = ttl(envelope.expire_time - envelope.server_time + self._grace)
        return [
            Statement(_INSERT_INBOX, (*inbox_row(recipient, envelope), lifetime, write_time)),
            Statement(
                _INSERT_INDEX,
                (
                    recipient.user_id,
                    recipient.device_id,
                    envelope.server_message_id,
                    envelope.sequence,
                    int(envelope.type),
                    envelope.sender.user_id if envelope.sender else None,
                    envelope.sender.device_id if envelope.sender else None,
                    envelope.destination.group_id,
                    envelope.server_time,
                    lifetime,
                    write_time,
                ),
            ),
        ]

    # --- inboxes ---------------------------------------------------------------------------

    async def read(
        self, device: DeviceAddress, *, after_sequence: int, limit: int, now: float
    ) -> list[InboxItem]:
        # The envelopes and the gaps are read at once: one round trip of waiting, not two.
        rows, gaps = await asyncio.gather(
            self._cql.execute(
                "read_inbox",
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE user_id = ? AND device_id = ? "
                "AND sequence > ? LIMIT ?",
                (device.user_id, device.device_id, after_sequence, limit),
            ),
            self._gaps(device),
        )
        expired = [r for r in rows if r["expires_at"] <= now]
        if expired:
            # Retention is enforced on read: turn what expired into gaps, then read again.
            await self._expire(device, expired)
            return await self.read(device, after_sequence=after_sequence, limit=limit, now=now)
        items: list[InboxItem] = [envelope_from_row(r) for r in rows]
        items.extend(InboxGap(first, last) for first, last in gaps if last > after_sequence)
        items.sort(key=lambda i: i.sequence if isinstance(i, Envelope) else i.first_sequence)
        return items[:limit]

    async def _gap_rows(self, device: DeviceAddress) -> list[tuple[int, int]]:
        rows = await self._cql.execute_all(
            "read_gaps",
            "SELECT first_sequence, last_sequence FROM inbox_gaps WHERE user_id = ? "
            "AND device_id = ?",
            (device.user_id, device.device_id),
        )
        return [(int(r["first_sequence"]), int(r["last_sequence"])) for r in rows]

    async def _gaps(self, device: DeviceAddress) -> list[tuple[int, int]]:
        # Two readers expiring neighbouring runs at once may store touching gaps; they are
        # one gap to the device.
        return merge(await self._gap_rows(device))

    async def _expire(self, device: DeviceAddress, rows: Sequence[Row]) -> None:
        key = (device.user_id, device.device_id)
        existing = await self._gap_rows(device)
        merged = merge(existing + runs(sorted(int(r["sequence"]) for r in rows)))
        gap_lifetime = ttl(self._grace)
        statements = [
            Statement(
                "DELETE FROM inbox WHERE user_id = ? AND device_id = ? AND sequence IN ?",
                (*key, [r["sequence"] for r in rows]),
            ),
            Statement(
                "DELETE FROM inbox_by_message WHERE user_id = ? AND device_id = ? "
                "AND server_message_id IN ?",
                (*key, [r["server_message_id"] for r in rows]),
            ),
        ]
        # A row keeping its first sequence is overwritten, never deleted: a delete and an
        # insert of one key in one batch share a timestamp, and the delete would win.
        kept_firsts = {first for first, _ in merged}
        statements += [
            Statement(
                "DELETE FROM inbox_gaps WHERE user_id = ? AND device_id = ? AND first_sequence = ?",
                (*key, first),
            )
            for first, _ in existing
            if first not in kept_firsts
        ]
        statements += [
            Statement(
                _GAP_CQL + "VALUES (?, ?, ?, ?) USING TTL ?", (*key, first, last, gap_lifetime)
            )
            for first, last in merged
        ]
        # One partition key throughout: the batch applies atomically on each replica.
        await self._cql.batch("expire_inbox", statements, logged=False)

    async def acknowledge(self, device: DeviceAddress, ids: Sequence[str]) -> list[Acknowledged]:
        gap_ranges = [g for g in map(parse_gap_id, ids) if g is not None]
        message_ids = [i for i in ids if not i.startswith("gap:")]
        removed = await self._remove_messages(device, message_ids) if message_ids else []
        if gap_ranges:
            await self._remove_gaps(device, gap_ranges)
        return removed

    async def _remove_messages(
        self, device: DeviceAddress, message_ids: Sequence[str]
    ) -> list[Acknowledged]:
        """Two round trips: the id lookup, which carries what the receipts need, then one
        partition batch of deletes."""
        key = (device.user_id, device.device_id)
        unique_ids = list(dict.fromkeys(message_ids))
        index = await self._cql.execute(
            "find_acked",
            f"SELECT {ACKNOWLEDGED_COLUMNS} FROM inbox_by_message WHERE user_id = ? "
            "AND device_id = ? AND server_message_id IN ?",
            (*key, unique_ids),
        )
        sequences = [int(r["sequence"]) for r in index]
        removed = [acknowledged_from_row(r) for r in index if r["type"] is not None]
        written_before_v3 = [int(r["sequence"]) for r in index if r["type"] is None]
        if written_before_v3:
            rows = await self._cql.execute(
                "read_acked",
                f"SELECT {ACKNOWLEDGED_COLUMNS} FROM inbox WHERE user_id = ? AND device_id = ? "
                "AND sequence IN ?",
                (*key, written_before_v3),
            )
            removed += [acknowledged_from_row(r) for r in rows]
        await self._cql.batch(
            "acknowledge",
            [
                Statement(
                    "DELETE FROM inbox WHERE user_id = ? AND device_id = ? AND sequence IN ?",
                    (*key, sequences),
                ),
                Statement(
                    "DELETE FROM inbox_by_message WHERE user_id = ? AND device_id = ? "
                    "AND server_message_id IN ?",
                    (*key, unique_ids),
                ),
            ],
            logged=False,
        )
        return sorted(removed, key=lambda a: a.sequence)

    async def _remove_gaps(self, device: DeviceAddress, acked: Sequence[tuple[int, int]]) -> None:
        key = (device.user_id, device.device_id)
        statements: list[Statement] = []
        for first, last in await self._gap_rows(device):
            covering = [(f, la) for f, la in acked if f <= first <= la]
            if not covering:
                continue
            seen_through = max(la for _, la in covering)
            statements.append(
                Statement(
                    "DELETE FROM inbox_gaps WHERE user_id = ? AND device_id = ? "
                    "AND first_sequence = ?",
                    (*key, first),
                )
            )
            if last > seen_through:
                # A gap that grew after the device saw it keeps its unseen tail (a new key,
                # so the delete above cannot shadow it).
                statements.append(
                    Statement(
                        _GAP_CQL + "VALUES (?, ?, ?, ?) USING TTL ?",
                        (*key, seen_through + 1, last, ttl(self._grace)),
                    )
                )
        await self._cql.batch("acknowledge_gaps", statements, logged=False)
