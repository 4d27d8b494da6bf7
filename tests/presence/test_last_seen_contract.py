"""The contract of the LastSeenStore port, run against the SQLite and the CQL adapter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatconnect.presence.embedded import SqliteLastSeenStore
from chatconnect.presence.ports import LastSeenStore
from chatconnect.presence.scylla import ScyllaLastSeenStore
from chatconnect.storage.cql import CqlSession
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database

NOW = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "scylla"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LastSeenStore]:
    if request.param == "sqlite":
        db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS)
        try:
            yield SqliteLastSeenStore(db)
        finally:
            await db.close()
        return
    # Fresh user ids per test: the keyspace need not be emptied.
    session = await CqlSession.connect(request.getfixturevalue("scylla_keyspace"), timeout=10.0)
    try:
        yield ScyllaLastSeenStore(session)
    finally:
        await session.close()


def user() -> str:
    return str(uuid.uuid4())


async def test_a_user_never_written_has_no_last_seen(store: LastSeenStore) -> None:
    assert await store.read([user()]) == {}


async def test_the_latest_last_seen_wins_whatever_the_write_order(store: LastSeenStore) -> None:
    alice, bob = user(), user()
    await store.record(alice, NOW + 10, NOW + 11)
    await store.record(alice, NOW + 5, NOW + 12)  # a late write of an older value
    await store.record(bob, NOW + 1, NOW + 1)
    await store.record(bob, NOW + 2, NOW + 2)
    assert await store.read([alice, bob, user()]) == {alice: NOW + 10, bob: NOW + 2}
