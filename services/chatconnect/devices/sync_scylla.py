"""Read markers and tombstones in ScyllaDB.

Read markers move by compare-and-set: a lightweight transaction conditioned on the values
last seen (IF NOT EXISTS for the first), retried with the values the failed one saw, so a
marker never moves back however many devices race.

Tombstones are claimed per (account, conversation, message) with IF NOT EXISTS in
`tombstones_by_message`; the winner's values are then written to the listing table
`tombstones` (oldest first). A loser, or a retry after a crash between the two writes,
rewrites the listing row from the claim it saw: the same cells, so the listing converges on
exactly one row per message. FOR_EVERYONE replaces FOR_ME with `IF scope = 1`. Both tables
carry a TTL of the message retention.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.cql import CqlSession, ttl

MAX_MARKER_ATTEMPTS = 32
"""Compare-and-set rounds before giving up with UNAVAILABLE (retrying is safe). Every lost
round means another device moved the marker forward, so this is only reached under a
sustained storm of updates to one conversation."""

_TOMBSTONE_COLUMNS = (
    "user_id, conversation, server_message_id, scope, delete_time, deleted_by_user_id, "
    "deleted_by_device_id, expires_at"
)


class ScyllaReadMarkerStore(ReadMarkerStore):
    """Read markers, one partition per account."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def advance(self, user_id: str, markers: Sequence[ReadMarker]) -> list[ReadMarker]:
        return list(await asyncio.gather(*(self._advance(user_id, m) for m in markers)))

    async def _advance(self, user_id: str, marker: ReadMarker) -> ReadMarker:
        key = conversation_key(marker.conversation)
        wanted = (marker.read_through_time, marker.read_through_server_message_id)
        rows = await self._cql.execute(
            "read_marker",
            "SELECT read_through_time, read_through_server_message_id FROM read_markers "
            "WHERE user_id = ? AND conversation = ?",
            (user_id, key),
        )
        seen: tuple[float, str] | None = (
            (rows[0]["read_through_time"], rows[0]["read_through_server_message_id"])
            if rows
            else None
        )
        for _ in range(MAX_MARKER_ATTEMPTS):
            if seen is not None and seen >= wanted:
                return ReadMarker(marker.conversation, *seen)
            if seen is None:
                applied, row = await self._cql.conditional(
                    "create_read_marker",
                    "INSERT INTO read_markers (user_id, conversation, read_through_time, "
                    "read_through_server_message_id) VALUES (?, ?, ?, ?) IF NOT EXISTS",
                    (user_id, key, *wanted),
                )
            else:
                applied, row = await self._cql.conditional(
                    "advance_read_marker",
                    "UPDATE read_markers SET read_through_time = ?, "
                    "read_through_server_message_id = ? WHERE user_id = ? AND conversation = ? "
                    "IF read_through_time = ? AND read_through_server_message_id = ?",
                    (*wanted, user_id, key, *seen),
                )
            if applied:
                return marker
            seen = (row["read_through_time"], row["read_through_server_message_id"])
        raise StoreUnavailable("a read marker kept changing under this update; retry")

    async def list_markers(
        self, user_id: str, *, after_conversation_key: str, limit: int
    ) -> list[ReadMarker]:
        rows = await self._cql.execute(
            "list_read_markers",
            "SELECT conversation, read_through_time, read_through_server_message_id "
            "FROM read_markers WHERE user_id = ? AND conversation > ? LIMIT ?",
            (user_id, after_conversation_key, limit),
        )
        return [
            ReadMarker(
                conversation_from_key(r["conversation"]),
                r["read_through_time"],
                r["read_through_server_message_id"],
            )
            for r in rows
        ]


