"""Inbox sequence numbers for the distributed store: fast from Redis, never reused.

Redis hands out each inbox's sequences one at a time (one atomic script call per
recipient), so every process of every region draws from one counter per inbox and numbers
follow the order in which sends reached the store. Redis may lose its state, so it may only
hand out numbers that ScyllaDB has already reserved: the durable `inbox_heads.reserved` is
raised a block at a time with a lightweight transaction, and Redis's ceiling never passes it.
When Redis comes back empty, the counter restarts above everything ever reserved: numbers
skip ahead, but never repeat.

Keys are one per inbox and hash-tagged by it, so the scripts are valid on Redis Cluster.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatconnect.model import DeviceAddress
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call
from chatconnect.storage.cql import CqlSession

# Returns the next number, -1 when the inbox has no counter here (Redis lost it or never had
# it), -2 when the reserved block is used up.
_NEXT = """
local ceiling = redis.call('HGET', KEYS[1], 'ceiling')
if not ceiling then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'next', 1)
if n > tonumber(ceiling) then
  redis.call('HINCRBY', KEYS[1], 'next', -1)
  return -2
end
return n
"""

# Installs a freshly reserved block: a missing counter starts at ARGV[1] (the old durable
# mark); an existing one only ever raises its ceiling.
_RESERVED = """
local ceiling = redis.call('HGET', KEYS[1], 'ceiling')
if not ceiling then
  redis.call('HSET', KEYS[1], 'next', ARGV[1], 'ceiling', ARGV[2])
elseif tonumber(ARGV[2]) > tonumber(ceiling) then
  redis.call('HSET', KEYS[1], 'ceiling', ARGV[2])
end
return 1
"""

_MAX_ROUNDS = 16


class SequenceAllocator:
    """Allocates strictly increasing, never reused sequence numbers per device inbox."""

    def __init__(
        self, redis: aioredis.Redis, cql: CqlSession, *, block: int, namespace: str = "cc"
    ) -> None:
        self._redis = redis
        self._cql = cql
        self._block = block
        self._namespace = namespace
        self._next = redis.register_script(_NEXT)
        self._reserved = redis.register_script(_RESERVED)

    def _key(self, inbox: DeviceAddress) -> str:
        return f"{self._namespace}:seq:{{{inbox.user_id}:{inbox.device_id}}}"

    async def allocate(self, inbox: DeviceAddress) -> int:
        """The inbox's next sequence number."""
        for _ in range(_MAX_ROUNDS):
            with storage_call("redis", "next_sequence"):
                try:
                    n = int(await self._next(keys=[self._key(inbox)]))
                except (RedisError, OSError) as exc:
                    raise StoreUnavailable(f"Redis did not hand out a sequence: {exc}") from exc
            if n > 0:
                return n
            await self._reserve_block(inbox)
        raise StoreUnavailable(
            f"could not reserve inbox sequences for {inbox}: too much contention"
        )

    async def _reserve_block(self, inbox: DeviceAddress) -> None:
        """Raises the durable mark by one block, then lets Redis use the new numbers."""
        key = (inbox.user_id, inbox.device_id)
        rows = await self._cql.execute(
            "read_inbox_head",
            "SELECT reserved FROM inbox_heads WHERE user_id = ? AND device_id = ?",
            key,
        )
        if not rows or rows[0]["reserved"] is None:
            applied, _ = await self._cql.conditional(
                "reserve_sequences",
                "INSERT INTO inbox_heads (user_id, device_id, reserved) VALUES (?, ?, ?) "
                "IF NOT EXISTS",
                (*key, self._block),
            )
            start, ceiling = 0, self._block
        else:
            start = int(rows[0]["reserved"])
            ceiling = start + self._block
            applied, _ = await self._cql.conditional(
                "reserve_sequences",
                "UPDATE inbox_heads SET reserved = ? WHERE user_id = ? AND device_id = ? "
                "IF reserved = ?",
                (ceiling, *key, start),
            )
        if not applied:
            # Another process reserved first; the next round sees its mark (or uses its
            # block if that process has already installed it).
            return
        with storage_call("redis", "install_sequences"):
            try:
                await self._reserved(keys=[self._key(inbox)], args=[start, ceiling])
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"Redis did not take the sequence block: {exc}") from exc
