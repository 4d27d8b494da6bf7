"""The embedded database's write transactions under cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.sqlite import Database
from chatconnect.storage.sqlite_thread import changed_rows

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


async def _count(db: Database) -> int:
    rows = await db.fetchall("count", "SELECT COUNT(*) AS n FROM items")
    return int(rows[0]["n"])


def _count_commits(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts the COMMITs on the writer connection from now on; call the result to read."""
    commits = 0
    real_commit = db._writer.commit

    async def counting_commit() -> None:
        nonlocal commits
        commits += 1
        await real_commit()

    monkeypatch.setattr(db._writer, "commit", counting_commit)
    return lambda: commits


async def test_concurrent_writes_share_commits_and_each_is_visible_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: queued writers share one COMMIT, yet every write, once it returns, is
    committed (the separate reader connection sees it)."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="FULL")
    commits = _count_commits(db, monkeypatch)
    seen_by_reader: list[bool] = []

    async def insert_and_read(n: int) -> None:
        await _insert(db, n)
        rows = await db.fetchall("read", "SELECT n FROM items WHERE n = ?", (n,))
        seen_by_reader.append(len(rows) == 1)

    try:
        await asyncio.gather(*(insert_and_read(n) for n in range(200)))
        assert await _count(db) == 200
        assert all(seen_by_reader) and len(seen_by_reader) == 200
        assert commits() < 100, f"{commits()} commits for 200 concurrent writes: not grouped"
    finally:
        await db.close()


