"""The operator's own settings, from CHATCONNECT_OPERATOR_* environment variables.

Read once when the handlers are imported (kopf needs timer intervals at registration), so
a test sets them in the environment of the KopfRunner that imports the operator.

CHATCONNECT_OPERATOR_HEALTH_INTERVAL (5): seconds between ticks of the region health
    timer; a region is probed on the first tick after its spec.health.periodSeconds.
CHATCONNECT_OPERATOR_AUTOSCALE_INTERVAL (15): seconds between autoscaling decisions.
CHATCONNECT_OPERATOR_FAILOVER_INTERVAL (5): seconds between failover and shard-map passes
    of a cluster.
CHATCONNECT_OPERATOR_LOAD_HEARTBEAT_SECONDS (10): the gateways' report period (their
    server.route_heartbeat_seconds); a report older than three of them is stale.
CHATCONNECT_OPERATOR_RETRY_DELAY (10): seconds before a handler that waits (for its
    ChatCluster, say) tries again.
CHATCONNECT_OPERATOR_HEALTH_CA_FILE (unset): PEM bundle that verifies the TLS health
    endpoints (a private CA); unset, the system's roots.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "CHATCONNECT_OPERATOR_"
STALE_HEARTBEATS = 3
"""A load report missing this many heartbeats belongs to a dead or stuck process."""


class OperatorSettingsError(ValueError):
    """An operator setting is not a positive number; names the variable."""


@dataclass(frozen=True)
class OperatorSettings:
    health_interval: float = 5.0
    autoscale_interval: float = 15.0
    failover_interval: float = 5.0
    load_heartbeat_seconds: float = 10.0
    retry_delay: float = 10.0
    health_ca_file: Path | None = None

    @property
    def load_max_age_ms(self) -> int:
        """How old a load report may be and still count."""
        return int(STALE_HEARTBEATS * self.load_heartbeat_seconds * 1000)


NUMBERS = (
    "health_interval",
    "autoscale_interval",
    "failover_interval",
    "load_heartbeat_seconds",
    "retry_delay",
)


def load(environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """The settings from `environ` (default os.environ), defaults for what is unset."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    ca_file = env.get(PREFIX + "HEALTH_CA_FILE")
    if ca_file:
        values["health_ca_file"] = Path(ca_file)
    for name in NUMBERS:
        variable = PREFIX + name.upper()
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            raise OperatorSettingsError(f"{variable} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise OperatorSettingsError(f"{variable} must be greater than 0, got {raw!r}")
        values[name] = value
    return OperatorSettings(**values)
