"""Load figures that processes report and the operator autoscales on.

The metric path: every gateway process writes its open connection count into one Redis
hash per component in its region's Redis (`{ns}:load:gateway`, field = instance id, value
"<figure> <unix ms>") on each route heartbeat. The operator sums the fresh fields of that
hash to decide how many gateway pods the region needs. Redis is already where a region's
ephemeral state lives, so this adds no system, reads in O(pods), and needs no metrics
server. A crashed process stops reporting; its field turns stale and is dropped by the
reader, so a dead pod's connections are never counted twice.

Redis 7.0 has no per-field expiry, hence the timestamp inside each value.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

GATEWAY = "gateway"
"""Component name of gateway processes; their figure is open client connections."""
TURN = "turn"
"""Component name of TURN relays; their figure is relay allocations."""


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
