"""Redis adapters of the bus and the rate limiter, for the distributed mode.

Routing: each process that holds connections has an instance id and one pub/sub channel.
A device's route key names the instance holding it and carries a TTL that the instance's
heartbeat renews; a crashed instance's routes simply expire, and a Redis restarted empty
gets every route back at the next heartbeat. Publishing looks up the routes of a batch and
sends one message per target instance. Events are hints: a subscriber that may have missed
some (Redis reconnect) is told to re-read the durable inbox.

A device's route key is hash-tagged by its user, so all devices of a user live in one
Redis Cluster slot. A route lookup is one MGET across users, so it needs a single Redis
(one per region, as deployed), not a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError

from chatconnect.bus.inprocess import InProcessBus
from chatconnect.bus.ports import (
    Bus,
    BusEvent,
    DeviceRevoked,
    InboxChanged,
    RateDecision,
    RateLimiter,
    Subscription,
)
from chatconnect.model import DeviceAddress, Envelope
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.telemetry import storage_call

log = get_logger("bus.redis")


def route_key(namespace: str, device: DeviceAddress) -> str:
    """The route key of a device, hash-tagged by user for Redis Cluster."""
    return f"{namespace}:route:{{{device.user_id}}}:{device.device_id}"


def channel_name(namespace: str, instance_id: str) -> str:
    """The pub/sub channel of one instance."""
    return f"{namespace}:bus:{instance_id}"


def _encode(events: Sequence[InboxChanged | DeviceRevoked]) -> bytes:
    """One bus message for `events`.

    A group message goes to many devices as one envelope object: it is serialised once
    and carried once, by the first item that needs it ("e"); later items name that item
    ("r"). A gateway of the version before reads such an item as an event without an
    envelope and re-reads the store, so nothing is lost while versions are mixed.
    """
    from chatconnect.runtime import wire

    items: list[dict[str, Any]] = []
    carrier: dict[int, int] = {}  # id(envelope) -> the index of the item that carries it
    for index, event in enumerate(events):
        item: dict[str, Any] = {"u": event.device.user_id, "d": event.device.device_id}
        if isinstance(event, DeviceRevoked):
            item["k"] = "revoked"
        else:
            item["k"] = "inbox"
            item["s"] = event.sequence
            if event.envelope is not None:
                first = carrier.setdefault(id(event.envelope), index)
                if first == index:
                    raw = wire.envelope_to_wire(event.envelope).SerializeToString()
                    item["e"] = base64.b64encode(raw).decode()
                else:
                    item["r"] = first
        items.append(item)
    return json.dumps(items, separators=(",", ":")).encode()


def _decode(payload: bytes) -> list[InboxChanged | DeviceRevoked]:
    """The events of a bus message (raises ValueError, KeyError or TypeError if malformed)."""
    from chatconnect.common.v1 import common_pb2
    from chatconnect.runtime import wire

    events: list[InboxChanged | DeviceRevoked] = []
    carried: dict[int, Envelope] = {}
    items = json.loads(payload)
    if not isinstance(items, list):
        raise TypeError(f"a bus message is a list of events, not {type(items).__name__}")
    for index, item in enumerate(items):
        device = DeviceAddress(item["u"], item["d"])
        if item["k"] == "revoked":
            events.append(DeviceRevoked(device))
            continue
        envelope = None
        if "e" in item:
            message = common_pb2.Envelope.FromString(base64.b64decode(item["e"]))
            envelope = carried[index] = wire.envelope_from_wire(message)
        elif "r" in item:
            envelope = carried[item["r"]]
        events.append(InboxChanged(device, item["s"], envelope))
    return events


class _RoutedSubscription(Subscription):
    def __init__(self, bus: RedisBus, device: DeviceAddress, inner: Subscription) -> None:
        self._bus = bus
        self._device = device
        self._inner = inner

    def __aiter__(self) -> AsyncIterator[BusEvent]:
        return self._inner.__aiter__()

    async def close(self) -> None:
        await self._inner.close()
        await self._bus._release(self._device)


class RedisBus(Bus):
    """Routes events to the instances holding each device; start() before use."""

    # Deletes a route only if it still names this instance (a device may have moved).
    _RELEASE = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0"
    )

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        instance_id: str,
        namespace: str = "cc",
        heartbeat_seconds: float = 10.0,
        route_ttl_seconds: float = 30.0,
    ) -> None:
        self._client = client
        self.instance_id = instance_id
        self._namespace = namespace
        self._heartbeat = heartbeat_seconds
        self._ttl_ms = int(route_ttl_seconds * 1000)
        self._local = InProcessBus()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Starts listening on this instance's channel and renewing routes."""
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._renew_routes()),
        ]
        await asyncio.wait_for(self._listening.wait(), 10)

    async def close(self) -> None:
        """Stops the background tasks (routes expire on their own)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def subscribe(self, device: DeviceAddress) -> Subscription:
        inner = await self._local.subscribe(device)
        with storage_call("redis", "set_route"), contextlib.suppress(RedisError):
            # Best effort: the heartbeat writes the route again if Redis is away now.
            await self._client.set(
                route_key(self._namespace, device), self.instance_id, px=self._ttl_ms
            )
        return _RoutedSubscription(self, device, inner)

    async def _release(self, device: DeviceAddress) -> None:
        if device in self._local.devices():
            return  # another local connection of the device still holds the route
        with storage_call("redis", "release_route"), contextlib.suppress(RedisError):
            await self._client.eval(
                self._RELEASE, 1, route_key(self._namespace, device), self.instance_id
            )

    async def publish(self, events: Sequence[InboxChanged | DeviceRevoked]) -> None:
        if not events:
            return
        devices = list(dict.fromkeys(e.device for e in events))
        try:
            with storage_call("redis", "lookup_routes"):
                # One MGET, not a pipeline of GETs: a group's push looks up hundreds of
                # routes at once, and each reply of a pipeline costs the client about as
                # much Python as the whole MGET.
                routes = await self._client.mget(
                    [route_key(self._namespace, device) for device in devices]
                )
        except RedisError as exc:
            # Online push is an optimisation; the inbox is durable. Devices re-read it.
            log.warning("route lookup failed; push skipped", error=str(exc))
            return
        # Replies are bytes: the client does not decode responses.
        where = {
            d: r.decode() if isinstance(r, bytes) else r
            for d, r in zip(devices, routes, strict=True)
            if r is not None
        }
        by_instance: dict[str, list[InboxChanged | DeviceRevoked]] = defaultdict(list)
        for event in events:
            instance = where.get(event.device)
            if instance is not None:
                by_instance[instance].append(event)
        local = by_instance.pop(self.instance_id, [])
        if local:
            await self._local.publish(local)
        if not by_instance:
            return
        try:
            with storage_call("redis", "publish"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for instance, batch in by_instance.items():
                        pipe.publish(channel_name(self._namespace, instance), _encode(batch))
                    await pipe.execute()
        except RedisError as exc:
            log.warning("publish failed; push skipped", error=str(exc))

    async def _deliver(self, payload: bytes) -> None:
        try:
            events = _decode(payload)
        except (ValueError, KeyError, TypeError, IndexError, DecodeError) as exc:
            # The listener must outlive a message it cannot read (another version, a
            # stray publish); whoever it was for re-reads the durable inbox.
            log.error("unreadable bus message; every device here re-reads", error=repr(exc))
            self._local.resync_all()
            return
        await self._local.publish(events)

    async def _listen(self) -> None:
        channel = channel_name(self._namespace, self.instance_id)
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(channel)
                if self._listening.is_set():
                    # Reconnected: anything published meanwhile is lost; re-read inboxes.
                    self._local.resync_all()
                self._listening.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("bus connection lost; reconnecting", error=str(exc))
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _renew_routes(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            await self.renew_routes()

    async def renew_routes(self) -> None:
        """Writes every local device's route again (also rebuilds them after a Redis
        restart)."""
        devices = self._local.devices()
        if not devices:
            return
        try:
            with storage_call("redis", "renew_routes"):
                async with self._client.pipeline(transaction=False) as pipe:
                    for device in devices:
                        pipe.set(
                            route_key(self._namespace, device),
                            self.instance_id,
                            px=self._ttl_ms,
                            get=True,
                        )
                    previous = await pipe.execute()
        except RedisError as exc:
            log.warning("route heartbeat failed", error=str(exc))
            return
        # A route that was gone (Redis restarted empty, or it expired while Redis was away)
        # means pushes to that device were skipped: it re-reads its inbox.
        lost = [d for d, old in zip(devices, previous, strict=True) if old is None]
        if lost:
            log.info("routes rebuilt after loss", devices=len(lost))
            self._local.resync(lost)


class RedisRateLimiter(RateLimiter):
    """GCRA buckets in Redis (one key each, one script call per decision), on the Redis
    server's clock so that every process agrees."""

    # Integer microseconds: exact, unlike sums of float intervals.
    _GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now then return {0, allow_at - now} end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""

    def __init__(self, client: aioredis.Redis, *, namespace: str = "cc") -> None:
        self._client = client
        self._namespace = namespace
        self._script = client.register_script(self._GCRA)

    async def acquire(
        self, key: str, *, rate_per_second: float, burst: int, cost: int = 1
    ) -> RateDecision:
        interval = max(math.ceil(1_000_000 / rate_per_second), 1)
        try:
            with storage_call("redis", "rate_limit"):
                allowed, wait_us = await self._script(
                    keys=[f"{self._namespace}:rl:{{{key}}}"],
                    args=[interval, interval * burst, cost],
                )
        except RedisError as exc:
            raise StoreUnavailable(f"the rate limiter's Redis did not answer: {exc}") from exc
        return RateDecision(bool(allowed), int(wait_us) / 1_000_000)
