"""An asyncio SQLite database for the embedded adapters.

One writer connection serialises every write transaction behind an asyncio lock
(`BEGIN IMMEDIATE`, so a transaction never fails half-way for a busy database); a second
connection serves reads, which in WAL mode see only committed data and never block the
writer. Every call runs under the storage timeout and is traced.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call

Row = sqlite3.Row


class Database:
    """The embedded store's connections; open with `Database.open`."""

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, timeout: float
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._timeout = timeout
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        migrations: Sequence[Sequence[str]],
        synchronous: str = "FULL",
        timeout: float = 5.0,
    ) -> Database:
        """Opens (creating if needed) the database at `path` and applies `migrations`.

        `migrations[i]` is the list of statements that takes the schema from version i to
        i + 1; applied versions are recorded in `schema_version`.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        reader = await aiosqlite.connect(path, isolation_level=None)
        for conn in (writer, reader):
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute(f"PRAGMA synchronous={synchronous}")
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA foreign_keys=ON")
        database = cls(writer, reader, timeout)
        await database._migrate(migrations)
        return database

    async def close(self) -> None:
        """Closes both connections."""
        await self._reader.close()
        await self._writer.close()

    async def _migrate(self, migrations: Sequence[Sequence[str]]) -> None:
        async with self.write("migrate") as tx:
            await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
            current = int(row["v"]) if row and row["v"] is not None else 0
            if current > len(migrations):
                raise RuntimeError(
                    f"the database is at schema version {current}, newer than this "
                    f"release knows ({len(migrations)}); upgrade chatconnect"
                )
            for version in range(current, len(migrations)):
                for statement in migrations[version]:
                    await tx.execute(statement)
                await tx.execute("INSERT INTO schema_version VALUES (?)", (version + 1,))

    @asynccontextmanager
    async def write(self, operation: str) -> AsyncIterator[Transaction]:
        """A write transaction; commits on success, rolls back on any exception."""
        with storage_call("sqlite", operation):
            async with self._write_lock:
                tx = Transaction(self._writer, self._timeout)
                try:
                    # BEGIN is inside the try: a request cancelled while BEGIN runs (a
                    # client hanging up) would otherwise leave the writer connection inside
                    # a transaction, and every later write would fail.
                    await tx.execute("BEGIN IMMEDIATE")
                    yield tx
                    await asyncio.wait_for(self._writer.commit(), self._timeout)
                except BaseException as exc:
                    # Queued behind whatever statement is still running in aiosqlite's
                    # thread, so it always runs last; a no-op if that was the commit.
                    await asyncio.shield(self._writer.rollback())
                    if isinstance(exc, TimeoutError | sqlite3.OperationalError):
                        raise StoreUnavailable(f"write failed: {exc}") from exc
                    raise

    async def fetchall(self, operation: str, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Runs a read query on the reader connection."""
        with storage_call("sqlite", operation):
            rows = await _guard(self._reader.execute_fetchall(sql, tuple(params)), self._timeout)
            return list(rows)

    async def fetchone(self, operation: str, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """Runs a read query and returns its first row, if any."""
        rows = await self.fetchall(operation, sql, params)
        return rows[0] if rows else None


class Transaction:
    """Statements inside one write transaction."""

    def __init__(self, conn: aiosqlite.Connection, timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Runs one statement; returns the number of rows it changed."""
        cursor = await _guard(self._conn.execute(sql, tuple(params)), self._timeout)
        count = int(cursor.rowcount)
        await cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """Runs one statement for each parameter row."""
        params = [tuple(r) for r in rows]
        if params:
            await _guard(self._conn.executemany(sql, params), self._timeout)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Runs a query (or a statement with RETURNING) and returns every row."""
        return list(await _guard(self._conn.execute_fetchall(sql, tuple(params)), self._timeout))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """Runs a query and returns its first row, if any."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


async def _guard(awaitable: Any, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError as exc:
        raise StoreUnavailable(f"the embedded database did not answer within {timeout}s") from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"the embedded database failed: {exc}") from exc
