"""Admission control: a connection cap, a cap on handshakes in progress and a connect-rate
limit, shedding with jitter.

Shed clients get a retry hint with random jitter so that a storm of reconnects spreads out
instead of returning as one wave. The handshake cap keeps a storm from queueing thousands
of half-open streams behind each other: beyond it a client is told at once to come back,
rather than waiting seconds for a Welcome (or being cancelled by the gRPC core).
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
        max_handshakes: int,
        connects_per_second: float,
        shed_retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._max = max_connections
        self._max_handshakes = max_handshakes
        self._rate = connects_per_second
        self._burst = max(int(connects_per_second), 1)
        self._retry = shed_retry_seconds
        self._clock = clock
        self._jitter = jitter
        self._tat: float | None = None
        self.open_connections = 0
        self.handshakes = 0
        self.draining = False

    def _hint(self, base: float) -> float:
        return base * (1.0 + self._jitter())

    def admit(self) -> Admitted:
        """Counts a new connection (and its handshake) in, or raises Shed with a jittered
        retry hint."""
        if self.draining:
            raise Shed(
                "DRAINING", "this gateway is shutting down; reconnect", self._hint(self._retry)
            )
        if self.open_connections >= self._max:
            raise Shed(
                "OVERLOADED", "this gateway is at its connection limit", self._hint(self._retry)
            )
        if self.handshakes >= self._max_handshakes:
            raise Shed(
                "OVERLOADED",
                "too many connections are being set up right now",
                self._hint(self._retry),
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
        self.handshakes += 1
        return Admitted(self)


class Admitted:
    """One admitted connection. It holds a handshake slot until `welcomed` and its place
    under the connection cap until `release`; both are safe to call more than once."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._handshaking = True
        self._open = True

    def welcomed(self) -> None:
        """The handshake is over: its slot goes to the next connection."""
        if self._handshaking:
            self._handshaking = False
            self._admission.handshakes -= 1

    def release(self) -> None:
        """The connection has ended (its handshake too, if it never finished)."""
        self.welcomed()
        if self._open:
            self._open = False
            self._admission.open_connections -= 1
