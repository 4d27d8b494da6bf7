"""The embedded store's expiry sweeper (the ScyllaDB store uses TTLs instead)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatconnect.model import InboxGap
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.router.test_store_contract import (
    BOB,
    CAROL,
    T1,
    T2,
    _commit_expiring,
    key,
    read_all,
    sequences,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteMessageStore]:
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    try:
        yield SqliteMessageStore(db)
    finally:
        await db.close()


async def test_a_run_swept_in_batches_is_reported_as_one_gap(store: SqliteMessageStore) -> None:
    await _commit_expiring(store, [T1] * 5)
    assert await store.sweep(T1, limit=2) == 2
    assert await store.sweep(T1, limit=2) == 2
    assert await store.sweep(T1, limit=2) == 1
    assert [key(i) for i in await read_all(store, BOB, now=T1)] == [(1, 5)]


async def test_sweep_turns_expired_envelopes_into_gaps_and_counts_them(
    store: SqliteMessageStore,
) -> None:
    await _commit_expiring(store, [T1, T1, T2, T1])
    await _commit_expiring(store, [T1, T2], device=CAROL)
    assert await store.sweep(T1 - 1, limit=100) == 0
    assert await store.sweep(T1, limit=100) == 4
    assert await store.sweep(T1, limit=100) == 0
    # Even a reader that does not enforce retention itself (now before expiry) sees gaps.
    assert [key(i) for i in await read_all(store, BOB, now=T1 - 1)] == [(1, 2), 3, (4, 4)]
    assert [key(i) for i in await read_all(store, CAROL, now=T1 - 1)] == [(1, 1), 2]


async def test_sweep_respects_its_limit(store: SqliteMessageStore) -> None:
    await _commit_expiring(store, [T1] * 5)
    assert await store.sweep(T1, limit=3) == 3
    assert await store.sweep(T1, limit=3) == 2
    items = await read_all(store, BOB, now=T1 - 1)
    assert sequences(items) == []
    covered = {s for i in items if isinstance(i, InboxGap)
               for s in range(i.first_sequence, i.last_sequence + 1)}
    assert covered == {1, 2, 3, 4, 5}
