"""One autoscaling pass over a region: read its load reports, decide gateway and TURN
replicas (`autoscaling.decide`), record them in the ChatRegion status, apply them.

The Deployments are applied on every pass, changed or not: server-side apply of an
unchanged object is a no-op, and it heals a Deployment someone scaled by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf
from redis.exceptions import RedisError

from chatconnect.runtime.load_reports import GATEWAY, TURN, LoadFigure, turn_allocation_lifetime
from chatconnect_operator import REGIONS, autoscaling, builders, load
from chatconnect_operator.conditions import parse_timestamp, timestamp
from chatconnect_operator.kube import Kube, as_body


def last_scales(state: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """(last scale-up, last scale-down) from status.<component>. A status without the
    per-direction times (written by an older operator, or pruned by a CRD that lacks
    them) falls back on lastScaleTime for both: stricter, never looser, than the
    contract."""
    up, down = state.get("lastScaleUpTime"), state.get("lastScaleDownTime")
    if up is None and down is None:
        up = down = state.get("lastScaleTime")
    return parse_timestamp(up), parse_timestamp(down)


def next_state(
    state: Mapping[str, Any], decision: autoscaling.Decision, figure: LoadFigure, now: datetime
) -> dict[str, Any]:
    """status.<component> after `decision` (the times move only when replicas do)."""
    entry: dict[str, Any] = {"replicas": decision.replicas, "load": figure.total}
    if decision.direction != "none":
        entry["lastScaleTime"] = timestamp(now, precise=True)
        key = "lastScaleUpTime" if decision.direction == "up" else "lastScaleDownTime"
        entry[key] = timestamp(now, precise=True)
    return entry


async def autoscale_region(
    kube: Kube,
    region: Mapping[str, Any],
    model: builders.Region,
    *,
    password: str | None,
    now: datetime,
    now_ms: int,
    max_age_ms: int,
    logger: kopf.Logger,
) -> None:
    """Decides and applies the replicas of the region's gateways (and relays)."""
    meta = region["metadata"]
    turn = model.spec.turn
    components = (GATEWAY, TURN) if turn.enabled else (GATEWAY,)
    lifetime = turn_allocation_lifetime(turn.autoscaling.scale_down_cooldown_seconds)
    try:
        figures = await load.region_load(
            model.stores.redis.url,
            password=password,
            turn_lifetime_seconds=lifetime if turn.enabled else None,
            now_ms=now_ms,
            max_age_ms=max_age_ms,
        )
    except (RedisError, OSError) as error:
        # Never scale on missing data: hold until the reports can be read again.
        logger.warning(
            "cannot read the load reports of region %s: %s; holding", meta["name"], error
        )
        return
    status = region.get("status") or {}
    patch: dict[str, Any] = {}
    replicas: dict[str, int] = {}
    for component in components:
        policy = (model.spec.gateway if component == GATEWAY else model.spec.turn).autoscaling
        state = status.get(component) or {}
        current = state.get("replicas")
        last_up, last_down = last_scales(state)
        decision = autoscaling.decide(
            current=current if isinstance(current, int) else policy.min_replicas,
            load=figures[component].total,
            reporters=figures[component].reporters,
            policy=policy,
            last_scale_up=last_up,
            last_scale_down=last_down,
            now=now,
        )
        if decision.direction != "none":
            logger.info("%s of region %s: %s", component, meta["name"], decision.message)
            kopf.event(
                as_body(region),
                type="Normal",
                reason=f"{component.capitalize()}{decision.reason}",
                message=decision.message,
            )
        patch[component] = next_state(state, decision, figures[component], now)
        replicas[component] = decision.replicas
    await kube.patch_status(REGIONS, meta["namespace"], meta["name"], patch)
    scaled = dataclasses.replace(
        model, gateway_replicas=replicas.get(GATEWAY), turn_replicas=replicas.get(TURN)
    )
    for component in components:
        await kube.apply(builders.deployment(scaled, component))
