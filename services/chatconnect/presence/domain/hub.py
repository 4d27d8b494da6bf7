"""This process's presence streams and the feed topics they need.

The hub follows a topic on the feed while at least one local stream needs it, and hands
each event to the streams of its topic. It never blocks on a stream: streams take events
synchronously and do their reading in their own task.
"""

from __future__ import annotations

from collections import defaultdict

from chatconnect.presence.domain.streams import PresenceStream
from chatconnect.presence.ports import FeedLost, PresenceFeed
from chatconnect.runtime.logging import get_logger

log = get_logger("presence.hub")


class PresenceHub:
    """Routes feed events to local streams."""

    def __init__(self, feed: PresenceFeed) -> None:
        self._feed = feed
        self._streams: dict[str, set[PresenceStream]] = defaultdict(set)
        self._topics: dict[PresenceStream, set[str]] = {}

    @property
    def open_streams(self) -> int:
        """How many streams are attached."""
        return len(self._topics)

    async def attach(self, stream: PresenceStream) -> None:
        """Starts routing events of the stream's topics to it."""
        await self.retopic(stream)

    async def retopic(self, stream: PresenceStream) -> None:
        """Follows the stream's topics now (after its subscription changed)."""
        old = self._topics.get(stream, set())
        new = stream.topics
        self._topics[stream] = new
        started = [t for t in new - old if not self._streams.get(t)]
        for topic in new - old:
            self._streams[topic].add(stream)
        if started:
            await self._feed.follow(started)
        await self._drop(stream, old - new)

    async def detach(self, stream: PresenceStream) -> None:
        """Stops routing to the stream."""
        await self._drop(stream, self._topics.pop(stream, set()))

    async def _drop(self, stream: PresenceStream, topics: set[str]) -> None:
        stopped = []
        for topic in topics:
            streams = self._streams.get(topic)
            if streams is None:
                continue
            streams.discard(stream)
            if not streams:
                del self._streams[topic]
                stopped.append(topic)
        if stopped:
            await self._feed.unfollow(stopped)

    async def run(self) -> None:
        """Routes events until the feed closes."""
        async for topic, event in self._feed.events():
            if isinstance(event, FeedLost):
                targets = set(self._topics)
            else:
                targets = set(self._streams.get(topic, ()))
            for stream in targets:
                try:
                    stream.offer(event)
                except Exception:
                    log.exception("presence event dropped", topic=topic)
