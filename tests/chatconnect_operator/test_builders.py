"""The builders: names, labels, owner references, pod hardening, replicas, settings file."""

from __future__ import annotations

import base64
import copy
import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from chatconnect_operator import builders, cluster_builders, keys, podconfig
from chatconnect_operator.naming import Owner
from chatconnect_operator.spec import parse_cluster, parse_region

from chatconnect.runtime.auth import load_or_create_signing_key
from chatconnect.runtime.settings import load_settings
from chatconnect.sharding.shardmap import ShardMap

CLUSTER_SPEC: dict[str, Any] = {
    "version": "1.4.2",
    "image": "registry.example.org/chatconnect",
    "imagePullPolicy": "Always",
    "stores": [
        {
            "region": "eu",
            "scylla": {
                "contactPoints": ["scylla-0.eu", "scylla-1.eu"],
                "port": 19042,
                "localDatacenter": "eu-west",
                "keyspace": "chat_prod",
            },
            "redis": {"url": "rediss://redis.eu:6380/2"},
        }
    ],
}
REGION_SPEC: dict[str, Any] = {
    "cluster": "chat",
    "health": {"endpoint": "gw.eu:443"},
    "gateway": {"minReplicas": 3, "maxReplicas": 9},
    "services": {"router": {"replicas": 5, "resources": {"limits": {"memory": "2Gi"}}}},
}
OWNER = Owner("chatconnect.io/v1alpha1", "ChatRegion", "eu", "uid-eu")
LABELS = {
    "app.kubernetes.io/name": "chatconnect",
    "app.kubernetes.io/instance": "chat",
    "chatconnect.io/region": "eu",
    "app.kubernetes.io/managed-by": "chatconnect-operator",
}


def region(
    cluster: dict[str, Any] | None = None, spec: dict[str, Any] | None = None, **status: Any
) -> builders.Region:
    cluster_spec = parse_cluster(cluster or CLUSTER_SPEC)
    stores = cluster_spec.stores_of("eu")
    assert stores is not None
    return builders.Region(
        namespace="prod",
        cluster_name="chat",
        cluster=cluster_spec,
        name="eu",
        spec=parse_region(spec or REGION_SPEC, name="eu"),
        stores=stores,
        owner=OWNER,
        **status,
    )


def by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def with_turn(enabled: bool) -> dict[str, Any]:
    spec = copy.deepcopy(REGION_SPEC)
    spec["turn"] = {"enabled": enabled}
    return spec


@pytest.mark.parametrize(
    ("turn", "components"),
    [
        (True, ["gateway", "router", "users", "devices", "keys", "turn"]),
        (False, ["gateway", "router", "users", "devices", "keys"]),
    ],
)
def test_every_object_of_a_region_is_named_labelled_and_owned(
    turn: bool, components: list[str]
) -> None:
    objects = builders.region_objects(region(spec=with_turn(turn)))
    expected = {("ConfigMap", "chat-eu-config")}
    for component in components:
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            expected.add((kind, f"chat-eu-{component}"))
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == expected
    assert objects[0]["kind"] == "ConfigMap"  # the pods' settings first
    for obj in objects:
        meta = obj["metadata"]
        component = meta["name"].removeprefix("chat-eu-")
        assert meta["namespace"] == "prod"
        assert meta["labels"] == {**LABELS, "app.kubernetes.io/component": component}
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "chatconnect.io/v1alpha1",
                "kind": "ChatRegion",
                "name": "eu",
                "uid": "uid-eu",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    retired = builders.retired_objects(region(spec=with_turn(turn)))
    assert retired == (
        []
        if turn
        else [
            ("Deployment", "chat-eu-turn"),
            ("Service", "chat-eu-turn"),
            ("PodDisruptionBudget", "chat-eu-turn"),
        ]
    )


