"""Parsing ChatCluster and ChatRegion specs: the doc's defaults, and errors naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chatconnect_operator.spec import (
    GATEWAY_DEFAULTS,
    TURN_DEFAULTS,
    default_resources,
    parse_cluster,
    parse_region,
)
from chatconnect_operator.specfields import SpecError

CLUSTER: dict[str, Any] = {
    "version": "1.4.2",
    "stores": [
        {
            "region": "eu",
            "scylla": {"contactPoints": ["scylla-0.eu"], "localDatacenter": "eu"},
            "redis": {"url": "redis://redis.eu:6379/0"},
        }
    ],
}
REGION: dict[str, Any] = {"cluster": "chat", "health": {"endpoint": "gw.eu.example.org:443"}}


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `base` with `value` at the dotted `path` (`stores.0.region`); a value of
    `...` deletes the key."""
    result = copy.deepcopy(base)
    node: Any = result
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return result


def test_cluster_defaults() -> None:
    spec = parse_cluster(CLUSTER)
    assert (spec.image, spec.image_pull_policy, spec.shards) == (
        "ghcr.io/chatconnect/chatconnect",
        "IfNotPresent",
        1024,
    )
    assert spec.failover.mode == "Automatic"
    assert spec.failover.detection_window_seconds == 60
    assert spec.failover.failback == "Manual"
    assert spec.failover.failback_stable_seconds == 300
    store = spec.stores_of("eu")
    assert store is not None
    assert (store.scylla.port, store.scylla.keyspace, store.scylla.credentials_secret) == (
        9042,
        "chatconnect",
        None,
    )
    assert store.redis.password_secret is None
    assert spec.regions == ("eu",)
    assert spec.stores_of("us") is None


