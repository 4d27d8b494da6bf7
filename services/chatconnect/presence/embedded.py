"""The embedded (SQLite) durable last-seen store."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.presence.ports import LastSeenStore
from chatconnect.storage.sqlite import Database

# SQLite caps bound parameters per statement; read in chunks below it.
_READ_CHUNK = 500


class SqliteLastSeenStore(LastSeenStore):
    """One row per user in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, user_id: str, last_seen: float, now: float) -> None:
        async with self._db.write("record_last_seen") as tx:
            await tx.execute(
                "INSERT INTO last_seen (user_id, last_seen, written_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen, "
                "written_at = excluded.written_at WHERE excluded.last_seen > last_seen",
                (user_id, last_seen, now),
            )

    async def read(self, user_ids: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        unique = list(dict.fromkeys(user_ids))
        for start in range(0, len(unique), _READ_CHUNK):
            chunk = unique[start : start + _READ_CHUNK]
            rows = await self._db.fetchall(
                "read_last_seen",
                "SELECT user_id, last_seen FROM last_seen WHERE user_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((row["user_id"], row["last_seen"]) for row in rows)
        return found