class ScyllaTombstoneStore(TombstoneStore):
    """Tombstones: claims by message, and the same rows in listing order."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def put(self, tombstones: Sequence[Tombstone], *, now: float) -> list[Tombstone]:
        return list(await asyncio.gather(*(self._put(t, now=now) for t in tombstones)))

    async def _put(self, tombstone: Tombstone, *, now: float) -> Tombstone:
        t = tombstone
        key = (t.user_id, conversation_key(t.conversation), t.server_message_id)
        applied, seen = await self._cql.conditional(
            "claim_tombstone",
            f"INSERT INTO tombstones_by_message ({_TOMBSTONE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?",
            (
                *key,
                int(t.scope),
                t.delete_time,
                t.deleted_by.user_id,
                t.deleted_by.device_id,
                t.expires_at,
                ttl(t.expires_at - now),
            ),
        )
        stored = t if applied else tombstone_from_row(seen)
        if not applied and stored.expires_at <= now:
            # Expired, its TTL not run out yet (TTLs round up): gone as far as anyone knows.
            return await self._replace_expired(t, key, seen_expiry=stored.expires_at, now=now)
        if not applied and t.scope > stored.scope:
            raised, _ = await self._cql.conditional(
                "raise_tombstone",
                "UPDATE tombstones_by_message USING TTL ? SET scope = ?, "
                "deleted_by_user_id = ?, deleted_by_device_id = ? "
                "WHERE user_id = ? AND conversation = ? AND server_message_id = ? "
                "IF scope = ?",
                (
                    ttl(stored.expires_at - now),
                    int(t.scope),
                    t.deleted_by.user_id,
                    t.deleted_by.device_id,
                    *key,
                    int(stored.scope),
                ),
            )
            if raised:
                stored = dataclasses.replace(stored, scope=t.scope, deleted_by=t.deleted_by)
            else:
                # Raised (or expired) by someone else meanwhile: nothing outranks that.
                return await self._settle(t, key, now=now)
        await self._write_listing(stored, now=now)
        return stored

    async def _replace_expired(
        self, t: Tombstone, key: tuple[str, str, str], *, seen_expiry: float, now: float
    ) -> Tombstone:
        replaced, _ = await self._cql.conditional(
            "renew_tombstone",
            "UPDATE tombstones_by_message USING TTL ? SET scope = ?, delete_time = ?, "
            "deleted_by_user_id = ?, deleted_by_device_id = ?, expires_at = ? "
            "WHERE user_id = ? AND conversation = ? AND server_message_id = ? "
            "IF expires_at = ?",
            (
                ttl(t.expires_at - now),
                int(t.scope),
                t.delete_time,
                t.deleted_by.user_id,
                t.deleted_by.device_id,
                t.expires_at,
                *key,
                seen_expiry,
            ),
        )
        if not replaced:
            return await self._settle(t, key, now=now)
        await self._write_listing(t, now=now)
        return t

    async def _settle(
        self, wanted: Tombstone, key: tuple[str, str, str], *, now: float
    ) -> Tombstone:
        """After a lost race: what the claim holds now, listed; or, if its TTL ran out
        meanwhile, `wanted` claimed afresh."""
        rows = await self._cql.execute(
            "read_tombstone",
            f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones_by_message "
            "WHERE user_id = ? AND conversation = ? AND server_message_id = ?",
            key,
        )
        if not rows:
            return await self._put(wanted, now=now)
        stored = tombstone_from_row(rows[0])
        await self._write_listing(stored, now=now)
        return stored

    async def _write_listing(self, t: Tombstone, *, now: float) -> None:
        # The write timestamp is fixed by the claim's delete time and the scope: rewrites
        # are identical cells, and a FOR_EVERYONE row wins over a FOR_ME one written late
        # by a racing device, whatever the order they land in.
        await self._cql.execute(
            "list_tombstone",
            "INSERT INTO tombstones (user_id, delete_time, conversation, server_message_id, "
            "scope, deleted_by_user_id, deleted_by_device_id, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?",
            (
                t.user_id,
                t.delete_time,
                conversation_key(t.conversation),
                t.server_message_id,
                int(t.scope),
                t.deleted_by.user_id,
                t.deleted_by.device_id,
                t.expires_at,
                ttl(t.expires_at - now),
                int(t.delete_time * 1_000_000) + int(t.scope),
            ),
        )

    async def list_tombstones(
        self, user_id: str, *, after: TombstoneCursor, limit: int, now: float
    ) -> list[Tombstone]:
        found: list[Tombstone] = []
        cursor = after
        while len(found) < limit:
            rows = await self._cql.execute(
                "list_tombstones",
                f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones WHERE user_id = ? "
                "AND (delete_time, conversation, server_message_id) > (?, ?, ?) LIMIT ?",
                (
                    user_id,
                    cursor.delete_time,
                    cursor.conversation_key,
                    cursor.server_message_id,
                    limit,
                ),
            )
            page = [tombstone_from_row(r) for r in rows]
            # TTLs round up to whole seconds: drop what expired within that second.
            found += [t for t in page if t.expires_at > now]
            if len(rows) < limit:
                break
            cursor = page[-1].cursor
        return found[:limit]
