"""The embedded database's write transactions under cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from chatconnect.storage.sqlite import Database

SCHEMA = [["CREATE TABLE items (n INTEGER PRIMARY KEY)"]]


async def _insert(db: Database, n: int) -> None:
    async with db.write("insert") as tx:
        await tx.execute("INSERT INTO items VALUES (?)", (n,))


async def test_writes_cancelled_at_any_point_leave_the_database_writable(tmp_path: Path) -> None:
    """A client hanging up cancels its request wherever it is: before BEGIN has run, inside
    the transaction or during COMMIT. The next write must still work."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")
    try:
        for n in range(60):
            task = asyncio.create_task(_insert(db, n))
            for _ in range(n % 6):  # cancel after a different number of steps each time
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _insert(db, 1000)
        rows = await db.fetchall("count", "SELECT n FROM items WHERE n = 1000")
        assert [r["n"] for r in rows] == [1000]
    finally:
        await db.close()
