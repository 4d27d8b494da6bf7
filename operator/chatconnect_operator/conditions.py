"""metav1.Condition lists: build one, merge it into the list a status holds.

`lastTransitionTime` moves only when a condition's status changes, so `kubectl get -o
yaml` tells since when a region has been Degraded rather than when the operator last
looked. Reason, message and observedGeneration are refreshed on every merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def timestamp(moment: datetime, *, precise: bool = False) -> str:
    """RFC 3339 in UTC: with whole seconds, the form Kubernetes writes (metav1.Time), or
    `precise` with milliseconds, for instants that windows and cooldowns are measured
    from (truncating them would shorten a 10 s detection window by up to a second)."""
    utc = moment.astimezone(UTC)
    if precise:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: Any) -> datetime | None:
    """The inverse of `timestamp`; None for a missing or unreadable value."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def condition(
    type_: str, status: Status, reason: str, message: str, *, generation: int | None
) -> dict[str, Any]:
    """A condition without lastTransitionTime (merge fills it in)."""
    built: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        built["observedGeneration"] = generation
    return built


def merge(
    existing: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[Mapping[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """`existing` with each update replacing the condition of its type.

    The transition time is kept when the status is unchanged and set to `now` when it
    changes or the type is new. Conditions of other types are kept, in their order.
    """
    merged = [dict(item) for item in existing or () if isinstance(item, Mapping)]
    for update in updates:
        fresh = dict(update)
        index = next((i for i, c in enumerate(merged) if c.get("type") == fresh["type"]), None)
        previous = merged[index] if index is not None else None
        if previous is not None and previous.get("status") == fresh["status"]:
            fresh["lastTransitionTime"] = previous.get("lastTransitionTime") or timestamp(now)
        else:
            fresh["lastTransitionTime"] = timestamp(now)
        if index is None:
            merged.append(fresh)
        else:
            merged[index] = fresh
    return merged


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of `type_`, if present."""
    return next((c for c in conditions or () if c.get("type") == type_), None)
