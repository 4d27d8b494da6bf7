"""Receipt counts of group messages in Redis.

Per group and kind, one sorted set of member -> watermark (ZADD GT never moves one back);
a message's count is a ZCOUNT from its server time. Plays are a set per message. Every key
of a group shares the hash tag {group id}, for Redis Cluster, and lives for the retention
time after its last change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatconnect.model import ReceiptType
from chatconnect.router.domain.models import GroupMessage, ReceiptCounts
from chatconnect.router.ports import ReceiptTally
from chatconnect.runtime.coalesce import Coalescer
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call

_KINDS = {ReceiptType.DELIVERED: "d", ReceiptType.READ: "r"}


@dataclass(frozen=True)
class _Advance:
    key: str
    user_id: str
    through_time: float


class RedisReceiptTally(ReceiptTally):
    """Watermarks and plays in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        retention_seconds: int,
        namespace: str = "cc",
        batch_max: int = 512,
    ) -> None:
        self._client = client
        self._retention = retention_seconds
        self._namespace = namespace
        # A large group's members acknowledge a message within milliseconds of each
        # other: their watermarks go to Redis together, one pipeline per batch.
        self._advances: Coalescer[_Advance] = Coalescer(self._write, max_batch=batch_max)

    def _watermarks(self, group_id: str, kind: ReceiptType) -> str:
        return f"{self._namespace}:rcpt:{{{group_id}}}:{_KINDS[kind]}"

    def _plays(self, group_id: str, server_message_id: str) -> str:
        return f"{self._namespace}:rcpt:{{{group_id}}}:p:{server_message_id}"

    async def advance(
        self, group_id: str, kind: ReceiptType, user_id: str, through_time: float
    ) -> None:
        await self._advances.submit(
            _Advance(self._watermarks(group_id, kind), user_id, through_time)
        )

    async def _write(self, advances: Sequence[_Advance]) -> None:
        newest: dict[str, dict[str, float]] = defaultdict(dict)
        for advance in advances:
            marks = newest[advance.key]
            marks[advance.user_id] = max(marks.get(advance.user_id, 0.0), advance.through_time)
        try:
            with storage_call("redis", "advance_receipts"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, marks in newest.items():
                        pipe.zadd(key, marks, gt=True)
                        pipe.expire(key, self._retention)
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not record the receipt: {exc}") from exc

    async def mark_played(self, group_id: str, server_message_id: str, user_id: str) -> None:
        key = self._plays(group_id, server_message_id)
        try:
            with storage_call("redis", "mark_played"):
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.sadd(key, user_id)
                    pipe.expire(key, self._retention)
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not record the receipt: {exc}") from exc

    async def counts(self, message: GroupMessage) -> ReceiptCounts:
        group, sender, since = message.group_id, message.sender.user_id, message.server_time
        delivered_key = self._watermarks(group, ReceiptType.DELIVERED)
        read_key = self._watermarks(group, ReceiptType.READ)
        plays_key = self._plays(group, message.server_message_id)
        try:
            with storage_call("redis", "receipt_counts"):
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.zcount(delivered_key, since, "+inf")
                    pipe.zscore(delivered_key, sender)
                    pipe.zcount(read_key, since, "+inf")
                    pipe.zscore(read_key, sender)
                    pipe.scard(plays_key)
                    pipe.sismember(plays_key, sender)
                    (
                        delivered,
                        sender_delivered,
                        read,
                        sender_read,
                        played,
                        sender_played,
                    ) = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not return the receipt counts: {exc}") from exc

        def without_sender(count: int, sender_mark: float | None) -> int:
            # The sender's own devices advance its watermark too; it is not a recipient.
            return count - (1 if sender_mark is not None and sender_mark >= since else 0)

        return ReceiptCounts(
            delivered=without_sender(int(delivered), sender_delivered),
            read=without_sender(int(read), sender_read),
            played=int(played) - (1 if sender_played else 0),
        )
