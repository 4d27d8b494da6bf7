"""Load figures that processes report and the operator autoscales on.

The metric path: every gateway process writes its open connection count into one Redis
hash per component in its region's Redis (`{ns}:load:gateway`, field = instance id, value
"<figure> <unix ms>") on each route heartbeat. The operator sums the fresh fields of that
hash to decide how many gateway pods the region needs. Redis is already where a region's
ephemeral state lives, so this adds no system, reads in O(pods), and needs no metrics
server. A crashed process stops reporting; its field turns stale and is dropped by the
reader, so a dead pod's connections are never counted twice.

Redis 7.0 has no per-field expiry, hence the timestamp inside each value.

TURN relays are counted another way: they are coturn processes, which report nothing of
ours. coturn's own statsdb (`--redis-statsdb="ip=... port=... dbname=N password=..."`)
keeps one key per live relay allocation, "turn/realm/<realm>/user/<username>/allocation/
<id>/status" ("turn/user/<username>/allocation/<id>/status" when coturn has no realm),
SET on allocate and on every refresh and DEL'd when the allocation ends (client deallocates
or closes its TCP connection, or the lifetime runs out). `count_turn_allocations` counts
those keys. The statsdb gets a Redis DB index of its own, so the SCAN walks only TURN keys:
O(allocations) per operator tick, which is fine at operator cadence. Verified against coturn
4.6.1: the keys carry no TTL, so the DELs a coturn process never sends (it is killed, or
stopped: it deletes nothing on exit; or its Redis connection is down) leave stale keys; and a
starting coturn deletes every status key in its statsdb DB, other relays' live ones included
(those come back at their next refresh).

Both are handled without trusting coturn to clean up: every live allocation's key is SET
again at each refresh, which comes before its lifetime (at most coturn's
--max-allocate-lifetime) runs out, so a key idle for longer than that lifetime belongs to a
relay that is gone; the reader drops and deletes it (OBJECT IDLETIME does not touch the
key). And the operator runs coturn with a maximum lifetime no longer than the TURN
scale-down cooldown, so the dip after a new relay starts (and wipes) is refilled by
refreshes before any scale-down may happen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

GATEWAY = "gateway"
"""Component name of gateway processes; their figure is open client connections."""
TURN = "turn"
"""Component name of TURN relays; their figure is relay allocations."""

TURN_STATS_DB = 1
"""The Redis DB index, in each region's Redis, reserved for coturn's statsdb (the bus and
routes use the DB of `server.redis_url`; nothing else may use this one)."""
TURN_MAX_ALLOCATION_SECONDS = 600
"""The longest allocation lifetime relays grant (coturn's own default) when the TURN
scale-down cooldown allows it; see `turn_allocation_lifetime`."""

TURN_STATUS_MATCH = "turn/*/allocation/*/status"
"""SCAN pattern of coturn's allocation status keys (the one coturn itself uses to clear them)."""
_TURN_STATUS_KEY = re.compile(rb"turn/(?:realm/[^/]+/)?user/.*/allocation/[0-9]+/status", re.DOTALL)
"""What a coturn allocation status key is; a glob `*` also spans slashes, so SCAN's MATCH
alone would let e.g. ".../allocation/1/traffic/status" through."""


def turn_stats_url(redis_url: str) -> str:
    """The URL of coturn's statsdb: the region's Redis server, DB TURN_STATS_DB (redis-py
    takes the DB from the URL's path over any `db` argument, so the path is replaced)."""
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{TURN_STATS_DB}"))


def turn_allocation_lifetime(scale_down_cooldown_seconds: int) -> int:
    """coturn's --max-allocate-lifetime for a pool: no longer than its scale-down cooldown,
    so refreshes restore the count a starting relay wiped before a scale-down may happen;
    at least 60 s so clients do not refresh every few seconds."""
    return max(60, min(TURN_MAX_ALLOCATION_SECONDS, scale_down_cooldown_seconds))


def load_key(namespace: str, component: str) -> str:
    """The hash holding the reports of one component (one key: Redis Cluster-valid)."""
    return f"{namespace}:load:{component}"


@dataclass(frozen=True)
class LoadFigure:
    """The summed fresh reports of one component."""

    total: int
    """The sum of every fresh report, e.g. all open connections of the region."""
    reporters: int
    """How many processes reported within the freshness window."""


async def report_load(
    client: aioredis.Redis,
    *,
    component: str,
    instance_id: str,
    figure: int,
    now_ms: int,
    namespace: str = "cc",
) -> None:
    """Records one process's current figure (overwrites its previous report)."""
    await client.hset(load_key(namespace, component), instance_id, f"{figure} {now_ms}")


async def withdraw_load(
    client: aioredis.Redis, *, component: str, instance_id: str, namespace: str = "cc"
) -> None:
    """Removes a process's report when it shuts down cleanly."""
    await client.hdel(load_key(namespace, component), instance_id)


async def read_load(
    client: aioredis.Redis,
    *,
    component: str,
    now_ms: int,
    max_age_ms: int,
    namespace: str = "cc",
) -> LoadFigure:
    """Sums the reports younger than `max_age_ms`; deletes stale and unreadable ones."""
    key = load_key(namespace, component)
    raw: dict[bytes | str, bytes | str] = await client.hgetall(key)
    total = reporters = 0
    stale: list[bytes | str] = []
    for field, value in raw.items():
        parts = (value.decode() if isinstance(value, bytes) else value).split()
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            stale.append(field)
            continue
        figure, at_ms = int(parts[0]), int(parts[1])
        if now_ms - at_ms > max_age_ms:
            stale.append(field)
            continue
        total += figure
        reporters += 1
    if stale:
        await client.hdel(key, *stale)
    return LoadFigure(total=total, reporters=reporters)


async def count_turn_allocations(
    client: aioredis.Redis, *, max_idle_seconds: int | None = None, scan_count: int = 1000
) -> int:
    """The live TURN allocations that coturn records in the Redis DB `client` is on.

    Counts coturn's allocation status keys with SCAN (never KEYS: it does not block Redis),
    `scan_count` keys per step; other keys in the DB are not counted. `client` must be
    connected to the statsdb's DB index (the `dbname` given to coturn's --redis-statsdb).
    With `max_idle_seconds` (coturn's --max-allocate-lifetime), keys not rewritten for
    longer are a dead relay's leftovers: they are deleted and not counted.
    """
    keys = [
        key
        async for key in client.scan_iter(match=TURN_STATUS_MATCH, count=scan_count)
        if _TURN_STATUS_KEY.fullmatch(key.encode() if isinstance(key, str) else key)
    ]
    if max_idle_seconds is None or not keys:
        return len(keys)
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.object("idletime", key)
        try:
            idle = await pipe.execute(raise_on_error=True)
        except ResponseError:
            # An LFU eviction policy keeps no idle time: count everything, prune nothing.
            return len(keys)
    stale = [
        key
        for key, seconds in zip(keys, idle, strict=True)
        if seconds is not None and int(seconds) > max_idle_seconds
    ]
    if stale:
        await client.delete(*stale)
    return len(keys) - len(stale)
