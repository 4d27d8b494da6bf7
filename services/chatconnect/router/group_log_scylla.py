"""The ScyllaDB group log: group message records and large groups' logs.

An append is a conditional batch on the log partition's static `head`: it claims the next
position and writes the entry in one Paxos round, so entries of one group become visible
strictly in position order whatever the number of writers.
"""

from __future__ import annotations

import asyncio
import random

from chatconnect.keys.scylla import conditional_batch
from chatconnect.model import DeviceAddress, Envelope
from chatconnect.router.domain.models import GroupMessage
from chatconnect.router.ports import GroupLog
from chatconnect.router.records import LOG_COLUMNS, log_entry_from_row, log_row
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.cql import CqlSession, Statement, ttl

_MAX_APPEND_ROUNDS = 64
"""Appends that lose the race for the head retry this often before giving up (concurrent
senders to one large group; each round is one Paxos round)."""

_INSERT_ENTRY = (
    "INSERT INTO group_log (group_id, position, server_message_id, type, sender_user_id, "
    "sender_device_id, client_message_id, destination_user_id, destination_group_id, "
    "content, server_time, expires_at, urgent, extra) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
)


class ScyllaGroupLog(GroupLog):
    """Group messages and logs on ScyllaDB."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def record(self, message: GroupMessage) -> None:
        await self._cql.execute(
            "record_group_message",
            "INSERT INTO group_messages (group_id, server_message_id, sender_user_id, "
            "sender_device_id, server_time, expires_at, recipient_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?",
            (
                message.group_id,
                message.server_message_id,
                message.sender.user_id,
                message.sender.device_id,
                message.server_time,
                message.expire_time,
                message.recipient_count,
                ttl(message.expire_time - message.server_time),
            ),
        )

    async def find(self, group_id: str, server_message_id: str) -> GroupMessage | None:
        rows = await self._cql.execute(
            "find_group_message",
            "SELECT * FROM group_messages WHERE group_id = ? AND server_message_id = ?",
            (group_id, server_message_id),
        )
        if not rows:
            return None
        row = rows[0]
        return GroupMessage(
            group_id=row["group_id"],
            server_message_id=row["server_message_id"],
            sender=DeviceAddress(row["sender_user_id"], row["sender_device_id"]),
            server_time=row["server_time"],
            expire_time=row["expires_at"],
            recipient_count=row["recipient_count"],
        )

    async def append(self, group_id: str, envelope: Envelope) -> int:
        # Both reads at once: a send's latency is its chain of round trips.
        known, head = await asyncio.gather(
            self._position_of(group_id, envelope.server_message_id), self.head(group_id)
        )
        if known is not None:
            return known
        lifetime = ttl(envelope.expire_time - envelope.server_time)
        for _ in range(_MAX_APPEND_ROUNDS):
            position = head + 1
            claim = (
                Statement(
                    "UPDATE group_log SET head = ? WHERE group_id = ? IF head = ?",
                    (position, group_id, head),
                )
                if head
                else Statement(
                    "UPDATE group_log SET head = ? WHERE group_id = ? IF head = null",
                    (position, group_id),
                )
            )
            entry = Statement(_INSERT_ENTRY, (*log_row(group_id, position, envelope), lifetime))
            batch = conditional_batch([claim, entry])
            applied, seen = await self._cql.conditional(
                "append_group_log", batch.cql, batch.params
            )
            if applied:
                # The lookup makes a retry of this send find its position. A crash between
                # the two writes leaves the entry without it: a retry then appends the
                # message once more under the same server message id, which clients
                # recognise; nothing is lost.
                await self._cql.execute(
                    "index_group_log",
                    "INSERT INTO group_log_by_message (group_id, server_message_id, position) "
                    "VALUES (?, ?, ?) USING TTL ?",
                    (group_id, envelope.server_message_id, position, lifetime),
                )
                return position
            await asyncio.sleep(random.uniform(0, 0.005))
            # A claim that lost the race reports the head it met; read it only if not.
            head = int(seen["head"]) if seen.get("head") is not None else await self.head(group_id)
        raise StoreUnavailable(f"could not append to the log of group {group_id}: contention")

    async def _position_of(self, group_id: str, server_message_id: str) -> int | None:
        rows = await self._cql.execute(
            "find_group_log_entry",
            "SELECT position FROM group_log_by_message WHERE group_id = ? "
            "AND server_message_id = ?",
            (group_id, server_message_id),
        )
        return int(rows[0]["position"]) if rows else None

    async def read(
        self, group_id: str, *, after_position: int, limit: int, now: float
    ) -> list[Envelope]:
        rows = await self._cql.execute(
            "read_group_log",
            f"SELECT {LOG_COLUMNS} FROM group_log WHERE group_id = ? AND position > ? LIMIT ?",
            (group_id, after_position, limit),
        )
        return [
            log_entry_from_row(r)
            for r in rows
            if r["server_message_id"] is not None and r["expires_at"] > now
        ]

    async def head(self, group_id: str) -> int:
        rows = await self._cql.execute(
            "group_log_head", "SELECT head FROM group_log WHERE group_id = ? LIMIT 1", (group_id,)
        )
        return int(rows[0]["head"]) if rows and rows[0]["head"] is not None else 0
