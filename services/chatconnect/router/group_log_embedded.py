"""The embedded (SQLite) group log: group message records and large groups' logs."""

from __future__ import annotations

from chatconnect.model import DeviceAddress, Envelope
from chatconnect.router.domain.models import GroupMessage
from chatconnect.router.ports import GroupLog
from chatconnect.router.records import LOG_COLUMNS, log_entry_from_row, log_row
from chatconnect.storage.sqlite import Database


class SqliteGroupLog(GroupLog):
    """Group messages and logs in the embedded database; one writer, so positions are
    handed out in commit order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, message: GroupMessage) -> None:
        async with self._db.write("record_group_message") as tx:
            await tx.execute(
                "INSERT INTO group_messages VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    message.group_id,
                    message.server_message_id,
                    message.sender.user_id,
                    message.sender.device_id,
                    message.server_time,
                    message.expire_time,
                    message.recipient_count,
                ),
            )

    async def find(self, group_id: str, server_message_id: str) -> GroupMessage | None:
        row = await self._db.fetchone(
            "find_group_message",
            "SELECT * FROM group_messages WHERE group_id = ? AND server_message_id = ?",
            (group_id, server_message_id),
        )
        if row is None:
            return None
        return GroupMessage(
            group_id=row["group_id"],
            server_message_id=row["server_message_id"],
            sender=DeviceAddress(row["sender_user_id"], row["sender_device_id"]),
            server_time=row["server_time"],
            expire_time=row["expires_at"],
            recipient_count=row["recipient_count"],
        )

    async def append(self, group_id: str, envelope: Envelope) -> int:
        async with self._db.write("append_group_log") as tx:
            existing = await tx.fetchone(
                "SELECT position FROM group_log WHERE group_id = ? AND server_message_id = ?",
                (group_id, envelope.server_message_id),
            )
            if existing is not None:
                return int(existing["position"])
            head = await tx.fetchone(
                "INSERT INTO group_log_heads VALUES (?, 1) ON CONFLICT (group_id) "
                "DO UPDATE SET head = head + 1 RETURNING head",
                (group_id,),
            )
            assert head is not None
            position = int(head["head"])
            # Retention is enforced here as well as on read: the log never outgrows it.
            await tx.execute(
                "DELETE FROM group_log WHERE group_id = ? AND expires_at <= ?",
                (group_id, envelope.server_time),
            )
            await tx.execute(
                "INSERT INTO group_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                log_row(group_id, position, envelope),
            )
        return position

    async def read(
        self, group_id: str, *, after_position: int, limit: int, now: float
    ) -> list[Envelope]:
        rows = await self._db.fetchall(
            "read_group_log",
            f"SELECT {LOG_COLUMNS} FROM group_log WHERE group_id = ? AND position > ? "
            "AND expires_at > ? ORDER BY position LIMIT ?",
            (group_id, after_position, now, limit),
        )
        return [log_entry_from_row(r) for r in rows]

    async def head(self, group_id: str) -> int:
        row = await self._db.fetchone(
            "group_log_head", "SELECT head FROM group_log_heads WHERE group_id = ?", (group_id,)
        )
        return int(row["head"]) if row is not None else 0
