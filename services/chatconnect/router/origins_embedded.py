"""Message origins in the embedded database: written inside a send's commit transaction,
read by the devices service to authorize deletions. Expired rows are filtered on read and
dropped by the router's expiry sweep."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from chatconnect.devices.ports import MessageOrigins
from chatconnect.model import Conversation, DeviceAddress
from chatconnect.router.domain.models import PendingSend
from chatconnect.router.domain.origins import MessageOrigin, origin_of
from chatconnect.router.records import origin_row
from chatconnect.storage.sqlite import Database, Transaction
from chatconnect.storage.sqlite_thread import changed_rows

ORIGINS_PER_READ = 100
"""Ids one lookup query binds (SQLite caps bound variables)."""


async def delete_expired_origins(tx: Transaction, now: float, *, limit: int) -> None:
    """Drops up to `limit` origins past their retention (run by the expiry sweep)."""
    await tx.execute(
        "DELETE FROM message_origins WHERE server_message_id IN (SELECT server_message_id "
        "FROM message_origins WHERE expires_at <= ? LIMIT ?)",
        (now, limit),
    )


class SqliteMessageOrigins(MessageOrigins):
    """Lookups of message origins by server message id."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(
        self, server_message_ids: Sequence[str], *, now: float
    ) -> dict[str, MessageOrigin]:
        unique = list(dict.fromkeys(server_message_ids))
        found: dict[str, MessageOrigin] = {}
        for start in range(0, len(unique), ORIGINS_PER_READ):
            chunk = unique[start : start + ORIGINS_PER_READ]
            rows = await self._db.fetchall(
                "find_origins",
                f"SELECT * FROM message_origins WHERE server_message_id IN "
                f"({', '.join('?' * len(chunk))}) AND expires_at > ?",
                (*chunk, now),
            )
            for row in rows:
                found[row["server_message_id"]] = MessageOrigin(
                    server_message_id=row["server_message_id"],
                    sender=DeviceAddress(row["sender_user_id"], row["sender_device_id"]),
                    destination=Conversation(
                        row["destination_user_id"], row["destination_group_id"]
                    ),
                    server_time=row["server_time"],
                    expire_time=row["expires_at"],
                )
        return found


def insert_send_origin(conn: sqlite3.Connection, send: PendingSend) -> None:
    """Records the origin of a client send inside its commit (nothing for server-generated
    envelopes)."""
    origin = origin_of(send)
    if origin is not None:
        insert_origin(conn, origin)


def insert_origin(conn: sqlite3.Connection, origin: MessageOrigin) -> None:
    """Records a message's origin, on the database's thread inside the caller's write
    transaction; a repeat of the same server message id changes nothing."""
    changed_rows(
        conn,
        "INSERT INTO message_origins VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        origin_row(origin),
    )
