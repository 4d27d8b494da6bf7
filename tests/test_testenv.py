"""The test environment's servers are real and speak the protocols the adapters use."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from cassandra.cluster import Cluster

from tests.servers import cassandra_contact, redis_url


def test_cassandra_speaks_cql_v4_to_the_scylla_driver() -> None:
    host, _, port = cassandra_contact().partition(":")
    cluster = Cluster([host], port=int(port), protocol_version=4)
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
