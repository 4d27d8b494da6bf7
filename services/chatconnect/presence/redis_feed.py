"""The presence feed over Redis pub/sub, between the processes of a region.

One channel per topic, `{ns}:pf:{<topic>}` (hash-tagged like every presence key, so the
same names serve sharded pub/sub on Redis Cluster). A process subscribes to a topic's
channel only while one of its streams needs it, so a change reaches only the processes
that show it. When the pub/sub connection drops, the listener reconnects, subscribes
again and tells every stream to re-read (FeedLost): what was published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatconnect.presence import feed_codec
from chatconnect.presence.ports import FeedEvent, FeedLost, PresenceFeed
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.telemetry import storage_call

log = get_logger("presence.feed")

_CLOSED = object()


class RedisPresenceFeed(PresenceFeed):
    """start() before use, close() after."""

    def __init__(self, client: aioredis.Redis, *, instance_id: str, namespace: str = "cc") -> None:
        self._client = client
        self._namespace = namespace
        # Subscribed from the start, so the pub/sub connection exists before any topic.
        self._own_channel = f"{namespace}:pf-instance:{instance_id}"
        self._topics: set[str] = set()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _channel(self, topic: str) -> str:
        return f"{self._namespace}:pf:{{{topic}}}"

    def _topic(self, channel: bytes) -> str:
        name = channel.decode()
        return name[len(self._namespace) + 5 : -1]

    async def start(self) -> None:
        """Connects the listener."""
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def publish(self, events: Mapping[str, Sequence[FeedEvent]]) -> None:
        if not events:
            return
        try:
            with storage_call("redis", "presence_publish"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for topic, batch in events.items():
                        pipe.publish(self._channel(topic), feed_codec.encode(batch))
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            # Presence is ephemeral: a lost change shows at the next one, or the next read.
            log.warning("presence publish failed", error=str(exc))

    async def follow(self, topics: Collection[str]) -> None:
        new = [t for t in topics if t not in self._topics]
        self._topics.update(new)
        if new and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                # On failure the listener reconnects and subscribes to every topic.
                await self._pubsub.subscribe(*(self._channel(t) for t in new))

    async def unfollow(self, topics: Collection[str]) -> None:
        old = [t for t in topics if t in self._topics]
        self._topics.difference_update(old)
        if old and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(*(self._channel(t) for t in old))

    async def events(self) -> AsyncIterator[tuple[str, FeedEvent]]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield item  # type: ignore[misc]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._queue.put_nowait(_CLOSED)

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                channels = [self._own_channel, *(self._channel(t) for t in self._topics)]
                await pubsub.subscribe(*channels)
                self._pubsub = pubsub
                if self._ready.is_set():
                    self._queue.put_nowait(("", FeedLost()))
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    topic = self._topic(message["channel"])
                    for event in feed_codec.decode(message["data"]):
                        self._queue.put_nowait((topic, event))
            except (RedisError, OSError) as exc:
                log.warning("presence feed lost its connection; reconnecting", error=str(exc))
                await asyncio.sleep(0.5)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
