"""What `make bench` runs: the scenarios, their parameters, and which server runs which."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    """The generator's -scenario."""
    args: tuple[str, ...]
    """Its parameters, as generator flags."""
    needs_groups: bool = False
    """Group fan-out: ChatConnect only (ejabberd's MUC is not a like-for-like group)."""


PROFILES: dict[str, tuple[Scenario, ...]] = {
    # The published numbers: docs/benchmarks.md.
    "full": (
        Scenario(
            "chat",
            (
                "-users",
                "200",
                "-duration",
                "15s",
                "-window",
                "4",
                "-rates",
                "0",
                "-loads",
                "0.1,0.3,0.5,0.7,0.9",
            ),
        ),
        Scenario(
            "group",
            (
                "-members",
                "1000",
                "-online",
                "0.5",
                "-senders",
                "2",
                "-rate",
                "2",
                "-duration",
                "15s",
            ),
            needs_groups=True,
        ),
        Scenario("storm", ("-per-second", "300", "-duration", "10s", "-hold", "10s")),
        Scenario("drain", ("-backlog", "10000", "-senders", "20")),
        Scenario("idle", ("-connections", "10000", "-hold", "30s")),
    ),
    # A few minutes end to end: to check the harness, not to publish.
    "quick": (
        Scenario("chat", ("-users", "40", "-duration", "4s", "-rates", "0", "-loads", "0.5")),
        Scenario(
            "group",
            ("-members", "200", "-online", "0.5", "-senders", "1", "-rate", "2", "-duration", "4s"),
            needs_groups=True,
        ),
        Scenario("storm", ("-per-second", "100", "-duration", "3s", "-hold", "2s")),
        Scenario("drain", ("-backlog", "1000", "-senders", "5")),
        Scenario("idle", ("-connections", "500", "-hold", "3s", "-sample-every", "250")),
    ),
}

TARGETS = ("chatconnect-embedded", "chatconnect-scylla", "ejabberd")
GROUP_TARGETS = ("chatconnect-embedded", "chatconnect-scylla")
