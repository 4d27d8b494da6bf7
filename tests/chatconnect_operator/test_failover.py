"""Failover decisions over a region's health timeline: detection window, Manual mode,
drain, automatic and manual failback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chatconnect_operator.failover import FAILBACK_ANNOTATION, RegionState, decide, decide_region
from chatconnect_operator.spec import FailoverPolicy

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
AUTO = FailoverPolicy(
    mode="Automatic", detection_window_seconds=60, failback="Automatic", failback_stable_seconds=300
)
MANUAL_BACK = FailoverPolicy(
    mode="Automatic", detection_window_seconds=60, failback="Manual", failback_stable_seconds=300
)
MANUAL = FailoverPolicy(
    mode="Manual", detection_window_seconds=60, failback="Manual", failback_stable_seconds=300
)


def state(
    healthy: bool | None,
    seconds: float = 0,
    *,
    failed_over: bool = False,
    drain: bool = False,
    failback: bool = False,
) -> RegionState:
    """A region whose verdict `healthy` has held for `seconds`."""
    return RegionState(
        healthy=healthy,
        since=NOW - timedelta(seconds=seconds) if healthy is not None else None,
        failed_over=failed_over,
        drain=drain,
        failback_requested=failback,
    )


@pytest.mark.parametrize(
    ("policy", "region", "failed_over", "out", "degraded", "reason", "event"),
    [
        # Automatic: unhealthy for the whole window, no less
        (AUTO, state(False, 59), False, False, "True", "Unhealthy", None),
        (AUTO, state(False, 60), True, True, "True", "FailedOver", "FailedOver"),
        (AUTO, state(False, 3600), True, True, "True", "FailedOver", "FailedOver"),
        (AUTO, state(True, 3600), False, False, "False", "Healthy", None),
        (AUTO, state(None), False, False, "Unknown", "HealthUnknown", None),
        # Manual mode never fails over by itself, but says the region is degraded
        (MANUAL, state(False, 3600), False, False, "True", "Unhealthy", None),
        # drain moves the shards at once in either mode, without the latch
        (MANUAL, state(True, 10, drain=True), False, True, "True", "Drained", None),
        (AUTO, state(None, drain=True), False, True, "True", "Drained", None),
        # a draining region still fails over when unhealthy: undraining must not bring
        # back a dead region
        (AUTO, state(False, 60, drain=True), True, True, "True", "FailedOver", "FailedOver"),
        # Automatic failback after failbackStableSeconds of health, not before
        (AUTO, state(True, 299, failed_over=True), True, True, "True", "FailedOver", None),
        (AUTO, state(True, 300, failed_over=True), False, False, "False", "Healthy", "FailedBack"),
        (AUTO, state(False, 5, failed_over=True), True, True, "True", "FailedOver", None),
        # ... and never while draining
        (
            AUTO,
            state(True, 9999, failed_over=True, drain=True),
            True,
            True,
            "True",
            "FailedOver",
            None,
        ),
        # Manual failback: healthy for ever, still failed over
        (MANUAL_BACK, state(True, 86400, failed_over=True), True, True, "True", "FailedOver", None),
        # ... until a person asks
        (
            MANUAL_BACK,
            state(True, 1, failed_over=True, failback=True),
            False,
            False,
            "False",
            "Healthy",
            "FailedBack",
        ),
        (
            MANUAL,
            state(True, 1, failed_over=True, failback=True),
            False,
            False,
            "False",
            "Healthy",
            "FailedBack",
        ),
        # a request for an unhealthy or draining region is refused
        (
            MANUAL_BACK,
            state(False, 1, failed_over=True, failback=True),
            True,
            True,
            "True",
            "FailedOver",
            "FailbackRefused",
        ),
        (
            MANUAL_BACK,
            state(True, 1, failed_over=True, drain=True, failback=True),
            True,
            True,
            "True",
            "FailedOver",
            "FailbackRefused",
        ),
    ],
)
def test_verdicts(
    policy: FailoverPolicy,
    region: RegionState,
    failed_over: bool,
    out: bool,
    degraded: str,
    reason: str,
    event: str | None,
) -> None:
    verdict = decide_region(policy, "eu", region, NOW)
    assert (verdict.failed_over, verdict.out, verdict.degraded, verdict.reason) == (
        failed_over,
        out,
        degraded,
        reason,
    )
    assert (verdict.event.reason if verdict.event else None) == event
    assert verdict.clear_failback_request is region.failback_requested


@pytest.mark.parametrize(
    ("event_reason", "event_type"),
    [("FailedOver", "Warning"), ("FailedBack", "Normal"), ("FailbackRefused", "Warning")],
)
def test_events_say_why(event_reason: str, event_type: str) -> None:
    region = {
        "FailedOver": state(False, 61),
        "FailedBack": state(True, 301, failed_over=True),
        "FailbackRefused": state(False, 1, failed_over=True, failback=True),
    }[event_reason]
    verdict = decide_region(AUTO, "eu", region, NOW)
    assert verdict.event is not None
    assert (verdict.event.type, verdict.event.reason) == (event_type, event_reason)
    assert "eu" in verdict.event.message


def test_a_failback_request_on_a_region_not_failed_over_is_just_cleared() -> None:
    verdict = decide_region(MANUAL_BACK, "eu", state(True, 5, failback=True), NOW)
    assert (verdict.failed_over, verdict.event, verdict.clear_failback_request) == (
        False,
        None,
        True,
    )


def test_messages_name_instants_so_repeated_passes_write_nothing_new() -> None:
    region = state(False, 10)
    first = decide_region(AUTO, "eu", region, NOW)
    later = decide_region(AUTO, "eu", region, NOW + timedelta(seconds=20))
    assert first.message == later.message
    assert "2030-01-01T12:00:50Z" in first.message  # since + detection window


def test_manual_failback_message_names_the_gesture() -> None:
    verdict = decide_region(MANUAL_BACK, "eu", state(True, 5, failed_over=True), NOW)
    assert FAILBACK_ANNOTATION in verdict.message


def test_decide_covers_every_region() -> None:
    verdicts = decide(AUTO, {"eu": state(False, 120), "us": state(True, 120)}, NOW)
    assert {name: v.out for name, v in verdicts.items()} == {"eu": True, "us": False}
