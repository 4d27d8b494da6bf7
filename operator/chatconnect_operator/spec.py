"""Typed, validated views of the ChatCluster and ChatRegion specs (docs/kubernetes.md).

The CRD schema already validates and defaults on the API server; this module checks again
and applies the same defaults so the operator never trusts a dict shape (an object
written before a CRD upgrade, or a CRD installed without defaults, still parses or fails
with a message that names the field). A bad spec raises `SpecError`, which the handlers
turn into `kopf.PermanentError`: retrying cannot fix it, only a new spec can.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chatconnect_operator.specfields import Fields, SpecError

DEFAULT_IMAGE = "ghcr.io/chatconnect/chatconnect"
DEFAULT_TURN_IMAGE = "coturn/coturn:4.6.3"
SERVICES = ("router", "users", "devices", "keys")
"""The fixed-size services of a region (the gateway and TURN are autoscaled)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):(\d{1,5})$")
_REDIS_URL = re.compile(r"^rediss?://")


def default_resources() -> dict[str, dict[str, str]]:
    """The doc's default ResourceRequirements (a fresh dict: callers may keep it)."""
    return {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


@dataclass(frozen=True)
class ScyllaStore:
    contact_points: tuple[str, ...]
    local_datacenter: str
    port: int = 9042
    keyspace: str = "chatconnect"
    credentials_secret: str | None = None


@dataclass(frozen=True)
class RedisStore:
    url: str
    password_secret: str | None = None


@dataclass(frozen=True)
class Stores:
    """The store endpoints of one region."""

    region: str
    scylla: ScyllaStore
    redis: RedisStore


@dataclass(frozen=True)
class FailoverPolicy:
    mode: Literal["Automatic", "Manual"] = "Automatic"
    detection_window_seconds: int = 60
    failback: Literal["Automatic", "Manual"] = "Manual"
    failback_stable_seconds: int = 300


@dataclass(frozen=True)
class ChatClusterSpec:
    version: str
    stores: tuple[Stores, ...]
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    shards: int = 1024
    failover: FailoverPolicy = FailoverPolicy()

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions of the cluster (those with stores), sorted."""
        return tuple(sorted(store.region for store in self.stores))

    def stores_of(self, region: str) -> Stores | None:
        return next((store for store in self.stores if store.region == region), None)


@dataclass(frozen=True)
class Autoscaling:
    """The autoscaling policy of one component (gateway or TURN)."""

    min_replicas: int
    max_replicas: int
    target_per_pod: int
    tolerance: float
    max_step: int
    scale_up_cooldown_seconds: int
    scale_down_cooldown_seconds: int


@dataclass(frozen=True)
class Gateway:
    autoscaling: Autoscaling
    resources: Mapping[str, Any]


@dataclass(frozen=True)
class Service:
    replicas: int
    resources: Mapping[str, Any]


@dataclass(frozen=True)
class Turn:
    enabled: bool
    image: str
    autoscaling: Autoscaling
    external_addresses: tuple[str, ...]
    resources: Mapping[str, Any]


@dataclass(frozen=True)
class Health:
    endpoint: str
    tls: bool = True
    period_seconds: int = 10
    timeout_seconds: int = 2


@dataclass(frozen=True)
class ChatRegionSpec:
    cluster: str
    health: Health
    gateway: Gateway
    services: Mapping[str, Service]
    turn: Turn
    failover_region: str | None = None
    drain: bool = False


def _scylla(fields: Fields) -> ScyllaStore:
    return ScyllaStore(
        contact_points=fields.strings("contactPoints", min_items=1),
        local_datacenter=fields.string("localDatacenter"),
        port=fields.integer("port", 9042, 1, 65535),
        keyspace=fields.string("keyspace", "chatconnect"),
        credentials_secret=fields.optional_string("credentialsSecret"),
    )


def _redis(fields: Fields) -> RedisStore:
    url = fields.string("url", pattern=_REDIS_URL)
    # The password belongs in a Secret: a custom resource is readable by anyone who can
    # list them, and the URL is copied into a ConfigMap.
    if re.match(r"^rediss?://[^/@]*:[^/@]+@", url):
        raise SpecError(fields.at("url"), "must not contain a password; use redis.passwordSecret")
    return RedisStore(url=url, password_secret=fields.optional_string("passwordSecret"))


def _automatic_or_manual(
    fields: Fields, key: str, default: Literal["Automatic", "Manual"]
) -> Literal["Automatic", "Manual"]:
    return (
        "Automatic"
        if fields.choice(key, default, ("Automatic", "Manual")) == "Automatic"
        else "Manual"
    )


def parse_cluster(raw: Any) -> ChatClusterSpec:
    """The ChatCluster spec with the doc's defaults; SpecError names a bad field."""
    spec = Fields("spec", raw)
    stores_raw = spec.raw.get("stores")
    if not isinstance(stores_raw, list) or not stores_raw:
        raise SpecError("spec.stores", "is required and needs at least one region")
    stores: list[Stores] = []
    for index, item in enumerate(stores_raw):
        entry = Fields(f"spec.stores[{index}]", item)
        region = entry.string("region", pattern=_DNS_LABEL)
        if any(store.region == region for store in stores):
            raise SpecError(entry.at("region"), f"region {region!r} is listed twice")
        stores.append(
            Stores(
                region=region,
                scylla=_scylla(entry.child("scylla")),
                redis=_redis(entry.child("redis")),
            )
        )
    failover = spec.child("failover")
    return ChatClusterSpec(
        version=spec.string("version", pattern=_SEMVER),
        stores=tuple(stores),
        image=spec.string("image", DEFAULT_IMAGE),
        image_pull_policy=spec.choice(
            "imagePullPolicy", "IfNotPresent", ("IfNotPresent", "Always", "Never")
        ),
        shards=spec.integer("shards", 1024, 1, 65536),
        failover=FailoverPolicy(
            mode=_automatic_or_manual(failover, "mode", "Automatic"),
            detection_window_seconds=failover.integer("detectionWindowSeconds", 60, 10, 3600),
            failback=_automatic_or_manual(failover, "failback", "Manual"),
            failback_stable_seconds=failover.integer("failbackStableSeconds", 300, 0, 86400),
        ),
    )


def _autoscaling(fields: Fields, target_key: str, defaults: Autoscaling) -> Autoscaling:
    low = fields.integer("minReplicas", defaults.min_replicas, 1)
    high = fields.integer("maxReplicas", defaults.max_replicas, 1)
    if high < low:
        raise SpecError(
            fields.at("maxReplicas"), f"must be at least minReplicas ({low}), got {high}"
        )
    return Autoscaling(
        min_replicas=low,
        max_replicas=high,
        target_per_pod=fields.integer(target_key, defaults.target_per_pod, 1),
        tolerance=fields.number("tolerance", defaults.tolerance, 0.0, 0.5),
        max_step=fields.integer("maxStep", defaults.max_step, 1),
        scale_up_cooldown_seconds=fields.integer(
            "scaleUpCooldownSeconds", defaults.scale_up_cooldown_seconds, 0
        ),
        scale_down_cooldown_seconds=fields.integer(
            "scaleDownCooldownSeconds", defaults.scale_down_cooldown_seconds, 0
        ),
    )


GATEWAY_DEFAULTS = Autoscaling(2, 20, 50_000, 0.1, 4, 60, 300)
TURN_DEFAULTS = Autoscaling(1, 10, 500, 0.1, 2, 60, 300)


def parse_region(raw: Any, *, name: str) -> ChatRegionSpec:
    """The ChatRegion spec of region `name` with the doc's defaults; SpecError names a bad field."""
    spec = Fields("spec", raw)
    failover_region = spec.optional_string("failoverRegion")
    if failover_region is not None and failover_region == name:
        raise SpecError("spec.failoverRegion", "a region cannot fail over to itself")
    health = spec.child("health")
    endpoint = health.string("endpoint", pattern=_HOST_PORT)
    if not 1 <= int(endpoint.rsplit(":", 1)[1]) <= 65535:
        raise SpecError(health.at("endpoint"), f"port of {endpoint!r} must be from 1 to 65535")
    gateway = spec.child("gateway")
    services = spec.child("services")
    turn = spec.child("turn")
    addresses = turn.strings("externalAddresses")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SpecError(
                turn.at("externalAddresses"), f"{address!r} is not an IP address"
            ) from None
    return ChatRegionSpec(
        cluster=spec.string("cluster", pattern=_DNS_LABEL),
        failover_region=failover_region,
        drain=spec.boolean("drain", False),
        health=Health(
            endpoint=endpoint,
            tls=health.boolean("tls", True),
            period_seconds=health.integer("periodSeconds", 10, 1, 300),
            timeout_seconds=health.integer("timeoutSeconds", 2, 1, 60),
        ),
        gateway=Gateway(
            autoscaling=_autoscaling(gateway, "targetConnectionsPerPod", GATEWAY_DEFAULTS),
            resources=gateway.resources("resources", default_resources),
        ),
        services={
            component: Service(
                replicas=services.child(component).integer("replicas", 2, 1, 100),
                resources=services.child(component).resources("resources", default_resources),
            )
            for component in SERVICES
        },
        turn=Turn(
            enabled=turn.boolean("enabled", True),
            image=turn.string("image", DEFAULT_TURN_IMAGE),
            autoscaling=_autoscaling(turn, "targetAllocationsPerPod", TURN_DEFAULTS),
            external_addresses=addresses,
            # The contract has no spec.turn.resources: relays get the gateway's default.
            resources=default_resources(),
        ),
    )
