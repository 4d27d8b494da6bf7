"""Health probing with the real gRPC health protocol, and status.health bookkeeping."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from chatconnect_operator.health import ProbeResult, due, next_status, probe
from chatconnect_operator.spec import Health
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2

from tests.chatconnect_operator.healthservers import HealthServer

NOW = datetime(2030, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    running = await HealthServer().start()
    yield running
    await running.stop()


def plain(port: int, timeout: int = 2) -> Health:
    return Health(
        endpoint=f"127.0.0.1:{port}", tls=False, period_seconds=1, timeout_seconds=timeout
    )


async def test_serving_is_healthy(server: HealthServer) -> None:
    await server.set(health_pb2.HealthCheckResponse.SERVING)
    assert await probe(plain(server.port)) == ProbeResult(True, "SERVING")


@pytest.mark.parametrize(
    "status",
    [health_pb2.HealthCheckResponse.NOT_SERVING, health_pb2.HealthCheckResponse.UNKNOWN],
)
async def test_anything_but_serving_is_unhealthy(server: HealthServer, status: int) -> None:
    await server.set(status)
    result = await probe(plain(server.port))
    assert result.healthy is False
    assert result.message == health_pb2.HealthCheckResponse.ServingStatus.Name(status)


async def test_a_stopped_server_is_unhealthy() -> None:
    stopped = await HealthServer().start()
    await stopped.stop()
    result = await probe(plain(stopped.port))
    assert result.healthy is False
    assert result.message.startswith("UNAVAILABLE")


async def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    # A listening socket that never speaks HTTP/2: the probe must give up on its own.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = asyncio.get_running_loop().time()
        result = await probe(plain(port, timeout=1))
        elapsed = asyncio.get_running_loop().time() - started
    assert result.healthy is False
    assert result.message.startswith(("DEADLINE_EXCEEDED", "UNAVAILABLE"))
    assert elapsed < 3


def self_signed() -> tuple[bytes, bytes]:
    """A certificate for localhost and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


async def test_tls_probes_verify_the_server_certificate() -> None:
    certificate, key = self_signed()
    secure = await HealthServer(
        credentials=grpc.ssl_server_credentials([(key, certificate)])
    ).start()
    try:
        endpoint = Health(endpoint=f"localhost:{secure.port}", tls=True, timeout_seconds=2)
        trusted = await probe(endpoint, root_certificates=certificate)
        assert trusted == ProbeResult(True, "SERVING")
        # Unknown CA (the system roots): the handshake fails, so the region is unhealthy.
        assert (await probe(endpoint)).healthy is False
        # Plaintext against TLS fails too.
        assert (await probe(plain(secure.port))).healthy is False
    finally:
        await secure.stop()


@pytest.mark.parametrize(
    ("previous", "result", "since"),
    [
        (None, ProbeResult(True, "SERVING"), "2030-01-01T12:00:00.250Z"),
        (
            {"healthy": True, "since": "2029-12-31T00:00:00Z", "lastProbeTime": "x"},
            ProbeResult(True, "SERVING"),
            "2029-12-31T00:00:00Z",
        ),
        (
            {"healthy": True, "since": "2029-12-31T00:00:00Z"},
            ProbeResult(False, "NOT_SERVING"),
            "2030-01-01T12:00:00.250Z",
        ),
        (
            {"healthy": False, "since": "2029-12-31T00:00:00Z"},
            ProbeResult(False, "UNAVAILABLE: gone"),
            "2029-12-31T00:00:00Z",
        ),
        (
            {"healthy": False, "since": "garbage"},
            ProbeResult(False, "x"),
            "2030-01-01T12:00:00.250Z",
        ),
    ],
)
def test_since_moves_only_when_the_verdict_flips(
    previous: dict[str, object] | None, result: ProbeResult, since: str
) -> None:
    status = next_status(previous, result, NOW)
    assert status == {
        "healthy": result.healthy,
        "since": since,
        # milliseconds: windows measured from `since` must not lose up to a second
        "lastProbeTime": "2030-01-01T12:00:00.250Z",
        "message": result.message,
    }


def test_long_messages_are_cut() -> None:
    assert len(next_status(None, ProbeResult(False, "x" * 5000), NOW)["message"]) == 1024


@pytest.mark.parametrize(
    ("last", "period", "slack", "expected"),
    [
        (None, 10, 0.5, True),
        (NOW - timedelta(seconds=3), 10, 0.5, False),
        (NOW - timedelta(seconds=9.6), 10, 0.5, True),
        (NOW - timedelta(seconds=10), 10, 0, True),
        (NOW - timedelta(seconds=9.9), 10, 0, False),
    ],
)
def test_a_region_is_probed_once_per_period(
    last: datetime | None, period: int, slack: float, expected: bool
) -> None:
    previous = {"lastProbeTime": last.isoformat()} if last else None
    assert due(previous, period, slack, NOW) is expected
