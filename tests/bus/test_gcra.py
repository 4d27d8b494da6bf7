"""The GCRA decision function and the in-process rate limiter built on it."""

from __future__ import annotations

import types

import pytest

from chatconnect.bus import inprocess
from chatconnect.bus.gcra import gcra
from chatconnect.bus.inprocess import InProcessRateLimiter

T0 = 1_000.0


def take(tat: float | None, now: float, n: int, **kwargs: float) -> tuple[list[bool], float | None]:
    """Makes `n` requests at `now`, storing the TAT only when allowed (as adapters do)."""
    allowed = []
    for _ in range(n):
        result = gcra(tat, now, **kwargs)  # type: ignore[arg-type]
        allowed.append(result.allowed)
        if result.allowed:
            tat = result.new_tat
    return allowed, tat


@pytest.mark.parametrize(
    ("rate", "burst", "now"),
    [
        (1.0, 1, T0),
        (4.0, 8, T0),
        (0.5, 3, T0),
        (10.0, 5, T0),  # interval 0.1 is not exact in binary floating point
        (3.0, 3, T0),
        (50.0, 200, 0.0),  # router.sends_per_second / router.send_burst defaults
    ],
)
def test_burst_requests_at_once_then_refused_with_retry_after_one_interval(
    rate: float, burst: int, now: float
) -> None:
    allowed, tat = take(None, now, burst, rate=rate, burst=burst)
    assert allowed == [True] * burst, f"only {sum(allowed)} of a burst of {burst} admitted"
    refused = gcra(tat, now, rate=rate, burst=burst)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0 / rate)
    assert refused.new_tat == tat  # a refusal does not move the bucket


def test_an_allowed_request_has_no_retry_hint() -> None:
    result = gcra(None, T0, rate=5.0, burst=2)
    assert result.allowed
    assert result.retry_after == 0.0
    assert result.new_tat == pytest.approx(T0 + 0.2)


def test_refills_at_rate() -> None:
    rate, burst = 4.0, 3  # one request every 0.25 s
    _, tat = take(None, T0, burst, rate=rate, burst=burst)
    assert not gcra(tat, T0 + 0.2, rate=rate, burst=burst).allowed
    # One interval later exactly one more fits.
    allowed, tat = take(tat, T0 + 0.25, 2, rate=rate, burst=burst)
    assert allowed == [True, False]
    # Two more intervals: two more.
    allowed, tat = take(tat, T0 + 0.75, 3, rate=rate, burst=burst)
    assert allowed == [True, True, False]
    # Idle long enough, the bucket is full again, but never fuller than the burst.
    allowed, _ = take(tat, T0 + 100, burst + 1, rate=rate, burst=burst)
    assert allowed == [True] * burst + [False]


def test_retry_after_is_exact_when_partially_refilled() -> None:
    _, tat = take(None, T0, 2, rate=2.0, burst=2)  # interval 0.5 s
    refused = gcra(tat, T0 + 0.1, rate=2.0, burst=2)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.4)
    assert gcra(tat, T0 + 0.1 + refused.retry_after, rate=2.0, burst=2).allowed


def test_cost_takes_several_tokens() -> None:
    rate, burst = 10.0, 5
    first = gcra(None, T0, rate=rate, burst=burst, cost=3)
    assert first.allowed
    assert first.new_tat == pytest.approx(T0 + 0.3)
    second = gcra(first.new_tat, T0, rate=rate, burst=burst, cost=3)
    assert not second.allowed  # 6 > 5
    assert second.retry_after == pytest.approx(0.1)
    assert gcra(first.new_tat, T0, rate=rate, burst=burst, cost=2).allowed
    later = gcra(first.new_tat, T0 + 0.1, rate=rate, burst=burst, cost=3)
    assert later.allowed
    assert later.new_tat == pytest.approx(T0 + 0.6)


def test_cost_equal_to_burst_empties_a_full_bucket() -> None:
    result = gcra(None, T0, rate=1.0, burst=4, cost=4)
    assert result.allowed
    assert not gcra(result.new_tat, T0, rate=1.0, burst=4).allowed


def test_a_stale_tat_in_the_past_counts_as_a_full_bucket() -> None:
    allowed, _ = take(T0 - 50, T0, 4, rate=1.0, burst=3)
    assert allowed == [True, True, True, False]


# --- InProcessRateLimiter ------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(inprocess, "time", types.SimpleNamespace(monotonic=fake))
    return fake


async def test_limiter_keys_are_independent(clock: FakeClock) -> None:
    limiter = InProcessRateLimiter()
    for _ in range(3):
        assert (await limiter.acquire("send:a.1", rate_per_second=1.0, burst=3)).allowed
    refused = await limiter.acquire("send:a.1", rate_per_second=1.0, burst=3)
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(1.0)
    for _ in range(3):
        assert (await limiter.acquire("send:b.1", rate_per_second=1.0, burst=3)).allowed
    assert not (await limiter.acquire("send:b.1", rate_per_second=1.0, burst=3)).allowed


async def test_limiter_refills_with_time_and_honours_cost(clock: FakeClock) -> None:
    limiter = InProcessRateLimiter()
    assert (await limiter.acquire("k", rate_per_second=2.0, burst=4, cost=4)).allowed
    assert not (await limiter.acquire("k", rate_per_second=2.0, burst=4)).allowed
    clock.now += 1.0  # two tokens back
    assert not (await limiter.acquire("k", rate_per_second=2.0, burst=4, cost=3)).allowed
    assert (await limiter.acquire("k", rate_per_second=2.0, burst=4, cost=2)).allowed
    assert not (await limiter.acquire("k", rate_per_second=2.0, burst=4)).allowed


async def test_limiter_pruning_never_forgets_a_bucket_that_is_still_draining(
    clock: FakeClock,
) -> None:
    limiter = InProcessRateLimiter(max_buckets=1)
    assert (await limiter.acquire("a", rate_per_second=1.0, burst=1)).allowed
    assert (await limiter.acquire("b", rate_per_second=1.0, burst=1)).allowed  # prunes
    assert not (await limiter.acquire("a", rate_per_second=1.0, burst=1)).allowed
    clock.now += 5
    assert (await limiter.acquire("c", rate_per_second=1.0, burst=1)).allowed  # prunes a, b
    assert (await limiter.acquire("a", rate_per_second=1.0, burst=1)).allowed
