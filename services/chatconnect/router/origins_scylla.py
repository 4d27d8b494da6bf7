"""Message origins in ScyllaDB: written by the send path before it claims a send, read by
the devices service to authorize deletions. Rows carry a TTL of the message retention."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatconnect.devices.ports import MessageOrigins
from chatconnect.model import Conversation, DeviceAddress
from chatconnect.router.domain.models import PendingSend
from chatconnect.router.domain.origins import MessageOrigin, origin_of
from chatconnect.router.records import origin_row
from chatconnect.storage.cql import CqlSession, Statement, ttl

_INSERT = (
    "INSERT INTO message_origins (server_message_id, sender_user_id, sender_device_id, "
    "destination_user_id, destination_group_id, server_time, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?"
)
_SELECT = (
    "SELECT server_message_id, sender_user_id, sender_device_id, destination_user_id, "
    "destination_group_id, server_time, expires_at FROM message_origins "
    "WHERE server_message_id = ?"
)


def origin_statement(origin: MessageOrigin) -> Statement:
    """The write of a message's origin (1:1 and group sends). Idempotent: a retry writes
    the same cells."""
    return Statement(
        _INSERT, (*origin_row(origin), ttl(origin.expire_time - origin.server_time))
    )


class ScyllaMessageOrigins(MessageOrigins):
    """Lookups of message origins by server message id (one partition each)."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def find(
        self, server_message_ids: Sequence[str], *, now: float
    ) -> dict[str, MessageOrigin]:
        unique = list(dict.fromkeys(server_message_ids))
        # Single-partition reads in parallel (bounded by the session's in-flight limit),
        # rather than one coordinator gathering an IN list across the ring.
        pages = await asyncio.gather(
            *(self._cql.execute("find_origin", _SELECT, (i,)) for i in unique)
        )
        found: dict[str, MessageOrigin] = {}
        for rows in pages:
            for row in rows:
                if row["expires_at"] <= now:
                    continue
                found[row["server_message_id"]] = MessageOrigin(
                    server_message_id=row["server_message_id"],
                    sender=DeviceAddress(row["sender_user_id"], row["sender_device_id"]),
                    destination=Conversation(
                        row["destination_user_id"] or "", row["destination_group_id"] or ""
                    ),
                    server_time=row["server_time"],
                    expire_time=row["expires_at"],
                )
        return found


def send_origin_statements(send: PendingSend) -> list[Statement]:
    """The origin write of a client send (none for server-generated envelopes)."""
    origin = origin_of(send)
    return [origin_statement(origin)] if origin is not None else []
