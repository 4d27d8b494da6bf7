"""Assembles the presence service: its ephemeral backend (Redis or this process), the
domain parts over their ports, the servicer, and the background tasks it needs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from chatconnect.bus.ports import RateLimiter
from chatconnect.devices.ports import DeviceStore
from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Clock
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.hub import PresenceHub
from chatconnect.presence.domain.presence import PresenceService
from chatconnect.presence.domain.reader import PresenceReader
from chatconnect.presence.domain.subscribing import SubscriptionService
from chatconnect.presence.domain.subscriptions import SubscriptionPolicy
from chatconnect.presence.domain.typing import TypingService
from chatconnect.presence.inprocess import InProcessPresenceFeed, InProcessPresenceStore
from chatconnect.presence.ports import LastSeenStore, PresenceFeed, PresenceStore
from chatconnect.presence.redis import RedisPresenceStore
from chatconnect.presence.redis_feed import RedisPresenceFeed
from chatconnect.presence.servicer import PresenceServicer
from chatconnect.runtime.auth import Authenticator
from chatconnect.users.ports import PrivacyDirectory


@dataclass(frozen=True)
class PresenceBackend:
    """The ephemeral store and the feed of one process."""

    store: PresenceStore
    feed: PresenceFeed


@contextlib.asynccontextmanager
async def open_presence_backend(
    redis: aioredis.Redis | None, *, instance_id: str
) -> AsyncIterator[PresenceBackend]:
    """Redis when the process has one (the distributed mode), else this process."""
    if redis is None:
        feed: PresenceFeed = InProcessPresenceFeed()
        try:
            yield PresenceBackend(InProcessPresenceStore(), feed)
        finally:
            await feed.close()
        return
    redis_feed = RedisPresenceFeed(redis, instance_id=instance_id)
    await redis_feed.start()
    try:
        yield PresenceBackend(RedisPresenceStore(redis), redis_feed)
    finally:
        await redis_feed.close()


@dataclass(frozen=True)
class Presence:
    """The wired presence service."""

    service: PresenceService
    servicer: PresenceServicer
    background: list[Callable[[], Awaitable[Any]]]
    """Lease renewal and event routing; run while the process serves."""


def wire_presence(
    *,
    backend: PresenceBackend,
    last_seen: LastSeenStore,
    privacy: PrivacyDirectory,
    groups: GroupDirectory,
    devices: DeviceStore,
    limiter: RateLimiter,
    authenticator: Authenticator,
    config: PresenceConfig,
    clock: Clock,
) -> Presence:
    """Builds the presence service over its ports."""
    presence = PresenceService(
        store=backend.store,
        last_seen=last_seen,
        feed=backend.feed,
        limiter=limiter,
        devices=devices,
        config=config,
        clock=clock,
    )
    policy = SubscriptionPolicy(groups=groups, config=config)
    hub = PresenceHub(backend.feed)
    reader = PresenceReader(store=backend.store, last_seen=last_seen, privacy=privacy, clock=clock)
    servicer = PresenceServicer(
        presence=presence,
        subscriptions=SubscriptionService(
            presence=presence,
            reader=reader,
            policy=policy,
            hub=hub,
            feed=backend.feed,
            limiter=limiter,
            config=config,
            clock=clock,
        ),
        typing=TypingService(
            store=backend.store,
            feed=backend.feed,
            policy=policy,
            limiter=limiter,
            config=config,
            clock=clock,
        ),
        authenticator=authenticator,
    )
    return Presence(presence, servicer, [presence.keep_leases, hub.run])
