"""An asyncio SQLite database for the embedded adapters.

One writer connection serialises every write transaction behind an asyncio lock
(`BEGIN IMMEDIATE`, so a transaction never fails half-way for a busy database); a second
connection serves reads, which in WAL mode see only committed data and never block the
writer. Every call runs under the storage timeout and is traced.

Writes are group-committed. Each caller's transaction runs in a SAVEPOINT of one open
SQLite transaction (taken with its first statement, in one hop to the connection's thread:
see sqlite_thread.py), and while other writers are queued the COMMIT (and its fsync, the
cost of a durable write) waits for them, up to `max_group` transactions; then one COMMIT
makes the whole group durable. `write` returns only after the COMMIT that covers it, so an
acknowledged write is as durable as before, and a failed body is rolled back to its
savepoint without touching the rest of the group.

The hottest writes (a send, an acknowledgement) are synchronous bodies handed to
`run_write`. Those that arrive while one batch of them is on the writer's thread wait
together and then run as the next batch: each in its own savepoint, all in one hop, in
one transaction. A delivered message takes four such writes, thousands a second under
load; one hop, one lock turn and one COMMIT per batch instead of per write cut the
server's CPU per message by about 15 % (docs/hot-path.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from chatconnect.runtime.deadline import within
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call
from chatconnect.storage.sqlite_thread import Savepoint, ThreadedConnection, changed_rows
from chatconnect.storage.sqlite_watch import Listener, Watches

Row = sqlite3.Row
T = TypeVar("T")


class Database:
    """The embedded store's connections; open with `Database.open`."""

    def __init__(
        self,
        writer: ThreadedConnection,
        reader: ThreadedConnection,
        loop: asyncio.AbstractEventLoop,
        max_group: int = 64,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._loop = loop
        self._max_group = max_group
        self._write_lock = asyncio.Lock()
        self._queued = 0
        """Writers waiting for the lock: while there are any, the COMMIT waits for them."""
        self._group: _Group | None = None
        """The open transaction's group, if a COMMIT is pending."""
        self._finishing: set[asyncio.Future[Any]] = set()
        """COMMITs and rollbacks started by `_finish_holding_lock` that have not ended."""
        self._watches = Watches()
        self._bodies: list[_QueuedBody] = []
        """`run_write` bodies waiting for the next batch."""
        self._batches: asyncio.Future[None] | None = None
        """The task running batches of bodies, while there are any."""

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        migrations: Sequence[Sequence[str]],
        synchronous: str = "FULL",
        timeout: float = 5.0,
        max_group: int = 64,
    ) -> Database:
        """Opens (creating if needed) the database at `path` and applies `migrations`.

        `migrations[i]` is the list of statements that takes the schema from version i to
        i + 1; applied versions are recorded in `schema_version`.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await ThreadedConnection.open(path, "writer", timeout=timeout)
        reader = await ThreadedConnection.open(path, "reader", timeout=timeout)
        for conn in (writer, reader):
            # First, so that switching to WAL waits for another process opening the same
            # database (server.processes) instead of failing with "database is locked"
            # (and unbounded by the store's timeout: as long as SQLite's busy wait).
            for pragma in (
                "busy_timeout=5000",
                "journal_mode=WAL",
                f"synchronous={synchronous}",
                "foreign_keys=ON",
            ):
                await conn.call(changed_rows, f"PRAGMA {pragma}")
        database = cls(writer, reader, asyncio.get_running_loop(), max_group)
        await database._migrate(migrations)
        return database

    async def close(self) -> None:
        """Closes both connections, once the queued `run_write` bodies have run."""
        if self._batches is not None:
            await self._batches
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

    async def watch(self, table: str, key_column: str, listener: Listener) -> None:
        """Tells `listener` the `key_column` values of the `table` rows this process's
        writes change, once they are committed (storage/sqlite_watch.py)."""
        if self._watches.add(table, listener):
            await self._writer.call(self._watches.install, table, key_column)

    @asynccontextmanager
    async def write(self, operation: str) -> AsyncIterator[Transaction]:
        """A write transaction: durable (committed) when the block exits normally, rolled
        back on any exception."""
        with storage_call("sqlite", operation):
            async with self._transaction() as tx:
                yield tx

    async def run_write(self, operation: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `body`, a synchronous transaction body, on the writer's thread, batched
        with the other bodies waiting (see the module's doc); returns its result once the
        COMMIT covering it is done. A body that raises is rolled back alone, and its
        exception raised here. `body` must not commit, roll back or touch savepoints.

        A caller cancelled before its batch starts is dropped and its body never runs;
        one cancelled later may still be committed, as with `write`."""
        with storage_call("sqlite", operation):
            queued = _QueuedBody(body, self._loop.create_future())
            self._bodies.append(queued)
            if self._batches is None:
                self._batches = asyncio.ensure_future(self._run_batches())
            outcome = await queued.outcome
            if isinstance(outcome, _Failed):
                if isinstance(outcome.error, sqlite3.OperationalError):
                    raise StoreUnavailable(f"write failed: {outcome.error}") from outcome.error
                raise outcome.error
            result: T = outcome
            return result

    async def _run_batches(self) -> None:
        """Runs the queued bodies, a batch at a time, until none is left."""
        try:
            while self._bodies:
                await self._write_lock.acquire()
                # Taken only now, so that a caller gone while its body waited is dropped.
                batch = [q for q in self._bodies[: self._max_group] if not q.outcome.done()]
                del self._bodies[: self._max_group]
                if not batch:
                    self._write_lock.release()
                    continue
                try:
                    outcomes = await self._run_batch([q.body for q in batch])
                except Exception as exc:
                    for queued in batch:
                        queued.settle(_Failed(exc))
                    continue
                except BaseException:
                    # Only the event loop shutting down cancels this task.
                    for queued in batch:
                        queued.settle(_Failed(StoreUnavailable("the server is stopping")))
                    raise
                for queued, outcome in zip(batch, outcomes, strict=True):
                    queued.settle(outcome)
        finally:
            self._batches = None
            for queued in self._bodies:
                queued.settle(_Failed(StoreUnavailable("the server is stopping")))
            self._bodies.clear()

    async def _run_batch(self, bodies: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        """Runs one batch of bodies; returns each one's result or `_Failed`.

        Normally the batch is a transaction of its own, begun, run and committed in one
        hop: the event loop's latency is paid once per batch, and the writer's thread
        starts on it while the loop still wakes the callers of the batch before. If
        `write` callers left their group open for the writers queued behind them, the
        batch joins that group instead.

        Holds the write lock, and releases it. Not counted among the queued writers: a
        `write` caller ahead of the batch commits its group rather than wait for it."""
        if self._group is not None:
            async with self._in_group() as tx:
                return await tx.run(partial(_each_in_savepoint, bodies))
        return await self._finish_holding_lock(self._batch_transaction(bodies))

    async def _batch_transaction(
        self, bodies: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[Any]:
        """The batch in a transaction of its own. Holds the write lock."""
        abandoned = threading.Event()
        try:
            return await _translated(self._writer.bounded_call(_own_transaction, bodies, abandoned))
        except BaseException:
            abandoned.set()  # its callers are told it failed: it must not commit now
            # Queued behind the batch on the writer's thread: once the rollback is back,
            # a batch that ran out of time has ended too, and its changes are told after
            # whatever it did.
            await _rollback(self._writer)
            raise
        finally:
            self._watches.report()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        """One writer's transaction in the open group: see `write`."""
        self._queued += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._queued -= 1
        async with self._in_group() as tx:
            yield tx

    @asynccontextmanager
    async def _in_group(self) -> AsyncIterator[Transaction]:
        """A transaction in the open group (begun if none is): holds the write lock, and
        releases it or hands it to the COMMIT, which releases it when done."""
        handed_over = False
        try:
            group = await self._join_group()
            tx = Transaction(self._writer)
            try:
                yield tx
            except BaseException as exc:
                handed_over = True
                await self._finish_holding_lock(self._undo_savepoint(group, tx.savepoint))
                if isinstance(exc, TimeoutError | sqlite3.OperationalError):
                    raise StoreUnavailable(f"write failed: {exc}") from exc
                raise
            group.members += 1
            if self._queued == 0 or group.members >= self._max_group:
                handed_over = True
                await self._finish_holding_lock(self._commit(group))
        finally:
            if not handed_over:
                self._write_lock.release()
        await self._until_committed(group)

    async def _finish_holding_lock(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs `work` (a COMMIT or a rollback the caller starts while holding the write
        lock) to its end even if the caller is cancelled meanwhile, and releases the lock
        when it ends. A COMMIT is shared by a whole group: one member's client hanging up
        must not fail it for the rest, nor let the next transaction begin before it ends."""
        task = asyncio.ensure_future(work)
        self._finishing.add(task)  # the loop keeps only weak references to tasks

        def ended(_: asyncio.Future[T]) -> None:
            self._finishing.discard(task)
            self._write_lock.release()

        task.add_done_callback(ended)
        return await asyncio.shield(task)

    async def _join_group(self) -> _Group:
        """The open transaction's group; begins a transaction if none is open. Holds the
        write lock."""
        if self._group is None:
            group = _Group(self._loop.create_future())
            # Set before BEGIN runs: a writer cancelled during BEGIN still leaves a group
            # whose rollback (in _undo_savepoint) ends the transaction.
            self._group = group
            try:
                await _translated(self._writer.execute("BEGIN IMMEDIATE"))
            except BaseException as exc:
                self._group = None
                await asyncio.shield(_rollback(self._writer))
                group.finish(exc)
                raise
        return self._group

    async def _undo_savepoint(self, group: _Group, savepoint: Savepoint) -> None:
        """Rolls back one writer's savepoint; if even that fails, the whole group."""
        try:
            await self._writer.call(savepoint.roll_back)
        except sqlite3.Error as exc:
            await self._abort(group, exc)
            return
        if self._queued == 0 and self._group is group:
            if group.members:
                await self._commit(group)  # the writers before this one are waiting
            else:
                # Nobody else is in this transaction: end it rather than leave it open.
                self._group = None
                await _rollback(self._writer)
                group.finish(None)

    async def _commit(self, group: _Group) -> None:
        """Commits the group's transaction. Holds the write lock."""
        if self._group is not group:
            return
        self._group = None
        try:
            await self._writer.commit()  # bounded by the connection's timeout
        except BaseException as exc:
            group.finish(StoreUnavailable(f"commit failed: {exc!r}"))
            if isinstance(exc, asyncio.CancelledError):
                raise  # only the event loop shutting down cancels a finishing task
            # Queued behind the COMMIT on the writer's thread: once the rollback is back,
            # a COMMIT that ran out of time has ended too, committed or not, and the
            # changes are told after whatever it did.
            await _rollback(self._writer)
            self._watches.report()
            return
        self._watches.report()
        group.finish(None)

    async def _abort(self, group: _Group, exc: BaseException) -> None:
        if self._group is group:
            self._group = None
            await _rollback(self._writer)
        group.finish(StoreUnavailable(f"write failed: {exc}"))

    async def _until_committed(self, group: _Group) -> None:
        """Waits for the COMMIT covering this writer. The writers queued behind it commit
        the group; should they all be cancelled before their turn, this writer takes the
        lock and commits it itself, so a group never stays open."""
        while not group.done.done():
            try:
                await within(self._loop, asyncio.shield(group.done), _COMMIT_GRACE_SECONDS)
            except TimeoutError:
                await self._write_lock.acquire()
                await self._finish_holding_lock(self._commit(group))
        error = group.done.result()
        if error is not None:
            raise error

    async def fetchall(self, operation: str, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Runs a read query on the reader connection."""
        with storage_call("sqlite", operation):
            rows: list[Row] = await _translated(self._reader.fetchall(sql, tuple(params)))
            return rows

    async def fetchone(self, operation: str, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """Runs a read query and returns its first row, if any."""
        rows = await self.fetchall(operation, sql, params)
        return rows[0] if rows else None


_COMMIT_GRACE_SECONDS = 0.05
"""How long a writer waits for the writers behind it to commit its group before it
commits the group itself."""


class _Failed:
    """A body's exception, or its whole batch's, carried back to its caller."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _QueuedBody:
    """A `run_write` body and the future its caller waits on."""

    __slots__ = ("body", "outcome")

    def __init__(
        self, body: Callable[[sqlite3.Connection], Any], outcome: asyncio.Future[Any]
    ) -> None:
        self.body = body
        self.outcome = outcome

    def settle(self, outcome: Any) -> None:
        if not self.outcome.done():  # the caller may have been cancelled meanwhile
            self.outcome.set_result(outcome)


def _own_transaction(
    conn: sqlite3.Connection,
    bodies: Sequence[Callable[[sqlite3.Connection], Any]],
    abandoned: threading.Event,
) -> list[Any]:
    """Begins a transaction, runs the bodies in it and commits it, on the writer's
    thread; rolls it back if any of that fails, or if the loop gave up on it meanwhile
    (the store's timeout, while BEGIN waited for another program's lock)."""
    conn.execute("BEGIN IMMEDIATE").close()
    try:
        outcomes = _each_in_savepoint(bodies, conn)
        if abandoned.is_set():
            raise TimeoutError("the batch was abandoned before its COMMIT")
        conn.commit()
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        raise
    return outcomes


def _each_in_savepoint(
    bodies: Sequence[Callable[[sqlite3.Connection], Any]], conn: sqlite3.Connection
) -> list[Any]:
    """Runs each body in a savepoint of its own, on the writer's thread; a body that
    raises is rolled back to its savepoint and its outcome is the exception. If even that
    rollback fails (SQLite ended the transaction itself), the whole batch fails."""
    outcomes: list[Any] = []
    for body in bodies:
        conn.execute("SAVEPOINT body").close()
        try:
            outcomes.append(body(conn))
        except Exception as exc:  # carried to the body's caller
            conn.execute("ROLLBACK TO body").close()
            outcomes.append(_Failed(exc))
    return outcomes


class _Group:
    """Writers sharing one SQLite transaction and its COMMIT."""

    def __init__(self, done: asyncio.Future[BaseException | None]) -> None:
        self.done = done
        self.members = 0

    def finish(self, error: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(error)


class Transaction:
    """Statements inside one write transaction."""

    def __init__(self, conn: ThreadedConnection) -> None:
        self._conn = conn
        self.savepoint = Savepoint("write")
        """Taken with the first statement; what a failed write rolls back to."""

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Runs one statement; returns the number of rows it changed."""
        changed: int = await _translated(self._conn.execute(sql, tuple(params), self.savepoint))
        return changed

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """Runs one statement for each parameter row."""
        params = [tuple(r) for r in rows]
        if params:
            await _translated(self._conn.executemany(sql, params, self.savepoint))

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Runs a query (or a statement with RETURNING) and returns every row."""
        rows: list[Row] = await _translated(self._conn.fetchall(sql, tuple(params), self.savepoint))
        return rows

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """Runs a query and returns its first row, if any."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def run(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `body`, a synchronous transaction body, on the database's thread in one
        hop, where a hop per statement would hold the write lock for each round trip
        (a batch of `run_write` bodies joining an open group). `body` must not commit,
        roll back or touch savepoints."""
        result: T = await _translated(self._conn.run(body, self.savepoint))
        return result


async def _rollback(conn: ThreadedConnection) -> None:
    """Ends the open transaction; SQLite may already have rolled it back itself (a full
    disk, an I/O error), which is fine."""
    with contextlib.suppress(sqlite3.Error):
        await conn.rollback()


async def _translated(awaitable: Awaitable[T]) -> T:
    """A call on a connection (each bounded by the store's timeout, see sqlite_thread.py),
    its failures as StoreUnavailable."""
    try:
        return await awaitable
    except TimeoutError as exc:
        raise StoreUnavailable(f"the embedded database did not answer: {exc}") from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"the embedded database failed: {exc}") from exc