async def test_a_failing_writer_is_rolled_back_alone(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")

    async def failing(n: int) -> None:
        async with db.write("insert") as tx:
            await tx.execute("INSERT INTO items VALUES (?)", (n,))
            raise ValueError("the caller's own check failed")

    try:
        results = await asyncio.gather(
            *(failing(n) if n % 3 == 0 else _insert(db, n) for n in range(60)),
            return_exceptions=True,
        )
        failed = [n for n, r in enumerate(results) if isinstance(r, ValueError)]
        assert failed == [n for n in range(60) if n % 3 == 0]
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [n for n in range(60) if n % 3 != 0]
    finally:
        await db.close()


async def test_a_write_commits_even_when_every_writer_behind_it_is_cancelled(
    tmp_path: Path,
) -> None:
    """The writers queued behind a finished one would commit its group; if they are all
    cancelled before their turn, the finished writer commits it itself."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")
    try:
        for round_ in range(20):
            first = asyncio.create_task(_insert(db, round_ * 10))
            behind = [asyncio.create_task(_insert(db, round_ * 10 + k)) for k in range(1, 4)]
            await asyncio.sleep(0)
            for _ in range(round_ % 5):
                await asyncio.sleep(0)
            for task in behind:
                task.cancel()
            await asyncio.wait_for(first, 5)
            rows = await db.fetchall("read", "SELECT n FROM items WHERE n = ?", (round_ * 10,))
            assert len(rows) == 1
            await asyncio.gather(*behind, return_exceptions=True)
        await _insert(db, 1000)
        assert len(await db.fetchall("read", "SELECT n FROM items WHERE n = 1000")) == 1
    finally:
        await db.close()


async def test_the_committing_writer_cancelled_mid_commit_fails_nobody_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last writer of a group runs the COMMIT for all of them. If its client hangs up
    while that COMMIT runs, the COMMIT still ends, and every other member's write returns
    success and is durable (before, they all got StoreUnavailable for a COMMIT that had
    gone through)."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="FULL")
    committing = asyncio.Event()
    real_commit = db._writer.commit

    async def signalling_commit() -> None:
        committing.set()
        await real_commit()

    monkeypatch.setattr(db._writer, "commit", signalling_commit)
    try:
        for round_ in range(10):
            committing.clear()
            members = [asyncio.create_task(_insert(db, round_ * 10 + k)) for k in range(4)]
            await committing.wait()  # the last member queued is now committing the group
            members[-1].cancel()
            results = await asyncio.gather(*members, return_exceptions=True)
            assert results[:-1] == [None, None, None], results
            first = round_ * 10
            rows = await db.fetchall(
                "read", "SELECT n FROM items WHERE n BETWEEN ? AND ?", (first, first + 3)
            )
            assert len(rows) == 4  # the cancelled writer's row went through with the COMMIT
        await _insert(db, 1000)
        assert len(await db.fetchall("read", "SELECT n FROM items WHERE n = 1000")) == 1
    finally:
        await db.close()


async def test_a_write_stuck_behind_a_lock_fails_after_the_timeout_and_the_next_works(
    tmp_path: Path,
) -> None:
    """Another program holding the database's write lock (a backup tool, a stray sqlite3
    shell) makes writes wait in SQLite; the store gives up after its timeout with
    StoreUnavailable, and writes again once the lock is gone."""
    path = tmp_path / "db.sqlite"
    db = await Database.open(path, migrations=SCHEMA, synchronous="NORMAL", timeout=0.3)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable) as failed:
            await _insert(db, 1)
        assert "0.3" in str(failed.value)
        other.execute("ROLLBACK")
        await _insert(db, 2)
        assert await _count(db) == 1
    finally:
        other.close()
        await db.close()


def _insert_pair_then(n: int, fail: bool, conn: sqlite3.Connection) -> int:
    """A transaction body for `Transaction.run`: two rows, then maybe a failure."""
    changed = changed_rows(conn, "INSERT INTO items VALUES (?)", (n,))
    changed += changed_rows(conn, "INSERT INTO items VALUES (?)", (n + 1,))
    if fail:
        raise ValueError("the body's own check failed after writing")
    return changed


async def test_a_body_run_in_one_hop_commits_whole_or_is_rolled_back_alone(
    tmp_path: Path,
) -> None:
    """`Transaction.run` puts a whole body on SQLite's thread; its savepoint is taken in
    the same hop, so a body failing half-way leaves none of its rows and touches nobody
    else's, in a group of concurrent writers sharing one COMMIT."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")

    async def write(n: int) -> int:
        async with db.write("pair") as tx:
            return await tx.run(partial(_insert_pair_then, n, n % 20 == 0))

    try:
        results = await asyncio.gather(
            *(write(n) for n in range(0, 200, 10)), return_exceptions=True
        )
        assert [type(r) for r in results] == [
            ValueError if n % 20 == 0 else int for n in range(0, 200, 10)
        ]
        assert all(r == 2 for r in results if isinstance(r, int))
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [
            m for n in range(0, 200, 10) if n % 20 != 0 for m in (n, n + 1)
        ]
    finally:
        await db.close()


