"""The test environment's servers are real and speak the protocols the adapters use."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from cassandra.cluster import Cluster

from tests.servers import cassandra_contact, redis_url, run_testenv


def _cluster() -> Cluster:
    host, _, port = cassandra_contact().partition(":")
    return Cluster([host], port=int(port), protocol_version=4)


def test_cassandra_speaks_cql_v4_to_the_scylla_driver() -> None:
    cluster = _cluster()
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        assert row.release_version.startswith("5.0")
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS testenv_probe WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
        )
        session.execute("CREATE TABLE IF NOT EXISTS testenv_probe.t (k int PRIMARY KEY, v text)")
        session.execute("INSERT INTO testenv_probe.t (k, v) VALUES (1, 'x') USING TTL 60")
        assert session.execute("SELECT v FROM testenv_probe.t WHERE k = 1").one().v == "x"
    finally:
        cluster.shutdown()


def test_redis_answers() -> None:
    async def ping() -> bool:
        client = aioredis.Redis.from_url(redis_url())
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    assert asyncio.run(ping())


def test_cassandra_keeps_what_it_acknowledged_through_a_kill() -> None:
    """The store-fault tests kill the node and then count on what it acknowledged before.

    Three ways this went wrong on the test node, each one checked here:
    - in Cassandra's default periodic commit-log mode a single node loses the last second
      or so of acknowledged writes to a SIGKILL (the test node syncs before it acknowledges);
    - with system tables unsynced (`-Dcassandra.unsafesystem`), a table created shortly
      before the kill was unknown when the commit log was replayed, and its rows skipped;
    - `down --kill` returned before the dead JVM had let go of its port, so the restart
      right after it found the port taken.
    """
    rows = 100
    cluster = _cluster()
    try:
        session = cluster.connect()
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS testenv_probe WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
        )
        session.execute("DROP TABLE IF EXISTS testenv_probe.acked")
        session.execute("CREATE TABLE testenv_probe.acked (k int PRIMARY KEY)")
        insert = session.prepare("INSERT INTO testenv_probe.acked (k) VALUES (?)")
        for k in range(rows):
            session.execute(insert, (k,))
    finally:
        cluster.shutdown()
    run_testenv("down", "cassandra", "--kill")
    run_testenv("up", "cassandra")
    cluster = _cluster()
    try:
        kept = cluster.connect().execute("SELECT k FROM testenv_probe.acked")
        assert sorted(r.k for r in kept) == list(range(rows))
    finally:
        cluster.shutdown()
