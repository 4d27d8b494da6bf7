"""The CQL durable last-seen store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatconnect.presence.ports import LastSeenStore
from chatconnect.storage.cql import CqlSession


class ScyllaLastSeenStore(LastSeenStore):
    """One row per user. The write timestamp is the last seen itself, so a late write of an
    older last seen (another process, a retry) never replaces a newer one, without a
    read-before-write or a lightweight transaction."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def record(self, user_id: str, last_seen: float, now: float) -> None:
        await self._cql.execute(
            "record_last_seen",
            "INSERT INTO last_seen (user_id, last_seen, written_at) VALUES (?, ?, ?) "
            "USING TIMESTAMP ?",
            (user_id, last_seen, now, int(last_seen * 1_000_000)),
        )

    async def read(self, user_ids: Sequence[str]) -> dict[str, float]:
        unique = list(dict.fromkeys(user_ids))
        # One single-partition read per user, concurrently: an IN over partitions would
        # load one coordinator with every replica's answer.
        results = await asyncio.gather(
            *(
                self._cql.execute(
                    "read_last_seen",
                    "SELECT last_seen FROM last_seen WHERE user_id = ?",
                    (user_id,),
                )
                for user_id in unique
            )
        )
        return {
            user_id: rows[0]["last_seen"]
            for user_id, rows in zip(unique, results, strict=True)
            if rows and rows[0]["last_seen"] is not None
        }