async def test_batched_bodies_commit_together_and_each_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run_write` bodies that wait together run as one batch on SQLite's thread, in one
    transaction: far fewer hops than bodies, yet every body that succeeded is committed
    when its call returns (the reader sees it), and one that failed half-way left none of
    its rows and touched nobody else's."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="FULL")
    hops = 0
    real_call = db._writer.bounded_call

    async def counting_call(*args: Any) -> Any:
        nonlocal hops
        hops += 1
        return await real_call(*args)

    monkeypatch.setattr(db._writer, "bounded_call", counting_call)

    async def write_and_read(n: int) -> tuple[int, int]:
        changed = await db.run_write("pair", partial(_insert_pair_then, n, n % 20 == 0))
        rows = await db.fetchall("read", "SELECT n FROM items WHERE n IN (?, ?)", (n, n + 1))
        return changed, len(rows)

    try:
        results = await asyncio.gather(
            *(write_and_read(n) for n in range(0, 2000, 10)), return_exceptions=True
        )
        assert [type(r) for r in results] == [
            ValueError if n % 20 == 0 else tuple for n in range(0, 2000, 10)
        ]
        assert all(r == (2, 2) for r in results if isinstance(r, tuple))
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [
            m for n in range(0, 2000, 10) if n % 20 != 0 for m in (n, n + 1)
        ]
        assert hops < 20, f"{hops} hops to the writer's thread for 200 bodies: not batched"
    finally:
        await db.close()


async def test_a_batched_body_that_sqlite_rejects_fails_as_store_unavailable(
    tmp_path: Path,
) -> None:
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")
    try:
        results = await asyncio.gather(
            _batched_insert(db, 1),
            db.run_write("bad", partial(changed_rows, sql="INSERT INTO no_such_table VALUES (2)")),
            _batched_insert(db, 3),
            return_exceptions=True,
        )
        assert results[0] == 1 and results[2] == 1
        assert isinstance(results[1], StoreUnavailable)
        assert "no_such_table" in str(results[1])
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [1, 3]
    finally:
        await db.close()


async def _hold_the_write_lock(db: Database, row: int) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A `write` caller inside its transaction, having inserted `row`, until the event
    returned is set; returns once it holds the lock, with its task."""
    holding = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with db.write("hold") as tx:
            await tx.execute("INSERT INTO items VALUES (?)", (row,))
            holding.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await holding.wait()
    return task, release


def _batched_insert(db: Database, n: int) -> Coroutine[Any, Any, int]:
    return db.run_write(
        "insert", partial(changed_rows, sql="INSERT INTO items VALUES (?)", params=(n,))
    )


async def test_a_body_whose_caller_left_before_its_batch_never_runs(tmp_path: Path) -> None:
    """A client hanging up while its body waits for the next batch: the body is dropped,
    the others in that batch are committed."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="NORMAL")
    try:
        holder, release = await _hold_the_write_lock(db, 0)
        waiting = [asyncio.create_task(_batched_insert(db, n)) for n in range(1, 11)]
        await asyncio.sleep(0.05)  # every body is queued behind the lock by now
        for task in waiting[::2]:
            task.cancel()
        release.set()
        await holder
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert [isinstance(r, asyncio.CancelledError) for r in results] == [
            n % 2 == 1 for n in range(1, 11)
        ]
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [0, 2, 4, 6, 8, 10]
    finally:
        await db.close()


async def test_a_batch_joins_the_group_a_writer_left_open_for_the_writer_behind_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `write` caller with another queued behind it leaves its group's COMMIT to them;
    a batch queued between the two runs in that same transaction, and the one COMMIT the
    last writer runs makes all three durable."""
    db = await Database.open(tmp_path / "db.sqlite", migrations=SCHEMA, synchronous="FULL")
    commits = _count_commits(db, monkeypatch)
    try:
        first, release = await _hold_the_write_lock(db, 1)
        batched = asyncio.create_task(_batched_insert(db, 2))
        await asyncio.sleep(0.01)  # the batch waits for the lock first
        last = asyncio.create_task(_insert(db, 3))
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, batched, last)
        assert batched.result() == 1
        assert commits() == 1
        assert await _count(db) == 3
    finally:
        await db.close()


async def test_a_batch_stuck_behind_a_lock_fails_after_the_timeout_and_is_not_committed_later(
    tmp_path: Path,
) -> None:
    """A batch whose BEGIN waits for another program's lock past the store's timeout fails
    with StoreUnavailable; when the lock goes, that batch is rolled back rather than
    committed behind its callers' backs, and the next batch works."""
    path = tmp_path / "db.sqlite"
    db = await Database.open(path, migrations=SCHEMA, synchronous="NORMAL", timeout=0.3)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await _batched_insert(db, 1)
        other.execute("ROLLBACK")
        assert await _batched_insert(db, 2) == 1
        rows = await db.fetchall("all", "SELECT n FROM items ORDER BY n")
        assert [r["n"] for r in rows] == [2]
    finally:
        other.close()
        await db.close()
