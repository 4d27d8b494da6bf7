"""The generic cell rate algorithm: one timestamp per bucket, exact and cheap.

A bucket admits `rate` requests per second on average with bursts of up to `burst`. Its
whole state is the theoretical arrival time (TAT) of the next request, which makes it easy
to keep in Redis (one key, a short Lua script) or in a dict.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GcraResult:
    """Whether the request fits, the new TAT to store, and how long to wait if not."""

    allowed: bool
    new_tat: float
    retry_after: float


def gcra(tat: float | None, now: float, *, rate: float, burst: int, cost: int = 1) -> GcraResult:
    """Decides one request against a bucket whose stored TAT is `tat` (None: empty)."""
    interval = 1.0 / rate
    tolerance = interval * burst
    current = max(tat if tat is not None else now, now)
    new_tat = current + interval * cost
    allow_at = new_tat - tolerance
    # Sums of 1/rate are inexact in binary; a millionth of an interval of slack keeps the
    # last request of a full burst from being refused by rounding.
    if allow_at - now > interval * 1e-6:
        return GcraResult(False, current, allow_at - now)
    return GcraResult(True, new_tat, 0.0)
