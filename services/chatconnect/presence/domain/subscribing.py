"""Opening a device's presence stream, and changing what an open one follows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from chatconnect.bus.ports import RateLimiter
from chatconnect.model import Clock, Conversation, DeviceAddress, DeviceKind
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.errors import NoOpenSubscription
from chatconnect.presence.domain.hub import PresenceHub
from chatconnect.presence.domain.models import PresenceView, Subscription
from chatconnect.presence.domain.presence import PresenceService, new_holder_id
from chatconnect.presence.domain.reader import PresenceReader
from chatconnect.presence.domain.streams import Frame, PresenceStream
from chatconnect.presence.domain.subscriptions import SubscriptionPolicy, check_batch
from chatconnect.presence.ports import (
    Holder,
    PresenceFeed,
    StreamOpened,
    SubscriptionChanged,
    device_topic,
)
from chatconnect.runtime.errors import RateLimited, RequestIdMissing
from chatconnect.runtime.teardown import run_to_end


class SubscriptionService:
    """Subscribe, UpdateSubscription and GetPresence."""

    def __init__(
        self,
        *,
        presence: PresenceService,
        reader: PresenceReader,
        policy: SubscriptionPolicy,
        hub: PresenceHub,
        feed: PresenceFeed,
        limiter: RateLimiter,
        config: PresenceConfig,
        clock: Clock,
    ) -> None:
        self._limiter = limiter
        self._presence = presence
        self._reader = reader
        self._policy = policy
        self._hub = hub
        self._feed = feed
        self._config = config
        self._clock = clock

    async def check(
        self,
        device: DeviceAddress,
        user_ids: Sequence[str],
        conversations: Sequence[Conversation],
    ) -> Subscription:
        """The subscription a request asks for, checked (nothing is opened yet)."""
        return await self._policy.check(device, user_ids, conversations)

    async def subscribe(
        self, device: DeviceAddress, subscription: Subscription
    ) -> AsyncIterator[Frame | Subscription]:
        """The frames of a new stream: the subscription first, then presence and typing.
        The device counts as connected while the stream is open; a newer stream of the
        same device ends this one (SubscriptionReplaced)."""
        stream_id = new_holder_id("s")
        stream = PresenceStream(
            device,
            stream_id,
            subscription,
            reader=self._reader,
            config=self._config,
            clock=self._clock,
        )
        await self._hub.attach(stream)
        try:
            await self._feed.publish({device_topic(device): [StreamOpened(stream_id)]})
            await self._presence.connected(device, DeviceKind.UNSPECIFIED, holder=stream_id)
            yield subscription
            async for frame in stream.frames():
                if isinstance(frame, Subscription):
                    await self._hub.retopic(stream)
                    continue
                yield frame
        finally:
            holder = Holder(device, stream_id, DeviceKind.UNSPECIFIED)
            await run_to_end(self._tear_down(stream, holder), what="presence stream")

    async def _tear_down(self, stream: PresenceStream, holder: Holder) -> None:
        """Runs to its end even if the stream's handler is cancelled meanwhile."""
        await self._hub.detach(stream)
        # Also when the stream ended while being marked online: no lease is left over.
        await self._presence.disconnected(holder)

    async def update(
        self, device: DeviceAddress, subscription: Subscription, *, request_id: str
    ) -> Subscription:
        """Replaces what the device's open stream follows (wherever it is open)."""
        if not request_id:
            raise RequestIdMissing()
        stream_id = await self._presence.store.open_stream(device, self._clock())
        if stream_id is None:
            raise NoOpenSubscription("open a Subscribe stream first")
        kept = await self._presence.store.recall(device, request_id)
        if kept is not None:
            return subscription  # a repeat: the first one already changed the stream
        await self._presence.store.remember(
            device, request_id, stream_id, ttl_seconds=self._config.request_id_ttl_seconds
        )
        await self._feed.publish(
            {device_topic(device): [SubscriptionChanged(stream_id, subscription)]}
        )
        return subscription

    async def get(self, device: DeviceAddress, user_ids: Sequence[str]) -> list[PresenceView]:
        """The presence of some users once, as the caller may see it."""
        users = check_batch(user_ids, self._config)
        decision = await self._limiter.acquire(
            f"presence-read:{device}",
            rate_per_second=self._config.presence_reads_per_minute / 60.0,
            burst=self._config.presence_read_burst,
        )
        if not decision.allowed:
            raise RateLimited("device", decision.retry_after_seconds)
        return [seen.view for seen in await self._reader.read(device.user_id, users)]
