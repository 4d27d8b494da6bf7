"""A sqlite3 connection with a thread of its own, for the event loop.

SQLite's calls block, so each connection lives on one worker thread and every call on it
is a round trip from the loop to that thread and back (a "hop", about 60-80 µs here). The
write path holds the database's write lock across its hops, so they bound how many
writes per second the embedded store commits: each call here is exactly one hop that
runs a whole step (the savepoint a transaction opens with, the statement, reading its
row count and closing its cursor) on the thread. aiosqlite, used before, took two hops
per statement (execute, then close the cursor) and has no public way to run a function
on its thread; the standard library's single-worker executor does exactly that.

Statements and COMMIT are bounded by the store's timeout: one that has not come back by
then raises TimeoutError (the thread may still finish it; one still queued never runs).
Rolling back is not: it must run, after whatever the thread is stuck in.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from chatconnect.runtime.deadline import within

T = TypeVar("T")

Params = tuple[Any, ...]


class Savepoint:
    """The savepoint a write transaction opens, taken in the same hop as the
    transaction's first statement. `taken` is set and read only on the connection's
    thread, so rolling back to it is right even when the caller was cancelled while that
    first hop was still queued.

    Savepoints are never released: COMMIT ends them all, and a write that fails rolls back
    to its own, the most recent one of that name (writers take turns on the connection).
    Releasing each would cost a hop per write."""

    __slots__ = ("name", "taken")

    def __init__(self, name: str) -> None:
        self.name = name
        self.taken = False

    def take(self, conn: sqlite3.Connection) -> None:
        if not self.taken:
            conn.execute(f"SAVEPOINT {self.name}").close()
            self.taken = True

    def roll_back(self, conn: sqlite3.Connection) -> None:
        """Undoes every statement run since the savepoint, if it was taken."""
        if self.taken:
            conn.execute(f"ROLLBACK TO {self.name}").close()


class ThreadedConnection:
    """One sqlite3 connection and the one thread every call on it runs on."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
    ) -> None:
        self._conn = conn
        self._thread = thread
        self._loop = loop
        self._timeout = timeout

    @classmethod
    async def open(cls, path: Path, name: str, *, timeout: float) -> ThreadedConnection:
        """Opens the database at `path` in autocommit mode (transactions are explicit),
        rows as `sqlite3.Row`. `name` names the thread, for profiles; `timeout` bounds
        statements and COMMIT."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}")
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(
            thread, partial(sqlite3.connect, path, isolation_level=None, check_same_thread=False)
        )
        conn.row_factory = sqlite3.Row
        return cls(conn, thread, loop, timeout)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Runs `function(connection, *args)` on the connection's thread however long it
        takes: for what must run even behind a stuck call (rolling back)."""
        return await self._loop.run_in_executor(self._thread, function, self._conn, *args)

    async def bounded_call(self, function: Callable[..., T], *args: Any) -> T:
        """Runs `function(connection, *args)` on the connection's thread; TimeoutError
        if it has not come back within the timeout (still queued by then, it never
        runs)."""
        future = self._loop.run_in_executor(self._thread, function, self._conn, *args)
        return await within(self._loop, future, self._timeout)

    async def execute(
        self, sql: str, params: Params = (), savepoint: Savepoint | None = None
    ) -> int:
        """Runs one statement, taking `savepoint` first if not yet taken; returns the
        number of rows it changed."""
        return await self.bounded_call(_execute, sql, params, savepoint)

    async def executemany(
        self, sql: str, rows: Sequence[Params], savepoint: Savepoint | None = None
    ) -> None:
        """Runs one statement for each parameter row, taking `savepoint` first if not
        yet taken."""
        await self.bounded_call(_executemany, sql, rows, savepoint)

    async def fetchall(
        self, sql: str, params: Params = (), savepoint: Savepoint | None = None
    ) -> list[sqlite3.Row]:
        """Runs a query, taking `savepoint` first if not yet taken; returns every row."""
        return await self.bounded_call(_fetchall, sql, params, savepoint)

    async def run(self, body: Callable[[sqlite3.Connection], T], savepoint: Savepoint) -> T:
        """Runs `body` on the connection's thread, taking `savepoint` first if not yet
        taken: a whole transaction body in one hop."""
        return await self.bounded_call(_run, body, savepoint)

    async def commit(self) -> None:
        await self.bounded_call(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        await self.call(sqlite3.Connection.rollback)

    async def close(self) -> None:
        """Closes the connection, then lets its thread end."""
        try:
            await self.call(sqlite3.Connection.close)
        finally:
            self._thread.shutdown(wait=False)


def changed_rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> int:
    """Runs one statement on the connection's thread; returns the rows it changed."""
    cursor = conn.execute(sql, tuple(params))
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def all_rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Runs a query (or a statement with RETURNING) on the connection's thread."""
    cursor = conn.execute(sql, tuple(params))
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def first_row(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    """Runs a query (or a statement with RETURNING) on the connection's thread; returns its
    first row, if any."""
    rows = all_rows(conn, sql, params)
    return rows[0] if rows else None


def _execute(
    conn: sqlite3.Connection, sql: str, params: Params, savepoint: Savepoint | None
) -> int:
    if savepoint is not None:
        savepoint.take(conn)
    return changed_rows(conn, sql, params)


def _executemany(
    conn: sqlite3.Connection, sql: str, rows: Sequence[Params], savepoint: Savepoint | None
) -> None:
    if savepoint is not None:
        savepoint.take(conn)
    conn.executemany(sql, rows).close()


def _fetchall(
    conn: sqlite3.Connection, sql: str, params: Params, savepoint: Savepoint | None
) -> list[sqlite3.Row]:
    if savepoint is not None:
        savepoint.take(conn)
    return all_rows(conn, sql, params)


def _run(
    conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T], savepoint: Savepoint
) -> T:
    savepoint.take(conn)
    return body(conn)
