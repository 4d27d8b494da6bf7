"""Settings of the ScyllaDB store (section [scylla]), used when server.store=scylla."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


def _replication(value: str) -> str | None:
    try:
        parse_replication(value)
    except ValueError as exc:
        return str(exc)
    return None


def parse_replication(value: str) -> dict[str, int]:
    """'dc1:3,dc2:3' as {'dc1': 3, 'dc2': 3}: replicas per datacenter (one per region)."""
    out: dict[str, int] = {}
    for part in value.split(","):
        name, sep, count = part.strip().partition(":")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"{part.strip()!r} is not datacenter:replicas (for example datacenter1:3)"
            )
        out[name] = int(count)
    return out


@dataclass(frozen=True)
class ScyllaConfig:
    """Where durable state lives in distributed mode: ScyllaDB (or Cassandra), CQL v4."""

    contact_points: str = setting(
        "127.0.0.1", "comma-separated hosts of the cluster the driver first contacts"
    )
    port: int = setting(9042, "CQL native transport port", check=positive)
    local_dc: str = setting(
        "datacenter1",
        "this region's datacenter; requests go to its replicas at LOCAL_QUORUM",
    )
    keyspace: str = setting("chatconnect", "keyspace holding every table")
    replication: str = setting(
        "datacenter1:3",
        "replicas per datacenter for NetworkTopologyStrategy, e.g. eu:3,us:3 "
        "(used when `chatconnect migrate` creates the keyspace)",
        check=_replication,
    )
    username: str = setting("", "user for password authentication; empty disables it")
    password: str = setting(
        "", "password for `username` (prefer CHATCONNECT_SCYLLA__PASSWORD; never logged)"
    )
    max_in_flight: int = setting(
        512, "most concurrent requests this process sends to the cluster", check=positive
    )
    connect_timeout_seconds: float = setting(
        10.0, "how long start-up waits for the cluster", check=positive
    )
    gap_grace_seconds: int = setting(
        30 * 24 * 3600,
        "how long an expired envelope is kept (beyond router.retention_seconds) so a device "
        "that comes back is told about it with an InboxGap",
        check=positive,
    )
    sequence_block: int = setting(
        1000,
        "inbox sequences reserved durably at a time; Redis hands them out one by one",
        check=positive,
    )
