"""Probing a region's gateways with the standard gRPC health protocol (grpc.health.v1),
and folding each result into ChatRegion `status.health`.

`since` moves only when the verdict flips: failover decisions are about how long a region
has been (un)healthy continuously, not about the last probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from chatconnect_operator.conditions import parse_timestamp, timestamp
from chatconnect_operator.spec import Health

MAX_MESSAGE = 1024
CHECK = "/grpc.health.v1.Health/Check"


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    message: str


async def probe(
    health: Health, *, root_certificates: bytes | None = None, service: str = ""
) -> ProbeResult:
    """One Check call against `health.endpoint`; SERVING is healthy, anything else
    (another status, an error, no answer within the timeout) is not. With TLS the
    server's certificate is verified against `root_certificates` (PEM), or the system's
    roots when None."""
    if health.tls:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        channel = grpc.aio.secure_channel(health.endpoint, credentials)
    else:
        channel = grpc.aio.insecure_channel(health.endpoint)
    try:
        # The method by path: the type stubs of grpc_health lack the stub's methods.
        check = channel.unary_unary(
            CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        response = await check(
            health_pb2.HealthCheckRequest(service=service), timeout=health.timeout_seconds
        )
    except grpc.aio.AioRpcError as error:
        return ProbeResult(False, f"{error.code().name}: {error.details() or 'no details'}")
    except (TimeoutError, OSError) as error:
        return ProbeResult(False, f"probe failed: {error!r}")
    finally:
        await channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return ProbeResult(response.status == health_pb2.HealthCheckResponse.SERVING, status)


def due(
    previous: Mapping[str, Any] | None, period_seconds: int, slack: float, now: datetime
) -> bool:
    """Whether a region should be probed now: its period has passed since the last probe
    (less `slack`, half a timer tick, so ticks that drift do not skip a whole period)."""
    last = parse_timestamp((previous or {}).get("lastProbeTime"))
    return last is None or (now - last).total_seconds() >= period_seconds - slack


def next_status(
    previous: Mapping[str, Any] | None, result: ProbeResult, now: datetime
) -> dict[str, Any]:
    """The new status.health after `result`: `since` kept while the verdict holds."""
    before = previous or {}
    since = before.get("since")
    if before.get("healthy") is not result.healthy or parse_timestamp(since) is None:
        since = timestamp(now, precise=True)
    return {
        "healthy": result.healthy,
        "since": since,
        "lastProbeTime": timestamp(now, precise=True),
        "message": result.message[:MAX_MESSAGE],
    }
