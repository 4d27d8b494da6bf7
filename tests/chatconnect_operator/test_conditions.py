"""metav1.Condition lists: transitions keep or move lastTransitionTime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chatconnect_operator.conditions import (
    Status,
    condition,
    find,
    merge,
    parse_timestamp,
    timestamp,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_a_new_condition_gets_the_current_time() -> None:
    merged = merge(None, [condition("Ready", "True", "Reconciled", "ok", generation=3)], T0)
    assert merged == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "ok",
            "observedGeneration": 3,
            "lastTransitionTime": "2030-01-01T12:00:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("new_status", "transition"),
    [
        ("True", "2030-01-01T12:00:00Z"),
        ("False", "2030-01-01T12:05:00Z"),
        ("Unknown", "2030-01-01T12:05:00Z"),
    ],
)
def test_transition_time_moves_only_when_the_status_changes(
    new_status: Status, transition: str
) -> None:
    before = merge(None, [condition("Degraded", "True", "Unhealthy", "a", generation=1)], T0)
    after = merge(
        before,
        [condition("Degraded", new_status, "Other", "b", generation=2)],
        T1,
    )
    assert len(after) == 1
    assert after[0]["lastTransitionTime"] == transition
    # reason, message and generation are always refreshed
    assert (after[0]["reason"], after[0]["message"], after[0]["observedGeneration"]) == (
        "Other",
        "b",
        2,
    )


def test_other_types_are_kept_in_order() -> None:
    existing = merge(
        None,
        [
            condition("Ready", "True", "A", "", generation=1),
            condition("Progressing", "False", "B", "", generation=1),
            condition("Degraded", "False", "C", "", generation=1),
        ],
        T0,
    )
    merged = merge(existing, [condition("Progressing", "True", "D", "", generation=2)], T1)
    assert [c["type"] for c in merged] == ["Ready", "Progressing", "Degraded"]
    assert merged[0] == existing[0] and merged[2] == existing[2]
    assert find(merged, "Progressing") == merged[1]
    assert find(merged, "Missing") is None


def test_merging_the_same_update_twice_changes_nothing() -> None:
    update = [condition("Ready", "True", "Reconciled", "ok", generation=1)]
    once = merge(None, update, T0)
    assert merge(once, update, T1) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T12:00:00Z", T0),
        ("2030-01-01T12:00:00+00:00", T0),
        ("2030-01-01T12:00:00", T0),
        ("yesterday", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_timestamps_round_trip(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
    if expected is not None:
        assert timestamp(expected) == "2030-01-01T12:00:00Z"


def test_precise_timestamps_keep_milliseconds() -> None:
    moment = datetime(2030, 1, 1, 12, 0, 0, 987_654, tzinfo=UTC)
    assert timestamp(moment) == "2030-01-01T12:00:00Z"
    assert timestamp(moment, precise=True) == "2030-01-01T12:00:00.987Z"
    assert parse_timestamp(timestamp(moment, precise=True)) == moment.replace(microsecond=987_000)
