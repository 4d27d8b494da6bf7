"""The autoscaling decision: how many pods a component (gateway, TURN) should run.

HPA-like, on a load figure the pods report themselves (docs/kubernetes.md, "Autoscaling"):
desired = ceil(load / target per pod); no change while the load is within ±tolerance of
the current capacity (hysteresis, so a load hovering at a boundary does not flap); at most
`max_step` pods per decision (a burst of reports cannot triple a fleet at once); no
scale-up within the scale-up cooldown of the last scale-up, no scale-down within the
scale-down cooldown of the last scale-down (pods need time to take connections before the
next decision sees their effect); always within [min, max], at once and regardless of the
cooldowns, so a spec change of the bounds applies immediately.

Missing data is not zero load: with no fresh report at all the decision holds, because
every gateway crashing or Redis being emptied would otherwise scale a busy region down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Literal

from chatconnect_operator.spec import Autoscaling

Direction = Literal["up", "down", "none"]


@dataclass(frozen=True)
class Decision:
    replicas: int
    direction: Direction
    reason: str
    """CamelCase, for status and events: ScaleUp, ScaleDown, WithinTolerance, ..."""
    message: str


def decide(
    *,
    current: int,
    load: int,
    reporters: int,
    policy: Autoscaling,
    last_scale_up: datetime | None,
    last_scale_down: datetime | None,
    now: datetime,
) -> Decision:
    """The replicas a component should run next, and why."""
    low, high = policy.min_replicas, policy.max_replicas
    if current < low:
        return Decision(
            low, "up", "BelowMinimum", f"{current} replicas raised to minReplicas {low}"
        )
    if current > high:
        return Decision(
            high, "down", "AboveMaximum", f"{current} replicas lowered to maxReplicas {high}"
        )
    if reporters == 0:
        return Decision(
            current,
            "none",
            "NoLoadReports",
            "no fresh load reports; holding (never scale on missing data)",
        )
    capacity = current * policy.target_per_pod
    # Exact arithmetic: with floats, 110 connections against a capacity of 100 at a
    # tolerance of 0.1 would land a hair outside the band.
    tolerance = Fraction(policy.tolerance).limit_denominator(1_000_000)
    if abs(Fraction(load, capacity) - 1) <= tolerance:
        return Decision(
            current,
            "none",
            "WithinTolerance",
            f"load {load} is within ±{policy.tolerance:g} of capacity {capacity}",
        )
    wanted = math.ceil(load / policy.target_per_pod)
    desired = min(max(wanted, low), high)
    wants = f"load {load} at {policy.target_per_pod} per pod wants {wanted} pods"
    if desired == current:
        if wanted > high:
            return Decision(current, "none", "AtMaximum", f"{wants}; held at maxReplicas {high}")
        if wanted < low:
            return Decision(current, "none", "AtMinimum", f"{wants}; held at minReplicas {low}")
        return Decision(current, "none", "Steady", f"{wants}; already running {current}")
    if desired > current:
        wait = _cooling(last_scale_up, policy.scale_up_cooldown_seconds, now)
        if wait is not None:
            return Decision(
                current, "none", "ScaleUpCooldown", f"{wants}; scale-up cooldown for {wait:.0f}s"
            )
        target = min(desired, current + policy.max_step)
        return Decision(target, "up", "ScaleUp", f"{wants}; {current} -> {target}")
    wait = _cooling(last_scale_down, policy.scale_down_cooldown_seconds, now)
    if wait is not None:
        return Decision(
            current, "none", "ScaleDownCooldown", f"{wants}; scale-down cooldown for {wait:.0f}s"
        )
    target = max(desired, current - policy.max_step)
    return Decision(target, "down", "ScaleDown", f"{wants}; {current} -> {target}")


def _cooling(last: datetime | None, cooldown_seconds: int, now: datetime) -> float | None:
    """Seconds left of a cooldown that started at `last`, or None when it is over."""
    if last is None:
        return None
    left = (last + timedelta(seconds=cooldown_seconds) - now).total_seconds()
    return left if left > 0 else None