def test_region_defaults() -> None:
    spec = parse_region(REGION, name="eu")
    assert (spec.failover_region, spec.drain) == (None, False)
    assert spec.gateway.autoscaling == GATEWAY_DEFAULTS
    assert (GATEWAY_DEFAULTS.min_replicas, GATEWAY_DEFAULTS.max_replicas) == (2, 20)
    assert GATEWAY_DEFAULTS.target_per_pod == 50_000
    assert (GATEWAY_DEFAULTS.tolerance, GATEWAY_DEFAULTS.max_step) == (0.1, 4)
    assert (
        GATEWAY_DEFAULTS.scale_up_cooldown_seconds,
        GATEWAY_DEFAULTS.scale_down_cooldown_seconds,
    ) == (60, 300)
    assert spec.turn.autoscaling == TURN_DEFAULTS
    assert (
        TURN_DEFAULTS.min_replicas,
        TURN_DEFAULTS.max_replicas,
        TURN_DEFAULTS.target_per_pod,
    ) == (1, 10, 500)
    assert TURN_DEFAULTS.max_step == 2
    assert (spec.turn.enabled, spec.turn.image, spec.turn.external_addresses) == (
        True,
        "coturn/coturn:4.6.3",
        (),
    )
    assert (spec.health.tls, spec.health.period_seconds, spec.health.timeout_seconds) == (
        True,
        10,
        2,
    )
    assert set(spec.services) == {"router", "users", "devices", "keys"}
    assert all(service.replicas == 2 for service in spec.services.values())
    assert spec.gateway.resources == default_resources()
    assert spec.gateway.resources == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_values_given_are_taken() -> None:
    region = with_(
        REGION,
        "gateway",
        {"minReplicas": 3, "maxReplicas": 3, "tolerance": 0, "resources": {"limits": {"cpu": 2}}},
    )
    region = with_(region, "services.router.replicas", 7)
    region = with_(region, "turn.externalAddresses", ["203.0.113.7", "2001:db8::1"])
    spec = parse_region(region, name="eu")
    assert (spec.gateway.autoscaling.min_replicas, spec.gateway.autoscaling.max_replicas) == (3, 3)
    assert spec.gateway.autoscaling.tolerance == 0.0
    assert spec.gateway.resources == {"limits": {"cpu": 2}}
    assert spec.services["router"].replicas == 7
    assert spec.services["users"].replicas == 2
    assert spec.turn.external_addresses == ("203.0.113.7", "2001:db8::1")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("version", ..., "spec.version"),
        ("version", "latest", "spec.version"),
        ("version", "1.2", "spec.version"),
        ("shards", 0, "spec.shards"),
        ("shards", 65537, "spec.shards"),
        ("shards", "1024", "spec.shards"),
        ("imagePullPolicy", "Sometimes", "spec.imagePullPolicy"),
        ("stores", [], "spec.stores"),
        ("stores.0.region", "EU", "spec.stores[0].region"),
        ("stores.0.scylla.contactPoints", [], "spec.stores[0].scylla.contactPoints"),
        ("stores.0.scylla.localDatacenter", ..., "spec.stores[0].scylla.localDatacenter"),
        ("stores.0.scylla.port", 70000, "spec.stores[0].scylla.port"),
        ("stores.0.redis.url", "http://redis", "spec.stores[0].redis.url"),
        ("stores.0.redis.url", "redis://:hunter2@redis:6379/0", "spec.stores[0].redis.url"),
        ("stores.0.redis", ..., "spec.stores[0].redis.url"),
        ("failover.mode", "Sometimes", "spec.failover.mode"),
        ("failover.detectionWindowSeconds", 5, "spec.failover.detectionWindowSeconds"),
        ("failover.failbackStableSeconds", -1, "spec.failover.failbackStableSeconds"),
        ("failover.failback", True, "spec.failover.failback"),
    ],
)
def test_bad_cluster_specs_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_cluster(with_(CLUSTER, path, value))
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_a_region_listed_twice_is_refused() -> None:
    spec = copy.deepcopy(CLUSTER)
    spec["stores"].append(copy.deepcopy(spec["stores"][0]))
    with pytest.raises(SpecError, match=r"spec.stores\[1\].region: region 'eu' is listed twice"):
        parse_cluster(spec)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("cluster", ..., "spec.cluster"),
        ("health", ..., "spec.health.endpoint"),
        ("health.endpoint", "no-port", "spec.health.endpoint"),
        ("health.endpoint", "host:70000", "spec.health.endpoint"),
        ("health.periodSeconds", 0, "spec.health.periodSeconds"),
        ("health.timeoutSeconds", 61, "spec.health.timeoutSeconds"),
        ("health.tls", "yes", "spec.health.tls"),
        ("failoverRegion", "eu", "spec.failoverRegion"),
        ("drain", "true", "spec.drain"),
        ("gateway.minReplicas", 0, "spec.gateway.minReplicas"),
        ("gateway.maxReplicas", 1, "spec.gateway.maxReplicas"),  # below the default min 2
        ("gateway.tolerance", 0.6, "spec.gateway.tolerance"),
        ("gateway.maxStep", 0, "spec.gateway.maxStep"),
        ("gateway.targetConnectionsPerPod", 0, "spec.gateway.targetConnectionsPerPod"),
        ("gateway.scaleUpCooldownSeconds", -1, "spec.gateway.scaleUpCooldownSeconds"),
        ("gateway.resources", {"limits": {"cpu": True}}, "spec.gateway.resources.limits"),
        ("services.router.replicas", 101, "spec.services.router.replicas"),
        ("services.keys", "two", "spec.services.keys"),
        ("turn.targetAllocationsPerPod", 0, "spec.turn.targetAllocationsPerPod"),
        ("turn.externalAddresses", ["relay.example.org"], "spec.turn.externalAddresses"),
        ("turn.enabled", 1, "spec.turn.enabled"),
    ],
)
def test_bad_region_specs_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_region(with_(REGION, path, value), name="eu")
    assert raised.value.field == field


@pytest.mark.parametrize("raw", [None, "spec", ["a"]])
def test_a_spec_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(SpecError):
        parse_cluster(raw)
    with pytest.raises(SpecError):
        parse_region(raw, name="eu")
