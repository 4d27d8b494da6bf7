"""Admission control: connection cap, handshake cap, draining, connect-rate limit, jittered
retry hints."""

from __future__ import annotations

import pytest

from chatconnect.gateway.domain.admission import Admission
from chatconnect.gateway.domain.errors import Shed

BASE = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def admission(*, max_connections: int = 100, max_handshakes: int = 100, rate: float = 1000.0,
              jitter: float = 0.5, clock: Clock | None = None) -> Admission:
    return Admission(max_connections=max_connections, max_handshakes=max_handshakes,
                     connects_per_second=rate, shed_retry_seconds=BASE, clock=clock or Clock(),
                     jitter=lambda: jitter)


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.999999])
def test_refuses_beyond_max_connections_as_overloaded_with_a_jittered_hint(
    jitter: float,
) -> None:
    gate = admission(max_connections=3, jitter=jitter)
    for _ in range(3):
        gate.admit()
    assert gate.open_connections == 3
    with pytest.raises(Shed) as refused:
        gate.admit()
    assert refused.value.metadata["reason"] == "OVERLOADED"
    assert BASE <= refused.value.retry_after_seconds <= 2 * BASE
    assert refused.value.retry_after_seconds == pytest.approx(BASE * (1 + jitter))
    assert gate.open_connections == 3


def test_the_hint_spreads_with_the_jitter() -> None:
    hints = []
    for jitter in (0.0, 0.5, 0.9):
        gate = admission(max_connections=1, jitter=jitter)
        gate.admit()
        with pytest.raises(Shed) as refused:
            gate.admit()
        hints.append(refused.value.retry_after_seconds)
    assert hints == sorted(set(hints))


def test_release_makes_room() -> None:
    gate = admission(max_connections=2)
    first = gate.admit()
    gate.admit()
    with pytest.raises(Shed):
        gate.admit()
    first.release()
    first.release()  # a second release changes nothing
    assert gate.open_connections == 1
    gate.admit()
    assert gate.open_connections == 2
    with pytest.raises(Shed):
        gate.admit()


def test_draining_refuses_with_draining_even_with_room() -> None:
    gate = admission(max_connections=10, jitter=0.3)
    gate.admit()
    gate.draining = True
    with pytest.raises(Shed) as refused:
        gate.admit()
    assert refused.value.metadata["reason"] == "DRAINING"
    assert BASE <= refused.value.retry_after_seconds <= 2 * BASE
    assert gate.open_connections == 1


def test_connect_rate_limit_refuses_the_burst_plus_first_connection_at_one_instant() -> None:
    clock = Clock()
    gate = admission(rate=4.0, clock=clock, jitter=0.1)  # burst = 4, interval 0.25 s
    for _ in range(4):
        gate.admit()
    with pytest.raises(Shed) as refused:
        gate.admit()
    assert refused.value.metadata["reason"] == "OVERLOADED"
    assert BASE <= refused.value.retry_after_seconds <= 2 * BASE
    assert gate.open_connections == 4  # a refused connection is not counted
    clock.now += 0.25
    gate.admit()
    with pytest.raises(Shed):
        gate.admit()
    assert gate.open_connections == 5


def test_a_slow_connect_rate_hints_at_least_its_own_wait() -> None:
    clock = Clock()
    gate = admission(rate=0.1, clock=clock, jitter=0.0)  # burst 1, one per 10 s
    gate.admit()
    with pytest.raises(Shed) as refused:
        gate.admit()
    assert refused.value.metadata["reason"] == "OVERLOADED"
    assert refused.value.retry_after_seconds == pytest.approx(10.0)
    clock.now += 10.0
    gate.admit()


@pytest.mark.parametrize("cap", ["max_connections", "max_handshakes"])
def test_a_shed_at_a_cap_does_not_use_up_the_connect_rate(cap: str) -> None:
    gate = admission(**{cap: 1}, rate=2.0)  # burst 2
    only = gate.admit()
    for _ in range(5):
        with pytest.raises(Shed):
            gate.admit()
    only.release()  # frees the connection and, with it, its handshake slot
    gate.admit()  # the second token of the burst is still there


def test_refuses_beyond_max_handshakes_until_one_is_welcomed() -> None:
    gate = admission(max_handshakes=2, jitter=0.25)
    first, _second = gate.admit(), gate.admit()
    with pytest.raises(Shed) as refused:
        gate.admit()
    assert refused.value.metadata["reason"] == "OVERLOADED"
    assert refused.value.retry_after_seconds == pytest.approx(BASE * 1.25)
    assert (gate.open_connections, gate.handshakes) == (2, 2)
    first.welcomed()
    first.welcomed()  # welcomed twice frees one slot, not two
    assert (gate.open_connections, gate.handshakes) == (2, 1)
    gate.admit()
    with pytest.raises(Shed):
        gate.admit()


def test_a_connection_ending_mid_handshake_frees_its_handshake_slot() -> None:
    gate = admission(max_handshakes=1)
    abandoned = gate.admit()
    abandoned.release()
    assert (gate.open_connections, gate.handshakes) == (0, 0)
    welcomed = gate.admit()
    welcomed.welcomed()
    welcomed.release()
    assert (gate.open_connections, gate.handshakes) == (0, 0)
