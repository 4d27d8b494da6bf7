"""The test keyspace on the real Cassandra of `tools/testenv` (CQL v4, like ScyllaDB).

The keyspace is migrated once per test run with `chatconnect migrate`'s code; each test
gets its own session and starts from empty tables.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from chatconnect.storage.cql import CqlSession
from chatconnect.storage.cql_config import ScyllaConfig
from chatconnect.storage.cql_migrate import migrate
from tests.servers import cassandra_contact

KEYSPACE = os.environ.get("CHATCONNECT_TEST_KEYSPACE", "chatconnect_test")
"""The test keyspace; override to run two suites side by side without sharing tables."""
STORE_TIMEOUT = 5.0


def scylla_config(keyspace: str = KEYSPACE) -> ScyllaConfig:
    """Settings that reach the test Cassandra (one node, so one replica)."""
    host, _, port = cassandra_contact().rpartition(":")
    return ScyllaConfig(
        contact_points=host,
        port=int(port),
        keyspace=keyspace,
        replication="datacenter1:1",
        connect_timeout_seconds=10.0,
    )


@pytest.fixture(scope="session")
def scylla_keyspace() -> ScyllaConfig:
    """The migrated test keyspace."""
    config = scylla_config()
    # In a thread of its own: the fixture may be first requested inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(
            asyncio.run, migrate(config, timeout=STORE_TIMEOUT, progress=lambda _: None)
        ).result()
    return config


async def empty_tables(cql: CqlSession) -> None:
    """Empties every table of the keyspace except the migration record.

    Only the tables that hold a row are truncated: a TRUNCATE makes the node flush its
    truncation record to disk (so that a node killed afterwards does not bring back what it
    truncated), and doing that for every table before every test would cost seconds.
    """
    rows = await cql.execute_all(
        "list_tables",
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        (cql.keyspace,),
    )
    tables = [r["table_name"] for r in rows if r["table_name"] != "schema_migrations"]
    firsts = await asyncio.gather(
        *(
            cql.execute("any_row", f"SELECT * FROM {cql.keyspace}.{table} LIMIT 1")
            for table in tables
        )
    )
    for table, first in zip(tables, firsts, strict=True):
        if first:
            await cql.change_schema(f"TRUNCATE {cql.keyspace}.{table}")


@contextlib.asynccontextmanager
async def empty_keyspace(config: ScyllaConfig) -> AsyncIterator[CqlSession]:
    """A session on the migrated keyspace of `config`, with every table empty.

    (For fixtures that pick their adapter at run time: an async fixture cannot be requested
    with `getfixturevalue` from inside another, but the sync `scylla_keyspace` can.)
    """
    session = await CqlSession.connect(config, timeout=STORE_TIMEOUT)
    try:
        await empty_tables(session)
        yield session
    finally:
        await session.close()


@pytest.fixture
async def cql(scylla_keyspace: ScyllaConfig) -> AsyncIterator[CqlSession]:
    """A session on the test keyspace, with every table empty."""
    async with empty_keyspace(scylla_keyspace) as session:
        yield session