@pytest.mark.parametrize("component", ["gateway", "router", "users", "devices", "keys"])
def test_chatconnect_deployments(component: str) -> None:
    deployment = builders.deployment(region(), component)
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == component
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example.org/chatconnect:1.4.2"
    assert container["imagePullPolicy"] == "Always"
    assert [*container["command"], *container["args"]][:3] == ["chatconnect", "serve", component]
    assert container["args"][-2:] == ["--config", "/etc/chatconnect/config/chatconnect.toml"]
    assert container["ports"] == [{"name": "grpc", "containerPort": 7600, "protocol": "TCP"}]
    assert container["readinessProbe"]["grpc"] == {"port": 7600}
    assert container["livenessProbe"]["grpc"] == {"port": 7600}
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["shard-map"] == "/etc/chatconnect/shard-map"
    assert mounts["data"] == "/var/lib/chatconnect"
    assert mounts["token-signing-key"] == "/etc/chatconnect/secrets"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["shard-map"]["configMap"]["name"] == "chat-shard-map"
    assert volumes["config"]["configMap"]["name"] == "chat-eu-config"
    assert volumes["token-signing-key"]["secret"]["secretName"] == "chat-token-signing-key"
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    instance = next(e for e in container["env"] if e["name"] == "CHATCONNECT_SERVER__INSTANCE_ID")
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize(
    ("component", "replicas", "resources"),
    [
        ("router", 5, {"limits": {"memory": "2Gi"}}),
        ("users", 2, {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}),
    ],
)
def test_services_take_replicas_and_resources_from_the_spec(
    component: str, replicas: int, resources: dict[str, Any]
) -> None:
    deployment = builders.deployment(region(gateway_replicas=7), component)
    assert deployment["spec"]["replicas"] == replicas
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == resources


@pytest.mark.parametrize(
    ("status", "replicas"),
    [(None, 3), (5, 5), (1, 3), (40, 9), (9, 9)],  # bounds 3..9 from the spec
)
def test_gateway_replicas_come_from_the_autoscaler_clamped_to_the_spec(
    status: int | None, replicas: int
) -> None:
    assert (
        builders.deployment(region(gateway_replicas=status), "gateway")["spec"]["replicas"]
        == replicas
    )


@pytest.mark.parametrize(("status", "replicas"), [(None, 1), (4, 4), (11, 10)])
def test_turn_replicas_come_from_the_autoscaler_clamped(status: int | None, replicas: int) -> None:
    spec = with_turn(True)
    spec["turn"]["externalAddresses"] = ["203.0.113.9"]
    turn = builders.deployment(region(spec=spec, turn_replicas=status), "turn")
    assert turn["spec"]["replicas"] == replicas
    (container,) = turn["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "coturn/coturn:4.6.3"
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {
        (3478, "UDP"),
        (3478, "TCP"),
    }
    assert "--external-ip=203.0.113.9" in container["args"]
    assert "--use-auth-secret" in container["args"]


@pytest.mark.parametrize(
    ("cooldown", "lifetime", "secret"), [(300, 300, None), (3600, 600, "redis-pw"), (5, 60, None)]
)
def test_relays_report_allocations_to_the_regions_redis(
    cooldown: int, lifetime: int, secret: str | None
) -> None:
    cluster = copy.deepcopy(CLUSTER_SPEC)
    if secret:
        cluster["stores"][0]["redis"]["passwordSecret"] = secret
    spec = with_turn(True)
    spec["turn"]["scaleDownCooldownSeconds"] = cooldown
    turn = builders.deployment(region(cluster=cluster, spec=spec), "turn")
    (container,) = turn["spec"]["template"]["spec"]["containers"]
    statsdb = "--redis-statsdb=ip=redis.eu port=6380 dbname=1"
    statsdb += " password=$(TURN_REDIS_PASSWORD)" if secret else ""
    assert statsdb + " connect_timeout=30" in container["args"]
    # Allocations live no longer than the scale-down cooldown (at least a minute).
    assert f"--max-allocate-lifetime={lifetime}" in container["args"]
    password = [e for e in container["env"] if e["name"] == "TURN_REDIS_PASSWORD"]
    if secret:
        assert password[0]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "password"}
    else:
        assert password == []
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    secret = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "chat-turn-secret", "key": "static-auth-secret"}


@pytest.mark.parametrize(
    ("component", "ports"),
    [
        ("gateway", {(7600, "TCP")}),
        ("keys", {(7600, "TCP")}),
        ("turn", {(3478, "UDP"), (3478, "TCP")}),
    ],
)
def test_services_and_budgets(component: str, ports: set[tuple[int, str]]) -> None:
    model = region(spec=with_turn(True))
    service = builders.service(model, component)
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == ports
    selector = builders.deployment(model, component)["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    budget = builders.disruption_budget(model, component)
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}


def test_the_settings_file_is_what_chatconnect_itself_loads(tmp_path: Path) -> None:
    text = builders.region_config_map(region())["data"]["chatconnect.toml"]
    path = tmp_path / "chatconnect.toml"
    path.write_text(text)
    settings = load_settings(path, env={})
    assert settings.server.listen == "0.0.0.0:7600"
    assert (settings.server.store, settings.server.bus) == ("scylla", "redis")
    assert settings.server.redis_url == "rediss://redis.eu:6380/2"
    assert settings.server.data_dir == Path("/var/lib/chatconnect")
    assert settings.scylla.contact_points == "scylla-0.eu,scylla-1.eu"
    assert (settings.scylla.port, settings.scylla.local_dc, settings.scylla.keyspace) == (
        19042,
        "eu-west",
        "chat_prod",
    )
    assert settings.sharding.region == "eu"
    assert settings.sharding.map_file == Path("/etc/chatconnect/shard-map/shard-map.json")
    assert settings.auth.signing_key_file == Path("/etc/chatconnect/secrets/token-signing-key.pem")


