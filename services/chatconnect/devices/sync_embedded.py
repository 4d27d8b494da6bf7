"""Read markers and tombstones in the embedded database.

A marker moves forward with one conditional upsert, so it never moves back however the
updates interleave. Tombstones converge on their primary key (account, conversation,
message); expired ones are never listed, and each write drops at least as many expired rows
as it adds, so the table stays bounded without a background sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.devices.domain.models import (
    ReadMarker,
    Tombstone,
    TombstoneCursor,
    conversation_from_key,
    conversation_key,
)
from chatconnect.devices.ports import ReadMarkerStore, TombstoneStore
from chatconnect.devices.sync_rows import tombstone_from_row
from chatconnect.storage.sqlite import Database, Row

EXPIRED_PER_WRITE = 100
"""Expired tombstones every write drops besides one per tombstone it writes."""


def _marker(row: Row) -> ReadMarker:
    return ReadMarker(
        conversation_from_key(row["conversation"]),
        row["read_through_time"],
        row["read_through_server_message_id"],
    )


class SqliteReadMarkerStore(ReadMarkerStore):
    """Read markers, one row per (account, conversation)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def advance(self, user_id: str, markers: Sequence[ReadMarker]) -> list[ReadMarker]:
        stored: list[ReadMarker] = []
        async with self._db.write("advance_read_markers") as tx:
            for marker in markers:
                key = conversation_key(marker.conversation)
                row = await tx.fetchone(
                    "INSERT INTO read_markers VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (user_id, conversation) DO UPDATE SET "
                    "read_through_time = excluded.read_through_time, "
                    "read_through_server_message_id = excluded.read_through_server_message_id "
                    "WHERE (excluded.read_through_time, excluded.read_through_server_message_id)"
                    " > (read_through_time, read_through_server_message_id) "
                    "RETURNING *",
                    (user_id, key, marker.read_through_time, marker.read_through_server_message_id),
                )
                if row is None:  # not moved: the stored marker is further
                    row = await tx.fetchone(
                        "SELECT * FROM read_markers WHERE user_id = ? AND conversation = ?",
                        (user_id, key),
                    )
                assert row is not None
                stored.append(_marker(row))
        return stored

    async def list_markers(
        self, user_id: str, *, after_conversation_key: str, limit: int
    ) -> list[ReadMarker]:
        rows = await self._db.fetchall(
            "list_read_markers",
            "SELECT * FROM read_markers WHERE user_id = ? AND conversation > ? "
            "ORDER BY conversation LIMIT ?",
            (user_id, after_conversation_key, limit),
        )
        return [_marker(r) for r in rows]


class SqliteTombstoneStore(TombstoneStore):
    """Tombstones, one row per (account, conversation, message)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, tombstones: Sequence[Tombstone], *, now: float) -> list[Tombstone]:
        stored: list[Tombstone] = []
        async with self._db.write("put_tombstones") as tx:
            await tx.execute(
                "DELETE FROM tombstones WHERE (user_id, conversation, server_message_id) IN "
                "(SELECT user_id, conversation, server_message_id FROM tombstones "
                "WHERE expires_at <= ? LIMIT ?)",
                (now, len(tombstones) + EXPIRED_PER_WRITE),
            )
            for t in tombstones:
                key = (t.user_id, conversation_key(t.conversation), t.server_message_id)
                # One that expired but was not dropped yet is gone as far as anyone knows.
                await tx.execute(
                    "DELETE FROM tombstones WHERE user_id = ? AND conversation = ? "
                    "AND server_message_id = ? AND expires_at <= ?",
                    (*key, now),
                )
                # A FOR_EVERYONE delete raises a FOR_ME tombstone (keeping its first time and
                # expiry); nothing lowers one.
                row = await tx.fetchone(
                    "INSERT INTO tombstones VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (user_id, conversation, server_message_id) DO UPDATE SET "
                    "scope = excluded.scope, deleted_by_user_id = excluded.deleted_by_user_id, "
                    "deleted_by_device_id = excluded.deleted_by_device_id "
                    "WHERE excluded.scope > scope RETURNING *",
                    (
                        *key,
                        int(t.scope),
                        t.delete_time,
                        t.deleted_by.user_id,
                        t.deleted_by.device_id,
                        t.expires_at,
                    ),
                )
                if row is None:
                    row = await tx.fetchone(
                        "SELECT * FROM tombstones WHERE user_id = ? AND conversation = ? "
                        "AND server_message_id = ?",
                        key,
                    )
                assert row is not None
                stored.append(tombstone_from_row(row))
        return stored

    async def list_tombstones(
        self, user_id: str, *, after: TombstoneCursor, limit: int, now: float
    ) -> list[Tombstone]:
        rows = await self._db.fetchall(
            "list_tombstones",
            "SELECT * FROM tombstones WHERE user_id = ? "
            "AND (delete_time, conversation, server_message_id) > (?, ?, ?) "
            "AND expires_at > ? "
            "ORDER BY delete_time, conversation, server_message_id LIMIT ?",
            (
                user_id,
                after.delete_time,
                after.conversation_key,
                after.server_message_id,
                now,
                limit,
            ),
        )
        return [tombstone_from_row(r) for r in rows]
