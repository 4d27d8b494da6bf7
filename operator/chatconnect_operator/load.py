"""Reading a region's load figures from its Redis (the autoscaling metric path).

The reader itself is the services' own `chatconnect.runtime.load_reports.read_load`, so
the writer and the reader cannot disagree on the key or the value format.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chatconnect.runtime.load_reports import (
    GATEWAY,
    TURN,
    LoadFigure,
    count_turn_allocations,
    read_load,
    turn_stats_url,
)


async def region_load(
    url: str,
    *,
    password: str | None,
    turn_lifetime_seconds: int | None,
    now_ms: int,
    max_age_ms: int,
) -> dict[str, LoadFigure]:
    """Open gateway connections (the gateways' reports) and, when `turn_lifetime_seconds`
    is given (TURN enabled), live relay allocations (coturn's statsdb, `turn_stats_url`)."""
    options = {"password": password} if password else {}
    client = aioredis.from_url(url, **options)
    try:
        figures = {
            GATEWAY: await read_load(
                client, component=GATEWAY, now_ms=now_ms, max_age_ms=max_age_ms
            )
        }
    finally:
        await client.aclose()
    if turn_lifetime_seconds is None:
        return figures
    stats = aioredis.from_url(turn_stats_url(url), **options)
    try:
        allocations = await count_turn_allocations(stats, max_idle_seconds=turn_lifetime_seconds)
    finally:
        await stats.aclose()
    # coturn writes its statsdb itself: an empty one is a real zero, not a missing report.
    figures[TURN] = LoadFigure(total=allocations, reporters=1)
    return figures
