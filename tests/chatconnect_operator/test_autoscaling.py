"""The autoscaling decision: HPA-like sizing, hysteresis, step, cooldowns, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chatconnect_operator.autoscaling import decide
from chatconnect_operator.spec import Autoscaling

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Autoscaling(
    min_replicas=2,
    max_replicas=20,
    target_per_pod=100,
    tolerance=0.1,
    max_step=4,
    scale_up_cooldown_seconds=60,
    scale_down_cooldown_seconds=300,
)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("current", "load", "replicas", "reason"),
    [
        # ceil(load / target), within one step
        (4, 600, 6, "ScaleUp"),
        (4, 501, 6, "ScaleUp"),
        (6, 300, 3, "ScaleDown"),
        # at most maxStep per decision, either way
        (4, 1900, 8, "ScaleUp"),
        (12, 300, 8, "ScaleDown"),
        # hysteresis: ±10 % of capacity holds, exactly at the edges too
        (4, 400, 4, "WithinTolerance"),
        (4, 440, 4, "WithinTolerance"),
        (4, 360, 4, "WithinTolerance"),
        (4, 441, 5, "ScaleUp"),
        (4, 359, 4, "Steady"),  # outside the band, but ceil(3.59) is still 4
        (4, 299, 3, "ScaleDown"),
        # bounds
        (20, 5000, 20, "AtMaximum"),
        (2, 0, 2, "AtMinimum"),
        (3, 0, 2, "ScaleDown"),
        (19, 100_000, 20, "ScaleUp"),
    ],
)
def test_sizing(current: int, load: int, replicas: int, reason: str) -> None:
    decision = decide(
        current=current,
        load=load,
        reporters=current,
        policy=POLICY,
        last_scale_up=None,
        last_scale_down=None,
        now=NOW,
    )
    assert (decision.replicas, decision.reason) == (replicas, reason)
    expected = "up" if replicas > current else "down" if replicas < current else "none"
    assert decision.direction == expected
    assert decision.message


@pytest.mark.parametrize(
    ("current", "load", "last_up", "last_down", "replicas", "reason"),
    [
        (4, 800, ago(30), None, 4, "ScaleUpCooldown"),
        (4, 800, ago(60), None, 8, "ScaleUp"),  # the cooldown is over at its last second
        (4, 800, ago(61), ago(1), 8, "ScaleUp"),  # a recent scale-down does not block going up
        (8, 200, None, ago(299), 8, "ScaleDownCooldown"),
        (8, 200, None, ago(300), 4, "ScaleDown"),
        (8, 200, ago(1), ago(301), 4, "ScaleDown"),  # a recent scale-up does not block going down
        (8, 820, ago(1), ago(1), 8, "WithinTolerance"),  # no cooldown matters when holding
    ],
)
def test_cooldowns_apply_per_direction(
    current: int,
    load: int,
    last_up: datetime | None,
    last_down: datetime | None,
    replicas: int,
    reason: str,
) -> None:
    decision = decide(
        current=current,
        load=load,
        reporters=3,
        policy=POLICY,
        last_scale_up=last_up,
        last_scale_down=last_down,
        now=NOW,
    )
    assert (decision.replicas, decision.reason) == (replicas, reason)


@pytest.mark.parametrize(
    ("current", "replicas", "reason", "direction"),
    [(1, 2, "BelowMinimum", "up"), (0, 2, "BelowMinimum", "up"), (25, 20, "AboveMaximum", "down")],
)
def test_bounds_apply_at_once_whatever_the_cooldowns_and_the_data(
    current: int, replicas: int, reason: str, direction: str
) -> None:
    decision = decide(
        current=current,
        load=0,
        reporters=0,
        policy=POLICY,
        last_scale_up=ago(1),
        last_scale_down=ago(1),
        now=NOW,
    )
    assert (decision.replicas, decision.reason, decision.direction) == (
        replicas,
        reason,
        direction,
    )


@pytest.mark.parametrize("load", [0, 10_000])
def test_no_reports_at_all_holds_and_says_so(load: int) -> None:
    decision = decide(
        current=6,
        load=load,
        reporters=0,
        policy=POLICY,
        last_scale_up=None,
        last_scale_down=None,
        now=NOW,
    )
    assert (decision.replicas, decision.direction, decision.reason) == (6, "none", "NoLoadReports")
    assert "no fresh load reports" in decision.message


def test_zero_tolerance_reacts_to_any_difference() -> None:
    policy = Autoscaling(1, 10, 100, 0.0, 1, 0, 0)
    up = decide(
        current=2,
        load=201,
        reporters=2,
        policy=policy,
        last_scale_up=None,
        last_scale_down=None,
        now=NOW,
    )
    hold = decide(
        current=2,
        load=200,
        reporters=2,
        policy=policy,
        last_scale_up=None,
        last_scale_down=None,
        now=NOW,
    )
    assert (up.replicas, hold.replicas, hold.reason) == (3, 2, "WithinTolerance")


def test_repeated_decisions_converge_step_by_step() -> None:
    """Fed a constant load with cooldowns elapsed, the fleet climbs by maxStep to the
    desired size and stays there."""
    current, sizes = 2, []
    for _ in range(6):
        decision = decide(
            current=current,
            load=1750,
            reporters=current,
            policy=POLICY,
            last_scale_up=None,
            last_scale_down=None,
            now=NOW,
        )
        current = decision.replicas
        sizes.append(current)
    assert sizes == [6, 10, 14, 18, 18, 18]
