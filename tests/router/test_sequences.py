"""Inbox sequence allocation on real Redis and real Cassandra: never reused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatconnect.model import DeviceAddress
from chatconnect.router.sequences import SequenceAllocator
from chatconnect.storage.cql import CqlSession
from tests.servers import redis_url

INBOX = DeviceAddress("bob", 1)


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url())
    try:
        yield client
    finally:
        await client.aclose()


def _allocator(
    redis: aioredis.Redis, cql: CqlSession, namespace: str, block: int = 5
) -> SequenceAllocator:
    return SequenceAllocator(redis, cql, block=block, namespace=namespace)


async def _reserved(cql: CqlSession) -> int:
    rows = await cql.execute(
        "reserved",
        "SELECT reserved FROM inbox_heads WHERE user_id = ? AND device_id = ?",
        (INBOX.user_id, INBOX.device_id),
    )
    return int(rows[0]["reserved"])


async def test_numbers_start_at_one_and_cross_blocks_without_gaps(
    redis: aioredis.Redis, cql: CqlSession
) -> None:
    allocator = _allocator(redis, cql, f"t{uuid.uuid4().hex[:8]}", block=5)
    assert [await allocator.allocate(INBOX) for _ in range(12)] == list(range(1, 13))
    # Three blocks of five were reserved durably: Redis never hands out more than that.
    assert await _reserved(cql) == 15
    assert await allocator.allocate(DeviceAddress("bob", 2)) == 1  # another inbox


async def test_processes_sharing_redis_hand_out_each_number_once(
    redis: aioredis.Redis, cql: CqlSession
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    processes = [_allocator(redis, cql, namespace, block=7) for _ in range(3)]
    numbers = await asyncio.gather(*(p.allocate(INBOX) for p in processes for _ in range(30)))
    assert sorted(numbers) == list(range(1, 91))
    assert await _reserved(cql) >= 90


async def test_a_redis_that_lost_its_state_never_repeats_a_number(
    redis: aioredis.Redis, cql: CqlSession
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    allocator = _allocator(redis, cql, namespace, block=100)
    before = [await allocator.allocate(INBOX) for _ in range(3)]
    # Redis restarted empty (this test's keys only: the Redis is shared).
    await redis.delete(*[k async for k in redis.scan_iter(f"{namespace}:*")])
    after = [await allocator.allocate(INBOX) for _ in range(3)]
    assert before == [1, 2, 3]
    assert after == [101, 102, 103]  # above everything the lost block could have handed out