def test_secrets_reach_pods_as_secret_references_never_as_values() -> None:
    cluster = copy.deepcopy(CLUSTER_SPEC)
    cluster["stores"][0]["scylla"]["credentialsSecret"] = "scylla-eu"
    cluster["stores"][0]["redis"]["passwordSecret"] = "redis-eu"
    model = region(cluster=cluster)
    env = {
        e["name"]: e
        for e in builders.deployment(model, "router")["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["CHATCONNECT_SCYLLA__USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": "scylla-eu",
        "key": "username",
    }
    assert env["CHATCONNECT_SCYLLA__PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "scylla-eu",
        "key": "password",
    }
    assert env["CHATCONNECT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-eu",
        "key": "password",
    }
    # the kubelet expands $(VAR) from a variable defined earlier in the list
    names = list(env)
    assert names.index("CHATCONNECT_REDIS_PASSWORD") < names.index("CHATCONNECT_SERVER__REDIS_URL")
    assert (
        env["CHATCONNECT_SERVER__REDIS_URL"]["value"]
        == "rediss://:$(CHATCONNECT_REDIS_PASSWORD)@redis.eu:6380/2"
    )
    assert "password" not in builders.region_config_map(model)["data"]["chatconnect.toml"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://r:6379/0", "redis://:$(P)@r:6379/0"),
        ("redis://app@r:6379/0", "redis://app:$(P)@r:6379/0"),
        ("rediss://r", "rediss://:$(P)@r"),
    ],
)
def test_the_redis_password_is_spliced_into_the_url(url: str, expected: str) -> None:
    env = podconfig.redis_env(url, "secret", variable="P")
    assert env[1] == {"name": "CHATCONNECT_SERVER__REDIS_URL", "value": expected}


def test_a_new_settings_file_rolls_the_pods_a_new_replica_count_does_not() -> None:
    def digest(model: builders.Region) -> str:
        return builders.deployment(model, "gateway")["spec"]["template"]["metadata"]["annotations"][
            "chatconnect.io/config-hash"
        ]

    base = region()
    other = copy.deepcopy(CLUSTER_SPEC)
    other["stores"][0]["redis"]["url"] = "rediss://redis-2.eu:6380/2"
    assert digest(base) == digest(dataclasses.replace(base, gateway_replicas=8))
    assert digest(base) != digest(region(cluster=other))


def test_the_shard_map_config_map_is_owned_by_the_cluster() -> None:
    owner = Owner("chatconnect.io/v1alpha1", "ChatCluster", "chat", "uid-chat")
    shard_map = ShardMap(epoch=3, homes=("eu", "us", "us"))
    config_map = cluster_builders.shard_map_config_map("prod", "chat", owner, shard_map)
    assert config_map["metadata"]["name"] == "chat-shard-map"
    assert config_map["metadata"]["ownerReferences"][0]["kind"] == "ChatCluster"
    assert config_map["metadata"]["ownerReferences"][0]["controller"] is True
    assert ShardMap.from_json(config_map["data"]["shard-map.json"]) == shard_map


def test_the_signing_key_is_an_ed25519_key_chatconnect_loads(tmp_path: Path) -> None:
    owner = Owner("chatconnect.io/v1alpha1", "ChatCluster", "chat", "uid-chat")
    pem = keys.generate_signing_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    secret = cluster_builders.signing_key_secret("prod", "chat", owner, pem)
    assert secret["metadata"]["name"] == "chat-token-signing-key"
    path = tmp_path / "token-signing-key.pem"
    path.write_text(secret["stringData"]["token-signing-key.pem"])
    load_or_create_signing_key(path)  # raises SystemExit for anything but Ed25519
    assert keys.generate_signing_key_pem() != pem


def test_the_turn_secret_is_random_and_strong() -> None:
    secrets = {keys.generate_turn_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(base64.urlsafe_b64decode(s + "=")) == 32 for s in secrets)


def test_the_settings_file_escapes_strings() -> None:
    cluster = copy.deepcopy(CLUSTER_SPEC)
    cluster["stores"][0]["scylla"]["localDatacenter"] = 'dc "quoted" \\ é'
    text = builders.region_config_map(region(cluster=cluster))["data"]["chatconnect.toml"]
    assert tomllib.loads(text)["scylla"]["local_dc"] == 'dc "quoted" \\ é'
