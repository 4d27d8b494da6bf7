"""The CQL session wrapper and the migrations, against the real test Cassandra."""

from __future__ import annotations

import time

import pytest

from chatconnect.storage.cql import CqlSession, Statement
from chatconnect.storage.cql_migrate import SchemaOutOfDate, check_schema, migrate
from chatconnect.storage.cql_schema import MIGRATIONS
from tests.scylla import STORE_TIMEOUT, scylla_config


async def test_tables_start_empty_and_batches_apply(cql: CqlSession) -> None:
    rows = await cql.execute("count", "SELECT COUNT(*) AS n FROM accounts")
    assert rows[0]["n"] == 0
    await cql.batch(
        "two_accounts",
        [
            Statement("INSERT INTO accounts (user_id, phone_number) VALUES (?, ?)", ("a", "+1")),
            Statement("INSERT INTO accounts (user_id, phone_number) VALUES (?, ?)", ("b", "+2")),
        ],
    )
    rows = await cql.execute_all("all", "SELECT user_id FROM accounts")
    assert sorted(r["user_id"] for r in rows) == ["a", "b"]


async def test_conditional_write_applies_once(cql: CqlSession) -> None:
    insert = "INSERT INTO accounts_by_phone (phone_number, user_id) VALUES (?, ?) IF NOT EXISTS"
    first, _ = await cql.conditional("claim", insert, ("+15550100", "u1"))
    second, seen = await cql.conditional("claim", insert, ("+15550100", "u2"))
    assert first and not second
    assert seen["user_id"] == "u1"


async def test_migrate_is_repeatable_and_checked_at_start() -> None:
    config = scylla_config(f"chatconnect_migrate_{int(time.time() * 1000)}")
    messages: list[str] = []
    version = await migrate(config, timeout=STORE_TIMEOUT, progress=messages.append)
    assert version == len(MIGRATIONS)
    assert any("applying 1/" in m for m in messages)
    messages.clear()
    assert await migrate(config, timeout=STORE_TIMEOUT, progress=messages.append) == version
    assert any("up to date" in m for m in messages)
    session = await CqlSession.connect(config, timeout=STORE_TIMEOUT)
    try:
        await check_schema(session)
        # A run interrupted after its ALTER TABLE but before recording the version reruns
        # the ALTER, which must find its columns there and carry on.
        await session.execute(
            "forget", "DELETE FROM schema_migrations WHERE version = ?", (len(MIGRATIONS),)
        )
        assert await migrate(config, timeout=STORE_TIMEOUT, progress=messages.append) == version
        await check_schema(session)
        await session.change_schema(f"DROP KEYSPACE {config.keyspace}")
    finally:
        await session.close()


async def test_unmigrated_keyspace_is_refused() -> None:
    config = scylla_config(f"chatconnect_bare_{int(time.time() * 1000)}")
    admin = await CqlSession.connect(config, timeout=STORE_TIMEOUT, keyspace=False)
    try:
        await admin.change_schema(
            f"CREATE KEYSPACE {config.keyspace} WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
        )
        session = await CqlSession.connect(config, timeout=STORE_TIMEOUT)
        try:
            with pytest.raises(SchemaOutOfDate, match="chatconnect migrate"):
                await check_schema(session)
        finally:
            await session.close()
    finally:
        await admin.change_schema(f"DROP KEYSPACE {config.keyspace}")
        await admin.close()
