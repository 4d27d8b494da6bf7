"""Admission control: a connection cap and a connect-rate limit, shedding with jitter.

Shed clients get a retry hint with random jitter so that a storm of reconnects spreads out
instead of returning as one wave.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from chatconnect.bus.gcra import gcra
from chatconnect.gateway.domain.errors import Shed


class Admission:
    """Decides whether a new connection may open."""

    def __init__(
        self,
        *,
        max_connections: int,
        connects_per_second: float,
        shed_retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._max = max_connections
        self._rate = connects_per_second
        self._burst = max(int(connects_per_second), 1)
        self._retry = shed_retry_seconds
        self._clock = clock
        self._jitter = jitter
        self._tat: float | None = None
        self.open_connections = 0
        self.draining = False

    def _hint(self, base: float) -> float:
        return base * (1.0 + self._jitter())

    def admit(self) -> None:
        """Counts a new connection in, or raises Shed with a jittered retry hint."""
        if self.draining:
            raise Shed(
                "DRAINING", "this gateway is shutting down; reconnect", self._hint(self._retry)
            )
        if self.open_connections >= self._max:
            raise Shed(
                "OVERLOADED", "this gateway is at its connection limit", self._hint(self._retry)
            )
        decision = gcra(self._tat, self._clock(), rate=self._rate, burst=self._burst)
        if not decision.allowed:
            raise Shed(
                "OVERLOADED",
                "too many new connections right now",
                self._hint(max(decision.retry_after, self._retry)),
            )
        self._tat = decision.new_tat
        self.open_connections += 1

    def release(self) -> None:
        """Counts a connection out."""
        self.open_connections -= 1
