"""Failover decisions: from each region's health timeline to whether its shards leave.

A region is *out* (its shards homed elsewhere, see `placement`) when it is failed over or
drained. The two are kept apart on purpose:

- `failedOver` is the operator's latch (ChatRegion `status.failedOver`). In Automatic
  mode it is set once the region has been unhealthy continuously for the detection
  window; Manual mode never sets it (the region is only reported Degraded). It is cleared
  by failback: Automatic once the region has been healthy continuously for
  `failbackStableSeconds` and is not draining; in every mode when a person asks with the
  annotation `chatconnect.io/failback` on the ChatRegion (honoured only if the region is
  healthy and not draining, and removed either way, so a refused request never fires
  later by surprise).
- `spec.drain` is a person's order: out at once in either mode, back as soon as it is
  unset (unless the latch is set meanwhile).

A region never probed yet is neither healthy nor unhealthy: no decision is taken on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from chatconnect_operator.conditions import timestamp
from chatconnect_operator.spec import FailoverPolicy

FAILBACK_ANNOTATION = "chatconnect.io/failback"
"""Set (any value) on a failed-over ChatRegion to bring its shards home now."""

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class RegionState:
    """What the operator knows about one region at a decision."""

    healthy: bool | None
    """The last probe's verdict; None when never probed."""
    since: datetime | None
    """When `healthy` last changed."""
    failed_over: bool
    drain: bool
    failback_requested: bool = False


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """The decision for one region."""

    failed_over: bool
    """The new value of the latch (status.failedOver)."""
    out: bool
    """Its shards are homed elsewhere: failed over or drained."""
    degraded: ConditionStatus
    reason: str
    message: str
    event: Event | None = None
    """A transition worth an Event on the ChatRegion (FailedOver, FailedBack, ...)."""
    clear_failback_request: bool = False


def decide(
    policy: FailoverPolicy, regions: Mapping[str, RegionState], now: datetime
) -> dict[str, Verdict]:
    """The verdict for every region."""
    return {name: decide_region(policy, name, state, now) for name, state in regions.items()}


def decide_region(policy: FailoverPolicy, name: str, state: RegionState, now: datetime) -> Verdict:
    """The verdict for one region (see the module docstring for the rules)."""
    lasted = (now - state.since).total_seconds() if state.since is not None else 0.0
    unhealthy_for = lasted if state.healthy is False else None
    healthy_for = lasted if state.healthy is True else None
    failed_over, event = state.failed_over, None
    if not failed_over:
        if (
            policy.mode == "Automatic"
            and unhealthy_for is not None
            and unhealthy_for >= policy.detection_window_seconds
        ):
            failed_over = True
            event = Event(
                "Warning",
                "FailedOver",
                f"region {name} unhealthy for {unhealthy_for:.0f}s (detection window "
                f"{policy.detection_window_seconds}s): its shards move to other regions",
            )
    elif state.failback_requested:
        if healthy_for is not None and not state.drain:
            failed_over = False
            event = Event(
                "Normal",
                "FailedBack",
                f"region {name} failed back on request ({FAILBACK_ANNOTATION})",
            )
        else:
            why = "it is draining" if state.drain else "it is not healthy"
            event = Event(
                "Warning",
                "FailbackRefused",
                f"failback of region {name} refused: {why}; the request was removed",
            )
    elif (
        policy.failback == "Automatic"
        and healthy_for is not None
        and healthy_for >= policy.failback_stable_seconds
        and not state.drain
    ):
        failed_over = False
        event = Event(
            "Normal",
            "FailedBack",
            f"region {name} healthy for {healthy_for:.0f}s (failbackStableSeconds "
            f"{policy.failback_stable_seconds}): its shards come home",
        )
    degraded, reason, message = _condition(policy, state, failed_over)
    return Verdict(
        failed_over=failed_over,
        out=failed_over or state.drain,
        degraded=degraded,
        reason=reason,
        message=message,
        event=event,
        clear_failback_request=state.failback_requested,
    )


def _condition(
    policy: FailoverPolicy, state: RegionState, failed_over: bool
) -> tuple[ConditionStatus, str, str]:
    """The region's Degraded condition: status, reason, message.

    Messages name instants, never durations, so they stay the same from one pass to the
    next and the status is not rewritten every few seconds.
    """
    since = timestamp(state.since) if state.since is not None else "an unknown time"

    def after(seconds: int) -> str:
        if state.since is None:
            return "an unknown time"
        return timestamp(state.since + timedelta(seconds=seconds))

    if failed_over:
        if state.healthy is not True:
            return "True", "FailedOver", "failed over: its shards are homed in other regions"
        if policy.failback == "Automatic" and not state.drain:
            when = after(policy.failback_stable_seconds)
            return "True", "FailedOver", f"failed over; healthy since {since}, fails back at {when}"
        return (
            "True",
            "FailedOver",
            f"failed over; healthy since {since}: annotate the ChatRegion "
            f"{FAILBACK_ANNOTATION}=now to bring its shards home",
        )
    if state.drain:
        return "True", "Drained", "spec.drain is set: its shards are homed in other regions"
    if state.healthy is None:
        return "Unknown", "HealthUnknown", "the region has not been probed yet"
    if state.healthy is False:
        if policy.mode == "Manual":
            return (
                "True",
                "Unhealthy",
                f"unhealthy since {since}; failover mode is Manual: set spec.drain to move "
                "its shards",
            )
        when = after(policy.detection_window_seconds)
        return "True", "Unhealthy", f"unhealthy since {since}; fails over at {when}"
    return "False", "Healthy", "serving its shards"
