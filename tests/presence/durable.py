"""Reads the durable last-seen row of a user straight from the server's store (SQLite file
or CQL keyspace), to observe how often the server wrote it."""

from __future__ import annotations

import sqlite3

from chatconnect.storage.cql import CqlSession
from tests.conftest import Server


async def last_seen_row(server: Server, user_id: str) -> tuple[float, float] | None:
    """(last_seen, written_at) of the durable row, or None."""
    settings = server.settings
    if settings.server.store == "scylla":
        session = await CqlSession.connect(settings.scylla, timeout=10.0)
        try:
            rows = await session.execute(
                "test_last_seen",
                "SELECT last_seen, written_at FROM last_seen WHERE user_id = ?",
                (user_id,),
            )
        finally:
            await session.close()
        return (rows[0]["last_seen"], rows[0]["written_at"]) if rows else None
    path = settings.server.data_dir / "chatconnect.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT last_seen, written_at FROM last_seen WHERE user_id = ?", (user_id,)
        ).fetchone()
    return (float(row[0]), float(row[1])) if row else None
